"""Whole DAG runs through dag.test(): request -> deferred wait -> fetch -> parse -> land, against the emulator."""

from __future__ import annotations

import json
import logging

import pytest
from deltalake import DeltaTable

from sp_reports.lake_connection import lake_from_airflow
from sp_reports.lake import read_table
from sp_reports.registry import load_registry
from sp_reports.report_dag import build_report_dag
from support import EMULATOR_CREDENTIALS, connection_json

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
CONF = {
    "marketplace_ids": ["ATVPDKIKX0DER", "A1PA6795UKMFR9"],
    "data_start": "2026-11-01T00:00:00+00:00",
    "data_end": "2026-11-03T00:00:00+00:00",
}


# The default connection serves US (NA); DE is served by the EU endpoint, so by an EU account of the seller.
ACCOUNTS = ("selling_partner_default", "amazon_eu")


@pytest.fixture
def lake_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SP_REPORTS_LAKE", str(tmp_path / "lake"))
    return tmp_path / "lake"


@pytest.fixture(autouse=True)
def eu_account(request, monkeypatch):
    if "sp_conn" in request.fixturenames:
        emulator = request.getfixturevalue("sp_conn")
        monkeypatch.setenv(
            "AIRFLOW_CONN_AMAZON_EU", connection_json(emulator, region="EU", marketplace_ids="A1PA6795UKMFR9")
        )


def run_dag(report_type: str, conf: dict, accounts=ACCOUNTS):
    dag = build_report_dag(load_registry()[report_type], accounts=accounts, poll_interval=0.2, retries=0)
    return dag.test(run_conf=conf)


def task_states(run) -> dict:
    states: dict = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(ti.state)
    return states


def test_a_run_lands_every_marketplace_once_and_says_so(airflow_db, sp_conn, lake_dir, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    run = run_dag(ORDERS, CONF)

    assert run.state == "success", task_states(run)
    table = DeltaTable(str(lake_dir / "tables" / ORDERS.lower()))
    rows = table.to_pyarrow_table()
    assert rows.num_rows == 2 * 20  # rows_per_report in the emulator fixture
    assert set(rows.column("marketplace_id").to_pylist()) == set(CONF["marketplace_ids"])
    assert table.metadata().partition_columns == ["marketplace_id"]
    assert sp_conn.stats()["calls"]["createReport"] == 2
    # The raw documents stay in the lake for replay.
    assert len(list((lake_dir / "raw" / ORDERS).rglob("*.json"))) == 2

    # No secret in anything the run printed or logged.
    out, err = capfd.readouterr()
    captured = out + err + caplog.text
    for secret in (EMULATOR_CREDENTIALS["client_secret"], EMULATOR_CREDENTIALS["refresh_token"], "Atza|",
                   "X-Amz-Signature="):
        assert secret not in captured, f"{secret!r} leaked into the logs"
    assert "Landed report" in captured

    # Each landing updated the table's Asset, with the report and its row count in the extra.
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = [e.extra for e in session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id)]
    assert sorted(e["rows"] for e in events) == [20, 20]
    assert {e["report_id"] for e in events} == set(rows.column("report_id").to_pylist())
    assert {e["table_uri"] for e in events} == {str(lake_dir / "tables" / ORDERS.lower())}

    # Each step hands the next one payload: one XCom per task instance, not one more per key of the payload.
    from airflow.models.xcom import XComModel

    with create_session() as session:
        keys = {(x.task_id, x.key) for x in session.query(XComModel).filter(XComModel.run_id == run.run_id)}
    for step in ("report.fetch_document", "report.parse_document", "report.land"):
        assert {key for task_id, key in keys if task_id == step} == {"return_value"}, step


def test_rerunning_lands_no_duplicates(airflow_db, sp_conn, lake_dir):
    for _ in range(2):  # the second asks Amazon for a new report rather than reusing the first
        conf = {"marketplace_ids": ["ATVPDKIKX0DER"], "force_new_report": True}
        assert run_dag("GET_MERCHANT_LISTINGS_ALL_DATA", conf).state == "success"
    table = DeltaTable(str(lake_dir / "tables" / "get_merchant_listings_all_data")).to_pyarrow_table()
    # Two runs, two reports carrying the same listings: merged on the natural key (seller-sku), each
    # listing appears once, from the newer report.
    skus = table.column("seller_sku").to_pylist()
    assert len(skus) == len(set(skus)) == 20
    assert len(set(table.column("report_id").to_pylist())) == 1
    assert sp_conn.stats()["calls"]["createReport"] == 2


def test_cancelled_report_succeeds_with_zero_rows_and_skips_downstream(airflow_db, sp_conn, lake_dir):
    sp_conn.config(outcomes={ORDERS: "CANCELLED"})
    run = run_dag(ORDERS, {**CONF, "marketplace_ids": ["ATVPDKIKX0DER"]})

    assert run.state == "success"
    states = task_states(run)
    assert states["report.request_report"] == ["success"]
    assert states["report.fetch_document"] == ["skipped"]
    assert states["report.land"] == ["skipped"]
    assert states["summarize"] == ["success"]
    assert not (lake_dir / "tables" / ORDERS.lower()).exists()


def test_a_failing_account_does_not_block_the_others_landings(airflow_db, sp_conn, lake_dir, monkeypatch, capfd):
    """The EU account's authorisation is refused: its report fails, the US report still lands, and the run ends
    failed, its summary naming the account."""
    bad = json.loads(connection_json(sp_conn, region="EU", marketplace_ids="A1PA6795UKMFR9"))
    bad["password"] = "a-revoked-secret"
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_EU", json.dumps(bad))
    run = run_dag(ORDERS, CONF)

    assert run.state == "failed"
    states = task_states(run)
    assert sorted(states["report.request_report"]) == ["failed", "success"]
    assert sorted(states["report.land"]) == ["success", "upstream_failed"]
    assert states["summarize"] == ["failed"]
    rows = read_table(lake_from_airflow(), ORDERS.lower())
    assert set(rows.column("marketplace_id").to_pylist()) == {"ATVPDKIKX0DER"} and rows.num_rows == 20
    out, err = capfd.readouterr()
    assert "reports of account(s) amazon_eu did not land" in out + err
    assert "a-revoked-secret" not in out + err


def test_fatal_report_fails_the_run(airflow_db, sp_conn, lake_dir):
    sp_conn.config(outcomes={ORDERS: "FATAL"})
    run = run_dag(ORDERS, {**CONF, "marketplace_ids": ["ATVPDKIKX0DER"]})
    assert run.state == "failed"
    assert task_states(run)["report.request_report"] == ["failed"]


def test_a_run_lands_in_s3_through_the_aws_connection(airflow_db, sp_conn, moto_server, monkeypatch):
    import boto3

    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="dag-lake")
    monkeypatch.setenv("SP_REPORTS_LAKE", "s3://dag-lake/lake")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }))

    returns = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
    run = run_dag(returns, {**CONF, "marketplace_ids": ["ATVPDKIKX0DER"]})

    assert run.state == "success", task_states(run)
    lake = lake_from_airflow()
    table = read_table(lake, returns.lower())
    assert table.num_rows == 20
    assert set(table.column("marketplace_id").to_pylist()) == {"ATVPDKIKX0DER"}
    assert lake.list("raw/" + returns)  # the raw document stays in the bucket for replay
    assert not lake.list("staging")  # intermediate Parquet is cleaned up after the commit


SELLER = "A1GLOBALSELLER"
JP = "A1VC38T7YXB528"


@pytest.fixture
def global_seller(monkeypatch):
    """One seller authorised in NA (US) and FE (JP): two refresh tokens, two connections, two endpoints."""
    from sp_reports.emulator.testing import running_emulator

    sellers = [
        {"seller_id": SELLER, "region": "NA", "refresh_token": "Atzr|global-na", "marketplace_ids": ["ATVPDKIKX0DER"]},
        {"seller_id": SELLER, "region": "FE", "refresh_token": "Atzr|global-fe", "marketplace_ids": [JP]},
    ]
    with running_emulator(processing_seconds=0.3, rows_per_report=20, sellers=sellers) as emu:
        for seller in sellers:
            region = seller["region"]
            monkeypatch.setenv(f"AIRFLOW_CONN_AMAZON_GLOBAL_{region}", connection_json(
                emu, selling_partner_id=SELLER, region=region, refresh_token=seller["refresh_token"],
                endpoint=emu.endpoint(region), marketplace_ids=",".join(seller["marketplace_ids"])))
        yield emu


def test_us_and_jp_of_one_seller_go_to_two_endpoints_with_two_tokens(airflow_db, global_seller, lake_dir):
    """The NA endpoint refuses JP (and the FE one US), so a run that lands both sent each to its own region,
    each with that region's authorisation."""
    run = run_dag(ORDERS, {**CONF, "marketplace_ids": ["ATVPDKIKX0DER", JP]},
                  accounts=("amazon_global_na", "amazon_global_fe"))

    assert run.state == "success", task_states(run)
    rows = read_table(lake_from_airflow(), ORDERS.lower())
    assert sorted(set(rows.column("marketplace_id").to_pylist())) == sorted(["ATVPDKIKX0DER", JP])
    stats = global_seller.stats()
    assert stats["calls_by_seller"][SELLER]["createReport"] == 2
    assert stats["calls"]["lwaToken"] == 2  # one access token per refresh token (region)
    assert "400" not in stats["by_operation_status"]["createReport"]


def test_planning_refuses_a_marketplace_no_account_covers(airflow_db, global_seller, lake_dir, capfd):
    run = run_dag(ORDERS, {**CONF, "marketplace_ids": ["A1PA6795UKMFR9"]},
                  accounts=("amazon_global_na", "amazon_global_fe"))

    assert run.state == "failed" and task_states(run)["plan"] == ["failed"]
    out, err = capfd.readouterr()
    assert "no account covers marketplace DE A1PA6795UKMFR9 (served by region EU)" in out + err
    assert global_seller.stats()["calls"].get("createReport", 0) == 0


# A backfill of four 30-day chunks, US only: four reports.
BACKFILL = {"marketplace_ids": ["ATVPDKIKX0DER"], "data_start": "2026-07-01T00:00:00+00:00",
            "data_end": "2026-10-29T00:00:00+00:00"}


def created_reports(emulator) -> int:
    return emulator.stats()["calls"].get("createReport", 0)


def ledger_rows(lake_dir) -> list[dict]:
    return DeltaTable(str(lake_dir / "tables" / "_ledger")).to_pyarrow_table().to_pylist()


def plan_of(run) -> list[dict]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (xcom,) = session.query(XComModel).filter(
            XComModel.run_id == run.run_id, XComModel.task_id == "plan", XComModel.key == "return_value")
        return xcom.value if isinstance(xcom.value, list) else json.loads(xcom.value)


def test_a_retriggered_backfill_requests_only_the_ranges_the_ledger_lacks(airflow_db, sp_conn, lake_dir, capfd):
    first = run_dag(ORDERS, BACKFILL, accounts=("selling_partner_default",))
    assert first.state == "success", task_states(first)
    assert created_reports(sp_conn) == 4
    assert read_table(lake_from_airflow(), ORDERS.lower()).num_rows == 4 * 20
    capfd.readouterr()

    # Everything landed: the re-run requests nothing, lands nothing, and succeeds.
    version = DeltaTable(str(lake_dir / "tables" / ORDERS.lower())).version()
    again = run_dag(ORDERS, BACKFILL, accounts=("selling_partner_default",))
    assert again.state == "success", task_states(again)
    assert created_reports(sp_conn) == 4
    assert DeltaTable(str(lake_dir / "tables" / ORDERS.lower())).version() == version
    states = task_states(again)
    assert states["report.request_report"] == ["skipped"] and states["summarize"] == ["success"]
    out, err = capfd.readouterr()
    assert "Skipping 4 of 4 report(s): their ranges are in the ledger already" in out + err
    assert "Nothing left to request" in out + err

    # A chunk whose landing the ledger does not hold (a failed run) is the one planned again; Amazon still has
    # its report (DONE within reuse_max_age), so that is used rather than requested again.
    third_chunk = "2026-08-30T00:00:00+00:00"
    (lost,) = [r for r in ledger_rows(lake_dir) if r["data_start_time"].isoformat() == third_chunk]
    DeltaTable(str(lake_dir / "tables" / "_ledger")).delete(f"report_id = '{lost['report_id']}'")
    resumed = run_dag(ORDERS, BACKFILL, accounts=("selling_partner_default",))
    assert resumed.state == "success", task_states(resumed)
    assert created_reports(sp_conn) == 4
    assert task_states(resumed)["report.request_report"] == ["success"]
    (planned,) = plan_of(resumed)
    assert (planned["data_start_time"], planned["request_number"], planned["request_count"]) == (third_chunk, 1, 1)
    assert planned["force_new_report"] is False
    (redone,) = [r for r in ledger_rows(lake_dir) if r["data_start_time"].isoformat() == third_chunk]
    assert redone["report_id"] == lost["report_id"] and redone["status"] == "DONE"
    out, err = capfd.readouterr()
    assert "Skipping 3 of 4 report(s)" in out + err
    assert f"Reusing report {lost['report_id']}" in out + err and "DONE reused" in out + err  # log and summary


def test_a_backfill_without_skip_landed_requests_every_range_again(airflow_db, sp_conn, lake_dir):
    two_chunks = {**BACKFILL, "data_end": "2026-08-30T00:00:00+00:00"}
    assert run_dag(ORDERS, two_chunks, accounts=("selling_partner_default",)).state == "success"
    run = run_dag(ORDERS, {**two_chunks, "skip_landed": False, "force_new_report": True},
                  accounts=("selling_partner_default",))
    assert run.state == "success", task_states(run)
    assert created_reports(sp_conn) == 4
    assert len(ledger_rows(lake_dir)) == 4
    assert [(r["request_number"], r["force_new_report"]) for r in plan_of(run)] == [(1, True), (2, True)]


def test_a_restricted_report_type_lands_through_a_restricted_data_token(airflow_db, sp_conn, lake_dir, capfd, caplog):
    invoicing = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
    caplog.set_level(logging.DEBUG)
    run = run_dag(invoicing, {**CONF, "marketplace_ids": ["ATVPDKIKX0DER"]}, accounts=("selling_partner_default",))

    assert run.state == "success", task_states(run)
    rows = read_table(lake_from_airflow(), invoicing.lower())
    assert rows.num_rows == 20
    # The buyer's PII landed: it is what the token was for.
    assert all(rows.column("buyer_name").to_pylist()) and all(rows.column("bill_address_1").to_pylist())
    stats = sp_conn.stats()
    assert stats["calls"]["createRestrictedDataToken"] == 1
    assert stats["by_operation_status"]["getReportDocument"] == {"200": 1}  # never refused: no LWA-token attempt
    out, err = capfd.readouterr()
    assert "Atz.sprdt|" not in out + err + caplog.text  # the token never reaches a log ...
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        values = [x.value for x in session.query(XComModel).filter(XComModel.run_id == run.run_id)]
    assert values and "Atz.sprdt|" not in json.dumps(values, default=str)  # ... nor an XCom
