"""Callbacks at Stellantis, and the webhook inbox that receives their notifications."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import time
import traceback
from contextlib import nullcontext
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from stellantis.client import FleetClient
from stellantis.errors import StellantisError
from stellantis.vocabulary import NOTIFICATION_HORIZON_SECONDS, CallbackStatus, RemoteType, RetryPolicy
from stellantis.webhook import WebhookPayloadError, parse_remote_events

from . import rules
from .models import Callback, WebhookDelivery, new_secret

log = logging.getLogger(__name__)

# Headers never written to the raw store: they carry secrets or nothing useful.
_SECRET_HEADERS = {"authorization", "cookie", settings.WEBHOOK_SECRET_HEADER.lower()}


def default_webhook_target() -> str:
    return settings.PORTAL_PUBLIC_URL + reverse("stellantis-webhook")


class CallbackSyncError(Exception):
    """Stellantis refused or could not be reached; the local record is unchanged."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {"non_field_errors": message}


class CallbackInvalid(CallbackSyncError):
    pass


class CallbackInUse(CallbackSyncError):
    pass


EDITABLE_FIELDS = (
    "label", "target", "name", "attributes", "retry_policy", "retry_number", "retry_delay",
    "batch_size", "batch_time_window", "remote_types",
)


def _validate(callback: Callback) -> None:
    errors = callback.rule_errors()
    if errors:
        raise CallbackInvalid("; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)


def _vendor_call(what: str, call):
    try:
        return call()
    except StellantisError as exc:
        raise CallbackSyncError(f"Stellantis did not {what}: {exc.vendor_message or exc}. Nothing was changed here.") from exc


def create_callback(*, fleet, client: FleetClient | None = None, **fields) -> Callback:
    """Register a callback at Stellantis, then keep it locally with the id it was given.

    Nothing is written here before Stellantis accepts it: a refusal leaves nothing behind,
    and no database transaction is held open across the HTTP call.
    """
    client = client or FleetClient.from_settings()
    fields.setdefault("target", default_webhook_target())
    fields.setdefault("remote_types", list(RemoteType.values))
    fields["batch_time_window"] = rules.time_window(fields.get("batch_size"), fields.get("batch_time_window"))
    callback = Callback(fleet=fleet, **{k: v for k, v in fields.items() if k in EDITABLE_FIELDS})
    _validate(callback)
    reply = _vendor_call("create the callback", lambda: client.create_callback(fleet.external_id, callback.subscribe_body()))
    callback.external_id = reply["callbackId"]
    callback.status = reply.get("status") or CallbackStatus.RUNNING
    callback.last_synced_at = timezone.now()
    callback.save()
    return callback


def update_callback(*, callback: Callback, changes: dict, client: FleetClient | None = None) -> Callback:
    """Replace the whole callback at Stellantis (PUT), then save it here. Refused → nothing changes."""
    client = client or FleetClient.from_settings()
    candidate = Callback.objects.get(pk=callback.pk)
    for field, value in changes.items():
        if field not in EDITABLE_FIELDS:
            raise CallbackInvalid(f"{field} cannot be edited", errors={field: "cannot be edited"})
        setattr(candidate, field, value)
    # Clearing the batch size turns batching off: its window goes with it.
    candidate.batch_time_window = rules.time_window(candidate.batch_size, candidate.batch_time_window) if candidate.batch_size else None
    _validate(candidate)
    return _replace_at_vendor(candidate, "accept the change", client)


def _replace_at_vendor(candidate: Callback, what: str, client: FleetClient) -> Callback:
    """PUT the whole candidate; only once Stellantis has it is the local row overwritten."""
    _vendor_call(what, lambda: client.replace_callback(candidate.fleet.external_id, candidate.external_id, candidate.subscribe_body()))
    candidate.last_synced_at = timezone.now()
    candidate.save()
    return candidate


def set_callback_status(*, callback: Callback, status: str, client: FleetClient | None = None) -> Callback:
    """Pause or resume at Stellantis; a paused callback posts nothing and cannot be used to send."""
    if status not in (CallbackStatus.RUNNING, CallbackStatus.PAUSED):
        raise CallbackInvalid("status must be Running or Paused", errors={"status": "must be Running or Paused"})
    client = client or FleetClient.from_settings()
    reply = _vendor_call(
        f"set the status to {status}",
        lambda: client.set_callback_status(callback.fleet.external_id, callback.external_id, status),
    )
    callback.status = (reply or {}).get("status") or status
    callback.last_synced_at = timezone.now()
    callback.save(update_fields=["status", "last_synced_at", "updated_at"])
    return callback


def pending_action_count(callback: Callback) -> int:
    from remotes.models import RemoteAction

    return RemoteAction.objects.filter(callback=callback).open().count()


def delete_callback(*, callback: Callback, client: FleetClient | None = None) -> None:
    """Delete at Stellantis, refused while an action sent through it is still pending.

    The row stays here, marked deleted, because finished actions point at it.
    """
    pending = pending_action_count(callback)
    if pending:
        raise CallbackInUse(
            f"{pending} action(s) sent through this callback are still pending; Stellantis refuses to delete it until "
            "they finish. Pause it instead to stop new commands."
        )
    client = client or FleetClient.from_settings()
    _vendor_call("delete the callback", lambda: client.delete_callback(callback.fleet.external_id, callback.external_id))
    callback.deleted_at = timezone.now()
    callback.save(update_fields=["deleted_at", "updated_at"])
    forget_secrets(callback)


def rotate_secret(*, callback: Callback, client: FleetClient | None = None) -> Callback:
    """Give the callback a new secret. The old one stays valid for the vendor's retry horizon,
    so notifications already queued with it at Stellantis are still accepted."""
    client = client or FleetClient.from_settings()
    candidate = Callback.objects.get(pk=callback.pk)
    candidate.previous_secret, candidate.secret = candidate.secret, new_secret()
    candidate.previous_secret_until = timezone.now() + dt.timedelta(seconds=NOTIFICATION_HORIZON_SECONDS)
    candidate.secret_at_vendor = True
    _replace_at_vendor(candidate, "accept the new secret", client)
    forget_secrets(candidate)
    return candidate


def _fields_from_vendor(remote: dict) -> dict:
    subscribe = remote.get("subscribe") or {}
    webhook = ((subscribe.get("callback") or {}).get("webhook")) or {}
    retry = subscribe.get("retryPolicy") or {}
    batch = subscribe.get("batchNotify") or {}
    return {
        "label": subscribe.get("label") or "",
        "target": webhook.get("target") or "",
        "name": webhook.get("name") or "",
        "attributes": [a for a in webhook.get("attributes") or [] if a.get("key") != settings.WEBHOOK_SECRET_HEADER],
        "retry_policy": retry.get("policy") or RetryPolicy.NONE,
        "retry_number": retry.get("retryNumber", 3),
        "retry_delay": retry.get("retryDelay", 10),
        "batch_size": batch.get("size"),
        "batch_time_window": rules.time_window(batch.get("size"), batch.get("timeWindow")) if batch.get("size") else None,
        "remote_types": list(subscribe.get("remoteTypes") or []),
    }


def _vendor_secret(remote: dict) -> str:
    webhook = (((remote.get("subscribe") or {}).get("callback") or {}).get("webhook")) or {}
    for attr in webhook.get("attributes") or []:
        if attr.get("key") == settings.WEBHOOK_SECRET_HEADER:
            return str(attr.get("value") or "")
    return ""


@dataclass(frozen=True)
class CallbackImport:
    created: int
    updated: int
    without_secret: int


def import_callbacks(*, fleet, client: FleetClient | None = None) -> CallbackImport:
    """Mirror every callback Stellantis holds for the fleet (all pages)."""
    client = client or FleetClient.from_settings()
    remotes = _vendor_call("list the callbacks", lambda: list(client.callbacks(fleet.external_id)))
    known = {c.external_id: c for c in Callback.objects.filter(fleet=fleet, external_id__in=[r.get("id") for r in remotes])}
    created = updated = without_secret = 0
    now = timezone.now()
    with transaction.atomic():
        for remote in remotes:
            fields = _fields_from_vendor(remote)
            callback = known.get(remote["id"])
            if callback is None:
                callback = Callback(fleet=fleet, external_id=remote["id"])
                created += 1
            else:
                updated += 1
            for field, value in fields.items():
                setattr(callback, field, value)
            callback.status = remote.get("status") or CallbackStatus.RUNNING
            callback.last_synced_at = now
            callback.deleted_at = None
            # Our webhook only trusts the secret it generated for this very row (its key and
            # secret exist before the row is first saved).
            callback.secret_at_vendor = hmac.compare_digest(_vendor_secret(remote), callback.secret_header_value)
            without_secret += not callback.secret_at_vendor
            callback.save()
    return CallbackImport(created=created, updated=updated, without_secret=without_secret)


@dataclass(frozen=True)
class Difference:
    field: str
    ours: object
    theirs: object


def compare_with_vendor(*, callback: Callback, client: FleetClient | None = None) -> list[Difference]:
    """What Stellantis holds for this callback that differs from what we hold (empty: in sync)."""
    client = client or FleetClient.from_settings()
    remote = _vendor_call("return the callback", lambda: client.callback(callback.fleet.external_id, callback.external_id))
    theirs = {**_fields_from_vendor(remote), "status": remote.get("status")}
    ours = {f: getattr(callback, f) for f in EDITABLE_FIELDS} | {"status": callback.status}
    diffs = [Difference(f, ours[f], theirs.get(f)) for f in ours if _normal(f, ours[f]) != _normal(f, theirs.get(f))]
    if not hmac.compare_digest(_vendor_secret(remote), callback.secret_header_value):
        diffs.append(Difference("secret", "(our secret)", "(missing or different)"))
    return diffs


def _normal(field: str, value):
    return sorted(value or []) if field == "remote_types" else value


# --- the webhook inbox -------------------------------------------------------------------


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


def forget_secrets(callback: Callback) -> None:
    """Drop this process's cached secrets of a callback (other processes: within a minute)."""
    _SECRETS.pop(callback.webhook_key, None)


def authenticate(header_value: str | None) -> Callback:
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
    from remotes.services import adopt_orphan_events, apply_events

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
    """PostgreSQL: the same as the ORM branch of receive_delivery, one round trip (remotes.pg_ingest)."""
    from remotes.pg_ingest import store_and_apply
    from remotes.services import ApplyResult, enqueue_status_refresh

    row = {k: v for k, v in raw.items() if k != "event_count"}
    row["now"] = timezone.now()
    # A savepoint only when a caller holds a transaction: alone, the statement is its own.
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        done = store_and_apply(delivery=row, events=events)
    for vehicle_id in done.refreshed_vehicle_ids:
        transaction.on_commit(lambda vid=vehicle_id: enqueue_status_refresh(vid))
    return done.delivery_id, ApplyResult(new_events=done.new_events, orphan_action_ids=done.orphan_action_ids)


def replay_delivery(*, delivery: WebhookDelivery) -> Receipt:
    """Process a stored delivery again (after a fix, say). Safe: known events are no-ops."""
    from remotes.services import adopt_orphan_events, apply_events

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
