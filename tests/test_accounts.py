"""Accounts: a selling_partner connection is one seller in one region; planning routes each marketplace to it."""

from __future__ import annotations

import pytest

from sp_reports.accounts import Account, AccountError, account_from_connection, parse_marketplace_ids, route
from sp_reports.client.marketplaces import UnknownMarketplaceError

US, CA, DE, JP = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1PA6795UKMFR9", "A1VC38T7YXB528"
SELLER_A, SELLER_B = "A1SELLERALPHA", "A2SELLERBRAVO"


def test_a_connection_is_a_seller_in_a_region_with_its_marketplaces():
    account = account_from_connection(
        "amazon_a_na", {"selling_partner_id": SELLER_A, "region": "na", "marketplace_ids": f"{US}, {CA},{US}"}
    )
    assert account == Account("amazon_a_na", SELLER_A, "NA", (US, CA))
    assert str(account) == f"amazon_a_na (seller {SELLER_A}, NA: US {US}, CA {CA})"


@pytest.mark.parametrize("extra, message", [
    ({}, "lacks extra.selling_partner_id"),
    ({"selling_partner_id": "a1/../x"}, "must be an Amazon seller id"),
    ({"selling_partner_id": SELLER_A, "region": "MARS"}, "region must be one of NA, EU, FE"),
    ({"selling_partner_id": SELLER_A, "region": "NA", "marketplace_ids": f"{US},{JP}"},
     f"marketplaces JP {JP} are served by another region"),
    ({"selling_partner_id": SELLER_A, "marketplace_ids": "NOT_A_MARKETPLACE"}, "unknown marketplace id"),
])
def test_a_connection_that_cannot_be_an_account_says_why(extra, message):
    with pytest.raises(ValueError, match=message):
        account_from_connection("amazon_x", extra)


A_NA = Account("amazon_a_na", SELLER_A, "NA", (US,))
A_FE = Account("amazon_a_fe", SELLER_A, "FE", (JP,))
B_EU = Account("amazon_b_eu", SELLER_B, "EU", (DE,))
B_NA_ANY = Account("amazon_b_na", SELLER_B, "NA", ())


def test_without_marketplaces_each_account_requests_its_own():
    assert route([A_NA, A_FE, B_EU], []) == [(A_NA, US), (A_FE, JP), (B_EU, DE)]


def test_a_named_marketplace_goes_to_every_account_of_its_region_that_covers_it():
    # B names no NA marketplace, so it serves any; A names US only, so CA is B's alone.
    assert route([A_NA, A_FE, B_EU, B_NA_ANY], [US, JP, CA]) == [(A_NA, US), (B_NA_ANY, US), (A_FE, JP), (B_NA_ANY, CA)]


def test_planning_refuses_a_marketplace_no_account_covers_naming_it_and_the_accounts_considered():
    with pytest.raises(AccountError) as refused:
        route([A_NA, B_EU], [US, JP])
    message = str(refused.value)
    assert f"no account covers marketplace JP {JP} (served by region FE)" in message
    assert f"amazon_a_na (seller {SELLER_A}, NA: US {US})" in message and "amazon_b_eu" in message


def test_planning_refuses_unknown_marketplaces_and_empty_plans():
    with pytest.raises(UnknownMarketplaceError, match="unknown marketplace id 'XX'"):
        route([A_NA], ["XX"])
    with pytest.raises(AccountError, match="none of the accounts has default marketplaces"):
        route([B_NA_ANY], [])
    with pytest.raises(AccountError, match="SP_REPORTS_ACCOUNTS"):
        route([], [US])


@pytest.mark.parametrize("value, expected", [
    (None, []), ("", []), ("A, B,,C", ["A", "B", "C"]), (["A", " B "], ["A", "B"]),
])
def test_parse_marketplace_ids(value, expected):
    assert parse_marketplace_ids(value) == expected
