"""Planning createReport calls: one per marketplace and date chunk, within each type's maximum range."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sp_reports.planning import plan_requests, split_range
from sp_reports.registry import ReportType

UTC = timezone.utc


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


def test_plan_is_one_request_per_marketplace_and_chunk_with_merged_options():
    report = ReportType("GET_X", max_range_days=30, report_options={"a": "1", "b": "2"})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    plan = plan_requests(report, ["M2", "M1", "M1", " "], start, start + timedelta(days=45), {"b": "3"})
    assert len(plan) == 4
    assert [p["marketplace_ids"] for p in plan] == [["M1"], ["M1"], ["M2"], ["M2"]]
    assert plan[0]["report_options"] == {"a": "1", "b": "3"}
    assert plan[1]["data_start_time"] == (start + timedelta(days=30)).isoformat()


def test_snapshot_reports_take_no_date_range():
    plan = plan_requests(ReportType("GET_SNAP"), ["M1"], None, None)
    assert plan == [{"report_type": "GET_SNAP", "marketplace_ids": ["M1"], "data_start_time": None,
                     "data_end_time": None, "report_options": {}}]


def test_plan_needs_marketplaces_and_a_range():
    with pytest.raises(ValueError, match="marketplace"):
        plan_requests(ReportType("GET_SNAP"), [], None, None)
    with pytest.raises(ValueError, match="data start and end"):
        plan_requests(ReportType("GET_X", max_range_days=3), ["M1"], None, None)
