"""Column names the parsers write and the landing reads: one snake_case for every parser and for the
natural keys (a key named in the registry, ``AmazonOrderID`` or ``seller-sku``, always finds its column),
the system columns every row carries, and the metadata keys that record Amazon's own headers.

Parsing and the lake both import this module and not each other's internals. It imports nothing heavy.
"""

from __future__ import annotations

import re
from typing import Any

# Columns the parsers add to every data table (never reported as added by or missing from a document).
# A reportId is unique only together with the selling partner's id (Amazon), so every key of the lake
# (rows, ledger, paths, replace-by-report, natural keys) starts with the seller.
SELLER_COLUMN = "selling_partner_id"
REPORT_ID_COLUMN = "report_id"
MARKETPLACE_COLUMN = "marketplace_id"
CREATED_TIME_COLUMN = "report_created_time"
REPORT_DATE_COLUMN = "report_date"
SOURCE_LINE_COLUMN = "source_line"
SYSTEM_COLUMNS = (
    SELLER_COLUMN,
    REPORT_ID_COLUMN,
    MARKETPLACE_COLUMN,
    CREATED_TIME_COLUMN,
    REPORT_DATE_COLUMN,
    SOURCE_LINE_COLUMN,
)
# Parquet schema metadata of staging files: {snake_case column: header as the document wrote it}.
SOURCE_COLUMNS_KEY = "sp_reports.source_columns"

# Amazon's selling partner (merchant) ids: uppercase letters and digits, e.g. "A3EMULATORSELLER".
_SELLER_ID = re.compile(r"[A-Z0-9]{1,64}")

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
    """The MERGE key of a report type's main table: selling_partner_id, marketplace_id + its natural keys
    as column names (two sellers' rows with equal natural keys are two rows)."""
    keys = [snake_case(k) for k in getattr(report, "natural_keys", ()) or ()]
    if not keys:
        return ()
    system = (SELLER_COLUMN, MARKETPLACE_COLUMN)
    return (*system, *[k for k in keys if k not in system])


def selling_partner_id(value: Any) -> str:
    """``value`` if it is a selling partner id (uppercase letters and digits, as Amazon's are): it is a
    path segment of the lake (``raw/<type>/<seller>/...``) and a key of every table, so anything else is
    refused here, before it is written anywhere."""
    if not isinstance(value, str) or not _SELLER_ID.fullmatch(value):
        raise ValueError(
            f"selling_partner_id must be an Amazon seller id (1-64 uppercase letters and digits, "
            f"e.g. A3EMULATORSELLER), got {value!r}"
        )
    return value
