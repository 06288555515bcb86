"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

# Amazon's official models and schemas (Apache-2.0), the contract the emulator and client are tested against.
SPAPI_MODELS = Path(__file__).resolve().parent / "spapi-models"

EMULATOR_CREDENTIALS = {
    "client_id": "emulator-client-id",
    "client_secret": "emulator-client-secret",
    "refresh_token": "Atzr|emulator-refresh-token",
}


# The emulator's default seller (sp_reports.emulator.config): what a connection without seller options serves.
EMULATOR_SELLER = "A3EMULATORSELLER"


def connection_json(emu, **extra) -> str:
    return json.dumps(
        {
            "conn_type": "selling_partner",
            "login": EMULATOR_CREDENTIALS["client_id"],
            "password": EMULATOR_CREDENTIALS["client_secret"],
            "extra": {
                "selling_partner_id": EMULATOR_SELLER,
                "refresh_token": EMULATOR_CREDENTIALS["refresh_token"],
                "region": "NA",
                "endpoint": emu.base_url,
                "lwa_endpoint": emu.lwa_url,
                "marketplace_ids": "ATVPDKIKX0DER",
                "selling_partner_id": "A3EMULATORSELLER",  # the emulator's seller (its notifications' sellerId)
                **extra,
            },
        }
    )




class MemoryTaskStateStore:
    """Stands in for Airflow's ``task_state_store`` (same get/set surface) in operator unit tests."""

    def __init__(self) -> None:
        self.values: dict = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, *, retention=None):
        self.values[key] = value

    def delete(self, key):
        self.values.pop(key, None)


def rebuilt(trigger):
    """What the triggerer does with a trigger: its kwargs go through JSON in the database, then the
    class is rebuilt from its path."""
    from airflow.sdk.module_loading import import_string
    from airflow.serialization.serialized_objects import BaseSerialization

    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(BaseSerialization.serialize(kwargs)))  # datetimes too, as the database keeps them
    return import_string(classpath)(**BaseSerialization.deserialize(stored))


async def first_event(trigger, timeout: float = 30.0) -> dict:
    """A trigger's first event payload, then its generator closed, as the triggerer closes it."""
    events = trigger.run()
    try:
        return (await asyncio.wait_for(anext(events), timeout)).payload
    finally:
        await events.aclose()


def land_one_table(lake, table_name: str, files: list[str], *, report_id: str, selling_partner_id: str, partition_by=None):
    """One table's landing, no natural keys and no quarantine: the landing's single-table core, which
    ``land_tables`` runs for each table of a document."""
    import sp_reports.lake.delta as delta
    from sp_reports.lake import LandResult, TableLanding

    landed = delta._land_table(
        lake, table_name, files, report_id=report_id, selling_partner_id=selling_partner_id, key_columns=(), partition_by=partition_by or delta.DEFAULT_PARTITION_BY,
        headers=delta._staged_source_columns(lake, files), document_columns=None, max_attempts=delta.MAX_ATTEMPTS,
        spill_dir=None, attempts=delta._Attempts(lake, table_name, selling_partner_id, report_id, delta._staging_key({"": files}, [])),
    )
    delta._delete_staging(lake, list(files) + landed.markers)
    landing = landed.landing or TableLanding(table_name, lake.table_uri(table_name), 0, None)
    return LandResult(tables={"": landing}, columns_added=landed.columns_added, columns_missing=landed.columns_missing)


def run_deferred(op, context, on_defer=None) -> dict:
    """Play every deferral as Airflow would: execute -> TaskDeferred -> trigger event -> the resumed method, which
    may defer again. ``on_defer(deferred)`` sees each ``TaskDeferred`` before its trigger runs."""
    import asyncio

    from airflow.sdk.exceptions import TaskDeferred

    resume = op.execute
    args: tuple = (context,)
    while True:
        try:
            return resume(*args)
        except TaskDeferred as deferred:
            if on_defer is not None:
                on_defer(deferred)
            event = asyncio.run(first_event(rebuilt(deferred.trigger), timeout=120.0))
            resume, args = getattr(op, deferred.method_name), (context, event)