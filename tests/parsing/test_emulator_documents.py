"""Every flat file the SP-API emulator serves, in every marketplace layout and with its quirks, parses
with nothing quarantined but the lines the emulator corrupted on purpose."""

import gzip
import time

import pytest
from parsing_support import REGISTRY, check_accounting

from sp_reports.emulator.config import DocumentQuirks
from sp_reports.emulator.documents import BAD_BYTES, COLUMNS, DRIFT_COLUMN, served_bytes
from sp_reports.emulator.marketplaces import MARKETPLACES
from sp_reports.emulator.state import Report
from sp_reports.columns import snake_case

FLAT_FILES = sorted(name for name, report in REGISTRY.items() if report.format == "tsv" and name in COLUMNS)
MARKETPLACE_IDS = ["ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528", "A1F83G8C2ARO7P", "A13V1IB3VIYZZH"]
QUIRKS = {
    "plain": DocumentQuirks(),
    "bom-crlf-tabs": DocumentQuirks(bom=True, crlf=True, trailing_tabs=True),
    "mislabel-utf8-bad-bytes": DocumentQuirks(mislabel_charset="UTF-8", bad_bytes_rate=0.2),
    "mislabel-cp1252-drift": DocumentQuirks(mislabel_charset="Cp1252", column_drift="add"),
    "gzip-mislabel-drop": DocumentQuirks(gzip_mislabel=True, column_drift="drop"),
}
ROWS = 40


def emulated(report_type: str, marketplace_id: str, quirks: DocumentQuirks) -> tuple[bytes, str]:
    now = time.time()
    report = Report(
        report_id="1234", report_type=report_type, marketplace_ids=[marketplace_id], data_start=now - 5 * 86400,
        data_end=now, created=now, options={}, outcome="DONE", queue_seconds=0, total_seconds=0, document_id="d",
        seed=11, rows=ROWS, compressed=False, quirks=quirks,
    )  # fmt: skip
    data, content_type = served_bytes(report)
    return data, content_type.split("charset=")[1]


@pytest.mark.parametrize("quirk", sorted(QUIRKS))
@pytest.mark.parametrize("marketplace_id", MARKETPLACE_IDS)
@pytest.mark.parametrize("report_type", FLAT_FILES)
def test_emulated_flat_files(parse, report_type, marketplace_id, quirk):
    quirks = QUIRKS[quirk]
    data, charset = emulated(report_type, marketplace_id, quirks)
    report = REGISTRY[report_type]
    parsed = parse(data, report=report, marketplace=marketplace_id, charset=charset,
                   extra={"report_id": "1234", "marketplace_id": marketplace_id, "report_date": "2026-11-20"})
    outcome = parsed.parse_result
    check_accounting(parsed)
    assert parsed.quarantined("value") == []  # every declared column of every layout casts
    summary = 1 if report.summary_first_row else 0
    assert outcome.rows_read == ROWS + summary
    bad = [r for r in parsed.quarantined("row")]
    assert all(BAD_BYTES in r["raw"] and r["reason"].startswith("undecodable") for r in bad)
    if not quirks.bad_bytes_rate:
        assert bad == []
    columns = list(COLUMNS[report_type])
    if quirks.column_drift == "add":
        columns.insert(len(columns) // 2, DRIFT_COLUMN)
    elif quirks.column_drift == "drop":
        columns.pop()
    assert outcome.columns == [snake_case(c) for c in columns]  # localised headers mapped back
    codec = MARKETPLACES[marketplace_id].codec
    text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    if not text.replace(BAD_BYTES, b"").isascii():  # (plain ASCII reads the same in every codec)
        assert outcome.encoding["codec"] == codec, outcome.encoding
    assert outcome.compressed == (data[:2] == b"\x1f\x8b")
    if report.date_column:
        assert parsed.main.column("report_date").null_count == 0
