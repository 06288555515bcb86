"""Moved: flat-file parsing lives in ``sp_reports.parsing`` (this module re-exports the old names)."""

from sp_reports.parsing.flatfile import normalise_columns, snake_case
from sp_reports.parsing.legacy import REPORT_DATE_COLUMN, ParseResult, parse_flat_file, python_codec, report_dates
from sp_reports.parsing.result import SOURCE_COLUMNS_KEY, DocumentParseError

__all__ = [
    "REPORT_DATE_COLUMN",
    "SOURCE_COLUMNS_KEY",
    "DocumentParseError",
    "ParseResult",
    "normalise_columns",
    "parse_flat_file",
    "python_codec",
    "report_dates",
    "snake_case",
]
