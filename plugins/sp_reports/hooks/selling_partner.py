"""Airflow hook for the Amazon Selling Partner API (the ``selling_partner`` connection type)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from sp_reports.accounts import Account, AccountError, account_from_connection
from sp_reports.client import (
    DEFAULT_LWA_ENDPOINT,
    REGION_ENDPOINTS,
    AsyncSellingPartnerClient,
    Credentials,
    QuotaStore,
    SellingPartnerClient,
    SellingPartnerError,
    file_buckets,
    shared_buckets,
)
from sp_reports.settings import settings


class SellingPartnerHook(BaseHook):
    """Builds SP-API clients from an Airflow connection.

    Connection: login = LWA client id, password = LWA client secret; extra: ``selling_partner_id`` (the seller),
    ``refresh_token`` (the seller's authorisation for ``region``), ``region`` (NA/EU/FE), ``marketplace_ids``
    (the account's default marketplaces, all in that region), ``endpoint`` (override), ``lwa_endpoint``
    (override). One connection is one account (``sp_reports.accounts``).
    """

    conn_name_attr = "selling_partner_conn_id"
    default_conn_name = "selling_partner_default"
    conn_type = "selling_partner"
    hook_name = "Amazon Selling Partner API"

    def __init__(self, selling_partner_conn_id: str = default_conn_name, **client_options: Any) -> None:
        super().__init__()
        self.selling_partner_conn_id = selling_partner_conn_id
        self.client_options = client_options

    def get_conn(self) -> SellingPartnerClient:
        return SellingPartnerClient(**self.client_kwargs(self.get_connection(self.selling_partner_conn_id)))

    async def aget_async_client(self) -> AsyncSellingPartnerClient:
        """A new async client of its own (the caller closes it); the connection is read without blocking
        the event loop. Triggers use ``shared_async_client`` instead."""
        conn = await self.aget_connection(self.selling_partner_conn_id)
        kwargs = self.client_kwargs(conn)
        # Building an httpx client loads the CA bundle (tens of ms): never on the event loop.
        return await asyncio.to_thread(AsyncSellingPartnerClient, **kwargs)

    async def shared_async_client(self) -> AsyncSellingPartnerClient:
        """The client every trigger of this process shares for this connection: one connection pool,
        built once (off the event loop), never closed by its users.

        A triggerer holds up to a thousand waits; a client each would block the event loop for its SSL
        context and hold its own pool (docs/benchmarks.md). The connection is read again after ``SHARED_CLIENT_TTL`` seconds,
        and a changed connection gets a new client (waits already running keep the old one).
        """
        return await _SHARED_CLIENTS.get(self)

    def account(self) -> Account:
        """The seller and region this connection is an authorisation of, with its default marketplaces."""
        return account_from_connection(
            self.selling_partner_conn_id, _extras(self.get_connection(self.selling_partner_conn_id))
        )

    def client_kwargs(self, conn: Any) -> dict[str, Any]:
        extra = _extras(conn)
        refresh_token: str = extra.get("refresh_token") or ""  # absent or empty: missing below
        missing = [
            name
            for name, value in (
                ("login (LWA client id)", conn.login),
                ("password (LWA client secret)", conn.password),
                ("extra.refresh_token", refresh_token),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"connection {conn.conn_id!r} lacks {', '.join(missing)}")
        # Belt and braces: the connection's password and *token extras are masked already, but
        # masking here also covers credentials that came from a secrets backend under other names.
        mask_secret(conn.password)
        mask_secret(refresh_token)
        region = (extra.get("region") or "NA").upper()
        if region not in REGION_ENDPOINTS:
            raise ValueError(f"connection {conn.conn_id!r}: region must be one of {sorted(REGION_ENDPOINTS)}")
        return {
            "credentials": Credentials(client_id=conn.login, client_secret=conn.password, refresh_token=refresh_token),
            "region": region,
            "endpoint": extra.get("endpoint") or None,
            "lwa_endpoint": extra.get("lwa_endpoint") or DEFAULT_LWA_ENDPOINT,
            "quota_store": quota_store(),
            **self.client_options,
        }

    def test_connection(self) -> tuple[bool, str]:
        """Check the account's fields, exchange the refresh token and make one cheap read naming the account's
        marketplaces (the region's endpoint refuses a marketplace it does not serve or the seller does not sell
        in). No SP-API operation returns the seller's own id, so the selling partner id is checked for form only."""
        try:
            account = self.account()
            with self.get_conn() as client:
                # Cheapest read there is; getReports needs a report type (or a nextToken).
                client.get_reports(
                    report_types=["GET_MERCHANT_LISTINGS_ALL_DATA"],
                    marketplace_ids=list(account.marketplace_ids) or None,
                    page_size=1,
                )
        except (SellingPartnerError, AccountError, ValueError) as exc:
            return False, str(exc)
        return True, f"Connection to the Selling Partner API works: {account}."


def quota_store() -> QuotaStore | None:
    """Where this process's clients keep their quota buckets (one store per process): the fleet's Redis
    (``SP_REPORTS_QUOTA_REDIS_URL``) when there is one, else the machine's files (``SP_REPORTS_QUOTA_DIR``), else
    None (each process its own buckets)."""
    current = settings()
    if current.quota_redis_url is not None:
        return shared_buckets(current.quota_redis_url)
    return file_buckets(current.quota_dir)


SHARED_CLIENT_TTL = 300.0


class _SharedClients:
    """Clients by (event loop, connection id): an httpx client belongs to the loop it first ran on. A
    triggerer has one loop; the clients of closed loops (a test's, a sync client's) are dropped."""

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, dict[tuple, Any]] = {}

    async def get(self, hook: SellingPartnerHook) -> AsyncSellingPartnerClient:
        loop = asyncio.get_running_loop()
        for closed in [other for other in self._by_loop if other.is_closed()]:
            del self._by_loop[closed]
        entries = self._by_loop.setdefault(loop, {})
        key = (hook.selling_partner_conn_id, json.dumps(hook.client_options, sort_keys=True, default=str))
        entry = entries.get(key)
        if entry is not None and entry["checked"] + SHARED_CLIENT_TTL > time.monotonic():
            return entry["client"]
        # One builder per key: a thousand triggers starting together read the connection once.
        lock = entries.setdefault(("lock", *key), asyncio.Lock())
        async with lock:
            entry = entries.get(key)
            if entry is not None and entry["checked"] + SHARED_CLIENT_TTL > time.monotonic():
                return entry["client"]
            conn = await hook.aget_connection(hook.selling_partner_conn_id)
            fingerprint = _fingerprint(conn)
            if entry is None or entry["fingerprint"] != fingerprint:
                kwargs = hook.client_kwargs(conn)
                client = await asyncio.to_thread(AsyncSellingPartnerClient, **kwargs)
                entry = {"client": client, "fingerprint": fingerprint}
            entry["checked"] = time.monotonic()
            entries[key] = entry
            return entry["client"]


_SHARED_CLIENTS = _SharedClients()


def _fingerprint(conn: Any) -> str:
    return json.dumps([conn.login, conn.password, conn.extra_dejson], sort_keys=True, default=str)


def _extras(conn: Any) -> dict[str, Any]:
    """The connection's extras by bare name. The UI form stores a field under its bare name; older
    tooling used extra__<conn_type>__<name>, which counts only where the bare name is empty.
    (``extra_dejson`` parses the JSON on every access, hence once here.)"""
    extra = conn.extra_dejson
    legacy = {
        k.removeprefix("extra__selling_partner__"): v
        for k, v in extra.items()
        if k.startswith("extra__selling_partner__") and v
    }
    return {**legacy, **{k: v for k, v in extra.items() if v and not k.startswith("extra__selling_partner__")}}
