"""The nine Reports 2021-06-30 operations, Tokens 2021-03-01's createRestrictedDataToken and the Notifications v1
ones: HTTP shape and documented usage plan.

Rates and bursts are the defaults from each operation's "Usage Plan" table in Amazon's models
(tests/spapi-models/reports_2021-06-30.json, tokens_2021-03-01.json, notifications.json);
``x-amzn-RateLimit-Limit`` can raise them later.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

BASE = "/reports/2021-06-30"


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str  # str.format template; path parameters are URL-quoted before formatting
    rate: float  # requests per second
    burst: int
    # False when a duplicate request has a cost (createReport queues a second report). Such a
    # request is retried only when Amazon demonstrably did not accept it (429/5xx, or the
    # connection never opened); see transport.ApiCaller.
    idempotent: bool = True
    # Set for grantless operations: they are called with a client_credentials token of this scope
    # instead of the selling partner's token.
    grantless_scope: str | None = None

    def resource_path(self, path_params: dict[str, str] | None = None) -> str:
        """The request path, path parameters URL-quoted: also what a Restricted Data Token must name."""
        return self.path.format(**{k: quote(v, safe="") for k, v in (path_params or {}).items()})


GET_REPORTS = Operation("getReports", "GET", f"{BASE}/reports", 0.0222, 10)
CREATE_REPORT = Operation("createReport", "POST", f"{BASE}/reports", 0.0167, 15, idempotent=False)
GET_REPORT = Operation("getReport", "GET", f"{BASE}/reports/{{reportId}}", 2.0, 15)
CANCEL_REPORT = Operation("cancelReport", "DELETE", f"{BASE}/reports/{{reportId}}", 0.0222, 10)
GET_REPORT_SCHEDULES = Operation("getReportSchedules", "GET", f"{BASE}/schedules", 0.0222, 10)
# Amazon replaces an existing schedule with the same report type and marketplaces, so a
# duplicate createReportSchedule is harmless and it may be retried like a read.
CREATE_REPORT_SCHEDULE = Operation("createReportSchedule", "POST", f"{BASE}/schedules", 0.0222, 10)
GET_REPORT_SCHEDULE = Operation("getReportSchedule", "GET", f"{BASE}/schedules/{{reportScheduleId}}", 0.0222, 10)
CANCEL_REPORT_SCHEDULE = Operation(
    "cancelReportSchedule", "DELETE", f"{BASE}/schedules/{{reportScheduleId}}", 0.0222, 10
)
GET_REPORT_DOCUMENT = Operation("getReportDocument", "GET", f"{BASE}/documents/{{reportDocumentId}}", 0.0167, 15)

# Tokens 2021-03-01 (tokens_2021-03-01.json). A second token for the same resources is harmless, so it is
# resent like a read.
CREATE_RESTRICTED_DATA_TOKEN = Operation(
    "createRestrictedDataToken", "POST", "/tokens/2021-03-01/restrictedDataToken", 1.0, 10
)

ALL_OPERATIONS = (
    GET_REPORTS,
    CREATE_REPORT,
    GET_REPORT,
    CANCEL_REPORT,
    GET_REPORT_SCHEDULES,
    CREATE_REPORT_SCHEDULE,
    GET_REPORT_SCHEDULE,
    CANCEL_REPORT_SCHEDULE,
    GET_REPORT_DOCUMENT,
    CREATE_RESTRICTED_DATA_TOKEN,
)

# --- Notifications v1 (every usage plan: 1 request per second, burst 5) ---------------------------

NOTIFICATIONS_BASE = "/notifications/v1"
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"


def _notifications(name: str, method: str, path: str, grantless: bool = True) -> Operation:
    # Amazon answers a repeated createDestination / createSubscription with 409 instead of creating
    # a second one, so resending any of these after a lost response is harmless.
    scope = NOTIFICATIONS_SCOPE if grantless else None
    return Operation(name, method, NOTIFICATIONS_BASE + path, 1.0, 5, grantless_scope=scope)


CREATE_DESTINATION = _notifications("createDestination", "POST", "/destinations")
GET_DESTINATIONS = _notifications("getDestinations", "GET", "/destinations")
GET_DESTINATION = _notifications("getDestination", "GET", "/destinations/{destinationId}")
DELETE_DESTINATION = _notifications("deleteDestination", "DELETE", "/destinations/{destinationId}")
CREATE_SUBSCRIPTION = _notifications("createSubscription", "POST", "/subscriptions/{notificationType}", grantless=False)
GET_SUBSCRIPTION = _notifications("getSubscription", "GET", "/subscriptions/{notificationType}", grantless=False)
DELETE_SUBSCRIPTION = _notifications(
    "deleteSubscriptionById", "DELETE", "/subscriptions/{notificationType}/{subscriptionId}"
)

NOTIFICATION_OPERATIONS = (
    CREATE_DESTINATION,
    GET_DESTINATIONS,
    GET_DESTINATION,
    DELETE_DESTINATION,
    CREATE_SUBSCRIPTION,
    GET_SUBSCRIPTION,
    DELETE_SUBSCRIPTION,
)

BY_NAME = {op.name: op for op in (*ALL_OPERATIONS, *NOTIFICATION_OPERATIONS)}
