"""A landing killed at any stage (SIGKILL: a worker lost, a node gone) and then retried as Airflow retries
it (the land task with the same parsed document; fetch and parse again when they were the ones killed)
ends in exactly one landing: every row once, the same tables, manifest and ledger row as a landing that
was never interrupted, and nothing left behind (staging files, uncommitted data files, temporary files).

Each attempt to kill runs in a subprocess (``CHILD``) that SIGKILLs itself at the chosen stage; the retry
runs here. A MERGE report type (natural keys) and a replace one (a settlement: main, summary and
quarantine tables) are covered.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from urllib.parse import unquote

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from sp_reports.settings import PACKAGED_REGISTRY
from sp_reports import pipeline
from sp_reports.lake import Lake, read_table
from sp_reports.lake.ledger import LEDGER_TABLE
from sp_reports.registry import load_registry

REGISTRY_PATH = PACKAGED_REGISTRY
REGISTRY = load_registry(REGISTRY_PATH)
SELLER = "A3EMULATORSELLER"
US = "ATVPDKIKX0DER"

# The child: lands (or fetches, or parses) one report and kills itself at ``stage``.
CHILD = r'''
import json, os, signal, sys

from deltalake import DeltaTable

import sp_reports.lake.datafiles as datafiles
from sp_reports import pipeline
from sp_reports.lake import Lake
from sp_reports.lake.ledger import Ledger
from sp_reports.registry import load_registry

root, job_path, stage = sys.argv[1:4]
with open(job_path) as f:
    job = json.load(f)
lake = Lake(root)
report = load_registry(job["registry"])[job["report_type"]]


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def die_after(owner, name):
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        die()
        return result

    setattr(owner, name, wrapper)


class DyingSource:
    """The downloaded document, whose second chunk never comes: the raw-zone copy is half written."""

    def __init__(self, data):
        self.data, self.reads = data, 0

    def read(self, size):
        self.reads += 1
        if self.reads == 2:
            die()
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


if stage == "fetch":
    pipeline.COPY_CHUNK = 64
    with open(job["document"], "rb") as f:
        pipeline.store_raw_document(lake, job["finished_report"], DyingSource(f.read()), content_type=None)
elif stage == "parse":
    die_after(datafiles._OpenFile, "close")  # one staged data file written, others still being written
    pipeline.parse_raw_document(lake, job["fetched"], report)
else:
    if stage == "staged":  # data files written (adopted or rewritten), nothing committed
        DeltaTable.create_write_transaction = die
    elif stage == "writing":  # a data file being written (a MERGE's rewrite, or the table after the main one)
        datafiles._OpenFile.close = die
    elif stage == "committed":  # every table committed, no manifest
        die_after(pipeline, "land_tables")
    elif stage == "committed_by_older_version":  # the same, by a version that named the counts' key "outcome"
        import sp_reports.lake.delta as delta

        delta.COUNTS_METADATA = delta.OLD_COUNTS_METADATA
        die_after(pipeline, "land_tables")
    elif stage == "manifest":  # manifest written, no ledger row
        Ledger.record = die
    elif stage == "ledger":  # ledger row recorded, staging files not deleted
        pipeline.remove_leftovers = die
    elif stage == "cleaning":  # while deleting the staging files
        def delete_one_then_die(self, path):
            self.delete(self.list(path)[0])
            die()

        Lake.delete_dir = delete_one_then_die
    pipeline.land_and_record(lake, job["parsed"], report, "request")
raise SystemExit("the stage to die at was never reached")
'''


@dataclass(frozen=True)
class Case:
    report_type: str
    prior: tuple[str, str, bytes]  # report id, created time, document: landed before, uninterrupted
    report: tuple[str, str, bytes]  # the report whose landing is killed

    @property
    def tables(self) -> list[str]:
        name = self.report_type.lower()
        suffixes = ["", "__quarantine"] + (["__summary"] if REGISTRY[self.report_type].summary_first_row else [])
        return [name + suffix for suffix in suffixes]


def tsv(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


ORDERS_HEADER = "amazon-order-id\tsku\tpurchase-date\tquantity\titem-price"
MERGE = Case(
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
    ("100", "2026-11-20T06:00:00Z", tsv(
        ORDERS_HEADER,
        *[f"o{i}\tSKU-{i}\t2026-11-{18 + i % 2}T10:00:00Z\t{i}\t{i}.50" for i in range(1, 6)],
    )),
    ("200", "2026-11-21T06:00:00Z", tsv(
        ORDERS_HEADER + "\tproduct-name",  # a new column
        *[f"o{i}\tSKU-{i}\t2026-11-{18 + i % 3}T12:00:00Z\t{10 * i}\t{i}.75\tWidget {i}" for i in range(3, 10)],
        "o9\tSKU-9\t2026-11-20T13:00:00Z\t99\t9.99\tWidget 9 again",  # in-document duplicate: the last line wins
        "o10\tSKU-10\t2026-11-20T13:00:00Z\tmany\t1.00\tWidget 10",  # a value quarantined
        "o11\tSKU-11\t2026-11-20T13:00:00Z\t1\t1.00\tWidget 11\tstray field",  # a row quarantined
    )),
)

SETTLEMENT_HEADER = ("settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\t"
                     "transaction-type\torder-id\tamount-description\tamount\tposted-date\tquantity-purchased")


def settlement(settlement_id: str, total: str, rows: list[str], extra_header: str = "") -> bytes:
    return tsv(SETTLEMENT_HEADER + extra_header,
               f"{settlement_id}\t2026-11-01 00:00:00 UTC\t2026-11-15 00:00:00 UTC\t2026-11-17 00:00:00 UTC\t{total}\t"
               f"EUR\t\t\t\t\t\t" + ("\t" if extra_header else ""),
               *rows)


REPLACE = Case(
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE",
    ("300", "2026-11-17T06:00:00Z", settlement("S1", "40.00", [
        f"S1\t\t\t\t\t\tOrder\t111-{i}\tPrincipal\t{i}.00\t2026-11-0{2 + i % 2}\t1" for i in range(1, 5)
    ])),
    ("400", "2026-12-01T06:00:00Z", settlement("S2", "75.00", [
        *[f"S2\t\t\t\t\t\tOrder\t222-{i}\tPrincipal\t{i}.00\t2026-11-{16 + i % 3}\t{i}\tpromo {i}"
          for i in range(1, 8)],
        "S2\t\t\t\t\t\tRefund\t222-1\tPrincipal\t-1.00\t2026-11-18\tnone\t",  # a value quarantined
        "S2\t\t\t\t\t\tOrder\t222-9\tPrincipal\t9.00\t2026-11-18\t1\t\tstray",  # a row quarantined
    ], extra_header="\tpromotion-id")),
)

STAGES = ["fetch", "parse", "staged", "writing", "committed", "committed_by_older_version", "manifest", "ledger",
          "cleaning"]


# ----------------------------------------------------------------------------------------- the steps


def finished_report(case: Case, which: str = "report") -> dict:
    report_id, created, _ = getattr(case, which)
    return {"selling_partner_id": SELLER, "selling_partner_conn_id": "selling_partner_default", "report_type": case.report_type, "report_id": report_id, "report_document_id": f"doc-{report_id}",
            "marketplace_ids": [US], "processing_status": "DONE", "created_time": created,
            "data_end_time": created}


def document(case: Case, which: str = "report") -> bytes:
    return getattr(case, which)[2]


def fetch(lake: Lake, case: Case, which: str = "report") -> dict:
    return pipeline.store_raw_document(lake, finished_report(case, which), BytesIO(document(case, which)), content_type=None)


def parse(lake: Lake, case: Case, fetched: dict) -> dict:
    return pipeline.parse_raw_document(lake, fetched, REGISTRY[case.report_type])


def land(lake: Lake, case: Case, parsed: dict) -> dict:
    return pipeline.land_and_record(lake, parsed, REGISTRY[case.report_type], "request")


def land_prior(lake: Lake, case: Case) -> None:
    land(lake, case, parse(lake, case, fetch(lake, case, "prior")))


def killed(lake: Lake, case: Case, stage: str, job: dict, tmp_path: Path) -> None:
    script, job_path = tmp_path / "child.py", tmp_path / "job.json"
    script.write_text(CHILD)
    job_path.write_text(json.dumps({**job, "registry": str(REGISTRY_PATH), "report_type": case.report_type}))
    child = subprocess.run([sys.executable, str(script), lake.root, str(job_path), stage],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr


# ----------------------------------------------------------------------------------------- what is in the lake


def rows(lake: Lake, table: str) -> list[tuple]:
    data = read_table(lake, table)
    return sorted((tuple(sorted(r.items())) for r in data.to_pylist()), key=repr)


def versions(lake: Lake, case: Case) -> dict[str, int | None]:
    found = {}
    for table in case.tables:
        path = Path(lake.fs_path(f"tables/{table}/_delta_log"))
        found[table] = DeltaTable(lake.table_uri(table)).version() if path.is_dir() else None
    return found


def unreferenced(lake: Lake, table: str) -> set[str]:
    """Files in the table's directory (hidden ones too) that no version of the table references."""
    root = Path(lake.fs_path(f"tables/{table}"))
    if not root.is_dir():
        return set()
    referenced = set()
    for commit in (root / "_delta_log").glob("*.json"):
        for line in commit.read_text().splitlines():
            if line.strip() and "add" in (action := json.loads(line)):
                referenced.add(unquote(action["add"]["path"]))
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_delta_log" not in p.parts}
    return files - referenced


def temporary_files(lake: Lake) -> list[str]:
    return sorted(str(p) for p in Path(lake.root).rglob(".*.tmp"))


def ledger_rows(lake: Lake, report_id: str) -> list[dict]:
    ledger = read_table(lake, LEDGER_TABLE)
    return ledger.filter(pc.equal(ledger["report_id"], report_id)).to_pylist()


def comparable(manifest: dict) -> dict:
    """A manifest without what differs between two lakes (table locations) and two runs (time)."""
    strip = lambda landing: {k: v for k, v in landing.items() if k != "uri"} if landing else landing  # noqa: E731
    return {**{k: v for k, v in manifest.items() if k != "landed_at"},
            "tables": {suffix: strip(t) for suffix, t in manifest["tables"].items()},
            "quarantine_table": strip(manifest["quarantine_table"])}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Per case: a lake where the prior report and the report landed without interruption, and the manifest."""
    landed = {}
    for case in (MERGE, REPLACE):
        lake = Lake(str(tmp_path_factory.mktemp("clean") / "lake"))
        land_prior(lake, case)
        landed[case.report_type] = (lake, land(lake, case, parse(lake, case, fetch(lake, case))))
    return landed


# ----------------------------------------------------------------------------------------- the tests


def assert_the_crash_happened_at(stage: str, lake: Lake, case: Case, before: dict, clean_versions: dict) -> None:
    """What the killed attempt left, so that the test is about the stage it says."""
    report_id = case.report[0]
    main = case.tables[0]
    manifest = Path(lake.fs_path(pipeline.manifest_path(lake, REGISTRY[case.report_type], {"selling_partner_id": SELLER, "report_id": report_id})))
    staging = Path(lake.fs_path(lake.staging_dir(case.report_type.lower(), SELLER, report_id)))
    if stage == "fetch":
        assert any(".tmp" in p for p in temporary_files(lake)) and not staging.exists()
    elif stage == "parse":
        assert staging.exists() and versions(lake, case) == before
    elif stage == "staged":
        assert report_id not in read_table(lake, main)["report_id"].to_pylist() and unreferenced(lake, main)
    elif stage == "writing":
        assert [p for p in temporary_files(lake) if "/tables/" in p]
        if case is REPLACE:  # the main table's files are adopted, not written: it is committed already
            assert versions(lake, case)[main] == clean_versions[main]
            assert any(versions(lake, case)[t] == before[t] for t in case.tables[1:])
    elif stage in ("committed", "committed_by_older_version"):
        assert versions(lake, case) == clean_versions and not manifest.exists()
    elif stage == "manifest":
        assert manifest.exists() and ledger_rows(lake, report_id) == []
    elif stage == "ledger":
        assert [r["status"] for r in ledger_rows(lake, report_id)] == ["DONE"] and staging.exists()
    elif stage == "cleaning":
        assert lake.list(lake.staging_dir(case.report_type.lower(), SELLER, report_id))


@pytest.mark.parametrize("case", [MERGE, REPLACE], ids=["merge", "replace"])
@pytest.mark.parametrize("stage", STAGES)
def test_a_landing_killed_at_any_stage_lands_exactly_once_on_retry(lake, tmp_path, clean, case, stage, caplog):
    clean_lake, clean_manifest = clean[case.report_type]
    report = REGISTRY[case.report_type]
    report_id = case.report[0]
    land_prior(lake, case)
    before = versions(lake, case)

    # The attempt that is killed, then its retry (and the steps after it, as a DAG run's retry runs them).
    if stage == "fetch":
        (tmp_path / "document").write_bytes(document(case))
        killed(lake, case, stage, {"finished_report": finished_report(case), "document": str(tmp_path / "document")}, tmp_path)
        assert_the_crash_happened_at(stage, lake, case, before, versions(clean_lake, case))
        parsed = parse(lake, case, fetch(lake, case))
    elif stage == "parse":
        fetched = fetch(lake, case)
        killed(lake, case, stage, {"fetched": fetched}, tmp_path)
        assert_the_crash_happened_at(stage, lake, case, before, versions(clean_lake, case))
        parsed = parse(lake, case, fetched)
    else:
        parsed = parse(lake, case, fetch(lake, case))
        killed(lake, case, stage, {"parsed": parsed}, tmp_path)
        assert_the_crash_happened_at(stage, lake, case, before, versions(clean_lake, case))
    caplog.set_level("INFO")
    manifest = land(lake, case, parsed)

    # Every row once: the tables are those of the uninterrupted landing, and no table was committed twice.
    for table in case.tables:
        assert rows(lake, table) == rows(clean_lake, table), table
    assert read_table(lake, case.tables[0]).num_rows == read_table(clean_lake, case.tables[0]).num_rows
    assert versions(lake, case) == versions(clean_lake, case)
    if report.natural_keys:
        keys = read_table(lake, case.tables[0]).select(["marketplace_id", "amazon_order_id", "sku"]).to_pylist()
        assert len({tuple(k.values()) for k in keys}) == len(keys)
    # One ledger row, DONE; the manifest, the same as the uninterrupted landing's.
    [entry] = ledger_rows(lake, report_id)
    assert entry["status"] == "DONE" and entry["manifest"] == manifest["manifest_path"]
    assert lake.read_json(pipeline.manifest_path(lake, report, {"selling_partner_id": SELLER, "report_id": report_id})) == manifest
    assert comparable(manifest) == comparable(clean_manifest)
    # Nothing left behind.
    assert lake.list("staging", hidden=True) == []
    assert temporary_files(lake) == []
    assert {table: unreferenced(lake, table) for table in case.tables} == {table: set() for table in case.tables}
    if stage in ("committed", "committed_by_older_version") or (stage, case) == ("writing", REPLACE):  # the killed attempt's commits found
        assert "was committed by an earlier attempt" in caplog.text
    if stage in ("manifest", "ledger", "cleaning"):
        assert "was landed already" in caplog.text


@pytest.mark.parametrize("case", [MERGE, REPLACE], ids=["merge", "replace"])
def test_a_land_retried_after_it_finished_changes_nothing(lake, case):
    """The land task succeeded but died while pushing its XCom: the retry returns the same manifest."""
    parsed = parse(lake, case, fetch(lake, case))
    first = land(lake, case, parsed)
    state = versions(lake, case), {t: rows(lake, t) for t in case.tables}
    assert land(lake, case, parsed) == first
    assert (versions(lake, case), {t: rows(lake, t) for t in case.tables}) == state
    assert len(ledger_rows(lake, case.report[0])) == 1


def test_dead_landings_of_other_hosts_and_other_reports_are_left_alone(lake, tmp_path):
    """Only a landing known dead (its process gone, on this host) loses its files; another report's
    never do, whatever their state."""
    case = MERGE
    land_prior(lake, case)
    parsed = parse(lake, case, fetch(lake, case))
    killed(lake, case, "staged", {"parsed": parsed}, tmp_path)
    table = case.tables[0]
    left = unreferenced(lake, table)
    assert left
    markers_dir = Path(lake.fs_path(lake.staging_dir(table, SELLER, case.report[0]))) / "_landings"
    for marker in markers_dir.iterdir():  # as if the landing ran on another machine
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "host": "elsewhere"}))
    other = {**parsed, "report_id": "999"}  # another report: its landing must not touch report 200's files
    other["parse"] = {**parsed["parse"], "tables": {}, "quarantine_files": [], "rows_read": 0, "rows_parsed": 0,
                      "rows_quarantined": 0}
    land(lake, case, other)
    assert unreferenced(lake, table) == left
    manifest = land(lake, case, parsed)  # the report itself: lands, the other host's files stay (VACUUM's)
    assert manifest["rows_landed"] > 0 and unreferenced(lake, table) == left
    assert lake.list("staging", hidden=True) == []
