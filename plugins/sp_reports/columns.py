"""Column names the parsers write and the landing reads: one snake_case for every parser and for the
natural keys (a key named in the registry, ``AmazonOrderID`` or ``seller-sku``, always finds its column),
the system columns every row carries, and the metadata keys that record Amazon's own headers.

Parsing and the lake both import this module and not each other's internals. It imports nothing heavy.
"""

from __future__ import annotations

import re
from typing import Any

# Columns the parsers add to every data table (never reported as added by or missing from a document).
REPORT_ID_COLUMN = "report_id"
MARKETPLACE_COLUMN = "marketplace_id"
CREATED_TIME_COLUMN = "report_created_time"
REPORT_DATE_COLUMN = "report_date"
SOURCE_LINE_COLUMN = "source_line"
SYSTEM_COLUMNS = (REPORT_ID_COLUMN, MARKETPLACE_COLUMN, CREATED_TIME_COLUMN, REPORT_DATE_COLUMN, SOURCE_LINE_COLUMN)
# Parquet schema metadata of staging files: {snake_case column: header as the document wrote it}.
SOURCE_COLUMNS_KEY = "sp_reports.source_columns"

_ACRONYM_PLURAL = re.compile(r"([A-Z]{2,})s(?=[A-Z0-9_\W]|$)")
_LOWER_UPPER = re.compile(r"(?<=[a-z])(?=[A-Z0-9])|(?<=[0-9])(?=[A-Z][a-z])")
_ACRONYM_WORD = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^\w]+")


def snake_case(name: str) -> str:
    """``AmazonOrderID`` -> ``amazon_order_id``, ``PromotionIDs`` -> ``promotion_ids``, ``salesByDate`` ->
    ``sales_by_date``, ``unitsOrderedB2B`` -> ``units_ordered_b2b``, ``ship-address-1`` -> ``ship_address_1``."""
    name = _ACRONYM_PLURAL.sub(lambda m: m.group(1).capitalize() + "s", name.strip())
    name = _ACRONYM_WORD.sub("_", _LOWER_UPPER.sub("_", name))
    return _NON_WORD.sub("_", name).strip("_").lower()


def natural_key_columns(report: Any) -> tuple[str, ...]:
    """The MERGE key of a report type's main table: marketplace_id + its natural keys as column names."""
    keys = [snake_case(k) for k in getattr(report, "natural_keys", ()) or ()]
    if not keys:
        return ()
    return (MARKETPLACE_COLUMN, *[k for k in keys if k != MARKETPLACE_COLUMN])
