"""AsyncSellingPartnerClient: the Reports API 2021-06-30 and the Notifications API v1, async."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from . import operations as ops
from . import validation as check
from .api_caller import ApiCaller
from .auth import LwaAuth
from .credentials import Credentials
from .documents import DocumentDownload
from .documents import download_document as _download_document
from .endpoints import DEFAULT_LWA_ENDPOINT, USER_AGENT, check_lwa_endpoint, resolve_endpoint
from .errors import NotFoundError
from .quota_store import QuotaStore
from .responses import json_object as _body
from .responses import unexpected as _unexpected
from .restricted import Resource, RestrictedDataToken, RestrictedTokens, document_resource
from .retry import RetryPolicy

DateTime = datetime | str


class AsyncSellingPartnerClient:
    """Reports and Notifications API client. Methods return Amazon's response objects as dicts
    (model shapes: no ``payload`` wrapper in Reports 2021-06-30; Notifications v1's ``payload`` is
    unwrapped) and raise ``SellingPartnerError`` subclasses. Grantless notification operations
    use the application's ``sellingpartnerapi::notifications`` token, never the seller's.

    Access tokens and per-operation quota buckets are shared process-wide, so creating many
    clients for the same credentials is cheap and they throttle together. ``quota_store`` shares the
    quota buckets with other processes: a ``SharedBuckets`` (e.g. ``shared_buckets(settings().quota_redis_url)``)
    with every process of the fleet through Redis, a ``FileBuckets`` (``file_buckets(settings().quota_dir)``)
    with every process of the machine through files; None (the default) keeps them in-process.
    ``transport`` is for tests (e.g. ``httpx.MockTransport``).
    """

    def __init__(
        self,
        credentials: Credentials,
        region: str = "NA",
        endpoint: str | None = None,
        lwa_endpoint: str = DEFAULT_LWA_ENDPOINT,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        timeout: float = 30.0,
        scale_quotas: float = 1.0,
        *,
        quota_store: QuotaStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise TypeError("credentials must be a sp_reports.client.Credentials")
        self.endpoint = resolve_endpoint(region, endpoint)
        self.lwa_endpoint = check_lwa_endpoint(lwa_endpoint)
        self.credentials = credentials
        if quota_store is not None and not isinstance(quota_store, QuotaStore):
            raise TypeError("quota_store must be a quota store (sp_reports.client.SharedBuckets, FileBuckets) or None")
        self.quota_store = quota_store
        self._policy = RetryPolicy(max_attempts, backoff_base, backoff_cap)
        if scale_quotas <= 0:
            raise ValueError("scale_quotas must be > 0")
        # No auth header here: it is added per SP-API request, so nothing else (LWA, the
        # document storage host) ever receives the access token.
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, headers={"user-agent": USER_AGENT})
        self._auth = LwaAuth(credentials, self._http, self.lwa_endpoint, self._policy)
        self._api = ApiCaller(
            self._http,
            self._auth,
            self.endpoint,
            credentials.client_id,
            credentials.refresh_token_sha256,
            self._policy,
            scale_quotas,
            quota_store=quota_store,
        )
        self._restricted = RestrictedTokens(self._api)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, credentials={self.credentials!r})"

    async def __aenter__(self) -> AsyncSellingPartnerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- reports ---------------------------------------------------------------------------------

    async def create_report(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        data_start_time: DateTime | None = None,
        data_end_time: DateTime | None = None,
        report_options: Mapping[str, str] | None = None,
        quota_reserved: bool = False,
    ) -> str:
        """Request a report; returns its reportId.

        ``quota_reserved``: the first attempt's createReport token was taken earlier by
        ``reserve_quota("createReport")`` (maybe in another process) and its wait is over, so the
        first attempt sends at once; a retry after a 429 takes a token as usual.

        Raises ``OutcomeUnknownError`` if the request was sent but the response was lost: it is
        not resent (that could queue a duplicate report); look for the report with ``get_reports``.
        """
        start, end = check.time_window("data_start_time", data_start_time, "data_end_time", data_end_time)
        body: dict[str, Any] = {
            "reportType": check.identifier("report_type", report_type),
            "marketplaceIds": check.string_list("marketplace_ids", marketplace_ids, max_items=25),
        }
        if start is not None:
            body["dataStartTime"] = start
        if end is not None:
            body["dataEndTime"] = end
        if report_options is not None:
            body["reportOptions"] = check.report_options(report_options)
        response = await self._api.call(ops.CREATE_REPORT, json=body, quota_reserved=quota_reserved)
        return _field(ops.CREATE_REPORT, response, "reportId")

    async def get_report(self, report_id: str) -> dict[str, Any]:
        response = await self._api.call(ops.GET_REPORT, {"reportId": check.identifier("report_id", report_id)})
        return _body(ops.GET_REPORT, response)

    async def get_reports(
        self,
        report_types: Sequence[str] | None = None,
        processing_statuses: Sequence[str] | None = None,
        marketplace_ids: Sequence[str] | None = None,
        page_size: int | None = None,
        created_since: DateTime | None = None,
        created_until: DateTime | None = None,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        """One page of reports: ``{"reports": [...], "nextToken": ...}``. Pass the ``nextToken``
        alone to get the next page (Amazon refuses it combined with filters)."""
        if next_token is not None:
            others = {
                "report_types": report_types, "processing_statuses": processing_statuses,
                "marketplace_ids": marketplace_ids, "page_size": page_size,
                "created_since": created_since, "created_until": created_until,
            }  # fmt: skip
            given = [name for name, value in others.items() if value is not None]
            if given:
                raise ValueError(f"next_token must be the only argument of get_reports; also got {', '.join(given)}")
            params: dict[str, Any] = {"nextToken": check.identifier("next_token", next_token)}
        else:
            if report_types is None:
                raise ValueError("get_reports needs report_types (or a next_token from a previous page)")
            since, until = check.time_window("created_since", created_since, "created_until", created_until)
            params = {
                "reportTypes": _optional_csv("report_types", report_types, 10),
                "processingStatuses": _optional_csv(
                    "processing_statuses", processing_statuses, 5, check.PROCESSING_STATUSES
                ),
                "marketplaceIds": _optional_csv("marketplace_ids", marketplace_ids, 10),
                "pageSize": None if page_size is None else check.page_size(page_size),
                "createdSince": since,
                "createdUntil": until,
            }
        response = await self._api.call(ops.GET_REPORTS, params=params)
        return _body(ops.GET_REPORTS, response)

    async def cancel_report(self, report_id: str) -> None:
        """Only IN_QUEUE reports can be cancelled; Amazon answers 400 for the others."""
        await self._api.call(ops.CANCEL_REPORT, {"reportId": check.identifier("report_id", report_id)})

    async def cancel_if_in_queue(self, report_id: str) -> bool:
        """Cancel the report if it is still IN_QUEUE (the only status Amazon cancels); True if it was."""
        if (await self.get_report(report_id))["processingStatus"] != "IN_QUEUE":
            return False
        await self.cancel_report(report_id)
        return True

    # -- schedules -------------------------------------------------------------------------------

    async def get_report_schedules(self, report_types: Sequence[str]) -> dict[str, Any]:
        params = {"reportTypes": _csv(check.string_list("report_types", report_types, max_items=10))}
        response = await self._api.call(ops.GET_REPORT_SCHEDULES, params=params)
        return _body(ops.GET_REPORT_SCHEDULES, response)

    async def create_report_schedule(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        period: str,
        report_options: Mapping[str, str] | None = None,
        next_report_creation_time: DateTime | None = None,
    ) -> str:
        """Create (or replace: Amazon keeps one per report type + marketplaces) a schedule; returns its id."""
        body: dict[str, Any] = {
            "reportType": check.identifier("report_type", report_type),
            "marketplaceIds": check.string_list("marketplace_ids", marketplace_ids, max_items=25),
            "period": check.one_of("period", period, check.SCHEDULE_PERIODS),
        }
        if report_options is not None:
            body["reportOptions"] = check.report_options(report_options)
        if next_report_creation_time is not None:
            body["nextReportCreationTime"] = check.date_time("next_report_creation_time", next_report_creation_time)
        response = await self._api.call(ops.CREATE_REPORT_SCHEDULE, json=body)
        return _field(ops.CREATE_REPORT_SCHEDULE, response, "reportScheduleId")

    async def get_report_schedule(self, schedule_id: str) -> dict[str, Any]:
        path = {"reportScheduleId": check.identifier("schedule_id", schedule_id)}
        return _body(ops.GET_REPORT_SCHEDULE, await self._api.call(ops.GET_REPORT_SCHEDULE, path))

    async def cancel_report_schedule(self, schedule_id: str) -> None:
        await self._api.call(
            ops.CANCEL_REPORT_SCHEDULE, {"reportScheduleId": check.identifier("schedule_id", schedule_id)}
        )

    # -- documents -------------------------------------------------------------------------------

    async def get_report_document(self, document_id: str, *, restricted: bool = False) -> dict[str, Any]:
        """``{"reportDocumentId", "url", "compressionAlgorithm"?}``. The url is pre-signed and
        valid for 5 minutes: treat it as a secret (``redact_url`` before logging it).

        ``restricted``: the document is of a restricted report type (PII), so the call is made with a Restricted
        Data Token naming exactly this document (cached, or minted now) instead of the LWA token."""
        path = {"reportDocumentId": check.identifier("document_id", document_id)}
        token = self._restricted.source(document_resource(document_id)) if restricted else None
        response = await self._api.call(ops.GET_REPORT_DOCUMENT, path, access_token=token)
        return _body(ops.GET_REPORT_DOCUMENT, response)

    async def download_document(self, document_id: str, sink: Any, *, restricted: bool = False) -> DocumentDownload:
        """Stream a report document into ``sink`` (bounded memory) and describe what was written.

        ``sink`` needs ``write(bytes)`` (a plain or an async method). It receives the bytes exactly
        as served: a gzip document stays gzip, and ``compressed`` says so from the magic bytes,
        not from ``compressionAlgorithm``. If an attempt fails after bytes were written (network
        error, truncated body), the download restarts from scratch, which rewinds the sink: it
        must then be seekable (``seekable()`` true; ``seek()``/``truncate()`` back to the position
        it had when the download started), otherwise ``DocumentDownloadError`` is raised.
        An expired URL (HTTP 403 from the storage host) is replaced by a fresh one from
        ``getReportDocument``. Retries are bounded by ``max_attempts``. After an error, whatever
        the sink holds is incomplete and must be discarded. ``restricted``: as for ``get_report_document``
        (every getReportDocument of the download, the URL refresh too, goes with the Restricted Data Token).
        """
        check.identifier("document_id", document_id)
        get_document = functools.partial(self.get_report_document, restricted=restricted)
        return await _download_document(self._http, get_document, document_id, sink, self._policy)

    # -- restricted data tokens ------------------------------------------------------------------

    async def create_restricted_data_token(self, resources: Sequence[Resource]) -> RestrictedDataToken:
        """createRestrictedDataToken for 1 to 50 ``(method, path)`` resources, e.g.
        ``("GET", "/reports/2021-06-30/documents/<id>")``. The token is also cached for each of them, so restricted
        calls of those resources made through this client reuse it. Its ``repr()`` hides the token."""
        return await self._restricted.create(resources)

    async def prefetch_restricted_documents(self, document_ids: Sequence[str]) -> int:
        """Restricted Data Tokens ahead of downloading restricted documents: one createRestrictedDataToken per 50
        documents no cached token covers yet (Amazon's limit), so n downloads cost ceil(n/50) token calls, not n.
        Returns how many tokens were minted."""
        if isinstance(document_ids, str):
            raise TypeError("document_ids must be a list of reportDocumentIds")
        ids = [check.identifier("document_id", document_id) for document_id in document_ids]
        return await self._restricted.prefetch(document_resource(document_id) for document_id in ids)

    # -- notifications ---------------------------------------------------------------------------

    async def create_destination(self, name: str, sqs_arn: str) -> dict[str, Any]:
        """Register an SQS queue as a destination (grantless); returns the Destination
        ``{"destinationId", "name", "resource": {"sqs": {"arn"}}}``. A second destination for the same
        queue raises ``ConflictError`` (409)."""
        body = {
            "name": check.identifier("name", name),
            "resourceSpecification": {"sqs": {"arn": check.sqs_arn(sqs_arn)}},
        }
        return _payload(ops.CREATE_DESTINATION, await self._api.call(ops.CREATE_DESTINATION, json=body))

    async def get_destinations(self) -> list[dict[str, Any]]:
        """Every destination of the application (grantless)."""
        return _payload(ops.GET_DESTINATIONS, await self._api.call(ops.GET_DESTINATIONS), list)

    async def delete_destination(self, destination_id: str) -> None:
        """Grantless. A destination still used by a subscription cannot be deleted (``ConflictError``)."""
        path = {"destinationId": check.identifier("destination_id", destination_id)}
        await self._api.call(ops.DELETE_DESTINATION, path)

    async def create_subscription(
        self, notification_type: str, destination_id: str, payload_version: str = "1.0"
    ) -> dict[str, Any]:
        """Subscribe the selling partner to ``notification_type`` at a destination; returns the
        Subscription ``{"subscriptionId", "payloadVersion", "destinationId"}``. Amazon allows one per
        type: a second raises ``ConflictError`` (409)."""
        path = {"notificationType": check.identifier("notification_type", notification_type)}
        body = {
            "destinationId": check.identifier("destination_id", destination_id),
            "payloadVersion": check.identifier("payload_version", payload_version),
        }
        return _payload(ops.CREATE_SUBSCRIPTION, await self._api.call(ops.CREATE_SUBSCRIPTION, path, json=body))

    async def get_subscription(self, notification_type: str) -> dict[str, Any] | None:
        """The selling partner's subscription to ``notification_type``, or None when there is none."""
        path = {"notificationType": check.identifier("notification_type", notification_type)}
        try:
            response = await self._api.call(ops.GET_SUBSCRIPTION, path)
        except NotFoundError:
            return None
        return _payload(ops.GET_SUBSCRIPTION, response)

    async def delete_subscription(self, notification_type: str, subscription_id: str) -> None:
        """deleteSubscriptionById (grantless): notifications stop being sent for it."""
        path = {
            "notificationType": check.identifier("notification_type", notification_type),
            "subscriptionId": check.identifier("subscription_id", subscription_id),
        }
        await self._api.call(ops.DELETE_SUBSCRIPTION, path)

    # -- quotas ----------------------------------------------------------------------------------

    async def reserve_quota(self, operation: str) -> float:
        """Take one token of ``operation`` (e.g. ``"createReport"``) for this client's selling partner now,
        for a request sent later; returns the seconds until it is due (0: available now).

        Reservations queue like the client's own requests: once the burst is spent, each is due one
        refill (1 / rate) after the one before. Send the request no earlier than that, with
        ``create_report(..., quota_reserved=True)``, which then takes no token for its first attempt.
        The reservation lives in the quota store, so the process that sends may be another one (a task
        deferred until the due time): with a Redis or a file store it paces every process sharing it;
        without one (``SP_REPORTS_QUOTA_DIR=none`` and no Redis) it lives in this process's own bucket
        and paces this process only. A reservation never used is not given back: it delays later ones
        by one refill. Send at the due time, not long after: the store counts the token spent when
        reserved, so reservations kept while Amazon's bucket sits full (the burst's, due at once) and
        then sent together with later ones can exceed the burst.
        """
        op = ops.BY_NAME.get(operation)
        if op is None:
            raise ValueError(f"unknown operation {operation!r}; one of {', '.join(sorted(ops.BY_NAME))}")
        return await self._api.reserve(op)

    # -- grantless -------------------------------------------------------------------------------

    async def get_grantless_access_token(self, scope: str) -> str:
        """An LWA client-credentials token for grantless operations (e.g. ``sellingpartnerapi::notifications``),
        cached like the refresh-token one. Not used by the Reports API itself."""
        return await self._auth.grantless_token(scope)


def _csv(items: list[str]) -> str:
    # SP-API array query parameters are comma-separated (reportTypes=A,B), not repeated keys.
    return ",".join(items)


def _optional_csv(name: str, value: Any, max_items: int, allowed: frozenset[str] | None = None) -> str | None:
    return None if value is None else _csv(check.string_list(name, value, max_items=max_items, allowed=allowed))


def _payload(op: ops.Operation, response: httpx.Response, kind: type = dict) -> Any:
    """Notifications v1 wraps every result in ``payload``."""
    payload = _body(op, response).get("payload")
    if not isinstance(payload, kind):
        raise _unexpected(op, response, f"the response has no {kind.__name__} payload")
    return payload


def _field(op: ops.Operation, response: httpx.Response, name: str) -> str:
    value = _body(op, response).get(name)
    if not isinstance(value, str) or not value:
        raise _unexpected(op, response, f"the response has no {name}")
    return value
