"""Callbacks at Stellantis, and the webhook inbox that receives their notifications."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from stellantis.client import FleetClient
from stellantis.vocabulary import CallbackStatus, RemoteType, RetryPolicy
from stellantis.webhook import WebhookPayloadError, parse_remote_events

from .models import Callback, WebhookDelivery

log = logging.getLogger(__name__)

# Headers never written to the raw store: they carry secrets or nothing useful.
_SECRET_HEADERS = {"authorization", "cookie", settings.WEBHOOK_SECRET_HEADER.lower()}


def default_webhook_target() -> str:
    return settings.PORTAL_PUBLIC_URL + reverse("stellantis-webhook")


def create_callback(
    *,
    fleet,
    remote_types: list[str] | None = None,
    label: str = "",
    target: str = "",
    retry_policy: str = RetryPolicy.BOUNDED,
    retry_number: int = 3,
    retry_delay: int = 10,
    batch_size: int | None = None,
    batch_time_window: int | None = None,
    attributes: list | None = None,
    client: FleetClient | None = None,
) -> Callback:
    """Register a callback at Stellantis, then keep it locally with the id it was given.

    The local row is saved first (its pk is part of the secret header value), inside a
    transaction that rolls back if Stellantis refuses: a failed sync leaves nothing behind.
    """
    client = client or FleetClient.from_settings()
    with transaction.atomic():
        callback = Callback.objects.create(
            fleet=fleet,
            label=label,
            target=target or default_webhook_target(),
            remote_types=list(remote_types or RemoteType.values),
            retry_policy=retry_policy,
            retry_number=retry_number,
            retry_delay=retry_delay,
            batch_size=batch_size,
            batch_time_window=batch_time_window,
            attributes=attributes or [],
        )
        reply = client.create_callback(fleet.external_id, callback.subscribe_body())
        callback.external_id = reply["callbackId"]
        callback.status = reply.get("status") or CallbackStatus.RUNNING
        callback.save(update_fields=["external_id", "status"])
    return callback


# --- the webhook inbox -------------------------------------------------------------------


class WebhookUnauthorized(Exception):
    pass


@dataclass(frozen=True)
class Receipt:
    delivery: WebhookDelivery
    events: int
    new_events: int


def authenticate(header_value: str | None) -> Callback:
    """The callback whose secret header this is; constant-time compare against current and previous secret."""
    if not header_value or "." not in header_value:
        raise WebhookUnauthorized("missing secret header")
    pk, _, secret = header_value.partition(".")
    if not pk.isdigit():
        raise WebhookUnauthorized("malformed secret header")
    callback = Callback.objects.filter(pk=int(pk)).only("pk", "secret", "previous_secret").first()
    if callback is None:
        # Compare anyway so an unknown pk costs the same time as a wrong secret.
        hmac.compare_digest(secret, "x" * 43)
        raise WebhookUnauthorized("unknown callback")
    ok = hmac.compare_digest(secret.encode(), callback.secret.encode())
    if callback.previous_secret:
        ok = hmac.compare_digest(secret.encode(), callback.previous_secret.encode()) or ok
    if not ok:
        raise WebhookUnauthorized("wrong secret")
    return callback


def receive_delivery(*, callback: Callback, body: bytes, headers: dict, query: str = "", remote_addr: str | None = None) -> Receipt:
    """Store a notification as received, then apply its events, in one transaction.

    A body we cannot read is stored and flagged (the sender is told we received it, so it
    does not retry forever); a database failure propagates so the caller answers 500.
    """
    from remotes.services import adopt_orphan_events, apply_events

    clean_headers = {k: v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}
    text = body.decode("utf-8", errors="replace")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            callback=callback, body=text, headers=clean_headers, query=query[:2000], remote_addr=remote_addr
        )
        try:
            parsed = parse_remote_events(body)
        except WebhookPayloadError as exc:
            delivery.outcome = WebhookDelivery.Outcome.UNPARSEABLE
            delivery.error = str(exc)
            delivery.save(update_fields=["outcome", "error"])
            log.warning("webhook delivery %s unparseable: %s", delivery.pk, exc)
            return Receipt(delivery=delivery, events=0, new_events=0)
        result = apply_events(parsed.events, delivery=delivery)
        delivery.outcome = WebhookDelivery.Outcome.PROCESSED
        delivery.event_count = len(parsed.events)
        delivery.new_event_count = result.new_events
        delivery.save(update_fields=["outcome", "event_count", "new_event_count"])
    if result.orphan_action_ids:
        # Events for actions whose submit is recording its id right now: that commit and
        # ours may have crossed, so look again now that ours is visible (the submit side
        # does the same after its own commit; whichever comes second adopts them).
        adopt_orphan_events(remote_action_ids=result.orphan_action_ids)
    return Receipt(delivery=delivery, events=len(parsed.events), new_events=result.new_events)
