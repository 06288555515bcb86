"""Amazon's limits on generating reports, as the emulator models them: a type's cooldown, and stuck reports."""

from __future__ import annotations

import time

REPORTS = "/reports/2021-06-30/reports"
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"


def terminal(api, report_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        report = api.get(f"{REPORTS}/{report_id}").json()
        if report["processingStatus"] in ("DONE", "FATAL", "CANCELLED"):
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.02)


def test_a_second_request_inside_the_cooldown_ends_fatal_with_no_document(fast, api, model, create_report):
    fast.config(cooldowns={INVENTORY: 1.5})
    first = terminal(api, create_report(INVENTORY))
    second = terminal(api, create_report(INVENTORY))
    other_marketplace = terminal(api, create_report(INVENTORY, [CA]))
    other_type = terminal(api, create_report(ORDERS))

    assert first["processingStatus"] == "DONE"
    assert second["processingStatus"] == "FATAL" and "reportDocumentId" not in second
    assert other_marketplace["processingStatus"] == "DONE"  # the window is per marketplace
    assert other_type["processingStatus"] == "DONE"
    model.validate("getReport", api.get(f"{REPORTS}/{second['reportId']}"))

    time.sleep(1.6)  # the window opened by the first report has passed; the FATAL one did not restart it
    assert terminal(api, create_report(INVENTORY))["processingStatus"] == "DONE"


def test_the_cooldown_scales_with_speed(fast, api, create_report):
    fast.config(cooldowns={INVENTORY: 1800.0}, speed=1800.0)
    terminal(api, create_report(INVENTORY))
    assert terminal(api, create_report(INVENTORY))["processingStatus"] == "FATAL"
    time.sleep(1.1)
    assert terminal(api, create_report(INVENTORY))["processingStatus"] == "DONE"


def test_stuck_reports_stay_in_progress_and_cannot_be_cancelled(fast, api, create_report):
    fast.config(stuck_reports=1)
    stuck, normal = create_report(), create_report()
    time.sleep(0.5)
    assert api.get(f"{REPORTS}/{stuck}").json()["processingStatus"] == "IN_PROGRESS"
    assert api.get(f"{REPORTS}/{normal}").json()["processingStatus"] == "DONE"
    response = api.delete(f"{REPORTS}/{stuck}")
    assert response.status_code == 400 and "only IN_QUEUE" in response.text
