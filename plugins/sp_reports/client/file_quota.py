"""Quota buckets shared by every process of one machine, in files: ``airflow standalone`` and other single-host
deployments without Redis.

Each task of a LocalExecutor is its own process, so buckets kept in memory let a hundred mapped tasks fire a
hundred createReports at once. ``FileBuckets`` keeps each bucket in a small file of its own in one folder (the
name hashes the in-process registry's key, as ``SharedBuckets`` does in Redis) and updates it under an exclusive
``flock``, with the arithmetic of ``shared_quota.RESERVE``: a reservation takes a token at once, letting the
balance go negative, and returns how long to wait; Amazon's stated rate is stored in the bucket; a 429 drains
it; a bucket left alone until it would be full again (plus a margin) is forgotten, stated rate included.

Times are wall-clock seconds (``time.time``), the only clock every process (and a process after a restart) reads
alike; a clock stepping back counts as no time elapsed.

A file operation is a few syscalls, but ``flock`` can wait for another process, so it runs in a thread: an event
loop holding a thousand waits (the triggerer) never stalls on it. The lock is tried without blocking until
``lock_timeout``. Each state is written as one fixed-size ``pwrite`` at offset 0, never truncated first, so a
process killed mid-update leaves the old state or the new one, not an empty file.

Files are helpers, never a dependency of a task: a folder or file that cannot be used (permissions, disk full,
unreadable state) makes every method return ``None``/``False``, the caller uses its in-process bucket, one
WARNING names the folder, and the files are tried again after ``cooldown`` seconds. An unreadable state is
overwritten with an empty bucket (the tokens it held are unknown: none is the safe guess).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from .quota_store import BucketActions, Outage, bucket_name

# Every state fits (four floats in JSON); JSON ignores the trailing spaces that pad it.
RECORD_SIZE = 160
# An idle bucket is forgotten this long after it would be full again (the Redis key's expiry margin).
EXPIRY_MARGIN = 5.0
ACTIONS = ("reserve", "refund", "drain", "set_rate")


class UnreadableBucketError(ValueError):
    """A bucket file holds something other than a bucket state."""


class FileBuckets(BucketActions):
    """Token buckets in files under ``directory``, shared by every process of the machine that names it.

    ``reserve``/``refund``/``drain``/``set_rate`` take the in-process registry's key and the bucket's default
    ``rate`` (requests per second) and ``burst``, like ``SharedBuckets``. A ``None`` or ``False`` answer means
    the files were not usable: use the process's own bucket for this call.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        lock_timeout: float = 2.0,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lock_timeout <= 0 or cooldown < 0:
            raise ValueError("lock_timeout must be > 0 and cooldown >= 0")
        self.directory = Path(directory)
        self.lock_timeout = lock_timeout
        self.clock = clock
        self._paths: dict[Hashable, str] = {}  # hashing a key and building its path cost more than the file work
        self._outage = Outage(f"the quota folder {str(self.directory)!r}", "this machine's processes", cooldown,
                              time.monotonic)  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.directory)!r})"

    @property
    def available(self) -> bool:
        """False while a failure's cooldown lasts."""
        return self._outage.available

    def bucket_path(self, key: Hashable) -> Path:
        """``{operation}-{sha256 of the whole key}.json``: the operation readable, nothing secret spelled out."""
        return self.directory / (bucket_name(key).replace(":", "-") + ".json")

    async def aclose_loop(self) -> None:
        """Nothing to release: no file stays open between operations."""

    def update(self, action: str, key: Hashable, rate: float, burst: int) -> tuple[float, float]:
        """One locked read-modify-write of ``key``'s file (blocking): ``(wait, the bucket's rate)``. Raises
        ``OSError``, ``TimeoutError`` (the lock) or ``UnreadableBucketError``."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = str(self.bucket_path(key))
        fd = _open(path)
        try:
            self._lock(fd, path)
            raw = os.pread(fd, RECORD_SIZE + 1, 0)
            now = self.clock()
            try:
                state = _parse(raw)
            except UnreadableBucketError:
                os.pwrite(fd, _record(step(None, "drain", now, float(rate), burst)[0]), 0)
                os.ftruncate(fd, RECORD_SIZE)  # whatever longer text was there goes too
                raise
            new, wait = step(state, action, now, float(rate), burst)
            os.pwrite(fd, _record(new), 0)
            return wait, new["rate"]
        finally:
            os.close(fd)  # releases the lock

    async def _run(self, action: str, key: Hashable, rate: float, burst: int) -> tuple[float, float] | None:
        if not self.available:
            return None
        try:
            answer = await asyncio.to_thread(self.update, action, key, rate, burst)
        except (OSError, UnreadableBucketError) as exc:  # TimeoutError is an OSError
            self._outage.failed(exc)
            return None
        self._outage.succeeded()
        return answer

    def _lock(self, fd: int, path: str) -> None:
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{path} stayed locked for {self.lock_timeout:g}s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.005)


def step(state: dict[str, float] | None, action: str, now: float, given_rate: float,
         burst: int) -> tuple[dict[str, float], float]:  # fmt: skip
    """``shared_quota.RESERVE`` in Python: the bucket after ``action`` at ``now``, and the wait (reserve only).
    ``state`` None (or expired): a full bucket at ``given_rate``; set_rate's new rate is ``given_rate``."""
    if state is not None and now >= state["expires"]:
        state = None
    rate = given_rate if state is None else state["rate"]
    tokens = float(burst) if state is None else state["tokens"]
    updated = now if state is None else state["ts"]
    tokens = min(burst, tokens + max(0.0, now - updated) * rate)
    wait = 0.0
    if action == "reserve":
        tokens -= 1
        if tokens < 0:
            wait = -tokens / rate
    elif action == "refund":
        tokens = min(burst, tokens + 1)
    elif action == "drain":
        tokens = min(tokens, 0.0)
    elif action == "set_rate":
        rate = given_rate
    expires = now + math.ceil((burst - tokens) / rate * 1000) / 1000 + EXPIRY_MARGIN
    return {"tokens": tokens, "ts": now, "rate": rate, "expires": expires}, wait


def _open(path: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:  # the first bucket of a new folder
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o666)


def _parse(raw: bytes) -> dict[str, float] | None:
    if not raw.strip():
        return None  # a new file
    try:
        state: Any = json.loads(raw)
        values = {name: float(state[name]) for name in ("tokens", "ts", "rate", "expires")}
    except (ValueError, TypeError, KeyError) as exc:
        raise UnreadableBucketError(f"unreadable bucket state {raw[:40]!r}") from exc
    if not all(math.isfinite(v) for v in values.values()) or values["rate"] <= 0:
        raise UnreadableBucketError(f"impossible bucket state {raw[:40]!r}")
    return values


def _record(state: dict[str, float]) -> bytes:
    text = json.dumps(state, separators=(",", ":")).encode()
    if len(text) > RECORD_SIZE:
        raise UnreadableBucketError(f"bucket state too long: {text!r}")
    return text.ljust(RECORD_SIZE)


_STORES: dict[Path, FileBuckets] = {}
_STORES_MUTEX = threading.Lock()


def file_buckets(directory: str | os.PathLike[str] | None) -> FileBuckets | None:
    """The process's one ``FileBuckets`` for ``directory`` (None: no file store), so every client of the process
    shares its fallback state and its single warning."""
    if directory is None:
        return None
    path = Path(directory)
    with _STORES_MUTEX:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = FileBuckets(path)
        return store
