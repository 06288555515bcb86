"""Reports, schedules and documents, and how a report's status follows from elapsed time."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import DocumentQuirks, EmulatorConfig
from .marketplaces import MARKETPLACES
from .report_types import MAX_RANGE_DAYS

SETTLEMENT_REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE"

# ISO 8601 periods of CreateReportScheduleSpecification.period, in seconds (P1M taken as 30 days).
PERIOD_SECONDS = {
    "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600, "PT2H": 7200, "PT4H": 14400,
    "PT8H": 28800, "PT12H": 43200, "P1D": 86400, "P2D": 172800, "P3D": 259200, "PT84H": 302400,
    "P7D": 604800, "P14D": 1209600, "P15D": 1296000, "P18D": 1555200, "P30D": 2592000, "P1M": 2592000,
}  # fmt: skip

# A schedule that fell far behind creates only its latest reports, not thousands.
MAX_CATCH_UP_REPORTS = 10

DAY = 86400.0


def iso(ts: float) -> str:
    """Amazon's date-time format for Reports 2021-06-30 (second precision, explicit offset)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class Report:
    report_id: str
    report_type: str
    marketplace_ids: list[str]
    data_start: float
    data_end: float
    created: float
    options: dict[str, str]
    outcome: str  # the terminal status it will reach: DONE | FATAL | CANCELLED
    queue_seconds: float
    total_seconds: float
    document_id: str | None  # None when the outcome has no document
    seed: int  # content is generated from the seed in force when the report was created
    rows: int
    compressed: bool  # what getReportDocument says (compressionAlgorithm GZIP)
    error_details: str | None = None
    schedule_id: str | None = None
    cancelled_at: float | None = None  # set by cancelReport
    quirks: DocumentQuirks = field(default_factory=DocumentQuirks)
    # The seller it belongs to; None = the default seller (EmulatorConfig.seller_id at publish time).
    seller_id: str | None = None
    # Mixed into the seeds of its outcome, document id and content, so that two sellers' reports
    # with the same reportId differ; "" for the default seller (as before sellers existed).
    owner: str = ""
    # Never finishes: IN_PROGRESS forever (EmulatorConfig.stuck_reports).
    stuck: bool = False

    @property
    def content_key(self) -> str:
        """What its document content is generated from, with its seed."""
        return f"{self.owner}:{self.report_id}" if self.owner else self.report_id

    @property
    def gzip_served(self) -> bool:
        """Whether the served bytes are gzip: as labelled, unless the gzip_mislabel quirk inverts it."""
        if self.quirks.gzip_mislabel and self.outcome == "DONE":
            return not self.compressed
        return self.compressed

    def finished_at(self) -> float:
        """When the report reaches (or reached) its terminal status."""
        if self.cancelled_at is not None:
            return self.cancelled_at
        return math.inf if self.stuck else self.created + self.total_seconds

    def status(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        elapsed = now - self.created
        if elapsed < self.queue_seconds:
            return "IN_QUEUE"
        if elapsed < self.total_seconds or self.stuck:
            return "IN_PROGRESS"
        return self.outcome

    def document_ready(self, now: float) -> bool:
        return self.document_id is not None and self.status(now) in ("DONE", "FATAL")

    def to_json(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        body: dict[str, Any] = {
            "reportId": self.report_id,
            "reportType": self.report_type,
            "marketplaceIds": list(self.marketplace_ids),
            "dataStartTime": iso(self.data_start),
            "dataEndTime": iso(self.data_end),
            "createdTime": iso(self.created),
            "processingStatus": status,
        }
        if self.schedule_id:
            body["reportScheduleId"] = self.schedule_id
        # A report cancelled by the caller never started processing.
        if status != "IN_QUEUE" and self.cancelled_at is None:
            body["processingStartTime"] = iso(self.created + self.queue_seconds)
            if status != "IN_PROGRESS":
                body["processingEndTime"] = iso(self.created + self.total_seconds)
        if self.document_ready(now):
            body["reportDocumentId"] = self.document_id
        return body


@dataclass
class Schedule:
    schedule_id: str
    report_type: str
    marketplace_ids: list[str]
    options: dict[str, str]
    period: str
    next_creation: float

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reportScheduleId": self.schedule_id,
            "reportType": self.report_type,
            "marketplaceIds": list(self.marketplace_ids),
            "period": self.period,
            "nextReportCreationTime": iso(self.next_creation),
        }
        if self.options:
            body["reportOptions"] = dict(self.options)
        return body


@dataclass
class Store:
    """The reports, schedules and documents of one seller in one region (see runtime.Account).

    Ids come from the seed and the region alone, so two sellers' stores in one region hand out the same
    reportIds, as Amazon's per-seller id spaces may, while one seller's regions never do (a reportId is unique
    together with its seller); `owner` keeps their outcomes, document ids and content apart.
    """

    seed: int
    reports: dict[str, Report] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)  # reportDocumentId -> reportId
    # nextToken -> (reportIds not yet returned, pageSize); tokens stay valid so a retried call works
    pages: dict[str, tuple[list[str], int]] = field(default_factory=dict)
    # Reports whose terminal status the publisher has not seen yet (kept apart so a tick does not
    # scan every report ever created).
    unfinished: set[str] = field(default_factory=set)
    # (report type, marketplace) -> when Amazon last generated it: the start of its cooldown window.
    generated: dict[tuple[str, str], float] = field(default_factory=dict)
    stuck_created: int = 0  # how many of EmulatorConfig.stuck_reports this store has handed out
    next_settlement: float | None = None
    seller_id: str | None = None  # None: the default seller
    owner: str = ""  # e.g. "A1SELLER.NA"; "" for the default seller
    region: str = ""  # "" for the default seller, which every region serves

    def __post_init__(self) -> None:
        self._ids = random.Random(f"{self.seed}:ids" if not self.region else f"{self.seed}:{self.region}:ids")
        self._page_tokens = random.Random(f"{self.seed}:pages")
        # Amazon's report and schedule ids are 11-digit numbers that grow over time.
        self._next_report_id = 50_000_000_000 + self._ids.randrange(10**9)
        self._next_schedule_id = 60_000_000_000 + self._ids.randrange(10**9)

    # --- ids -------------------------------------------------------------------------------

    def _new_report_id(self) -> str:
        self._next_report_id += self._ids.randint(1, 997)
        return str(self._next_report_id)

    def _new_schedule_id(self) -> str:
        self._next_schedule_id += self._ids.randint(1, 997)
        return str(self._next_schedule_id)

    def new_page_token(self, remaining: list[str], page_size: int, previous: str | None = None) -> str:
        # Following a token is idempotent: a retried call gets the same page and the same next token.
        raw = hashlib.sha384(previous.encode()).digest() if previous else self._page_tokens.randbytes(48)
        token = base64.b64encode(raw).decode()
        self.pages[token] = (remaining, page_size)
        return token

    # --- reports ---------------------------------------------------------------------------

    def create_report(
        self,
        config: EmulatorConfig,
        now: float,
        report_type: str,
        marketplace_ids: list[str],
        data_start: float,
        data_end: float,
        options: dict[str, str],
        schedule_id: str | None = None,
        *,
        outcome: str | None = None,
        processing_seconds: float | None = None,
    ) -> Report:
        requested = schedule_id is None and outcome is None  # by createReport, not a schedule or a settlement
        report_id = self._new_report_id()
        # Outcome and timing depend only on seed + reportId, so they reproduce across runs.
        salt = f"{self.owner}:" if self.owner else ""
        rng = random.Random(f"{config.seed}:{salt}{report_id}:outcome")
        outcome = outcome or config.outcomes.get(report_type)
        draw = rng.random()
        if outcome is None:
            if draw < config.fatal_rate:
                outcome = "FATAL"
            elif draw < config.fatal_rate + config.cancel_rate:
                outcome = "CANCELLED"
            else:
                outcome = "DONE"
        error_details = None
        max_days = MAX_RANGE_DAYS.get(report_type)
        in_cooldown = requested and self._in_cooldown(config, now, report_type, marketplace_ids)
        if in_cooldown:
            outcome = "FATAL"  # and no error document: Amazon says nothing about why
        elif max_days is not None and data_end - data_start > max_days * DAY:
            outcome = "FATAL"
            error_details = (
                f"Report request failed because the requested date range exceeds the maximum "
                f"of {max_days} days allowed for {report_type}."
            )
        elif outcome == "FATAL":
            error_details = "The report could not be generated because of an internal error. Request a new report."

        total = config.processing_seconds / config.speed
        if rng.random() < config.slow_rate and processing_seconds is None:
            total *= config.slow_factor
        if processing_seconds is not None:
            total = processing_seconds

        stuck = requested and not in_cooldown and self.stuck_created < config.stuck_reports
        self.stuck_created += stuck
        document_id = None
        if outcome == "DONE" or (outcome == "FATAL" and config.fatal_error_document and not in_cooldown):
            region = MARKETPLACES[marketplace_ids[0]].region if marketplace_ids[0] in MARKETPLACES else "na"
            document_id = f"amzn1.spdoc.1.4.{region}.{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            self.documents[document_id] = report_id

        report = Report(
            report_id=report_id,
            report_type=report_type,
            marketplace_ids=list(marketplace_ids),
            data_start=data_start,
            data_end=data_end,
            created=now,
            options=dict(options),
            outcome=outcome,
            queue_seconds=total / 2,
            total_seconds=total,
            document_id=document_id,
            seed=config.seed,
            rows=config.rows_per_report,
            compressed=config.gzip_documents and outcome == "DONE",
            error_details=error_details,
            schedule_id=schedule_id,
            quirks=config.quirks(),
            seller_id=self.seller_id,
            owner=self.owner,
            stuck=stuck,
        )
        self.reports[report_id] = report
        self.unfinished.add(report_id)
        return report

    def _in_cooldown(self, config: EmulatorConfig, now: float, report_type: str, marketplace_ids: list[str]) -> bool:
        """Whether Amazon refuses to generate this type again yet; if not, this request starts a new window."""
        cooldown = config.cooldowns.get(report_type)
        if not cooldown:
            return False
        window = cooldown / config.speed
        keys = [(report_type, marketplace) for marketplace in marketplace_ids]
        if any(now - self.generated.get(key, -math.inf) < window for key in keys):
            return True
        self.generated.update(dict.fromkeys(keys, now))
        return False

    def take_finished(self, now: float) -> list[Report]:
        """Reports that reached a terminal status since the previous call, oldest first."""
        finished = []
        for report_id in list(self.unfinished):
            report = self.reports.get(report_id)
            if report is None or report.status(now) in ("DONE", "FATAL", "CANCELLED"):
                self.unfinished.discard(report_id)
                if report is not None:
                    finished.append(report)
        return sorted(finished, key=lambda r: (r.finished_at(), int(r.report_id)))

    def next_due(self) -> float | None:
        """The earliest time something happens without a request: a report finishing, a schedule or
        settlement creating a report. None when nothing is pending."""
        times = [self.reports[rid].finished_at() for rid in self.unfinished if rid in self.reports]
        times = [t for t in times if math.isfinite(t)]
        times += [s.next_creation for s in self.schedules.values()]
        if self.next_settlement is not None:
            times.append(self.next_settlement)
        return min(times, default=None)

    # --- schedules -------------------------------------------------------------------------

    def create_schedule(
        self,
        report_type: str,
        marketplace_ids: list[str],
        options: dict[str, str],
        period: str,
        next_creation: float,
    ) -> Schedule:
        # Amazon: a schedule with the same report type and marketplaces is cancelled and replaced.
        for existing in list(self.schedules.values()):
            if existing.report_type == report_type and sorted(existing.marketplace_ids) == sorted(marketplace_ids):
                del self.schedules[existing.schedule_id]
        schedule = Schedule(
            self._new_schedule_id(), report_type, list(marketplace_ids), dict(options), period, next_creation
        )
        self.schedules[schedule.schedule_id] = schedule
        return schedule

    def run_schedules(self, config: EmulatorConfig, now: float) -> None:
        """Create the reports schedules owe by `now`; called lazily before reads and by the ticker."""
        for schedule in self.schedules.values():
            due, schedule.next_creation = _due(
                schedule.next_creation, PERIOD_SECONDS[schedule.period] / config.speed, now
            )
            for at in due:
                self.create_report(
                    config, at, schedule.report_type, schedule.marketplace_ids,
                    at - PERIOD_SECONDS[schedule.period], at, schedule.options, schedule.schedule_id,
                )  # fmt: skip

    def run_settlements(self, config: EmulatorConfig, now: float, marketplace_ids: list[str] | None = None) -> None:
        """Create the settlement reports Amazon would have generated by `now`, one per marketplace
        (`marketplace_ids`, by default config.settlement_marketplace_ids)."""
        period = config.settlement_period_seconds
        if period is None:
            self.next_settlement = None
            return
        if self.next_settlement is None:  # just switched on: the first settlement closes one period from now
            self.next_settlement = now + period / config.speed
            return
        due, self.next_settlement = _due(self.next_settlement, period / config.speed, now)
        for at in due:
            for marketplace_id in marketplace_ids or config.settlement_marketplace_ids:
                # Amazon publishes a settlement when it is complete: DONE from the moment it is listed.
                self.create_report(
                    config, at, SETTLEMENT_REPORT_TYPE, [marketplace_id], at - period, at, {},
                    outcome="DONE", processing_seconds=0.0,
                )  # fmt: skip


def _due(next_time: float, step: float, now: float) -> tuple[list[float], float]:
    """The creation times of a periodic report due by `now`, and the next one after them."""
    count = int((now - next_time) // step) + 1 if now >= next_time else 0
    if count > MAX_CATCH_UP_REPORTS:
        next_time += (count - MAX_CATCH_UP_REPORTS) * step
        count = MAX_CATCH_UP_REPORTS
    due = [next_time + i * step for i in range(count)]
    return due, next_time + count * step
