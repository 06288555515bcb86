"""Arrow's memory allocator for the parse and land steps.

pyarrow allocates from mimalloc by default. Its per-thread heaps keep freed pages for reuse, so each
worker thread of a step holds on to its own tens of MB. jemalloc (also in pyarrow's Linux wheels)
peaked lower at the same speed or better, measured on a 1 GB orders document: parse 348 -> 317 MiB,
a random-order parse 382 -> 357 MiB (12.5 -> 11.3 s), a MERGE's land with two reading threads
358 -> 258 MiB. With Arrow's jemalloc settings freed pages go back to the OS after a second, though:
a merge-update's land then peaked at 386-419 MiB (mimalloc: 356-365) as its bucket joins' memory was
still held when the next step allocated. Returned after 100 ms (``JEMALLOC_CONF``), it peaks at
335-338 MiB, the parse at 291-296 MiB, at the same speed (with no delay at all: 297 MiB but 50%
slower, every page faulted in again).

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
