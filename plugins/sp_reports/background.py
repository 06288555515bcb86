"""A worker thread for the parse and land steps: pyarrow, numpy and zlib release the GIL while they
work, so a pipeline of threads (each stage a few items ahead of the next) uses both cores of a small
worker."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def in_background(produce: Callable[[], Iterator[Any]], depth: int = 1, name: str = "sp-reports-land") -> Iterator[Any]:
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
