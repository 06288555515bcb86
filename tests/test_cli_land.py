"""`sp-reports land`: real emulator documents, every quirk, landed exactly as the DAG lands them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sp_reports.cli import main
from sp_reports.client import Credentials, SellingPartnerClient
from sp_reports.lake import Lake, read_table
from support import EMULATOR_CREDENTIALS

SELLER = "A3EMULATORSELLER"

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
ROWS = 20  # rows_per_report of the emulator fixture


def fetch(emu, tmp_path, report_type, marketplace, seeded=False, **knobs) -> tuple[Path, str | None]:
    """A document exactly as the emulator (Amazon) serves it, saved to a file, and its Content-Type."""
    emu.config(**knobs)
    with SellingPartnerClient(Credentials(**EMULATOR_CREDENTIALS), endpoint=emu.base_url,
                              lwa_endpoint=emu.lwa_url) as client:
        if seeded:  # Amazon-generated (settlements): cannot be requested
            report_id = httpx.post(f"{emu.base_url}/_emulator/reports",
                                   json={"reportType": report_type, "marketplaceIds": [marketplace]}).json()["reportId"]
        else:
            report_id = client.create_report(report_type, [marketplace], data_start_time="2026-11-01T00:00:00Z",
                                             data_end_time="2026-11-03T00:00:00Z")
        deadline = time.time() + 20
        while (report := client.get_report(report_id))["processingStatus"] not in ("DONE", "FATAL", "CANCELLED"):
            assert time.time() < deadline
            time.sleep(0.1)
        assert report["processingStatus"] == "DONE", report
        buffer = io.BytesIO()
        download = client.download_document(report["reportDocumentId"], buffer)
    path = tmp_path / f"{report_id}.bin"
    path.write_bytes(buffer.getvalue())
    return path, download.content_type


def land(capsys, path, report_type, marketplace, lake, content_type=None, *extra) -> dict:
    args = [str(path), "--report-type", report_type, "--marketplace-id", marketplace, "--lake", str(lake),
            "--selling-partner-id", SELLER, *extra]
    if content_type:
        args += ["--content-type", content_type]
    assert main(["land", *args]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["rows_read"] == manifest["rows_landed"] + manifest["rows_quarantined"]
    return manifest


def table(lake_dir, report_type, suffix=""):
    return read_table(Lake(str(lake_dir)), report_type.lower() + (f"__{suffix}" if suffix else ""))


@pytest.mark.parametrize("marketplace, codec, sample", [(US, "utf-8", None), (DE, "cp1252", "ö"), (JP, "cp932", "市")])
def test_each_marketplace_encoding_lands_readable_text(emulator, tmp_path, capsys, marketplace, codec, sample):
    path, content_type = fetch(emulator, tmp_path, ORDERS, marketplace)
    manifest = land(capsys, path, ORDERS, marketplace, tmp_path / "lake", content_type)

    assert manifest["encoding"]["codec"] == codec
    assert manifest["rows_read"] == manifest["rows_landed"] == ROWS
    assert manifest["compressed"] is True
    rows = table(tmp_path / "lake", ORDERS)
    assert rows.num_rows == ROWS
    text = " ".join(rows.column("ship_city").to_pylist() + rows.column("product_name").to_pylist())
    if sample:
        assert sample in text
    assert "Ã" not in text and "\ufffd" not in text  # no mojibake, no replacement characters
    # The manifest is kept in the lake too.
    assert json.loads(Path(manifest["manifest_path"] if Path(manifest["manifest_path"]).is_absolute()
                           else tmp_path / "lake" / manifest["manifest_path"]).read_text())["sha256"] == manifest["sha256"]


@pytest.mark.parametrize("marketplace, label, codec, sample", [(DE, "UTF-8", "cp1252", "ö"), (JP, "Cp1252", "cp932", "市"),
                                                              (JP, "UTF-8", "cp932", "市")])
def test_a_charset_label_that_contradicts_the_bytes_is_overridden(emulator, tmp_path, capsys, marketplace, label,
                                                                  codec, sample):
    path, content_type = fetch(emulator, tmp_path, ORDERS, marketplace, mislabel_charset=label)
    assert f"charset={label}" in content_type
    manifest = land(capsys, path, ORDERS, marketplace, tmp_path / "lake", content_type)
    assert manifest["encoding"]["codec"] == codec
    assert manifest["rows_landed"] == ROWS
    text = " ".join(table(tmp_path / "lake", ORDERS).column("ship_city").to_pylist())
    assert sample in text and "Ã" not in text


@pytest.mark.parametrize("knobs", [{"bom": True}, {"crlf": True}, {"trailing_tabs": True}, {"gzip_mislabel": True},
                                   {"gzip_documents": False}])
def test_document_quirks_land_every_row(emulator, tmp_path, capsys, knobs):
    path, content_type = fetch(emulator, tmp_path, ORDERS, US, **knobs)
    manifest = land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    assert manifest["rows_landed"] == ROWS and manifest["rows_quarantined"] == 0
    columns = table(tmp_path / "lake", ORDERS).column_names
    assert "amazon_order_id" in columns  # the BOM did not glue itself to the first header
    assert not [c for c in columns if c.startswith("column_")]  # trailing tabs made no phantom column


@pytest.mark.parametrize("knobs", [{"empty_document": True}, {"header_only": True}])
def test_empty_and_header_only_documents_land_nothing(emulator, tmp_path, capsys, knobs):
    path, content_type = fetch(emulator, tmp_path, ORDERS, US, **knobs)
    manifest = land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    assert manifest["rows_read"] == manifest["rows_landed"] == 0


def test_undecodable_lines_are_quarantined_with_their_bytes(emulator, tmp_path, capsys):
    path, content_type = fetch(emulator, tmp_path, ORDERS, JP, bad_bytes_rate=0.25)
    manifest = land(capsys, path, ORDERS, JP, tmp_path / "lake", content_type)
    assert manifest["rows_quarantined"] > 0
    assert manifest["rows_landed"] + manifest["rows_quarantined"] == ROWS
    quarantine = table(tmp_path / "lake", ORDERS, "quarantine").to_pylist()
    rows = [q for q in quarantine if q["kind"] == "row"]
    assert len(rows) == manifest["rows_quarantined"]
    assert all(q["line"] >= 2 and q["raw"] and q["reason"] for q in rows)


def test_column_drift_is_kept_and_reported(emulator, tmp_path, capsys):
    path, content_type = fetch(emulator, tmp_path, ORDERS, US)
    land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    path, content_type = fetch(emulator, tmp_path, ORDERS, US, column_drift="add")
    added = land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    assert added["columns_added"]
    assert set(added["columns_added"]) <= set(table(tmp_path / "lake", ORDERS).column_names)
    path, content_type = fetch(emulator, tmp_path, ORDERS, US, column_drift="drop")
    dropped = land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    assert dropped["columns_missing"]


def test_localised_headers_map_to_canonical_columns(emulator, tmp_path, capsys):
    for marketplace in (JP, DE):
        path, content_type = fetch(emulator, tmp_path, LISTINGS, marketplace)
        land(capsys, path, LISTINGS, marketplace, tmp_path / "lake", content_type)
    rows = table(tmp_path / "lake", LISTINGS)
    assert {"seller_sku", "item_name", "price"} <= set(rows.column_names)
    assert rows.num_rows == 2 * ROWS
    assert None not in rows.column("seller_sku").to_pylist()


def test_settlement_summary_row_lands_apart(emulator, tmp_path, capsys):
    settlement = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"
    path, content_type = fetch(emulator, tmp_path, settlement, DE, seeded=True)
    manifest = land(capsys, path, settlement, DE, tmp_path / "lake", content_type)
    summary = table(tmp_path / "lake", settlement, "summary")
    assert summary.num_rows == 1
    # The summary is a data row of the document too: 1 summary + ROWS transactions, all accounted for.
    assert manifest["rows_read"] == manifest["rows_landed"] == ROWS + 1
    assert table(tmp_path / "lake", settlement).num_rows == ROWS


@pytest.mark.parametrize("report_type", ["GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "GET_SALES_AND_TRAFFIC_REPORT"])
def test_xml_and_json_reports_land(emulator, tmp_path, capsys, report_type):
    path, content_type = fetch(emulator, tmp_path, report_type, US)
    manifest = land(capsys, path, report_type, US, tmp_path / "lake", content_type)
    assert manifest["rows_landed"] > 0 and manifest["rows_quarantined"] == 0
    assert table(tmp_path / "lake", report_type).num_rows == manifest["rows_landed"]


def test_replaying_a_document_is_idempotent(emulator, tmp_path, capsys):
    path, content_type = fetch(emulator, tmp_path, ORDERS, US)
    first = land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    second = land(capsys, path, ORDERS, US, tmp_path / "lake", content_type)
    assert first["report_id"] == second["report_id"]
    assert table(tmp_path / "lake", ORDERS).num_rows == ROWS
    # The replay names the seller: it is in the manifest, its path, the raw path and every row.
    assert first["selling_partner_id"] == SELLER
    assert first["manifest_path"] == f"manifests/{ORDERS.lower()}/{SELLER}/{first['report_id']}.json"
    assert first["raw_path"].startswith(f"raw/{ORDERS}/{SELLER}/{first['report_id']}/")
    assert set(table(tmp_path / "lake", ORDERS).column("selling_partner_id").to_pylist()) == {SELLER}


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["land", str(tmp_path / "missing.tsv"), "--report-type", ORDERS, "--marketplace-id", US,
                 "--selling-partner-id", SELLER, "--lake", str(tmp_path / "lake")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "doc.tsv").write_text("a\tb\n1\t2\n")
    assert main(["land", str(tmp_path / "doc.tsv"), "--report-type", "GET_NOPE", "--marketplace-id", US,
                 "--selling-partner-id", SELLER, "--lake", str(tmp_path / "lake")]) == 2
    assert "unknown report type 'GET_NOPE'" in capsys.readouterr().err
    assert main(["land", str(tmp_path / "doc.tsv"), "--report-type", ORDERS, "--marketplace-id", US,
                 "--selling-partner-id", "not/a/seller", "--lake", str(tmp_path / "lake")]) == 2
    assert "selling_partner_id must be an Amazon seller id" in capsys.readouterr().err


def test_the_installed_command(emulator, tmp_path):
    path, content_type = fetch(emulator, tmp_path, ORDERS, JP)
    command = Path(sys.executable).parent / "sp-reports"
    result = subprocess.run([str(command), "land", str(path), "--report-type", ORDERS, "--marketplace-id", JP,
                             "--selling-partner-id", SELLER, "--content-type", content_type, "--lake", str(tmp_path / "lake")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["encoding"]["codec"] == "cp932"
