"""Report schedules as code: make Amazon's report schedules match the registry's ``amazon_schedule``s.

Schedules belong to a seller in a region, so each account reconciles the declared schedules whose marketplaces it
covers. The registry owns the schedules of the report types it declares one for, and of the types it declared
one for before (remembered in the lake, ``state/report_schedules/<seller>-<region>.json``), so removing a
declaration cancels its schedule while schedules of other report types are never touched.
Reconciling twice changes nothing: a schedule is only created when none with the same report type,
marketplaces, period and options exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sp_reports.client import SellingPartnerClient
from sp_reports.registry import AmazonSchedule, ReportType

if TYPE_CHECKING:  # the lake loads pyarrow and deltalake: not at DAG parse time
    from sp_reports.accounts import Account
    from sp_reports.lake import Lake

log = logging.getLogger(__name__)
# Written by the single-seller versions: read as the account's state until the account has its own.
SINGLE_SELLER_STATE_PATH = ("state", "report_schedules.json")
TYPES_PER_CALL = 10  # getReportSchedules' reportTypes takes at most 10


def _key(report_type: str, marketplace_ids: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    return report_type, tuple(sorted(marketplace_ids))


def _matches(existing: dict, wanted: AmazonSchedule) -> bool:
    return existing.get("period") == wanted.period and (existing.get("reportOptions") or {}) == wanted.report_options


def reconcile_schedules(
    client: SellingPartnerClient, lake: Lake, reports: Iterable[ReportType], account: Account, dry_run: bool = False
) -> dict[str, list[dict]]:
    """Create missing schedules, replace changed ones, cancel removed ones, for this account (``client`` is its
    client); returns what was done (or, with ``dry_run``, what would be) as {"created", "replaced", "cancelled",
    "unchanged"}."""
    reports = list(reports)
    wanted = {
        _key(r.report_type, r.amazon_schedule.marketplace_ids): r.amazon_schedule
        for r in reports
        if r.amazon_schedule and all(account.covers(m) for m in r.amazon_schedule.marketplace_ids)
    }
    state_path = lake.path("state", "report_schedules", f"{account.selling_partner_id}-{account.region}.json")
    managed = _managed_types(lake, state_path)
    types = sorted(managed | {report_type for report_type, _ in wanted})
    existing = _existing_schedules(client, types)

    plan: dict[str, list[dict]] = {"created": [], "replaced": [], "cancelled": [], "unchanged": []}
    for key, schedule in existing.items():
        if key not in wanted:
            plan["cancelled"].append(schedule)
    for key, spec in sorted(wanted.items()):
        entry = {
            "reportType": key[0],
            "marketplaceIds": list(key[1]),
            "period": spec.period,
            "reportOptions": spec.report_options,
        }
        current = existing.get(key)
        if current is None:
            plan["created"].append(entry)
        elif _matches(current, spec):
            plan["unchanged"].append(current)
        else:
            plan["replaced"].append({**entry, "replaces": current["reportScheduleId"]})

    if not dry_run:
        if types:
            # Remembered first: a schedule created below must be cancellable even if this run dies.
            lake.write_json(state_path, {"report_types": sorted(managed | {t for t, _ in wanted})})
        for schedule in plan["cancelled"]:
            client.cancel_report_schedule(schedule["reportScheduleId"])
        for entry in plan["created"] + plan["replaced"]:
            # Amazon replaces a schedule with the same report type and marketplaces by the new one.
            entry["reportScheduleId"] = client.create_report_schedule(
                entry["reportType"],
                entry["marketplaceIds"],
                entry["period"],
                report_options=entry["reportOptions"] or None,
            )
        lake.write_json(state_path, {"report_types": sorted({t for t, _ in wanted})})
    for action in ("created", "replaced", "cancelled"):
        for entry in plan[action]:
            log.info(
                "%s%s the schedule of %s for %s (%s)",
                "would have " if dry_run else "",
                action,
                entry["reportType"],
                ",".join(entry["marketplaceIds"]),
                entry["period"],
            )
    log.info("Report schedules: %s", {action: len(entries) for action, entries in plan.items()})
    return plan


def _managed_types(lake: Lake, state_path: str) -> set[str]:
    for path in (state_path, lake.path(*SINGLE_SELLER_STATE_PATH)):
        if lake.exists(path):
            return set(lake.read_json(path)["report_types"])
    return set()


def _existing_schedules(client: SellingPartnerClient, report_types: list[str]) -> dict[tuple, dict]:
    found: dict[tuple, dict] = {}
    for start in range(0, len(report_types), TYPES_PER_CALL):
        listing = client.get_report_schedules(report_types[start : start + TYPES_PER_CALL])
        for schedule in listing.get("reportSchedules", []):
            found[_key(schedule["reportType"], schedule.get("marketplaceIds", []))] = schedule
    return found
