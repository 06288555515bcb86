"""Worker threads for the parse and land steps: pyarrow, numpy and zlib release the GIL while they
work, so a few threads use both cores of a small worker.

* ``in_background``: a producer a few items ahead of its consumer (a pipeline stage).
* ``ordered_map``: a function over independent items in several threads, results in input order.

Both re-raise a worker's exception in the consumer, and a consumer that stops early stops the workers.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def in_background(
    produce: Callable[[], Generator[Any, None, None]], depth: int = 1, name: str = "sp-reports-land"
) -> Iterator[Any]:
    """Iterate ``produce()`` in a worker thread, at most ``depth`` items ahead of the consumer; the
    worker's exceptions are re-raised in the consumer, and a consumer that stops early stops the
    worker (it is joined before this generator returns)."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        produced = produce()
        try:
            for item in produced:
                if not put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(_Failure(e))
        else:
            put(_DONE)
        finally:
            produced.close()  # a nested in_background stops its own worker

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def ordered_map(
    function: Callable[[T], R], items: Iterable[T], *, workers: int = 2, name: str = "sp-reports-map"
) -> Iterator[R]:
    """``function(item)`` for every item, computed in ``workers`` threads, yielded in the items' order.

    At most ``workers + 1`` results wait or are computed at a time (bounded memory); ``items`` is
    iterated in the consumer's thread. The first exception (in input order) is re-raised; the items
    not started yet are then dropped, and the running ones finish before this generator returns."""
    pending: collections.deque[Future] = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
