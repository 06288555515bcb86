"""Amazon's marketplace table: each marketplace id belongs to one region's endpoint."""

from __future__ import annotations

import pytest

from sp_reports.client import REGION_ENDPOINTS
from sp_reports.client.marketplaces import MARKETPLACES, REGIONS, UnknownMarketplaceError, describe, region_of


@pytest.mark.parametrize("marketplace, region", [
    ("ATVPDKIKX0DER", "NA"), ("A2Q3Y263D00KWC", "NA"), ("A1PA6795UKMFR9", "EU"), ("A21TJRUUN4KGV", "EU"),
    ("A1F83G8C2ARO7P", "EU"), ("A1VC38T7YXB528", "FE"), ("A39IBJ37TRP1C6", "FE"), ("A19VAU5U5O7RUS", "FE"),
])
def test_each_marketplace_is_served_by_its_region(marketplace, region):
    assert region_of(marketplace) == region


def test_the_table_has_amazons_23_marketplaces_in_the_three_regions_the_client_has_endpoints_for():
    regions = [region for _, region in MARKETPLACES.values()]
    assert len(MARKETPLACES) == 23
    assert {r: regions.count(r) for r in REGIONS} == {"NA": 4, "EU": 16, "FE": 3}
    assert set(REGIONS) == set(REGION_ENDPOINTS)


def test_an_unknown_marketplace_is_named_with_the_known_ones():
    with pytest.raises(UnknownMarketplaceError, match=r"unknown marketplace id 'A1PA6795UKMFR';.*DE A1PA6795UKMFR9"):
        region_of("A1PA6795UKMFR")
    assert describe("A1VC38T7YXB528") == "JP A1VC38T7YXB528" and describe("X") == "X"


def test_the_emulator_serves_amazons_marketplaces_from_the_same_regions():
    from sp_reports.emulator.marketplaces import MARKETPLACES as EMULATED

    assert set(EMULATED) == set(MARKETPLACES)
    assert {m.id: m.region.upper() for m in EMULATED.values()} == {m: region for m, (_, region) in MARKETPLACES.items()}
