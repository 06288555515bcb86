"""One process of a fleet, for the quota store tests (tests/quota_fleet.py): ``python quota_worker.py '<json>'``.

It sets up, prints ``ready``, waits for a line on stdin (so every process of the fleet starts at once), does its
work and prints one JSON line. The quota store is Redis (``redis_url`` and ``prefix``), files (``quota_dir``) or
none (the process's own buckets). Modes:

* ``reserve``: take ``count`` tokens (concurrently) from a store's bucket (``key``, ``rate``, ``burst``), sleeping
  each wait; prints the wall-clock time it started and the time each token was used.
* ``fetch``: download ``document_ids`` one after another from the emulator, as a worker's tasks would; prints the
  number of documents fetched.
* ``reserve_quota``: reserve ``count`` createReport tokens through the client, as tasks about to send would; those
  due within ``defer_over`` seconds it uses itself, at their due times (``quota_reserved=True``), the others it
  hands over, as tasks that defer would; prints every wall-clock due time, the handed-over ones and the number of
  reports it created.
* ``create``: its stdin line is a JSON list of due times; at each one, create a report with
  ``quota_reserved=True``, as a task back from its deferral would; prints the number of reports created.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from typing import Any

from sp_reports.client import AsyncSellingPartnerClient, Credentials, FileBuckets, QuotaStore, SharedBuckets


async def go() -> str:
    print("ready", flush=True)
    return await asyncio.to_thread(sys.stdin.readline)


def quota_store(job: dict[str, Any]) -> QuotaStore | None:
    if job.get("redis_url"):
        return SharedBuckets(job["redis_url"], prefix=job["prefix"])
    return FileBuckets(job["quota_dir"]) if job.get("quota_dir") else None


def client(job: dict[str, Any], store: QuotaStore | None) -> AsyncSellingPartnerClient:
    return AsyncSellingPartnerClient(
        Credentials(**job["credentials"]), endpoint=job["endpoint"], lwa_endpoint=job["lwa_endpoint"],
        scale_quotas=job["speed"], max_attempts=20, quota_store=store,
    )  # fmt: skip


async def reserve(job: dict[str, Any], store: QuotaStore | None) -> dict[str, Any]:
    assert store is not None
    key = tuple(job["key"])

    async def one() -> float:
        reserved = await store.reserve(key, job["rate"], job["burst"])
        assert reserved is not None, "the store did not answer"
        await asyncio.sleep(reserved[0])
        return time.time()

    await go()
    started = time.time()
    used = await asyncio.gather(*(one() for _ in range(job["count"])))
    return {"started": started, "used": list(used)}


async def fetch(job: dict[str, Any], store: QuotaStore | None) -> int:
    async with client(job, store) as sp:
        await go()
        for document_id in job["document_ids"]:
            await sp.download_document(document_id, io.BytesIO())
    return len(job["document_ids"])


async def reserve_quota(job: dict[str, Any], store: QuotaStore | None) -> dict[str, Any]:
    async with client(job, store) as sp:
        await go()
        due = []
        for _ in range(job["count"]):
            wait = await sp.reserve_quota("createReport")
            due.append(time.time() + wait)
        now = [t for t in due if t - time.time() <= job["defer_over"]]
        created = await create_at(sp, now)
    return {"due": due, "deferred": [t for t in due if t not in now], "created": created}


async def create(job: dict[str, Any], store: QuotaStore | None) -> int:
    async with client(job, store) as sp:
        return await create_at(sp, json.loads(await go()))


async def create_at(sp: AsyncSellingPartnerClient, due_times: list[float]) -> int:
    for due in sorted(due_times):
        await asyncio.sleep(max(0.0, due - time.time()))
        await sp.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"], quota_reserved=True)
    return len(due_times)


MODES = {"reserve": reserve, "fetch": fetch, "reserve_quota": reserve_quota, "create": create}


async def run(job: dict[str, Any]) -> Any:
    store = quota_store(job)
    try:
        return await MODES[job["mode"]](job, store)
    finally:
        if store is not None:
            await store.aclose_loop()


def main() -> None:
    job = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(run(job))), flush=True)


if __name__ == "__main__":
    main()
