"""The nine Reports 2021-06-30 operations, and the request path every SP-API operation shares.

Order of checks per call, as Amazon applies them: access token (403, also for a seller token of
another region at a regional endpoint; restricted operations also take a Restricted Data Token), injected faults (429/5xx), usage-plan quota (429, per seller
and region), then request validation and the operation itself.

The routes are served at `{base}` (any region, as before sellers existed) and at the regional
endpoints `{base}/na`, `{base}/eu` and `{base}/fe` (see app.py); `endpoint_region` tells which.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from . import validation as v
from .auth import ACCESS_DENIED
from .config import REGIONS, Authorisation
from .downloads import presigned_url
from .errors import ApiError, api_error_response, error_response, invalid_input, not_found
from .marketplaces import MARKETPLACES
from .report_types import RESTRICTED_REPORT_TYPES

if TYPE_CHECKING:
    from .quotas import Quotas
    from .runtime import Account, Emulator
    from .state import Store
    from .tokens import RestrictedToken

log = logging.getLogger(__name__)
router = APIRouter()
BASE = "/reports/2021-06-30"
GET_REPORTS_FILTERS = (
    "reportTypes",
    "processingStatuses",
    "marketplaceIds",
    "pageSize",
    "createdSince",
    "createdUntil",
)
RETENTION_SECONDS = 90 * 86400

Handler = Callable[["Emulator", Request, bytes], Response]

# The restricted operations of the APIs emulated: they also take a Restricted Data Token as access token.
RESTRICTED_OPERATIONS = frozenset({"getReportDocument"})

# The statuses whose responses carry x-amzn-RateLimit-Limit, as each model declares them.
RATE_LIMIT_HEADER_DEFAULT = frozenset({200, 201, 202, 400, 404})  # Reports 2021-06-30, Notifications v1
RATE_LIMIT_HEADER_STATUSES = {"createRestrictedDataToken": frozenset({200, 400, 404, 415, 429, 500, 503})}

# Path prefix of each regional endpoint; the app serves the SP-API routes under each (and unprefixed).
REGION_PREFIXES = {"/" + region.lower(): region for region in REGIONS}


def endpoint_region(request: Request) -> str | None:
    """The region of the endpoint the call came to ("NA", "EU", "FE"), None for the unprefixed one."""
    route = request.scope.get("route")
    path = getattr(route, "path", None) or request.url.path
    return REGION_PREFIXES.get("/" + path.split("/", 2)[1])


@dataclass(frozen=True)
class Caller:
    """Who called, where: set on `request.state.caller` once the access token is accepted."""

    region: str | None  # the endpoint's region; None = the unprefixed, any-region endpoint
    authorisation: Authorisation | None  # None for a grantless token
    account: Account | None  # the seller's (and region's) state; None for a grantless token
    restricted: RestrictedToken | None = None  # the Restricted Data Token called with; None for an LWA token


def caller(request: Request) -> Caller:
    return request.state.caller


def seller_store(request: Request) -> Store:
    """The calling seller's store (seller operations only)."""
    account = caller(request).account
    assert account is not None, "a seller operation always has an account"
    return account.store


def check_marketplaces(request: Request, marketplace_ids: Iterable[str]) -> None:
    """400 for a marketplace outside the endpoint's region or one the seller is not authorised for.
    Ids the emulator does not know are left to the operation's own validation."""
    who = caller(request)
    for marketplace_id in marketplace_ids:
        marketplace = MARKETPLACES.get(marketplace_id)
        if marketplace is None:
            continue
        if who.region is not None and marketplace.region.upper() != who.region:
            raise invalid_input(
                f"Invalid marketplaceIds: {marketplace_id} ({marketplace.country}) is not served by the "
                f"{who.region} endpoint.",
                f"Call the {marketplace.region.upper()} endpoint for marketplace {marketplace_id}.",
            )
        granted = who.authorisation
        if granted is not None and granted.region is not None and not granted.allows(marketplace_id):
            raise invalid_input(
                f"Invalid marketplaceIds: the seller is not authorised for marketplace {marketplace_id} "
                f"({marketplace.country})."
            )


async def _operation(
    request: Request, operation: str, handler: Handler, grantless_scope: str | None = None
) -> Response:
    """Run one SP-API operation; `grantless_scope` set = it takes only a grantless token of that scope."""
    emu: Emulator = request.app.state.emulator
    body = await request.body()
    with emu.lock:
        emu.stats.call(operation)
        response, seller_id = _respond(emu, request, operation, handler, body, grantless_scope)
        emu.stats.response(operation, response.status_code, seller_id)
    return response


def _respond(
    emu: Emulator, request: Request, operation: str, handler: Handler, body: bytes, grantless_scope: str | None
) -> tuple[Response, str | None]:
    """The response, and the seller it was for (None: a grantless call, or no valid token)."""
    config, now = emu.config, emu.clock()
    region = endpoint_region(request)
    token = request.headers.get("x-amz-access-token")
    restricted = emu.restricted_tokens.find(token) if operation in RESTRICTED_OPERATIONS else None
    granted: Authorisation | None
    if restricted is not None:
        denial, granted = emu.restricted_tokens.check(restricted, now, region), restricted.authorisation
    else:
        denial, issued = emu.tokens.check(token, now, grantless_scope, region)
        granted = issued.authorisation if issued is not None and issued.scope == grantless_scope else None
    seller_id = None if granted is None else (granted.seller_id if granted.region else config.seller_id)
    if denial:
        return error_response(403, "Unauthorized", denial), seller_id
    account = None if granted is None else emu.account(granted.key)
    request.state.caller = Caller(region, granted, account, restricted)
    return _respond_as(emu, request, operation, handler, body, account), seller_id


def _respond_as(
    emu: Emulator, request: Request, operation: str, handler: Handler, body: bytes, account: Account | None
) -> Response:
    quotas = emu.app_quotas if account is None else account.quotas
    response = _answer(emu, request, operation, handler, body, quotas)
    if response.status_code in RATE_LIMIT_HEADER_STATUSES.get(operation, RATE_LIMIT_HEADER_DEFAULT):
        response.headers["x-amzn-RateLimit-Limit"] = quotas.limit_header(operation, emu.config.speed)
    return response


def _answer(emu: Emulator, request: Request, operation: str, handler: Handler, body: bytes, quotas: Quotas) -> Response:
    config, now = emu.config, emu.clock()
    if emu.roll(config.rate_5xx):
        if emu.faults.random() < 0.5:
            return error_response(500, "InternalFailure", "We encountered an internal error. Please try again.")
        return error_response(503, "ServiceUnavailable", "Service temporarily unavailable. Please try again.")
    throttled = emu.roll(config.rate_429)
    if not throttled and config.enforce_quotas:
        throttled = not quotas.take(operation, now, config.speed)
    if throttled:
        return error_response(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
    try:
        return handler(emu, request, body)
    except ApiError as error:
        return api_error_response(error)
    except Exception:  # an emulator bug must still look like an SP-API failure to the client
        log.exception("%s failed", operation)
        return error_response(500, "InternalFailure", "We encountered an internal error. Please try again.")


# --- reports -------------------------------------------------------------------------------------


@router.get(BASE + "/reports")
async def get_reports(request: Request) -> Response:
    return await _operation(request, "getReports", _get_reports)


def _get_reports(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    params = request.query_params
    now = emu.clock()
    emu.advance(now)
    if "nextToken" in params:
        extra = [name for name in GET_REPORTS_FILTERS if name in params]
        if extra:
            raise invalid_input(f"nextToken must be the only parameter; also got {', '.join(extra)}.")
        stored = store.pages.get(params["nextToken"])
        if stored is None:
            raise invalid_input("Invalid nextToken.")
        remaining, page_size = stored
    else:
        report_types = v.query_list(params, "reportTypes", max_items=10)
        if report_types is None:
            raise invalid_input("Either reportTypes or nextToken is required.")
        statuses = v.query_list(params, "processingStatuses")
        bad = [s for s in statuses or [] if s not in v.REPORT_STATUSES]
        if bad:
            raise invalid_input("Invalid input in processingStatuses.", f"Unknown processing status: {', '.join(bad)}")
        marketplaces = v.query_list(params, "marketplaceIds", max_items=10)
        check_marketplaces(request, marketplaces or [])
        page_size = v.query_int(params, "pageSize", 1, 100, default=10)
        since = (
            v.parse_date_time("createdSince", params["createdSince"])
            if "createdSince" in params
            else now - RETENTION_SECONDS
        )
        until = v.parse_date_time("createdUntil", params["createdUntil"]) if "createdUntil" in params else now
        matches = [
            r for r in sorted(store.reports.values(), key=lambda r: r.created, reverse=True)
            if r.report_type in report_types
            and (statuses is None or r.status(now) in statuses)
            and (marketplaces is None or set(marketplaces) & set(r.marketplace_ids))
            and since <= r.created <= until
        ]  # fmt: skip
        remaining = [r.report_id for r in matches]
    page, rest = remaining[:page_size], remaining[page_size:]
    result: dict[str, Any] = {"reports": [store.reports[rid].to_json(now) for rid in page]}
    if rest:
        result["nextToken"] = store.new_page_token(rest, page_size, previous=params.get("nextToken"))
    return JSONResponse(result)


@router.post(BASE + "/reports")
async def create_report(request: Request) -> Response:
    return await _operation(request, "createReport", _create_report)


def _create_report(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    spec = v.json_body(body, request.headers.get("content-type"))
    config, now = emu.config, emu.clock()
    s = v.report_spec(spec, config, now)
    check_marketplaces(request, s.marketplace_ids)
    if s.start > s.end:
        raise invalid_input("dataStartTime must not be after dataEndTime.")
    report = store.create_report(config, now, s.report_type, s.marketplace_ids, s.start, s.end, s.options)
    return JSONResponse({"reportId": report.report_id}, status_code=202)


@router.get(BASE + "/reports/{reportId}")
async def get_report(request: Request) -> Response:
    return await _operation(request, "getReport", _get_report)


def _get_report(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    report_id = v.report_id(request.path_params["reportId"])
    now = emu.clock()
    emu.advance(now)
    report = store.reports.get(report_id)
    if report is None:
        raise not_found(f"Report {report_id} not found.")
    return JSONResponse(report.to_json(now))


@router.delete(BASE + "/reports/{reportId}")
async def cancel_report(request: Request) -> Response:
    return await _operation(request, "cancelReport", _cancel_report)


def _cancel_report(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    report_id = v.report_id(request.path_params["reportId"])
    now = emu.clock()
    report = store.reports.get(report_id)
    if report is None:
        raise not_found(f"Report {report_id} not found.")
    status = report.status(now)
    if status != "IN_QUEUE":
        raise invalid_input(f"Report {report_id} cannot be cancelled: only IN_QUEUE reports can be, it is {status}.")
    report.cancelled_at = now
    return Response(status_code=200)


# --- schedules -----------------------------------------------------------------------------------


@router.get(BASE + "/schedules")
async def get_report_schedules(request: Request) -> Response:
    return await _operation(request, "getReportSchedules", _get_report_schedules)


def _get_report_schedules(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    report_types = v.query_list(request.query_params, "reportTypes", max_items=10)
    if report_types is None:
        raise invalid_input("reportTypes is required.")
    for report_type in report_types:
        v.report_type(report_type, emu.config)
    emu.advance(emu.clock())
    schedules = [s.to_json() for s in store.schedules.values() if s.report_type in report_types]
    return JSONResponse({"reportSchedules": schedules})


@router.post(BASE + "/schedules")
async def create_report_schedule(request: Request) -> Response:
    return await _operation(request, "createReportSchedule", _create_report_schedule)


def _create_report_schedule(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    spec = v.json_body(body, request.headers.get("content-type"))
    config, now = emu.config, emu.clock()
    report_type = v.requestable_report_type(spec.get("reportType"), config)
    marketplace_ids = v.marketplace_ids(spec.get("marketplaceIds"))
    check_marketplaces(request, marketplace_ids)
    period = v.period(spec.get("period"))
    options = v.report_options(spec.get("reportOptions"))
    if "nextReportCreationTime" in spec:
        next_creation = v.parse_date_time("nextReportCreationTime", spec["nextReportCreationTime"])
    else:
        next_creation = now + v.PERIOD_SECONDS[period] / config.speed
    emu.advance(now)
    schedule = store.create_schedule(report_type, marketplace_ids, options, period, next_creation)
    return JSONResponse({"reportScheduleId": schedule.schedule_id}, status_code=201)


@router.get(BASE + "/schedules/{reportScheduleId}")
async def get_report_schedule(request: Request) -> Response:
    return await _operation(request, "getReportSchedule", _get_report_schedule)


def _get_report_schedule(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    schedule_id = v.report_id(request.path_params["reportScheduleId"], "reportScheduleId")
    emu.advance(emu.clock())
    schedule = store.schedules.get(schedule_id)
    if schedule is None:
        raise not_found(f"Report schedule {schedule_id} not found.")
    return JSONResponse(schedule.to_json())


@router.delete(BASE + "/schedules/{reportScheduleId}")
async def cancel_report_schedule(request: Request) -> Response:
    return await _operation(request, "cancelReportSchedule", _cancel_report_schedule)


def _cancel_report_schedule(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    schedule_id = v.report_id(request.path_params["reportScheduleId"], "reportScheduleId")
    emu.advance(emu.clock())
    if store.schedules.pop(schedule_id, None) is None:
        raise not_found(f"Report schedule {schedule_id} not found.")
    return Response(status_code=200)


# --- documents -----------------------------------------------------------------------------------


def denied() -> ApiError:
    # Amazon's exact answer, empty details included.
    return ApiError(403, "Unauthorized", ACCESS_DENIED, "")


@router.get(BASE + "/documents/{reportDocumentId}")
async def get_report_document(request: Request) -> Response:
    return await _operation(request, "getReportDocument", _get_report_document)


def _get_report_document(emu: Emulator, request: Request, body: bytes) -> Response:
    store = seller_store(request)
    document_id = v.document_id(request.path_params["reportDocumentId"])
    content_encoding = v.query_bool(request.query_params, "enableContentEncodingUrlHeader")
    now = emu.clock()
    report = store.reports.get(store.documents.get(document_id, ""))
    restricted = caller(request).restricted
    if report is None and restricted is not None:
        raise denied()  # a Restricted Data Token opens its own seller's documents only
    # Restricted report types' documents (PII) need a token naming this very document; an LWA token or one
    # naming other resources is refused.
    named = restricted is not None and restricted.names("GET", f"{BASE}/documents/{document_id}")
    if report is not None and report.report_type in RESTRICTED_REPORT_TYPES and not named:
        raise denied()
    if report is None or not report.document_ready(now):
        raise not_found(f"Report document {document_id} not found.")
    result: dict[str, Any] = {
        "reportDocumentId": document_id,
        "url": presigned_url(emu, request, document_id, gzip_encoding=content_encoding and report.compressed),
    }
    if report.compressed:
        result["compressionAlgorithm"] = "GZIP"
    return JSONResponse(result)
