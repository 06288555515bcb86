"""Airflow hook for the Amazon Selling Partner API (the ``selling_partner`` connection type)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from sp_reports.client import (
    DEFAULT_LWA_ENDPOINT,
    REGION_ENDPOINTS,
    AsyncSellingPartnerClient,
    Credentials,
    SellingPartnerClient,
    SellingPartnerError,
)


class SellingPartnerHook(BaseHook):
    """Builds SP-API clients from an Airflow connection.

    Connection: login = LWA client id, password = LWA client secret; extra: ``refresh_token``,
    ``region`` (NA/EU/FE), ``endpoint`` (override), ``lwa_endpoint`` (override), ``marketplace_ids``.
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
        """The async client, for triggers: the connection is read without blocking the event loop."""
        conn = await self.aget_connection(self.selling_partner_conn_id)
        return AsyncSellingPartnerClient(**self.client_kwargs(conn))

    def default_marketplace_ids(self) -> list[str]:
        return parse_marketplace_ids(_extra(self.get_connection(self.selling_partner_conn_id), "marketplace_ids"))

    def client_kwargs(self, conn: Any) -> dict[str, Any]:
        refresh_token = _extra(conn, "refresh_token")
        missing = [
            name
            for name, value in (("login (LWA client id)", conn.login), ("password (LWA client secret)", conn.password),
                                ("extra.refresh_token", refresh_token))
            if not value
        ]
        if missing:
            raise ValueError(f"connection {conn.conn_id!r} lacks {', '.join(missing)}")
        # Belt and braces: the connection's password and *token extras are masked already, but
        # masking here also covers credentials that came from a secrets backend under other names.
        mask_secret(conn.password)
        mask_secret(refresh_token)
        region = (_extra(conn, "region") or "NA").upper()
        if region not in REGION_ENDPOINTS:
            raise ValueError(f"connection {conn.conn_id!r}: region must be one of {sorted(REGION_ENDPOINTS)}")
        return {
            "credentials": Credentials(client_id=conn.login, client_secret=conn.password, refresh_token=refresh_token),
            "region": region,
            "endpoint": _extra(conn, "endpoint") or None,
            "lwa_endpoint": _extra(conn, "lwa_endpoint") or DEFAULT_LWA_ENDPOINT,
            **self.client_options,
        }

    def test_connection(self) -> tuple[bool, str]:
        """Exchange the refresh token and make one cheap read, as the UI's Test button expects."""
        try:
            with self.get_conn() as client:
                # Cheapest read there is; getReports needs a report type (or a nextToken).
                client.get_reports(report_types=["GET_MERCHANT_LISTINGS_ALL_DATA"], page_size=1)
        except (SellingPartnerError, ValueError) as exc:
            return False, str(exc)
        return True, "Connection to the Selling Partner API works."


def parse_marketplace_ids(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _extra(conn: Any, name: str) -> Any:
    # The UI form stores a field under its bare name; older tooling used extra__<conn_type>__<name>.
    extra = conn.extra_dejson
    return extra.get(name) or extra.get(f"extra__selling_partner__{name}")
