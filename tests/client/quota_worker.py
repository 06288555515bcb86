"""One process of a fleet, for tests/client/test_shared_quota.py: ``python quota_worker.py '<json>'``.

It sets up, prints ``ready``, waits for a line on stdin (so every process of the fleet starts at once), does its
work and prints one JSON line. Modes:

* ``reserve``: take ``count`` tokens (concurrently) from a ``SharedBuckets`` bucket, sleeping each wait; prints
  the wall-clock time it started and the time each token was used.
* ``fetch``: download ``document_ids`` one after another from the emulator, as a worker's tasks would, with a
  shared quota store (``redis_url``) or without (None); prints the number of documents fetched.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from typing import Any

from sp_reports.client import AsyncSellingPartnerClient, Credentials, SharedBuckets


async def go() -> None:
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)


async def reserve(job: dict[str, Any]) -> dict[str, Any]:
    store = SharedBuckets(job["redis_url"], prefix=job["prefix"])
    key = tuple(job["key"])

    async def one() -> float:
        reserved = await store.reserve(key, job["rate"], job["burst"])
        assert reserved is not None, "Redis did not answer"
        await asyncio.sleep(reserved[0])
        return time.time()

    await go()
    started = time.time()
    used = await asyncio.gather(*(one() for _ in range(job["count"])))
    await store.aclose_loop()
    return {"started": started, "used": list(used)}


async def fetch(job: dict[str, Any]) -> int:
    store = SharedBuckets(job["redis_url"], prefix=job["prefix"]) if job["redis_url"] else None
    async with AsyncSellingPartnerClient(
        Credentials(**job["credentials"]), endpoint=job["endpoint"], lwa_endpoint=job["lwa_endpoint"],
        scale_quotas=job["speed"], max_attempts=20, quota_store=store,
    ) as client:  # fmt: skip
        await go()
        for document_id in job["document_ids"]:
            await client.download_document(document_id, io.BytesIO())
    if store is not None:
        await store.aclose_loop()
    return len(job["document_ids"])


def main() -> None:
    job = json.loads(sys.argv[1])
    result = asyncio.run(reserve(job) if job["mode"] == "reserve" else fetch(job))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
