"""Notifications API v1 (the subset for REPORT_PROCESSING_FINISHED to SQS): destinations,
subscriptions, and the notification a finished report produces.

Destination and subscription-by-id operations are grantless (a client_credentials token with
scope sellingpartnerapi::notifications); createSubscription and getSubscription act for a
selling partner and take its token: subscriptions are per seller and region (the token's
authorisation), destinations per application. Responses wrap their result in `payload`, as v1 does.
Delivery to SQS is the ticker's job (publisher.py), never the request's.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from . import validation as v
from .api import Handler, _operation, caller
from .auth import NOTIFICATIONS_SCOPE
from .errors import ApiError, invalid_input, not_found

if TYPE_CHECKING:
    from .config import AccountKey, EmulatorConfig
    from .runtime import Emulator
    from .state import Report

router = APIRouter()
BASE = "/notifications/v1"
REPORT_PROCESSING_FINISHED = "REPORT_PROCESSING_FINISHED"
SUPPORTED_PAYLOAD_VERSIONS = ("1.0",)
# The version of the notification document itself (ReportProcessingFinishedNotification.json).
NOTIFICATION_VERSION = "2020-09-04"
_SQS_ARN = re.compile(r"^arn:aws:sqs:\S+:\S+:\S+")


def _route(method: str, path: str, operation: str, seller: bool = False) -> Callable[[Handler], Handler]:
    """Serve `handler` as `operation`; grantless (notifications scope) unless it acts for the seller."""

    def register(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            return await _operation(request, operation, handler, None if seller else NOTIFICATIONS_SCOPE)

        router.add_api_route(BASE + path, endpoint, methods=[method], name=operation)
        return handler

    return register


def conflict(message: str) -> ApiError:
    return ApiError(409, "Conflict", message)


@dataclass
class Destination:
    destination_id: str
    name: str
    arn: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "destinationId": self.destination_id, "resource": {"sqs": {"arn": self.arn}}}


@dataclass
class Subscription:
    subscription_id: str
    notification_type: str
    payload_version: str
    destination_id: str
    account: AccountKey = None  # the seller (and region) it notifies about; None = the default seller

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "payloadVersion": self.payload_version,
            "destinationId": self.destination_id,
        }


@dataclass
class NotificationState:
    seed: int
    destinations: dict[str, Destination] = field(default_factory=dict)
    # (seller account, notificationType) -> its subscription: Amazon allows one per seller, type and
    # payload version, and the emulator knows one payload version.
    subscriptions: dict[tuple[AccountKey, str], Subscription] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = random.Random(f"{self.seed}:notification-ids")

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def destination_for(
        self, notification_type: str, account: AccountKey = None
    ) -> tuple[Subscription, Destination] | None:
        """Where a notification about `account`'s report goes, if that seller subscribed."""
        subscription = self.subscriptions.get((account, notification_type))
        destination = self.destinations.get(subscription.destination_id) if subscription else None
        return (subscription, destination) if subscription and destination else None


def iso_millis(ts: float) -> str:
    """The notifications' date-time format: UTC with milliseconds, 2020-07-14T03:35:13.214Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def application_id(config: EmulatorConfig) -> str:
    # Stable per LWA client id, as Amazon's application id is per registered application.
    return f"amzn1.sellerapps.app.{uuid.uuid5(uuid.NAMESPACE_URL, 'sp-api-emulator:' + config.client_id)}"


def report_notification(
    report: Report, subscription: Subscription, config: EmulatorConfig, notification_id: str, publish_time: float
) -> dict[str, Any]:
    """A REPORT_PROCESSING_FINISHED notification, as ReportProcessingFinishedNotification.json shapes it."""
    finished = report.finished_at()
    state = report.to_json(publish_time)  # publish_time is never before the terminal status
    seller_id = report.seller_id or config.seller_id  # the report's owner
    body: dict[str, Any] = {
        "sellerId": seller_id,
        "accountId": f"amzn1.merchant.o.{seller_id}",
        "reportId": report.report_id,
        "reportType": report.report_type,
        "processingStatus": state["processingStatus"],
    }
    if "reportDocumentId" in state:
        body["reportDocumentId"] = state["reportDocumentId"]
    return {
        "notificationVersion": NOTIFICATION_VERSION,
        "notificationType": REPORT_PROCESSING_FINISHED,
        "payloadVersion": NOTIFICATION_VERSION,
        "eventTime": iso_millis(finished),
        "payload": {"reportProcessingFinishedNotification": body},
        "notificationMetadata": {
            "applicationId": application_id(config),
            "subscriptionId": subscription.subscription_id,
            "publishTime": iso_millis(publish_time),
            "notificationId": notification_id,
        },
    }


def _found(item: Any, message: str) -> Any:
    if item is None:
        raise not_found(message)
    return item


def _payload(result: Any) -> JSONResponse:
    return JSONResponse({"payload": result})


def _notification_type(request: Request) -> str:
    value = request.path_params["notificationType"]
    if value != REPORT_PROCESSING_FINISHED:
        raise invalid_input(
            f"Invalid notificationType: {value}. The emulator supports {REPORT_PROCESSING_FINISHED} only."
        )
    return value


def _account_key(request: Request) -> AccountKey:
    account = caller(request).account
    return None if account is None else account.key


def _string(spec: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid_input(f"{name} is required and must be a non-empty string.")
    if max_length is not None and len(value) > max_length:
        raise invalid_input(f"{name} must be at most {max_length} characters long.")
    return value


# --- destinations --------------------------------------------------------------------------------


@_route("POST", "/destinations", "createDestination")
def _create_destination(emu: Emulator, request: Request, body: bytes) -> Response:
    spec = v.json_body(body, request.headers.get("content-type"))
    name = _string(spec, "name", max_length=256)
    resource = spec.get("resourceSpecification")
    if not isinstance(resource, dict) or not resource:
        raise invalid_input("resourceSpecification is required and must name an sqs resource.")
    if "eventBridge" in resource:
        raise invalid_input("eventBridge destinations are not emulated; use resourceSpecification.sqs.")
    sqs = resource.get("sqs")
    arn = sqs.get("arn") if isinstance(sqs, dict) else None
    if not isinstance(arn, str) or len(arn) > 1000 or not _SQS_ARN.match(arn):
        raise invalid_input("resourceSpecification.sqs.arn must be an SQS queue ARN (arn:aws:sqs:region:account:name).")
    state = emu.notifications
    if any(d.arn == arn for d in state.destinations.values()):
        raise conflict(f"A destination for {arn} already exists.")
    destination = Destination(state.new_id(), name, arn)
    state.destinations[destination.destination_id] = destination
    return _payload(destination.to_json())


@_route("GET", "/destinations", "getDestinations")
def _get_destinations(emu: Emulator, request: Request, body: bytes) -> Response:
    return _payload([d.to_json() for d in emu.notifications.destinations.values()])


def _destination(emu: Emulator, request: Request) -> Destination:
    destination_id = request.path_params["destinationId"]
    return _found(emu.notifications.destinations.get(destination_id), f"Destination {destination_id} not found.")


@_route("GET", "/destinations/{destinationId}", "getDestination")
def _get_destination(emu: Emulator, request: Request, body: bytes) -> Response:
    return _payload(_destination(emu, request).to_json())


@_route("DELETE", "/destinations/{destinationId}", "deleteDestination")
def _delete_destination(emu: Emulator, request: Request, body: bytes) -> Response:
    destination = _destination(emu, request)
    state = emu.notifications
    # Deleting it under a live subscription would leave notifications with nowhere to go.
    users = [s.subscription_id for s in state.subscriptions.values() if s.destination_id == destination.destination_id]
    if users:
        raise conflict(
            f"Destination {destination.destination_id} has subscriptions ({', '.join(users)}); delete them first."
        )
    del state.destinations[destination.destination_id]
    return JSONResponse({})


# --- subscriptions -------------------------------------------------------------------------------


@_route("POST", "/subscriptions/{notificationType}", "createSubscription", seller=True)
def _create_subscription(emu: Emulator, request: Request, body: bytes) -> Response:
    notification_type = _notification_type(request)
    spec = v.json_body(body, request.headers.get("content-type"))
    payload_version = _string(spec, "payloadVersion")
    destination_id = _string(spec, "destinationId")
    if payload_version not in SUPPORTED_PAYLOAD_VERSIONS:
        raise invalid_input(f"payloadVersion {payload_version} is not supported for {notification_type}; use 1.0.")
    if "processingDirective" in spec:
        raise invalid_input(f"processingDirective is not supported for {notification_type}.")
    state = emu.notifications
    if destination_id not in state.destinations:
        raise invalid_input(f"Invalid destinationId: {destination_id}.")
    account = _account_key(request)
    if (account, notification_type) in state.subscriptions:
        raise conflict("Subscription for specified notification type and destination already exists.")
    subscription = Subscription(state.new_id(), notification_type, payload_version, destination_id, account)
    state.subscriptions[(account, notification_type)] = subscription
    return _payload(subscription.to_json())


@_route("GET", "/subscriptions/{notificationType}", "getSubscription", seller=True)
def _get_subscription(emu: Emulator, request: Request, body: bytes) -> Response:
    notification_type = _notification_type(request)
    subscription = emu.notifications.subscriptions.get((_account_key(request), notification_type))
    wanted = request.query_params.get("payloadVersion")
    if subscription is None or (wanted is not None and wanted != subscription.payload_version):
        raise not_found(f"No subscription for {notification_type} found.")
    return _payload(subscription.to_json())


def _subscription_by_id(emu: Emulator, request: Request) -> Subscription:
    notification_type = _notification_type(request)
    subscription_id = request.path_params["subscriptionId"]
    # Grantless: the application's subscriptions of every seller, found by id.
    subscription = next(
        (
            s for (_, kind), s in emu.notifications.subscriptions.items()
            if kind == notification_type and s.subscription_id == subscription_id
        ),
        None,
    )  # fmt: skip
    return _found(subscription, f"Subscription {subscription_id} for {notification_type} not found.")


@_route("GET", "/subscriptions/{notificationType}/{subscriptionId}", "getSubscriptionById")
def _get_subscription_by_id(emu: Emulator, request: Request, body: bytes) -> Response:
    return _payload(_subscription_by_id(emu, request).to_json())


@_route("DELETE", "/subscriptions/{notificationType}/{subscriptionId}", "deleteSubscriptionById")
def _delete_subscription_by_id(emu: Emulator, request: Request, body: bytes) -> Response:
    subscription = _subscription_by_id(emu, request)
    del emu.notifications.subscriptions[(subscription.account, subscription.notification_type)]
    return JSONResponse({})
