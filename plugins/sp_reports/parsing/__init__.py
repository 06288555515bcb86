"""Raw SP-API report documents -> typed staging Parquet plus quarantine records (docs/parsing.md).

``parse_document`` dispatches on the report type's format: flat files here (``flatfile.py``), XML and
JSON in ``xml_reports.py`` / ``json_reports.py`` (imported only when such a document is parsed).
"""

from __future__ import annotations

from collections.abc import Mapping

from sp_reports.payloads import ParseResult
from sp_reports.registry import ReportType

from .result import QUARANTINE_SCHEMA, DocumentParseError

__all__ = ["QUARANTINE_SCHEMA", "DocumentParseError", "ParseResult", "parse_document"]


def parse_document(
    lake,
    raw_path: str,
    out_dir: str,
    *,
    report: ReportType,
    marketplace_id: str,
    charset: str | None,
    compressed: bool | None,
    extra_columns: Mapping[str, str],
) -> ParseResult:
    """Parse the raw document at ``raw_path`` into staging Parquet under ``out_dir`` (a ``staging/`` path).

    Bad rows and values are quarantined, never raised; only ``DocumentParseError`` escapes, for a
    document that cannot be read at all. Storage errors propagate as ``OSError``.
    """
    if report.format == "tsv":
        from .flatfile import parse_tsv

        return parse_tsv(
            lake,
            raw_path,
            out_dir,
            report=report,
            marketplace_id=marketplace_id,
            charset=charset,
            compressed=compressed,
            extra_columns=extra_columns,
        )
    if report.format == "xml":
        from .xml_reports import parse_xml

        return parse_xml(
            lake,
            raw_path,
            out_dir,
            report=report,
            marketplace_id=marketplace_id,
            charset=charset,
            compressed=compressed,
            extra_columns=extra_columns,
        )
    if report.format == "json":
        from .json_reports import parse_json

        return parse_json(
            lake,
            raw_path,
            out_dir,
            report=report,
            marketplace_id=marketplace_id,
            charset=charset,
            compressed=compressed,
            extra_columns=extra_columns,
        )
    raise ValueError(f"{report.report_type}: unknown document format {report.format!r}")
