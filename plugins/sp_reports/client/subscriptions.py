"""Setting up REPORT_PROCESSING_FINISHED notifications to an SQS queue, idempotently."""

from __future__ import annotations

import logging
from typing import Any

from .errors import ConflictError
from .sync import SellingPartnerClient

log = logging.getLogger(__name__)

REPORT_PROCESSING_FINISHED = "REPORT_PROCESSING_FINISHED"


def ensure_report_notifications(client: SellingPartnerClient, sqs_arn: str, name: str = "sp-reports") -> dict[str, str]:
    """Make sure REPORT_PROCESSING_FINISHED notifications go to the queue ``sqs_arn``; returns
    ``{"destination_id", "subscription_id"}``.

    Reuses the destination registered for that queue and a subscription to it, creating only what
    is missing, so calling it on every deploy or DAG parse costs reads only. A subscription that
    points at another destination is replaced (Amazon allows one per notification type). Two callers
    racing each other both end up with the same ids: Amazon's 409 sends the loser back to reading.
    """
    destination = _destination_for(client, sqs_arn)
    if destination is None:
        try:
            destination = client.create_destination(name, sqs_arn)
            log.info("created notification destination %s for %s", destination["destinationId"], sqs_arn)
        except ConflictError:
            destination = _destination_for(client, sqs_arn)
            if destination is None:
                raise
    destination_id = destination["destinationId"]

    subscription = client.get_subscription(REPORT_PROCESSING_FINISHED)
    if subscription is not None and subscription.get("destinationId") != destination_id:
        log.warning(
            "replacing the %s subscription %s to destination %s by one to %s (%s)", REPORT_PROCESSING_FINISHED,
            subscription.get("subscriptionId"), subscription.get("destinationId"), destination_id, sqs_arn,
        )  # fmt: skip
        client.delete_subscription(REPORT_PROCESSING_FINISHED, subscription["subscriptionId"])
        subscription = None
    if subscription is None:
        try:
            subscription = client.create_subscription(REPORT_PROCESSING_FINISHED, destination_id)
            log.info("subscribed %s to destination %s", REPORT_PROCESSING_FINISHED, destination_id)
        except ConflictError:
            subscription = client.get_subscription(REPORT_PROCESSING_FINISHED)
            if subscription is None or subscription.get("destinationId") != destination_id:
                raise
    return {"destination_id": destination_id, "subscription_id": subscription["subscriptionId"]}


def _destination_for(client: SellingPartnerClient, sqs_arn: str) -> dict[str, Any] | None:
    for destination in client.get_destinations():
        if (destination.get("resource") or {}).get("sqs", {}).get("arn") == sqs_arn:
            return destination
    return None
