"""Which SP-API region serves each marketplace: Amazon's published table.

Sources: https://developer-docs.amazon.com/sp-api/docs/marketplace-ids and
https://developer-docs.amazon.com/sp-api/docs/sp-api-endpoints. A request for a marketplace must go to its
region's endpoint, with the seller's authorisation for that region; another region's endpoint refuses it.
"""

from __future__ import annotations

REGIONS = ("NA", "EU", "FE")

# marketplace id -> (country code, region)
MARKETPLACES: dict[str, tuple[str, str]] = {
    # North America
    "A2EUQ1WTGCTBG2": ("CA", "NA"),
    "ATVPDKIKX0DER": ("US", "NA"),
    "A1AM78C64UM0Y8": ("MX", "NA"),
    "A2Q3Y263D00KWC": ("BR", "NA"),
    # Europe
    "A28R8C7NBKEWEA": ("IE", "EU"),
    "A1RKKUPIHCS9HS": ("ES", "EU"),
    "A1F83G8C2ARO7P": ("UK", "EU"),
    "A13V1IB3VIYZZH": ("FR", "EU"),
    "AMEN7PMS3EDWL": ("BE", "EU"),
    "A1805IZSGTT6HS": ("NL", "EU"),
    "A1PA6795UKMFR9": ("DE", "EU"),
    "APJ6JRA9NG5V4": ("IT", "EU"),
    "A2NODRKZP88ZB9": ("SE", "EU"),
    "AE08WJ6YKNBMC": ("ZA", "EU"),
    "A1C3SOZRARQ6R3": ("PL", "EU"),
    "ARBP9OOSHTCHU": ("EG", "EU"),
    "A33AVAJ2PDY3EV": ("TR", "EU"),
    "A17E79C6D8DWNP": ("SA", "EU"),
    "A2VIGQ35RCS4UG": ("AE", "EU"),
    "A21TJRUUN4KGV": ("IN", "EU"),
    # Far East
    "A19VAU5U5O7RUS": ("SG", "FE"),
    "A39IBJ37TRP1C6": ("AU", "FE"),
    "A1VC38T7YXB528": ("JP", "FE"),
}


class UnknownMarketplaceError(ValueError):
    """A marketplace id that is not in Amazon's table (a typo, or a marketplace newer than this table)."""


def region_of(marketplace_id: str) -> str:
    """The region (NA, EU or FE) whose endpoint serves this marketplace."""
    try:
        return MARKETPLACES[marketplace_id][1]
    except KeyError:
        raise UnknownMarketplaceError(
            f"unknown marketplace id {marketplace_id!r}; Amazon's table "
            "(https://developer-docs.amazon.com/sp-api/docs/marketplace-ids) lists "
            + ", ".join(f"{code} {mid}" for mid, (code, _) in MARKETPLACES.items())
        ) from None


def describe(marketplace_id: str) -> str:
    """``JP A1VC38T7YXB528`` for messages; the bare id when unknown."""
    known = MARKETPLACES.get(marketplace_id)
    return f"{known[0]} {marketplace_id}" if known else marketplace_id
