"""Planning createReport calls: one per account, marketplace and date chunk, within each type's maximum range."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sp_reports.accounts import Account
from sp_reports.planning import covered, drop_landed, numbered, plan_requests, split_range
from sp_reports.registry import ReportType

UTC = timezone.utc
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
ACCOUNT = Account("amazon_na", "A1SELLERALPHA", "NA", (US,))


def test_split_range_covers_the_period_without_overlap():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=65, hours=3)
    chunks = split_range(start, end, 30)
    assert [c[1] - c[0] for c in chunks] == [timedelta(days=30), timedelta(days=30), timedelta(days=5, hours=3)]
    assert chunks[0][0] == start and chunks[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))


def test_split_range_rejects_naive_and_reversed_ranges():
    with pytest.raises(ValueError, match="timezone-aware"):
        split_range(datetime(2026, 1, 2), datetime(2026, 1, 3), 1)
    with pytest.raises(ValueError, match="must be after"):
        split_range(datetime(2026, 1, 3, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), 1)


def test_plan_is_one_request_per_account_marketplace_and_chunk_with_merged_options():
    report = ReportType("GET_X", max_range_days=30, report_options={"a": "1", "b": "2"})
    other = Account("amazon_other_na", "A2SELLERBRAVO", "NA", ())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    plan = plan_requests(report, [ACCOUNT, other], [CA, US, US, " "], start, start + timedelta(days=45), {"b": "3"})
    assert [(p["selling_partner_conn_id"], p["marketplace_ids"]) for p in plan] == [
        ("amazon_other_na", [CA]), ("amazon_other_na", [CA]),
        ("amazon_na", [US]), ("amazon_na", [US]), ("amazon_other_na", [US]), ("amazon_other_na", [US]),
    ]
    assert plan[0]["report_options"] == {"a": "1", "b": "3"}
    assert plan[1]["data_start_time"] == (start + timedelta(days=30)).isoformat()
    assert plan[2]["selling_partner_id"] == "A1SELLERALPHA"


def test_snapshot_reports_take_no_date_range():
    plan = plan_requests(ReportType("GET_SNAP"), [ACCOUNT], [], None, None)
    assert plan == [{"selling_partner_conn_id": "amazon_na", "selling_partner_id": "A1SELLERALPHA",
                     "report_type": "GET_SNAP", "marketplace_ids": [US], "data_start_time": None,
                     "data_end_time": None, "report_options": {}}]


def test_plan_needs_marketplaces_and_a_range():
    with pytest.raises(ValueError, match="marketplace"):
        plan_requests(ReportType("GET_SNAP"), [Account("amazon_any", "A1SELLERALPHA", "NA", ())], [], None, None)
    with pytest.raises(ValueError, match="data start and end"):
        plan_requests(ReportType("GET_X", max_range_days=3), [ACCOUNT], [US], None, None)


DAY = timedelta(days=1)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def daily_plan(days: int, marketplaces=(US,)) -> list[dict]:
    account = Account("amazon_na", "A1SELLERALPHA", "NA", (US, CA))
    return plan_requests(ReportType("GET_X", max_range_days=1), [account], list(marketplaces), NOV, NOV + days * DAY)


def landed(*spans, marketplace=US, report_type="GET_X") -> dict:
    return {("A1SELLERALPHA", report_type, marketplace): [(NOV + a * DAY, NOV + b * DAY) for a, b in spans]}


@pytest.mark.parametrize(("spans", "covered_range"), [
    ([(0, 3)], True),  # exact match
    ([(0, 1), (1, 2), (2, 3)], True),  # several adjacent daily reports
    ([(2, 3), (0, 2)], True),  # in any order
    ([(-5, 10)], True),  # a longer report
    ([(0, 2)], False),  # partially covered
    ([(0, 1), (2, 3)], False),  # a gap
    ([(1, 3)], False),  # the start missing
    ([], False),
])
def test_a_range_is_covered_by_the_union_of_landed_ranges(spans, covered_range):
    assert covered(NOV, NOV + 3 * DAY, [(NOV + a * DAY, NOV + b * DAY) for a, b in spans]) is covered_range


def test_amazons_inclusive_data_ends_leave_no_gap():
    second = timedelta(seconds=1)
    assert covered(NOV, NOV + 2 * DAY, [(NOV, NOV + DAY - second), (NOV + DAY, NOV + 2 * DAY - second)])
    assert not covered(NOV, NOV + 2 * DAY, [(NOV, NOV + DAY - 2 * second), (NOV + DAY, NOV + 2 * DAY)])


def test_drop_landed_keeps_what_the_ledger_does_not_hold():
    plan = daily_plan(4, marketplaces=(US, CA))
    kept, skipped = drop_landed(plan, {**landed((0, 2), (3, 4)), **landed((0, 4), marketplace=CA, report_type="GET_Y")})
    assert [(r["marketplace_ids"], r["data_start_time"]) for r in skipped] == [
        ([US], NOV.isoformat()), ([US], (NOV + DAY).isoformat()), ([US], (NOV + 3 * DAY).isoformat())]
    assert len(kept) == 5 and kept[0]["data_start_time"] == (NOV + 2 * DAY).isoformat()
    assert drop_landed(plan, {}) == (plan, [])


def test_drop_landed_keeps_snapshots_and_other_sellers_requests():
    snapshot = plan_requests(ReportType("GET_SNAP"), [ACCOUNT], [], None, None)
    assert drop_landed(snapshot, landed((-100, 100), report_type="GET_SNAP")) == (snapshot, [])
    other = Account("amazon_other_na", "A2SELLERBRAVO", "NA", (US,))
    theirs = plan_requests(ReportType("GET_X", max_range_days=1), [other], [US], NOV, NOV + DAY)
    assert drop_landed(theirs, landed((0, 1))) == (theirs, [])


def test_numbered_requests_carry_their_place_and_the_force_flag():
    requests = numbered(daily_plan(3), force_new_report=True)
    assert [(r["request_number"], r["request_count"], r["force_new_report"]) for r in requests] == [
        (1, 3, True), (2, 3, True), (3, 3, True)]
    assert numbered([], force_new_report=False) == []
