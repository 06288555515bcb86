"""Lake storage (local / S3), raw zone, flat-file -> Parquet parser and Delta landing. No Airflow imports."""

from .delta import DEFAULT_PARTITION_BY, LandResult, land_report, open_table, read_table, table_name_for
from .flatfile import DocumentParseError, ParseResult, parse_flat_file, python_codec, snake_case
from .paths import raw_document_path, raw_metadata_path, staging_dir
from .raw import read_raw_metadata, write_raw_metadata
from .storage import Lake

__all__ = [
    "DEFAULT_PARTITION_BY",
    "DocumentParseError",
    "LandResult",
    "Lake",
    "ParseResult",
    "land_report",
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
