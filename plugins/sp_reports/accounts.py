"""Accounts: the seller authorisations a deployment serves, and which one serves each marketplace.

An account is one ``selling_partner`` Airflow connection: one seller (its selling partner id) authorised in one
region (NA, EU or FE). A seller selling in three regions has three authorisations, so three connections with the
same selling partner id. ``SP_REPORTS_ACCOUNTS`` lists the connections the DAGs serve (Airflow 3 tasks cannot
enumerate connections, and connections from a secrets backend cannot be listed at all: hence an explicit list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sp_reports.client.marketplaces import REGIONS, describe, region_of
from sp_reports.columns import selling_partner_id


class AccountError(ValueError):
    """A connection that cannot serve as an account, or a plan no account can serve."""


@dataclass(frozen=True)
class Account:
    conn_id: str
    selling_partner_id: str
    region: str
    marketplace_ids: tuple[str, ...]  # the account's default marketplaces; empty: none by default

    def covers(self, marketplace_id: str) -> bool:
        """Its region serves the marketplace, and it names the marketplace (or names none, so serves any)."""
        return region_of(marketplace_id) == self.region and (
            not self.marketplace_ids or marketplace_id in self.marketplace_ids
        )

    def __str__(self) -> str:
        marketplaces = ", ".join(describe(m) for m in self.marketplace_ids) or f"any {self.region} marketplace"
        return f"{self.conn_id} (seller {self.selling_partner_id}, {self.region}: {marketplaces})"


def account_from_connection(conn_id: str, extra: Mapping[str, Any]) -> Account:
    """The account a ``selling_partner`` connection describes (its extras by bare name), validated."""
    seller = str(extra.get("selling_partner_id") or "").strip()
    if not seller:
        raise AccountError(
            f"connection {conn_id!r} lacks extra.selling_partner_id: the seller's id (Seller Central > Settings > "
            "Account Info > Merchant Token), which keys every report it lands"
        )
    try:
        selling_partner_id(seller)
    except ValueError as exc:
        raise AccountError(f"connection {conn_id!r}: {exc}") from None
    region = str(extra.get("region") or "NA").strip().upper()
    if region not in REGIONS:
        raise AccountError(f"connection {conn_id!r}: region must be one of {', '.join(REGIONS)}, got {region!r}")
    marketplaces = tuple(dict.fromkeys(parse_marketplace_ids(extra.get("marketplace_ids"))))
    elsewhere = [m for m in marketplaces if region_of(m) != region]
    if elsewhere:
        raise AccountError(
            f"connection {conn_id!r} is for region {region}, but its marketplaces "
            f"{', '.join(describe(m) for m in elsewhere)} are served by another region's endpoint: "
            "give each region its own connection"
        )
    return Account(conn_id, seller, region, marketplaces)


def parse_marketplace_ids(value: Any) -> list[str]:
    """Marketplace ids from a list or a comma-separated string."""
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def route(accounts: Iterable[Account], marketplace_ids: Iterable[str]) -> list[tuple[Account, str]]:
    """(account, marketplace) pairs to request: each named marketplace for every account that covers it, or,
    when none is named, each account's own marketplaces. A named marketplace no account covers fails the plan."""
    accounts = list(accounts)
    if not accounts:
        raise AccountError("no account to plan for: list selling_partner connections in SP_REPORTS_ACCOUNTS")
    wanted = list(dict.fromkeys(parse_marketplace_ids(list(marketplace_ids))))
    if not wanted:
        pairs = [(account, m) for account in accounts for m in account.marketplace_ids]
        if not pairs:
            raise AccountError(
                "no marketplace named, and none of the accounts has default marketplaces: "
                + "; ".join(str(a) for a in accounts)
            )
        return pairs
    pairs = []
    for marketplace in wanted:
        covering = [account for account in accounts if account.covers(marketplace)]
        if not covering:
            raise AccountError(
                f"no account covers marketplace {describe(marketplace)} (served by region "
                f"{region_of(marketplace)}); accounts considered: " + "; ".join(str(a) for a in accounts)
            )
        pairs.extend((account, marketplace) for account in covering)
    return pairs
