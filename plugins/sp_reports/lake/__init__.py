"""Lake storage (local / S3), raw zone and Delta landing (parsing: ``sp_reports.parsing``). No Airflow imports."""

from .delta import (
    DEFAULT_PARTITION_BY,
    LandingError,
    LandResult,
    TableLanding,
    land_tables,
    open_table,
    read_table,
    table_name_for,
)
from .paths import manifest_path, raw_document_path, raw_metadata_path, staging_dir
from .storage import Lake

__all__ = [
    "DEFAULT_PARTITION_BY",
    "Lake",
    "LandResult",
    "LandingError",
    "TableLanding",
    "land_tables",
    "manifest_path",
    "open_table",
    "raw_document_path",
    "raw_metadata_path",
    "read_table",
    "staging_dir",
    "table_name_for",
]
