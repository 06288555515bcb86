"""Raw SP-API report documents -> typed staging Parquet plus quarantine records (docs/parsing.md).

``parse_document`` dispatches on the report type's format: flat files here (``flatfile.py``), XML and
JSON in ``xml_reports.py`` / ``json_reports.py`` (imported only when such a document is parsed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Unpack

from sp_reports.payloads import ParseResult

from .result import QUARANTINE_SCHEMA, DocumentParseError, ParseOptions

if TYPE_CHECKING:
    from sp_reports.lake.storage import Lake

__all__ = ["QUARANTINE_SCHEMA", "DocumentParseError", "ParseOptions", "ParseResult", "parse_document"]


# format -> (module, parser): each module is imported only when a document of its format is parsed.
PARSERS = {
    "tsv": ("flatfile", "parse_tsv"),
    "xml": ("xml_reports", "parse_xml"),
    "json": ("json_reports", "parse_json"),
}


def parse_document(lake: Lake, raw_path: str, out_dir: str, **options: Unpack[ParseOptions]) -> ParseResult:
    """Parse the raw document at ``raw_path`` into staging Parquet under ``out_dir`` (a ``staging/`` path).

    Bad rows and values are quarantined, never raised; only ``DocumentParseError`` escapes, for a
    document that cannot be read at all. Storage errors propagate as ``OSError``.
    """
    report = options["report"]
    if report.format not in PARSERS:
        raise ValueError(f"{report.report_type}: unknown document format {report.format!r}")
    module, name = PARSERS[report.format]
    parser = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    result: ParseResult = parser(lake, raw_path, out_dir, **options)
    return result
