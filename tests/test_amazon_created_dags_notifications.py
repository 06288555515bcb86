"""The notification-driven DAG through dag.test(): the emulator publishes REPORT_PROCESSING_FINISHED to an
SQS queue on moto_server, the deferrable SqsSensor receives it, and the report lands with no getReport call;
a notification delivered twice lands once; CANCELLED is recorded as no data; FATAL fails the run."""

from __future__ import annotations

import json
import time

import pytest

from sp_reports.client import ensure_report_notifications
from sp_reports.emulator.testing import sqs_queue
from sp_reports.amazon_created_dags import build_notifications_dag
from sp_reports.lake_connection import lake_from_airflow
from sp_reports.hooks.selling_partner import SellingPartnerHook
from sp_reports.lake import read_table
from sp_reports.lake.ledger import Ledger
from sp_reports.registry import load_registry

SELLER = "A3EMULATORSELLER"

INVENTORY = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"  # amazon_schedule names one marketplace
RETURNS = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = "ATVPDKIKX0DER"


@pytest.fixture
def queue(airflow_db, sp_conn, moto_server, tmp_path, monkeypatch):
    """A queue on moto_server the emulator notifies, an AWS connection to it, and a fresh lake."""
    monkeypatch.setenv("SP_REPORTS_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }))
    sp_conn.config(sqs_endpoint_url=moto_server)
    with sqs_queue(moto_server) as q:
        # dag.test() serialises the DAG from the dags folder, where it exists once a queue is configured.
        monkeypatch.setenv("SP_REPORTS_NOTIFICATIONS_QUEUE_URL", q.url)
        with SellingPartnerHook().get_conn() as client:
            ensure_report_notifications(client, q.arn)
        yield q


def notified(emu, count: int) -> None:
    deadline = time.monotonic() + 20
    while emu.stats()["notifications"]["notificationsPublished"] < count:
        assert time.monotonic() < deadline, "the emulator published no notification"
        time.sleep(0.05)


def create(report_type: str) -> str:
    with SellingPartnerHook().get_conn() as client:
        return client.create_report(report_type, [US])


def run_once(queue_url: str):
    dag = build_notifications_dag(load_registry(), queue_url=queue_url, poll_seconds=1, schedule=None, retries=0)
    return dag.test()


def task_states(run) -> dict:
    states: dict = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, []).append(ti.state)
    return states


def test_a_notified_report_lands_once_without_polling_even_when_delivered_twice(queue, sp_conn):
    sp_conn.config(notification_duplicate_rate=1.0)
    report_id = create(INVENTORY)
    notified(sp_conn, 1)
    time.sleep(0.3)  # the duplicate follows the original

    runs = [run_once(queue.url)]
    while sp_conn.stats()["notifications"]["notificationsDuplicated"] and _queue_depth(queue):
        runs.append(run_once(queue.url))  # the copy came after the first batch: another run gets it
    assert all(run.state == "success" for run in runs), [task_states(run) for run in runs]

    lake = lake_from_airflow()
    table = read_table(lake, INVENTORY.lower())
    assert table.num_rows == 20  # rows_per_report in the emulator fixture: landed once
    assert set(table.column("report_id").to_pylist()) == {report_id}
    assert set(table.column("marketplace_id").to_pylist()) == {US}
    entry = Ledger(lake).entries()[(SELLER, report_id)]
    assert (entry["status"], entry["via"], entry["rows_landed"]) == ("DONE", "notification", 20)
    stats = sp_conn.stats()
    assert stats["calls"]["getReport"] == 0  # no polling: the notification said DONE
    assert stats["notifications"]["notificationsDuplicated"] == 1
    assert stats["calls"]["downloadDocument"] == 1  # the copy was skipped before fetching


def test_cancelled_is_no_data_and_fatal_fails_the_run_after_the_others_land(queue, sp_conn):
    sp_conn.config(outcomes={RETURNS: "CANCELLED", LISTINGS: "FATAL"})
    done, cancelled, fatal = create(INVENTORY), create(RETURNS), create(LISTINGS)
    notified(sp_conn, 3)

    run = run_once(queue.url)
    assert run.state == "failed"
    states = task_states(run)
    assert states["fail_on_fatal"] == ["failed"]
    assert sorted(states["report.land"]) == ["skipped", "success"]  # the CANCELLED one lands nothing
    lake = lake_from_airflow()
    ledger = Ledger(lake).entries()
    assert {rid: ledger[(SELLER, rid)]["status"] for rid in (done, cancelled, fatal)} == {
        done: "DONE", cancelled: "CANCELLED", fatal: "FATAL"}
    assert read_table(lake, INVENTORY.lower()).num_rows == 20
    assert sp_conn.stats()["calls"]["getReport"] == 0

    # The same FATAL delivered again is recorded already: the next run does not fail for it.
    queue.client.send_message(QueueUrl=queue.url, MessageBody=_notification_of(fatal, LISTINGS, "FATAL"))
    assert run_once(queue.url).state == "success"


def _queue_depth(queue) -> int:
    attributes = queue.client.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def _notification_of(report_id: str, report_type: str, status: str) -> str:
    return json.dumps({
        "notificationVersion": "2020-09-04", "notificationType": "REPORT_PROCESSING_FINISHED",
        "payloadVersion": "2020-09-04", "eventTime": "2026-11-30T10:00:00Z",
        "payload": {"reportProcessingFinishedNotification": {
            "sellerId": "A3EMULATORSELLER", "accountId": "amzn1.merchant.o.A3EMULATORSELLER",
            "reportId": report_id, "reportType": report_type, "processingStatus": status}},
        "notificationMetadata": {"applicationId": "amzn1.sellerapps.app.test", "subscriptionId": "s",
                                 "publishTime": "2026-11-30T10:00:01Z", "notificationId": "n-redelivered"},
    })


SELLER_A, SELLER_B, STRANGER = "A1SELLERALPHA", "A2SELLERBRAVO", "A9STRANGER00"
CA = "A2EUQ1WTGCTBG2"


@pytest.fixture
def two_sellers_queue(airflow_db, moto_server, tmp_path, monkeypatch):
    """Three sellers in NA notify one queue; the deployment has accounts for A and B only."""
    from sp_reports.emulator.testing import running_emulator
    from support import connection_json

    sellers = [
        {"seller_id": SELLER_A, "region": "NA", "refresh_token": "Atzr|alpha", "marketplace_ids": [US]},
        {"seller_id": SELLER_B, "region": "NA", "refresh_token": "Atzr|bravo", "marketplace_ids": [CA]},
        {"seller_id": STRANGER, "region": "NA", "refresh_token": "Atzr|stranger", "marketplace_ids": [US]},
    ]
    monkeypatch.setenv("SP_REPORTS_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }))
    with running_emulator(processing_seconds=0.3, rows_per_report=20, sellers=sellers,
                          sqs_endpoint_url=moto_server) as emu, sqs_queue(moto_server) as q:
        for seller in sellers:
            conn_id = f"amazon_{seller['refresh_token'].split('|')[1]}"
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection_json(
                emu, selling_partner_id=seller["seller_id"], refresh_token=seller["refresh_token"],
                endpoint=emu.endpoint("NA"), marketplace_ids=",".join(seller["marketplace_ids"])))
            with SellingPartnerHook(conn_id).get_conn() as client:
                ensure_report_notifications(client, q.arn)
        monkeypatch.setenv("SP_REPORTS_ACCOUNTS", "amazon_alpha,amazon_bravo")
        monkeypatch.setenv("SP_REPORTS_NOTIFICATIONS_QUEUE_URL", q.url)
        yield emu, q


def test_each_sellers_notification_is_fetched_with_its_own_account(two_sellers_queue):
    """A and B get the same reportId (one id space per region): both land, apart, each fetched with its own
    seller's credentials. The stranger's notification is left on the queue, not deleted."""
    emu, queue = two_sellers_queue
    created = {}
    for conn_id, marketplace in (("amazon_alpha", US), ("amazon_bravo", CA), ("amazon_stranger", US)):
        with SellingPartnerHook(conn_id).get_conn() as client:
            created[conn_id] = client.create_report(LISTINGS, [marketplace])
    assert created["amazon_alpha"] == created["amazon_bravo"]
    notified(emu, 3)

    dag = build_notifications_dag(load_registry(), queue_url=queue.url, accounts=("amazon_alpha", "amazon_bravo"),
                                  poll_seconds=1, schedule=None, retries=0)
    run = dag.test()

    assert run.state == "success", task_states(run)
    lake = lake_from_airflow()
    rows = read_table(lake, LISTINGS.lower())
    assert sorted({(r["selling_partner_id"], r["marketplace_id"]) for r in rows.to_pylist()}) == [
        (SELLER_A, US), (SELLER_B, CA)]
    assert rows.num_rows == 40
    ledger = Ledger(lake).entries()
    report_id = created["amazon_alpha"]
    assert {key for key in ledger if key[1] == report_id} == {(SELLER_A, report_id), (SELLER_B, report_id)}
    by_seller = emu.stats()["calls_by_seller"]
    for seller in (SELLER_A, SELLER_B):  # each seller's report was looked up and fetched with its credentials
        assert by_seller[seller]["getReport"] == 1 and by_seller[seller]["getReportDocument"] == 1, by_seller
    assert "getReportDocument" not in by_seller[STRANGER]
    # Handled messages were deleted; the stranger's stays, hidden, for a redrive policy or a new account.
    attributes = queue.client.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert (int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])) \
        == (0, 1)
