"""Fixtures for the parsing tests: a local lake and ``parse`` (see parsing_support.make_parse)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for ``import parsing_support``

from parsing_support import make_parse  # noqa: E402

from sp_reports.lake import Lake  # noqa: E402


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def parse(lake):
    return make_parse(lake)
