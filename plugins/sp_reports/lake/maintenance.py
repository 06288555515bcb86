"""Lake maintenance: compaction, VACUUM, checkpoints, and the leftovers of dead landings.

Per Delta table under ``tables/`` (report tables, their extra and ``__quarantine`` tables, ``_ledger``):

1. compaction of small files (``optimize.compact``), retried on commit conflicts;
2. VACUUM in full mode: files removed from the table longer than the retention ago, and files no
   commit references (a landing that died between writing its data files and committing) once older
   than the retention;
3. a checkpoint at the current version, and removal of the log files the table's log retention expired.

For the lake: staging directories (``staging/<table>/<sellerId>/<reportId>/``) and the hidden ``.tmp`` files of
``Lake.open_output`` (on S3: incomplete multipart uploads) that nothing has touched for a while.

Why each step is safe next to running landings and readers is in docs/maintenance.md; the short
version is the floor in ``MaintenanceSettings``. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties
from deltalake.exceptions import CommitFailedError
from pyarrow import fs as pafs

from .ledger import FINAL_STATUSES, Ledger
from .paths import join_path
from .storage import Lake, is_temporary_name

log = logging.getLogger(__name__)

DEFAULT_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration
# The longest a landing holds a table snapshot (from opening the table to its commit) or a reader
# reads one. A landing takes minutes (3 GB: under a minute to land); a day leaves room for slow queries.
LONGEST_LANDING_HOURS = 24
DEFAULT_STAGING_MAX_AGE_HOURS = 48
# A parse writes staging files continuously; its land task may wait for a worker and be retried.
MIN_STAGING_MAX_AGE_HOURS = 12
# A staging directory of a report the ledger records as final is a leftover once nobody wrote to it
# for this long (a rerun of a finished report re-parses into the same directory, then lands at once).
DEFAULT_FINAL_GRACE_HOURS = 6
# The landing writes files of at most 1M rows (datafiles.FILE_ROWS, tens of MB): a MERGE rewrites whole
# files, so compacting into much larger files would make every later landing rewrite more.
DEFAULT_TARGET_FILE_BYTES = 64 * 1024 * 1024
COMPACT_ATTEMPTS = 5
_BACKOFF_BASE, _BACKOFF_CAP = 0.5, 10.0  # seconds
_HOUR_NS = 3600 * 10**9
_RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
_UNIT_HOURS = {"week": 168.0, "day": 24.0, "hour": 1.0, "minute": 1 / 60, "second": 1 / 3600}
# The project's data files are zstd level 1 (datafiles.PARQUET_OPTIONS); compaction keeps them so.
_WRITER = WriterProperties(compression="ZSTD", compression_level=1)


@dataclass(frozen=True)
class MaintenanceSettings:
    """How old things must be before maintenance removes them (hours).

    ``retention_hours`` may not be below ``staging_max_age_hours + LONGEST_LANDING_HOURS``: VACUUM
    removes unreferenced files by their modification time, and a landing adopts staged data files
    by hard link locally, so a file it has not committed yet can be as old as its staging directory
    (at most ``staging_max_age_hours``, after which it is removed) plus the landing's own time.
    """

    retention_hours: int = DEFAULT_RETENTION_HOURS
    staging_max_age_hours: int = DEFAULT_STAGING_MAX_AGE_HOURS
    final_grace_hours: int = DEFAULT_FINAL_GRACE_HOURS
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.staging_max_age_hours < MIN_STAGING_MAX_AGE_HOURS:
            raise ValueError(
                f"staging_max_age_hours must be at least {MIN_STAGING_MAX_AGE_HOURS}, got {self.staging_max_age_hours}"
            )
        if not 1 <= self.final_grace_hours <= self.staging_max_age_hours:
            raise ValueError(
                f"final_grace_hours must be between 1 and staging_max_age_hours, got {self.final_grace_hours}"
            )
        if self.retention_hours < self.min_retention_hours:
            raise ValueError(
                f"retention_hours must be at least {self.min_retention_hours} (staging_max_age_hours "
                f"{self.staging_max_age_hours} + {LONGEST_LANDING_HOURS}), got {self.retention_hours}"
            )
        if self.target_file_bytes < 1024 * 1024:
            raise ValueError(f"target_file_bytes must be at least 1 MiB, got {self.target_file_bytes}")

    @property
    def min_retention_hours(self) -> int:
        return self.staging_max_age_hours + LONGEST_LANDING_HOURS


@dataclass
class TableReport:
    table: str
    version: int | None = None  # the table's version after maintenance
    checkpoint_version: int | None = None
    files_compacted: int = 0  # small files rewritten (in a dry run: that compaction would consider)
    files_written: int = 0  # the files they became
    compaction_attempts: int = 0
    files_removed: int = 0  # by VACUUM
    bytes_removed: int = 0
    log_files_removed: int = 0
    removed: list[str] = field(default_factory=list)  # lake paths
    error: str | None = None  # set by maintain_lake when the table failed

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LeftoverReport:
    staging_dirs: list[str] = field(default_factory=list)
    staging_files: int = 0
    staging_bytes: int = 0
    tmp_files: list[str] = field(default_factory=list)  # local .tmp files and aborted S3 multipart uploads
    tmp_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------- the lake


def maintain_lake(
    lake: Lake, settings: MaintenanceSettings = MaintenanceSettings(), *, now: datetime | None = None
) -> dict:
    """Clean the leftovers, then maintain every table; the report of ``lake_report``.

    A table that fails is reported with its error and the others are still maintained. ``now`` (for
    tests) moves the clock of the leftover cleanup only; VACUUM always uses the real one.
    """
    leftovers = clean_leftovers(lake, settings, now=now).to_dict()
    tables = []
    for name in list_tables(lake):
        try:
            tables.append(maintain_table(lake, name, settings).to_dict())
        except Exception as e:
            log.exception("maintenance of table %s failed", name)
            tables.append(TableReport(name, error=f"{type(e).__name__}: {e}").to_dict())
    return lake_report(settings, leftovers, tables)


def lake_report(settings: MaintenanceSettings, leftovers: dict, tables: Iterable[dict]) -> dict:
    """The whole run's report from its parts (``LeftoverReport`` / ``TableReport`` dicts), with totals."""
    tables = sorted(tables, key=lambda t: t["table"])
    return {
        "dry_run": settings.dry_run,
        "settings": asdict(settings),
        "tables": tables,
        "leftovers": leftovers,
        "files_removed": sum(t["files_removed"] for t in tables)
        + leftovers["staging_files"]
        + len(leftovers["tmp_files"]),
        "bytes_reclaimed": sum(t["bytes_removed"] for t in tables)
        + leftovers["staging_bytes"]
        + leftovers["tmp_bytes"],
        "files_compacted": sum(t["files_compacted"] for t in tables),
        "errors": {t["table"]: t["error"] for t in tables if t["error"]},
    }


def format_report(report: dict) -> str:
    verb = "would remove" if report["dry_run"] else "removed"
    lines = [f"{'table':<56} {'compacted':>9} {'written':>7} {'removed':>7} {'bytes':>13} {'checkpoint':>10}"]
    for t in report["tables"]:
        checkpoint = "-" if t["checkpoint_version"] is None else str(t["checkpoint_version"])
        lines.append(
            f"{t['table']:<56} {t['files_compacted']:>9} {t['files_written']:>7} {t['files_removed']:>7} "
            f"{t['bytes_removed']:>13} {checkpoint:>10}" + (f"  ERROR {t['error']}" if t["error"] else "")
        )
    left = report["leftovers"]
    lines.append(
        f"leftovers: {verb} {len(left['staging_dirs'])} staging dir(s) ({left['staging_files']} files, "
        f"{left['staging_bytes']} bytes), {len(left['tmp_files'])} temporary file(s) ({left['tmp_bytes']} bytes)"
    )
    lines.append(
        f"total: {verb} {report['files_removed']} file(s), {report['bytes_reclaimed']} bytes; "
        f"{report['files_compacted']} small file(s) compacted"
    )
    return "\n".join(lines)


def list_tables(lake: Lake) -> list[str]:
    """The Delta tables under ``tables/`` (directories with a ``_delta_log``)."""
    names = sorted(e.path.rsplit("/", 1)[1] for e in _walk(lake, "tables", recursive=False) if e.is_dir)
    valid = [n for n in names if all(c.islower() or c.isdigit() or c == "_" for c in n)]
    return [n for n in valid if lake.exists(join_path("tables", n, "_delta_log"))]


# ----------------------------------------------------------------------------------------- one table


def maintain_table(lake: Lake, name: str, settings: MaintenanceSettings = MaintenanceSettings()) -> TableReport:
    """Compact, VACUUM and checkpoint ``tables/<name>`` (a dry run changes nothing and reports what
    VACUUM would remove and which files compaction would consider)."""
    report = TableReport(name)
    _compact(lake, name, settings, report)
    _vacuum(lake, name, settings, report)
    if not settings.dry_run:
        _checkpoint(lake, name, report)
    report.version = _open(lake, name).version()
    if settings.dry_run:
        log.info(
            "%s (dry run): would remove %d file(s) (%d bytes); %d small file(s) to compact",
            name,
            report.files_removed,
            report.bytes_removed,
            report.files_compacted,
        )
    else:
        log.info(
            "%s: removed %d file(s) (%d bytes), compacted %d small file(s) into %d, checkpoint at version %s, "
            "%d expired log file(s) removed",
            name,
            report.files_removed,
            report.bytes_removed,
            report.files_compacted,
            report.files_written,
            report.checkpoint_version,
            report.log_files_removed,
        )
    for path in report.removed:
        log.info("%s %s", "would remove" if settings.dry_run else "removed", path)
    return report


def _open(lake: Lake, name: str) -> DeltaTable:
    return DeltaTable(lake.table_uri(name), storage_options=lake.storage_options)


def _compact(lake: Lake, name: str, settings: MaintenanceSettings, report: TableReport) -> None:
    """Compaction commits with delta-rs' conflict checks: a concurrent landing that removed a file being
    compacted (a replace, a MERGE rewrite) makes this commit fail instead of bringing the removed rows
    back, and it is planned again on the new snapshot. A landing that commits after it fails its own
    commit (landings commit with retries off) and recomputes on the compacted files."""
    if settings.dry_run:
        report.files_compacted = _compaction_candidates(_open(lake, name), settings.target_file_bytes)
        return
    for attempt in range(1, COMPACT_ATTEMPTS + 1):
        report.compaction_attempts = attempt
        table = _open(lake, name)
        try:
            metrics = table.optimize.compact(
                target_size=settings.target_file_bytes,
                max_concurrent_tasks=1,  # bounded memory beside landings on the same worker
                writer_properties=_WRITER,
                commit_properties=CommitProperties(custom_metadata={"sp_reports.maintenance": "compact"}),
            )
        except CommitFailedError as e:
            if attempt == COMPACT_ATTEMPTS:
                raise
            delay = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            # The failed attempt's files are unreferenced: VACUUM removes them once past the retention.
            log.warning(
                "%s: compaction conflicted with a concurrent commit (attempt %d/%d), retrying in %.1fs: %s",
                name,
                attempt,
                COMPACT_ATTEMPTS,
                delay,
                e,
            )
            time.sleep(delay)
            continue
        report.files_compacted = int(metrics.get("numFilesRemoved", 0))
        report.files_written = int(metrics.get("numFilesAdded", 0))
        return


def _compaction_candidates(table: DeltaTable, target_size: int) -> int:
    """Files under the target size in partitions holding more than one of them (what compaction bins)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    partitions = [c for c in actions.column_names if c.startswith("partition.")]
    small: dict[tuple, int] = {}
    for row in actions.select(["size_bytes", *partitions]).to_pylist():
        if row["size_bytes"] < target_size:
            key = tuple(str(row[c]) for c in partitions)
            small[key] = small.get(key, 0) + 1
    return sum(n for n in small.values() if n > 1)


def _vacuum(lake: Lake, name: str, settings: MaintenanceSettings, report: TableReport) -> None:
    """Full mode: lite mode only removes files named by ``remove`` actions, never the data files of a
    landing that died before its commit. Full mode removes those by their modification time, and skips
    paths starting with ``.`` or ``_`` at the table root only (hidden ``.tmp`` files at the root are
    handled by ``clean_leftovers``, which also reaches those in partition directories first)."""
    table = _open(lake, name)
    root = join_path("tables", name)
    sizes = {e.path[len(root) + 1 :]: e.size for e in _walk(lake, root) if not e.is_dir}
    # delta-rs refuses a retention below the table's delta.deletedFileRetentionDuration, 7 days when the
    # table declares none; MaintenanceSettings' floor replaces that default, a declared retention still holds.
    configured = (table.metadata().configuration or {}).get(_RETENTION_PROPERTY)
    declared = _interval_hours(configured)
    removed = table.vacuum(
        retention_hours=max(settings.retention_hours, math.ceil(declared or 0)),
        dry_run=settings.dry_run,
        enforce_retention_duration=configured is not None and declared is None,  # unreadable: delta-rs decides
        full=True,
        commit_properties=CommitProperties(custom_metadata={"sp_reports.maintenance": "vacuum"}),
    )
    report.removed = sorted(f"{root}/{path}" for path in removed)
    report.files_removed = len(removed)
    report.bytes_removed = sum(sizes.get(path, 0) for path in removed)


def _interval_hours(value: str | None) -> float | None:
    """A Delta interval property (``interval 7 days``) in hours; None if absent or not understood."""
    match = re.fullmatch(r"\s*interval\s+(\d+)\s+(week|day|hour|minute|second)s?\s*", value or "", re.IGNORECASE)
    return int(match[1]) * _UNIT_HOURS[match[2].lower()] if match else None


def _checkpoint(lake: Lake, name: str, report: TableReport) -> None:
    """A checkpoint lets readers skip replaying the whole log, and lets ``cleanup_metadata`` drop the log
    files before it that are older than the table's ``delta.logRetentionDuration`` (30 days by default,
    longer than any VACUUM retention, so time travel within the retention keeps working)."""
    table = _open(lake, name)
    table.create_checkpoint()
    report.checkpoint_version = table.version()
    log_dir = join_path("tables", name, "_delta_log")
    before = {e.path for e in _walk(lake, log_dir, recursive=False) if not e.is_dir}
    table.cleanup_metadata()
    after = {e.path for e in _walk(lake, log_dir, recursive=False) if not e.is_dir}
    report.log_files_removed = len(before - after)


# ----------------------------------------------------------------------------------------- leftovers


def clean_leftovers(
    lake: Lake, settings: MaintenanceSettings = MaintenanceSettings(), *, now: datetime | None = None
) -> LeftoverReport:
    """Remove staging directories and temporary files of landings that are no longer running.

    A running parse or landing writes its files continuously, so what nobody modified for
    ``staging_max_age_hours`` belongs to no running task. A staging directory of a report whose ledger
    row is final (DONE, CANCELLED, FATAL) goes after ``final_grace_hours`` already: its landing is over.
    """
    now_ns = int((now or datetime.now(UTC)).timestamp() * 10**9)
    report = LeftoverReport()
    _clean_staging(lake, settings, now_ns, report)
    _clean_tmp_files(lake, settings, now_ns, report)
    if lake.is_s3:
        _abort_uploads(lake, settings, now_ns, report)
    verb = "would remove" if settings.dry_run else "removed"
    log.info(
        "leftovers: %s %d staging dir(s) (%d files, %d bytes) and %d temporary file(s) (%d bytes)",
        verb,
        len(report.staging_dirs),
        report.staging_files,
        report.staging_bytes,
        len(report.tmp_files),
        report.tmp_bytes,
    )
    return report


def _clean_staging(lake: Lake, settings: MaintenanceSettings, now_ns: int, report: LeftoverReport) -> None:
    groups: dict[str, list[_Entry]] = {}
    for entry in _walk(lake, "staging"):
        parts = entry.path.split("/")
        if len(parts) >= 4:  # staging/<table>/<sellerId>/<reportId>[/...]
            groups.setdefault("/".join(parts[:4]), []).append(entry)
    keys = {(d.split("/")[2], d.split("/")[3]) for d in groups}
    ledger = Ledger(lake).entries(keys) if groups else {}
    emptied = set()
    for directory, entries in sorted(groups.items()):
        _, table, seller, report_id = directory.split("/")
        row = ledger.get((seller, report_id)) or {}
        final = bool(row) and row["status"] in FINAL_STATUSES and row["report_type"].lower() == table
        age = _age_hours(entries, now_ns)
        if age is None or not (age >= settings.staging_max_age_hours or (final and age >= settings.final_grace_hours)):
            continue
        if settings.dry_run:
            files = [e for e in entries if not e.is_dir]
        else:
            # Listed again just before: a task that started writing since the first listing keeps its files.
            entries = _walk(lake, directory)
            fresh = _age_hours(entries, now_ns)
            if fresh is not None and fresh < age:
                continue
            files = [e for e in entries if not e.is_dir]
            lake.delete_dir(directory)
            emptied.add(join_path("staging", table, seller))
            emptied.add(join_path("staging", table))
        report.staging_dirs.append(directory)
        report.staging_files += len(files)
        report.staging_bytes += sum(e.size for e in files)
        log.info(
            "%s staging %s: %d file(s), %d bytes, untouched for %.1f h%s",
            "would remove" if settings.dry_run else "removed",
            directory,
            len(files),
            sum(e.size for e in files),
            age,
            f" (report {row['status']} in the ledger)" if final else "",
        )
    if not lake.is_s3:
        for directory in sorted(
            emptied, key=len, reverse=True
        ):  # a local directory stays behind when its last report's goes
            try:
                os.rmdir(lake.fs_path(directory))
            except OSError:
                pass  # not empty: other reports are staged there


def _clean_tmp_files(lake: Lake, settings: MaintenanceSettings, now_ns: int, report: LeftoverReport) -> None:
    removed_dirs = tuple(d + "/" for d in report.staging_dirs)
    for entry in _walk(lake, None):
        name = entry.path.rsplit("/", 1)[-1]
        if entry.is_dir or not is_temporary_name(name) or entry.path.startswith(removed_dirs):
            continue
        age = _age_hours([entry], now_ns)
        if age is None or age < settings.staging_max_age_hours:
            continue
        if not settings.dry_run:
            lake.delete(entry.path)
        report.tmp_files.append(entry.path)
        report.tmp_bytes += entry.size
        log.info(
            "%s temporary file %s: %d bytes, untouched for %.1f h",
            "would remove" if settings.dry_run else "removed",
            entry.path,
            entry.size,
            age,
        )


def _abort_uploads(lake: Lake, settings: MaintenanceSettings, now_ns: int, report: LeftoverReport) -> None:
    """S3's temporary files: multipart uploads never completed nor aborted (a writer killed mid-file).
    Their parts are billed and invisible to listings until aborted."""
    bucket, _, prefix = _root(lake).partition("/")
    prefix = f"{prefix}/" if prefix else ""
    client = lake._s3()
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            key, upload_id = upload["Key"], upload["UploadId"]
            age = (now_ns - int(upload["Initiated"].timestamp() * 10**9)) / _HOUR_NS
            if not key.startswith(prefix) or age < settings.staging_max_age_hours:
                continue
            size = sum(
                part["Size"]
                for parts in client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id)
                for part in parts.get("Parts", [])
            )
            if not settings.dry_run:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            path = key[len(prefix) :]
            report.tmp_files.append(f"{path} (multipart upload {upload_id})")
            report.tmp_bytes += size
            log.info(
                "%s multipart upload of %s: %d bytes in parts, started %.1f h ago",
                "would abort" if settings.dry_run else "aborted",
                path,
                size,
                age,
            )


# ----------------------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class _Entry:
    path: str  # lake-relative
    size: int
    mtime_ns: int | None  # None for S3 "directories" (key prefixes)
    is_dir: bool


def _root(lake: Lake) -> str:
    """The lake root within ``lake.filesystem`` (``bucket/prefix`` or an absolute path)."""
    return lake.fs_path(".root")[: -len("/.root")]


def _walk(lake: Lake, prefix: str | None, *, recursive: bool = True) -> list[_Entry]:
    """Every file and directory under ``prefix`` (None: the whole lake), hidden ones included."""
    base = lake.fs_path(prefix) if prefix else _root(lake)
    cut = len(base) - len(prefix) if prefix else len(base) + 1
    selector = pafs.FileSelector(base, recursive=recursive, allow_not_found=True)
    return [
        _Entry(info.path[cut:], info.size or 0, info.mtime_ns, info.type == pafs.FileType.Directory)
        for info in lake.filesystem.get_file_info(selector)
        if info.type in (pafs.FileType.File, pafs.FileType.Directory)
    ]


def _age_hours(entries: Iterable[_Entry], now_ns: int) -> float | None:
    """Hours since the newest modification among ``entries`` (a directory's own time changes when a
    file is created or removed in it)."""
    newest = max((e.mtime_ns for e in entries if e.mtime_ns is not None), default=None)
    return None if newest is None else (now_ns - newest) / _HOUR_NS
