"""Column names: one snake_case for every parser and for the landing's natural keys, so a key named
in the registry (``AmazonOrderID``, ``seller-sku``) always finds its column."""

from __future__ import annotations

import re

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
