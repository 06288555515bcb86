"""Lake storage (local / S3), raw zone, flat-file -> Parquet parser and Delta landing. No Airflow imports."""

from .delta import (
    DEFAULT_PARTITION_BY,
    LandingError,
    LandResult,
    TableLanding,
    land_report,
    land_tables,
    natural_key_columns,
    open_table,
    read_table,
    table_name_for,
)
from .paths import raw_document_path, raw_metadata_path, staging_dir
from .raw import read_raw_metadata, write_raw_metadata
from .storage import Lake

__all__ = [
    "DEFAULT_PARTITION_BY",
    "DocumentParseError",
    "LandResult",
    "LandingError",
    "Lake",
    "ParseResult",
    "TableLanding",
    "land_report",
    "land_tables",
    "natural_key_columns",
    "open_table",
    "parse_flat_file",
    "python_codec",
    "raw_document_path",
    "raw_metadata_path",
    "read_raw_metadata",
    "read_table",
    "snake_case",
    "staging_dir",
    "table_name_for",
    "write_raw_metadata",
]

# The flat-file names moved to sp_reports.parsing, which imports this package: resolved on first use
# (PEP 562) so that importing either package first works.
_FLATFILE_NAMES = {"DocumentParseError", "ParseResult", "parse_flat_file", "python_codec", "snake_case"}


def __getattr__(name: str):
    if name in _FLATFILE_NAMES:
        from . import flatfile

        return getattr(flatfile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
