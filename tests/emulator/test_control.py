"""/_emulator control API, stats, request ids, unknown routes, and the running_emulator helper."""

from __future__ import annotations

import dataclasses

from sp_reports.emulator.config import EmulatorConfig

REPORTS = "/reports/2021-06-30/reports"
US = "ATVPDKIKX0DER"
ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"


def test_config_lists_every_knob_with_defaults(emulator):
    assert emulator.config() == dataclasses.asdict(EmulatorConfig())
    defaults = emulator.config()
    assert defaults["speed"] == 1.0 and defaults["processing_seconds"] == 2.0 and defaults["rows_per_report"] == 50
    assert defaults["url_ttl_seconds"] == 300.0 and defaults["token_ttl_seconds"] == 3600.0
    assert defaults["gzip_documents"] is True and defaults["fatal_error_document"] is True


def test_config_partial_update_and_validation(emulator, http):
    updated = emulator.config(speed=5, outcomes={ORDERS: "FATAL"})
    assert updated["speed"] == 5.0 and updated["outcomes"] == {ORDERS: "FATAL"}
    assert updated["rows_per_report"] == 50
    for bad in ({"no_such_knob": 1}, {"fatal_rate": 2}, {"speed": 0}, {"outcomes": {ORDERS: "DONE!"}}, {"rows_per_report": "many"}):
        response = http.post(emulator.base_url + "/_emulator/config", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]
    assert emulator.config()["speed"] == 5.0


def test_reset_clears_reports_and_stats(emulator, api, create_report):
    report_id = create_report()
    emulator.config(speed=3)
    emulator.reset()
    assert emulator.config()["speed"] == 3.0  # reset keeps the config...
    assert api.get(f"{REPORTS}/{report_id}").status_code == 404  # ...the same token still works
    emulator.reset(config=True)
    assert emulator.config()["speed"] == 1.0
    stats = emulator.stats()
    assert stats["responses"] == {} and all(count == 0 for count in stats["calls"].values())


def test_stats_count_every_call(fast, api, finished_report, download):
    fast.config(processing_seconds=0.2)
    report = finished_report()  # createReport once, getReport until DONE
    download(report["reportDocumentId"])  # getReportDocument + downloadDocument
    api.get(f"{REPORTS}/bad-id")
    stats = fast.stats()
    calls = stats["calls"]
    assert calls["createReport"] == 1
    assert calls["getReport"] >= 2
    assert calls["getReportDocument"] == 1 and calls["downloadDocument"] == 1
    assert calls["lwaToken"] == 1
    assert calls["getReports"] == 0 and calls["cancelReportSchedule"] == 0
    by_status = stats["by_operation_status"]
    assert by_status["createReport"] == {"202": 1}
    assert by_status["getReport"] == {"200": calls["getReport"] - 1, "400": 1}
    assert stats["responses"]["202"] == 1 and stats["responses"]["400"] == 1
    assert sum(stats["responses"].values()) == sum(calls.values())


def test_stats_count_throttled_calls(emulator, api):
    for _ in range(16):
        api.post(REPORTS, json={"reportType": ORDERS, "marketplaceIds": [US]})
    stats = emulator.stats()
    assert stats["calls"]["createReport"] == 16
    assert stats["by_operation_status"]["createReport"] == {"202": 15, "429": 1}


def test_every_response_has_a_request_id(emulator, api, http):
    responses = [
        api.get(f"{REPORTS}/1"),
        api.get("/reports/2021-06-30/nothing-here"),
        http.get(emulator.base_url + "/_emulator/stats"),
        http.post(emulator.lwa_url, data={}),
        http.get(emulator.base_url + "/_documents/x"),
    ]
    request_ids = [r.headers["x-amzn-RequestId"] for r in responses]
    assert len(set(request_ids)) == len(responses)


def test_unknown_route_answers_error_list(api):
    response = api.get("/reports/2020-09-04/reports")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NotFound"
    response = api.put(REPORTS)
    assert response.status_code == 405 and "errors" in response.json()


def test_seed_settlement_report(emulator, api, http, model):
    settlement = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
    response = http.post(emulator.base_url + "/_emulator/reports", json={"reportType": settlement, "marketplaceIds": [US]})
    assert response.status_code == 201
    report_id = response.json()["reportId"]
    body = model.validate("getReports", api.get(REPORTS, params={"reportTypes": settlement}))
    assert [r["reportId"] for r in body["reports"]] == [report_id]
    assert emulator.stats()["calls"]["createReport"] == 0
    bad = http.post(emulator.base_url + "/_emulator/reports", json={"reportType": settlement})
    assert bad.status_code == 400


def test_running_emulator_handle(emulator):
    assert emulator.base_url.startswith("http://127.0.0.1:")
    assert emulator.lwa_url == emulator.base_url + "/auth/o2/token"
    assert emulator.access_token().startswith("Atza|")
