"""Arrow's allocator: importing sp_reports asks for jemalloc before pyarrow loads (sp_reports/memory.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from sp_reports.memory import ENV, JEMALLOC_CONF, JEMALLOC_ENV

PROBE = "import sp_reports, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _backend(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in (ENV, JEMALLOC_ENV)} | env
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="jemalloc is chosen on x86-64 only")
def test_importing_sp_reports_first_selects_jemalloc():
    assert _backend(PROBE) == "jemalloc"
    # ... returning freed pages after 100 ms, not Arrow's 1 s
    assert _backend("import os, sp_reports; print(os.environ['" + JEMALLOC_ENV + "'])") == JEMALLOC_CONF


def test_an_explicit_choice_is_kept():
    assert _backend(PROBE, **{ENV: "system"}) == "system"
    code = "import os, sp_reports; print(os.environ.get('" + JEMALLOC_ENV + "', 'unset'))"
    assert _backend(code, **{ENV: "jemalloc"}) == "unset"  # the user's jemalloc, the user's settings


def test_pyarrow_imported_first_keeps_its_default():
    # Too late to choose: the variable is not set behind Arrow's back (child processes would differ).
    code = "import os, pyarrow, sp_reports; print(os.environ.get('" + ENV + "', 'unset'))"
    assert _backend(code) == "unset"
