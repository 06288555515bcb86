"""``sp-reports lake migrate``: a lake of the single-seller layout -> the seller-keyed layout.

Before, a report was its reportId alone: no ``selling_partner_id`` column in the ledger or any table,
and ``raw/<type>/<reportId>/``, ``staging/<table>/<reportId>/``, ``manifests/<table>/<reportId>.json``.
A reportId is unique only per seller, so every key now starts with the seller; the code refuses an
old lake (``LegacyLakeError``) until it is migrated, naming the one seller all its reports are of:

* the ledger and every Delta table get a ``selling_partner_id`` column (the first column) filled with
  that id: one commit per table (an overwrite of the table's rows with the new schema; the partitioning
  and the columns' Amazon header metadata are kept; the replaced files go with the next VACUUM). The
  ledger's manifest paths move with the manifests.
* ``raw/<type>/<reportId>/...``, ``staging/<table>/<reportId>/...`` and ``manifests/<table>/<reportId>.json``
  move under the seller (``raw/<type>/<seller>/<reportId>/...``, ...); raw sidecars and manifests record
  the seller and their new paths.

Idempotent: a table that has the column is left alone, and only paths whose segment after the type or
table is not seller-shaped (Amazon's reportIds are digits, replays' ``replay-<hex>``) are moved, so a
second run (or one after a crash) finishes what is left and changes nothing else. Run it with the DAGs
paused: it rewrites every table.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake
from pyarrow import fs as pafs

from sp_reports.columns import SELLER_COLUMN
from sp_reports.columns import selling_partner_id as valid_seller

from .ledger import LEDGER_TABLE
from .ledger import SCHEMA as LEDGER_SCHEMA
from .paths import join_path
from .storage import Lake

log = logging.getLogger(__name__)

MIGRATION_METADATA = "sp_reports.migration"
_SELLER_SHAPED = re.compile(r"[A-Z0-9]+")


@dataclass
class MigrationReport:
    selling_partner_id: str
    tables_migrated: list[str] = field(default_factory=list)
    tables_already: list[str] = field(default_factory=list)
    rows: int = 0
    files_moved: int = 0


def legacy_tables(lake: Lake) -> list[str]:
    """The Delta tables of the lake (ledger included) without a ``selling_partner_id`` column."""
    return [name for name in table_names(lake) if SELLER_COLUMN not in _schema(lake, name).names]


def table_names(lake: Lake) -> list[str]:
    """Every Delta table under ``tables/`` (a directory with a ``_delta_log``)."""
    selector = pafs.FileSelector(lake.fs_path("tables"), recursive=False, allow_not_found=True)
    names = []
    for info in lake.filesystem.get_file_info(selector):
        if info.type == pafs.FileType.Directory:
            log_dir = lake.filesystem.get_file_info(f"{info.path}/_delta_log")
            if log_dir.type == pafs.FileType.Directory or lake.list(join_path("tables", info.base_name, "_delta_log")):
                names.append(info.base_name)
    return sorted(names)


def migrate_lake(lake: Lake, selling_partner_id: str) -> MigrationReport:
    """Migrate ``lake`` to the seller-keyed layout, every report of it being ``selling_partner_id``'s."""
    seller = valid_seller(selling_partner_id)
    report = MigrationReport(seller)
    # Files first: the tables' columns are what the code checks, so a crash leaves a lake that is still
    # refused until a second run completes it.
    report.files_moved += _move_raw(lake, seller)
    report.files_moved += _move_manifests(lake, seller)
    report.files_moved += _move_under_seller(lake, "staging", seller)
    for name in table_names(lake):
        rows = _migrate_table(lake, name, seller)
        if rows is None:
            report.tables_already.append(name)
        else:
            report.tables_migrated.append(name)
            report.rows += rows
    log.info(
        "Migrated the lake %s to seller %s: %d table(s) (%d rows), %d already migrated, %d file(s) moved",
        lake.root,
        seller,
        len(report.tables_migrated),
        report.rows,
        len(report.tables_already),
        report.files_moved,
    )
    return report


# ----------------------------------------------------------------------------------------- tables


def _schema(lake: Lake, name: str) -> pa.Schema:
    table = DeltaTable(lake.table_uri(name), storage_options=lake.storage_options)
    return pa.schema(table.schema().to_arrow())


def _migrate_table(lake: Lake, name: str, seller: str) -> int | None:
    """Add the seller column to one table in one commit; None if it has it already."""
    uri = lake.table_uri(name)
    table = DeltaTable(uri, storage_options=lake.storage_options)
    schema = pa.schema(table.schema().to_arrow())
    if SELLER_COLUMN in schema.names:
        return None
    new = pa.schema([pa.field(SELLER_COLUMN, pa.string()), *schema])
    target = LEDGER_SCHEMA if name == LEDGER_TABLE else new
    root = pafs.SubTreeFileSystem(lake.fs_path(join_path("tables", name)), lake.filesystem)
    dataset = table.to_pyarrow_dataset(filesystem=root)
    rows = [0]

    def batches():
        for batch in dataset.to_batches(columns=schema.names):
            rows[0] += batch.num_rows
            arrays = {n: batch.column(n) for n in batch.schema.names}
            arrays[SELLER_COLUMN] = pa.array([seller] * batch.num_rows, pa.string())
            if name == LEDGER_TABLE and "manifest" in arrays:
                arrays["manifest"] = pc.replace_substring_regex(
                    arrays["manifest"], r"^manifests/([^/]+)/([^/]+\.json)$", rf"manifests/\1/{seller}/\2"
                )
            yield pa.RecordBatch.from_arrays(
                [arrays[f.name] if f.name in arrays else pa.nulls(batch.num_rows, f.type) for f in target],
                schema=target,
            ).cast(target)

    write_deltalake(
        table,
        pa.RecordBatchReader.from_batches(target, batches()),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=table.metadata().partition_columns or None,
        storage_options=lake.storage_options,
        commit_properties=CommitProperties(
            custom_metadata={MIGRATION_METADATA: "selling_partner_id", "sp_reports.selling_partner_id": seller}
        ),
    )
    log.info("%s: added selling_partner_id = %s to %d rows", name, seller, rows[0])
    return rows[0]


# ----------------------------------------------------------------------------------------- files


def _old(segment: str) -> bool:
    """A path segment where the old layout has a reportId and the new one a seller id."""
    return not (_SELLER_SHAPED.fullmatch(segment) and not segment.isdigit())


def _move(lake: Lake, source: str, target: str) -> None:
    lake.copy(source, target)
    lake.delete(source)


def _move_raw(lake: Lake, seller: str) -> int:
    """``raw/<type>/<reportId>/<doc>.bin`` (+ ``.json`` sidecar) -> ``raw/<type>/<seller>/<reportId>/...``."""
    moved = 0
    for path in lake.list("raw", hidden=True):
        parts = path.split("/")
        if len(parts) < 4 or not _old(parts[2]):
            continue
        target = join_path(*parts[:2], seller, *parts[2:])
        if path.endswith(".bin.json") and not parts[-1].startswith("."):
            sidecar = lake.read_json(path)
            sidecar.update(selling_partner_id=seller, raw_path=target[: -len(".json")])
            lake.write_json(target, sidecar)
            lake.delete(path)
        else:
            _move(lake, path, target)
        moved += 1
    _remove_empty_dirs(lake, "raw")
    return moved


def _move_manifests(lake: Lake, seller: str) -> int:
    """``manifests/<table>/<reportId>.json`` -> ``manifests/<table>/<seller>/<reportId>.json``."""
    moved = 0
    for path in lake.list("manifests", hidden=True):
        parts = path.split("/")
        if len(parts) != 3:
            continue
        target = join_path(parts[0], parts[1], seller, parts[2])
        if parts[2].endswith(".json") and not parts[2].startswith("."):
            manifest = lake.read_json(path)
            raw_path = manifest.get("raw_path") or ""
            raw = raw_path.split("/")
            if len(raw) == 4 and raw[0] == "raw":  # raw/<type>/<reportId>/<doc>.bin
                manifest["raw_path"] = join_path(raw[0], raw[1], seller, *raw[2:])
            manifest = {"selling_partner_id": seller, **manifest, "manifest_path": target}
            lake.write_json(target, manifest)
            lake.delete(path)
        else:
            _move(lake, path, target)
        moved += 1
    _remove_empty_dirs(lake, "manifests")
    return moved


def _move_under_seller(lake: Lake, zone: str, seller: str) -> int:
    """``<zone>/<table>/<reportId>/...`` -> ``<zone>/<table>/<seller>/<reportId>/...``."""
    moved = 0
    for path in lake.list(zone, hidden=True):
        parts = path.split("/")
        if len(parts) < 4 or not _old(parts[2]):
            continue
        _move(lake, path, join_path(*parts[:2], seller, *parts[2:]))
        moved += 1
    _remove_empty_dirs(lake, zone)
    return moved


def _remove_empty_dirs(lake: Lake, zone: str) -> None:
    """Local lakes keep a directory when its last file moves away (S3 has no directories)."""
    if lake.is_s3:
        return
    top = lake.fs_path(zone)
    for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
        if directory != top:
            try:
                os.rmdir(directory)
            except OSError:
                pass  # not empty
