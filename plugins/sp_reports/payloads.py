"""What the steps of a report's path hand each other: request -> wait -> fetch -> parse -> land.

Each payload is a JSON-able dict (it travels between Airflow tasks through XCom, and a step's retry may
run on another worker), typed here so every producer and consumer agrees on its keys. Each step's payload
carries everything the previous one did. No URL, no token, no secret is ever part of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict


class FinishedReport(TypedDict):
    """A report Amazon has finished (DONE, CANCELLED or FATAL): the operator's and sensor's result, what a
    notification or a listing announces. ``report_id`` is unique only together with ``selling_partner_id``."""

    selling_partner_id: str  # the seller: a reportId is unique only together with it
    selling_partner_conn_id: str  # the account (connection) that requested or found it, and fetches it
    report_id: str
    report_type: str
    processing_status: str
    report_document_id: str | None
    marketplace_ids: list[str]
    data_start_time: str | None
    data_end_time: str | None
    created_time: str | None
    processing_end_time: str | None
    report_schedule_id: str | None
    rows: NotRequired[int]  # 0 when Amazon CANCELLED the report (no data): nothing to fetch
    notification_id: NotRequired[str | None]  # when a notification announced it
    reused: NotRequired[bool]  # True when Amazon already had it and the request task used it instead of asking


class FetchedDocument(FinishedReport):
    """The report's document, stored byte for byte in the lake's raw zone (``raw_path``; its JSON sidecar
    at ``raw_path + ".json"`` holds this payload)."""

    raw_path: str
    content_type: str | None  # as Amazon sent it, e.g. "text/plain;charset=Cp1252"
    charset: str | None  # Amazon's label from the Content-Type
    compressed: bool  # gzip, by its magic bytes
    size: int
    sha256: str


class ParsedDocument(FetchedDocument):
    """The document parsed into staging Parquet files: ``parse`` is a ``ParseResult`` as a dict."""

    parse: dict[str, Any]


class Manifest(TypedDict):
    """What one landing committed; written to ``manifests/<table>/<selling_partner_id>/<report_id>.json``
    once every table is."""

    selling_partner_id: str
    report_id: str
    report_type: str
    marketplace_ids: list[str]
    document_id: str | None
    raw_path: str
    content_type: str | None
    bytes: int
    sha256: str
    compressed: bool
    encoding: dict[str, Any]
    rows_read: int
    rows_landed: int
    rows_quarantined: int
    values_quarantined: int
    columns_added: list[str]
    columns_missing: list[str]
    tables: dict[str, dict[str, Any]]  # by suffix ("" = the main table): a ``lake.TableLanding`` as a dict
    quarantine_table: dict[str, Any] | None
    landed_at: str
    manifest_path: str


@dataclass
class ParseResult:
    """What parsing one document produced (kept in ``ParsedDocument["parse"]``)."""

    # "" = the report's main table; other keys = extra tables by suffix ("summary" for settlements,
    # a snake_case element/array name for XML/JSON). Values: staging Parquet files, in document order.
    tables: dict[str, list[str]]
    quarantine_files: list[str]  # staging Parquet with the quarantine schema
    rows_read: int  # data rows in the document (non-blank lines after the header; records)
    rows_parsed: int  # rows written to tables[""] (+ the summary row for settlements)
    rows_quarantined: int  # rows_read == rows_parsed + rows_quarantined, always
    values_quarantined: int  # cast failures: the row landed with null there, the value is quarantined
    encoding: dict[str, Any]  # {"codec", "label", "bom", "reason"}
    compressed: bool  # gzip, by magic bytes
    columns: list[str]  # canonical snake_case columns of tables[""] as found in the document
    source_columns: dict[str, str] = field(default_factory=dict)  # canonical -> header as written
