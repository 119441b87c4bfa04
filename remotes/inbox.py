"""The webhook inbox: authenticate a Stellantis notification, store it raw, apply its events.

Raw first (STYLE.md): a delivery row is written whatever the body says, with the outcome of
its processing beside it, and can be replayed from the admin. On PostgreSQL a delivery is
stored and applied by one statement (`pg_ingest`); elsewhere, and for replays, through the
ORM (`events.apply_events`).
"""

from __future__ import annotations

import hmac
import logging
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from callbacks.models import Callback
from stellantis.webhook import WebhookPayloadError, parse_remote_events

from . import pg_ingest
from .events import ApplyResult, adopt_orphan_events, apply_events, enqueue_status_refresh
from .models import WebhookDelivery

log = logging.getLogger(__name__)

# Headers never written to the raw store: they carry secrets or nothing useful.
_SECRET_HEADERS = {"authorization", "cookie", settings.WEBHOOK_SECRET_HEADER.lower()}


class WebhookUnauthorized(Exception):
    pass


@dataclass(frozen=True)
class Receipt:
    delivery_id: int
    outcome: str
    events: int
    new_events: int


# webhook_key → (fetched at, pk, secret, previous secret, previous valid until). Every
# delivery would otherwise start with the same SELECT; a mismatch always re-reads the row,
# so a rotation is seen at once, and an entry lives a minute at most.
_SECRETS: dict[str, tuple] = {}
_SECRETS_TTL = 60.0


def _secrets_for(key: str, *, fresh: bool) -> tuple | None:
    now = time.monotonic()
    entry = _SECRETS.get(key)
    if entry is None or fresh or now - entry[0] > _SECRETS_TTL:
        row = Callback.objects.filter(webhook_key=key).order_by().values_list("pk", "secret", "previous_secret", "previous_secret_until").first()
        if row is None:
            _SECRETS.pop(key, None)
            return None
        if len(_SECRETS) > 10_000:
            _SECRETS.clear()
        entry = _SECRETS[key] = (now, *row)
    return entry


def _matches(secret: str, entry: tuple) -> bool:
    _, _, current, previous, previous_until = entry
    ok = hmac.compare_digest(secret.encode(), current.encode())
    if previous and (previous_until is None or previous_until > timezone.now()):
        ok = hmac.compare_digest(secret.encode(), previous.encode()) or ok
    return ok


def forget_secrets(*, instance: Callback, **_) -> None:
    """Drop this process's cached secrets of a callback when it is saved (rotation, deletion);
    other processes re-read it on the first mismatch, or within a minute."""
    _SECRETS.pop(instance.webhook_key, None)


# A signal, not a call from callbacks.services: the inbox builds on callbacks, not the reverse.
post_save.connect(forget_secrets, sender=Callback, dispatch_uid="inbox-forget-secrets")


def authenticate(header_value: str | None) -> int:
    """The callback whose secret header this is; constant-time compare against current and previous secret.

    Returns the callback's pk (enough to link the delivery; no model instance on the hot path).
    """
    if not header_value or "." not in header_value:
        raise WebhookUnauthorized("missing secret header")
    key, _, secret = header_value.partition(".")
    key = key[:16]
    entry = _secrets_for(key, fresh=False)
    if entry is not None and not _matches(secret, entry):
        entry = _secrets_for(key, fresh=True)  # rotated since we cached it?
    if entry is None:
        # Compare anyway so an unknown key costs the same time as a wrong secret.
        hmac.compare_digest(secret, "x" * 43)
        raise WebhookUnauthorized("unknown callback")
    if not _matches(secret, entry):
        raise WebhookUnauthorized("wrong secret")
    return entry[1]


def receive_delivery(*, callback_id: int, body: bytes, headers: dict, query: str = "", remote_addr: str | None = None) -> Receipt:
    """Store a notification as received and apply its events, in one transaction.

    Raw first: the delivery row is written whatever the body says. A body we cannot read,
    or whose processing fails on our side, is stored and flagged, and the sender is told
    we received it (it would retry forever otherwise); a database failure propagates and
    rolls everything back, so the caller answers 500 and the sender retries.
    """
    clean_headers = {k: v for k, v in headers.items() if k.lower() not in _SECRET_HEADERS}
    try:
        parsed, outcome, error = parse_remote_events(body), WebhookDelivery.Outcome.PROCESSED, ""
    except WebhookPayloadError as exc:
        parsed, outcome, error = None, WebhookDelivery.Outcome.UNPARSEABLE, str(exc)
        log.warning("webhook delivery unparseable: %s", exc)
    events = parsed.events if parsed else []
    raw = {
        "callback_id": callback_id,
        # As received, but text: bad UTF-8 and NUL (which PostgreSQL text refuses) become U+FFFD.
        "body": body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        "headers": clean_headers,
        "query": query[:2000],
        "remote_addr": remote_addr,
        "event_count": len(events),
    }
    result = None
    try:
        if events and connection.vendor == "postgresql":
            delivery_id, result = _store_and_apply_in_one_statement(raw, events)
        else:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(outcome=outcome, error=error, **raw)
                delivery_id = delivery.pk
                if events:
                    result = apply_events(events, delivery=delivery)
    except DatabaseError:
        raise
    except Exception:
        # A bug of ours, not a database failure: the transaction is rolled back whole
        # (nothing half-applied), the raw delivery is stored again flagged, and the sender
        # is told we received it. Replay it from the admin once fixed.
        log.exception("webhook delivery could not be processed")
        result, outcome = None, WebhookDelivery.Outcome.FAILED
        delivery_id = WebhookDelivery.objects.create(outcome=outcome, error=traceback.format_exc()[-4000:], **raw).pk
    if result and result.orphan_action_ids:
        # Events for actions whose submit is recording its id right now: that commit and
        # ours may have crossed, so look again now that ours is visible (the submit side
        # does the same after its own commit; whichever comes second adopts them).
        adopt_orphan_events(remote_action_ids=result.orphan_action_ids)
    return Receipt(delivery_id=delivery_id, outcome=outcome, events=len(events), new_events=result.new_events if result else 0)


def _store_and_apply_in_one_statement(raw: dict, events):
    """PostgreSQL: the same as the ORM branch of receive_delivery, one round trip (pg_ingest)."""
    row = {k: v for k, v in raw.items() if k != "event_count"}
    row["now"] = timezone.now()
    # A savepoint only when a caller holds a transaction: alone, the statement is its own.
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        done = pg_ingest.store_and_apply(delivery=row, events=events)
    for vehicle_id in done.refreshed_vehicle_ids:
        transaction.on_commit(lambda vid=vehicle_id: enqueue_status_refresh(vid))
    return done.delivery_id, ApplyResult(new_events=done.new_events, orphan_action_ids=done.orphan_action_ids)


def replay_delivery(*, delivery: WebhookDelivery) -> Receipt:
    """Process a stored delivery again (after a fix, say). Safe: known events are no-ops."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        try:
            parsed = parse_remote_events(delivery.body.encode())
        except WebhookPayloadError as exc:
            delivery.outcome, delivery.error = WebhookDelivery.Outcome.UNPARSEABLE, str(exc)
            delivery.save(update_fields=["outcome", "error"])
            return Receipt(delivery_id=delivery.pk, outcome=delivery.outcome, events=0, new_events=0)
        already = delivery.events.count()  # stored by its first processing: not new now
        result = apply_events(parsed.events, delivery=delivery)
        result.new_events -= already
        delivery.outcome, delivery.error = WebhookDelivery.Outcome.PROCESSED, ""
        delivery.event_count = len(parsed.events)
        delivery.save(update_fields=["outcome", "error", "event_count"])
    if result.orphan_action_ids:
        adopt_orphan_events(remote_action_ids=result.orphan_action_ids)
    return Receipt(delivery_id=delivery.pk, outcome=delivery.outcome, events=len(parsed.events), new_events=result.new_events)
