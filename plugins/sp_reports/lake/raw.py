"""Raw zone: report documents exactly as downloaded (gzip stays gzip) plus a JSON sidecar, for replay.

The fetch step writes the document with ``lake.open_output(raw_document_path(...))`` and then the
sidecar with ``write_raw_metadata``; the sidecar holds what parsing and replay need to know about the
bytes: ``content_type``, ``charset`` (Amazon's label), ``compressed``, ``size``, ``sha256``,
``marketplace_ids``, the report's ids, and whatever else the caller adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .paths import raw_document_path, raw_metadata_path
from .storage import Lake

__all__ = ["raw_document_path", "raw_metadata_path", "read_raw_metadata", "write_raw_metadata"]


def write_raw_metadata(lake: Lake, raw_path: str, metadata: Mapping[str, Any]) -> str:
    """Write the sidecar of ``raw_path`` (atomically) and return its path."""
    path = raw_metadata_path(raw_path)
    lake.write_json(path, dict(metadata))
    return path


def read_raw_metadata(lake: Lake, raw_path: str) -> dict[str, Any]:
    return lake.read_json(raw_metadata_path(raw_path))
