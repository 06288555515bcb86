"""Arrow's memory allocator for the parse and land steps.

pyarrow allocates from mimalloc by default. Its per-thread heaps keep freed pages for reuse, so each
worker thread of a step holds on to its own tens of MB. jemalloc (also in pyarrow's Linux wheels)
peaks lower at the same speed or better. With Arrow's jemalloc settings freed pages go back to the OS only
after a second, which lets a merge-update's land peak higher than with mimalloc (its bucket joins' memory is
still held when the next step allocates); returned after 100 ms (``JEMALLOC_CONF``) the peaks are lowest at
the same speed (with no delay at all, every page is faulted in again and the parse is slower). The figures:
docs/benchmarks.md, "Measurements behind the code".

Arrow picks its allocator once, from ``ARROW_DEFAULT_MEMORY_POOL``, when pyarrow is imported (and
``pyarrow.set_memory_pool`` only changes the pool of Python-level calls, not the CSV reader's or the
Parquet writer's). So importing ``sp_reports`` sets that variable, unless it is set already or pyarrow
is imported already; on x86-64 only (jemalloc refuses some ARM kernels' page sizes). Airflow imports
``sp_reports`` early in every process (its provider entry point) and task processes inherit it.
"""

from __future__ import annotations

import os
import platform
import sys

ENV = "ARROW_DEFAULT_MEMORY_POOL"
PREFERRED = "jemalloc"
# Read by the jemalloc in pyarrow (built with the je_arrow_ prefix) over Arrow's own settings.
JEMALLOC_ENV = "JE_ARROW_MALLOC_CONF"
JEMALLOC_CONF = "dirty_decay_ms:100,muzzy_decay_ms:0"


def prefer_jemalloc() -> None:
    """Ask for jemalloc before pyarrow is imported (a no-op if it is, or if the choice is made)."""
    if "pyarrow" in sys.modules or platform.machine().lower() not in ("x86_64", "amd64"):
        return
    if ENV not in os.environ:
        os.environ[ENV] = PREFERRED
        os.environ.setdefault(JEMALLOC_ENV, JEMALLOC_CONF)


def allocator() -> str:
    """The backend of Arrow's default memory pool ("jemalloc", "mimalloc" or "system")."""
    import pyarrow as pa

    return pa.default_memory_pool().backend_name


def release_memory() -> None:
    """Hand memory the allocator keeps cached back to the OS (it otherwise holds on to ~100 MB of
    freed buffers; this keeps a landing's peak RSS flat)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
