"""SellingPartnerClient: the async client behind plain method calls, for sync code (Airflow operators)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .reports import AsyncSellingPartnerClient

T = TypeVar("T")


def _sync(method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    # functools.wraps keeps the async method's signature and docstring for help() and IDEs,
    # so the two faces cannot drift apart.
    @functools.wraps(method)
    def call(self: SellingPartnerClient, *args: Any, **kwargs: Any) -> T:
        return self._run(getattr(self._client, method.__name__)(*args, **kwargs))

    return call


class SellingPartnerClient:
    """Same constructor and methods as ``AsyncSellingPartnerClient``, but blocking.

    Each instance runs the async client on a private event loop, driven in the calling thread;
    calls from several threads are serialised. It refuses to run inside a running event loop
    (blocking there would stall everything else on that loop): use ``AsyncSellingPartnerClient``
    in async code. Use it as a context manager or call ``close()``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._mutex = threading.Lock()
        self._closed = False
        try:
            self._client = AsyncSellingPartnerClient(*args, **kwargs)
        except BaseException:
            self._loop.close()
            raise

    __init__.__signature__ = inspect.signature(AsyncSellingPartnerClient.__init__)  # type: ignore[attr-defined]  # read by inspect, unknown to mypy

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "SellingPartnerClient is the blocking client and was called from a running event loop; "
                "use AsyncSellingPartnerClient (await its methods) in async code"
            )
        with self._mutex:
            if self._closed:
                coro.close()
                raise RuntimeError("this SellingPartnerClient is closed")
            return self._loop.run_until_complete(coro)

    def __repr__(self) -> str:
        return repr(self._client).replace("AsyncSellingPartnerClient", type(self).__name__, 1)

    def __enter__(self) -> SellingPartnerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._run(self._client.aclose())
        store = self._client.quota_store
        if store is not None:  # the loop is this client's own: its store's connections go with it
            self._run(store.aclose_loop())
        with self._mutex:
            self._closed = True
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    @property
    def endpoint(self) -> str:
        return self._client.endpoint

    create_report = _sync(AsyncSellingPartnerClient.create_report)
    get_report = _sync(AsyncSellingPartnerClient.get_report)
    get_reports = _sync(AsyncSellingPartnerClient.get_reports)
    cancel_report = _sync(AsyncSellingPartnerClient.cancel_report)
    cancel_if_in_queue = _sync(AsyncSellingPartnerClient.cancel_if_in_queue)
    get_report_schedules = _sync(AsyncSellingPartnerClient.get_report_schedules)
    create_report_schedule = _sync(AsyncSellingPartnerClient.create_report_schedule)
    get_report_schedule = _sync(AsyncSellingPartnerClient.get_report_schedule)
    cancel_report_schedule = _sync(AsyncSellingPartnerClient.cancel_report_schedule)
    get_report_document = _sync(AsyncSellingPartnerClient.get_report_document)
    download_document = _sync(AsyncSellingPartnerClient.download_document)
    create_restricted_data_token = _sync(AsyncSellingPartnerClient.create_restricted_data_token)
    prefetch_restricted_documents = _sync(AsyncSellingPartnerClient.prefetch_restricted_documents)
    create_destination = _sync(AsyncSellingPartnerClient.create_destination)
    get_destinations = _sync(AsyncSellingPartnerClient.get_destinations)
    delete_destination = _sync(AsyncSellingPartnerClient.delete_destination)
    create_subscription = _sync(AsyncSellingPartnerClient.create_subscription)
    get_subscription = _sync(AsyncSellingPartnerClient.get_subscription)
    delete_subscription = _sync(AsyncSellingPartnerClient.delete_subscription)
    get_grantless_access_token = _sync(AsyncSellingPartnerClient.get_grantless_access_token)
    reserve_quota = _sync(AsyncSellingPartnerClient.reserve_quota)
