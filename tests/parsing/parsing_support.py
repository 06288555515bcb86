"""Helpers for the parsing tests (importable: tests/parsing/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sp_reports.settings import PACKAGED_REGISTRY
from sp_reports.lake import Lake
from sp_reports.lake.datafiles import StagedPartition
from sp_reports.parsing import QUARANTINE_SCHEMA, ParseResult, parse_document
from sp_reports.parsing.result import read_staged
from sp_reports.registry import ReportType, load_registry

REGISTRY = load_registry(PACKAGED_REGISTRY)
ORDERS = REGISTRY["GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"]
LISTINGS = REGISTRY["GET_MERCHANT_LISTINGS_ALL_DATA"]
SETTLEMENT = REGISTRY["GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"]
# A report type with no declared columns: everything stays a string.
PLAIN = ReportType(report_type="GET_TEST_REPORT")

US, JP, DE, UK, FR = "ATVPDKIKX0DER", "A1VC38T7YXB528", "A1PA6795UKMFR9", "A1F83G8C2ARO7P", "A13V1IB3VIYZZH"
RAW = "raw/GET_TEST_REPORT/r1/doc.bin"
OUT = "staging/get_test_report/r1"


@dataclass
class Parsed:
    parse_result: ParseResult
    tables: dict[str, pa.Table]  # every table's staged rows, in file order
    quarantine: pa.Table

    @property
    def main(self) -> pa.Table:
        return self.tables[""]

    def rows(self, table: str = "", *, system: bool = False) -> list[dict]:
        """Rows as dicts; without the system columns unless asked."""
        t = self.tables[table]
        if not system:
            t = t.select(self.parse_result.columns)
        return t.to_pylist()

    def quarantined(self, kind: str | None = None) -> list[dict]:
        rows = self.quarantine.to_pylist()
        return [r for r in rows if kind is None or r["kind"] == kind]


def make_parse(lake: Lake):
    """``parse(data, report=PLAIN, marketplace=US, charset=None, compressed=None, extra=None) -> Parsed``."""

    def run(data: bytes, *, report: ReportType = PLAIN, marketplace: str = US, charset: str | None = None,
            compressed: bool | None = None, extra: dict | None = None, summary: bool | None = None) -> Parsed:
        if summary is not None:
            report = replace(report, summary_first_row=summary)
        with lake.open_output(RAW) as f:
            f.write(data)
        extra = {"report_id": "r1", "marketplace_id": marketplace} if extra is None else extra
        parse_result = parse_document(lake, RAW, OUT, report=report, marketplace_id=marketplace, charset=charset,
                                 compressed=compressed, extra_columns=extra)
        tables = {name: read_files(lake, files) for name, files in parse_result.tables.items()}
        return Parsed(parse_result, tables, read_files(lake, parse_result.quarantine_files, QUARANTINE_SCHEMA))

    return run


def read_files(lake: Lake, files: list[str], schema: pa.Schema | None = None) -> pa.Table:
    tables = [read_staged(lake, f) for f in files]
    if not tables:
        return schema.empty_table() if schema is not None else pa.table({})
    table = pa.concat_tables(tables)
    # Staged data files are by partition: rows in document order again, as the tests expect them.
    by_partition = any(StagedPartition.of(pq.read_schema(lake.fs_path(f), filesystem=lake.filesystem).metadata)
                       for f in files)
    return table.sort_by("source_line") if by_partition else table


def check_accounting(parsed: Parsed) -> None:
    """The invariants every parse_result keeps, checked against what was really staged."""
    o = parsed.parse_result
    assert o.rows_read == o.rows_parsed + o.rows_quarantined
    staged = sum(t.num_rows for t in parsed.tables.values())
    assert staged == o.rows_parsed
    kinds = parsed.quarantine.column("kind").to_pylist() if parsed.quarantine.num_rows else []
    assert kinds.count("row") == o.rows_quarantined
    assert kinds.count("value") == o.values_quarantined
    if parsed.quarantine.num_rows:
        assert parsed.quarantine.schema.equals(QUARANTINE_SCHEMA)
