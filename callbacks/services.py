"""Callbacks at Stellantis: create, change, pause, delete, import and compare them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from audit import services as audit
from core.errors import ServiceError
from stellantis.callbacks import RemoteCallback, Subscription
from stellantis.client import FleetClient
from stellantis.errors import NotFound, StellantisError
from stellantis.vocabulary import NOTIFICATION_HORIZON_SECONDS, CallbackStatus, RemoteType

from . import rules
from .models import Callback, new_secret

log = logging.getLogger(__name__)

def default_webhook_target() -> str:
    return settings.PORTAL_PUBLIC_URL + reverse("stellantis-webhook")


class CallbackSyncError(ServiceError):
    """Stellantis refused or could not be reached; the local record is unchanged."""

    status, code = 502, "vendor_refused"


class CallbackInvalid(CallbackSyncError):
    status, code = 400, "invalid"


class CallbackInUse(CallbackSyncError):
    status, code = 409, "callback_in_use"


def _validate(callback: Callback) -> None:
    errors = callback.rule_errors()
    if errors:
        raise CallbackInvalid("; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)


def _vendor_call(what: str, call):
    try:
        return call()
    except StellantisError as exc:
        raise CallbackSyncError(f"Stellantis did not {what}: {exc.for_people}. Nothing was changed here.") from exc


def _audited(callback: Callback) -> dict:
    """The fields an audit entry keeps of a callback. Attribute values may be a partner's own
    credentials (an Authorization header for their endpoint): kept as their keys only."""
    values = audit.snapshot(callback, Callback.EDITABLE_FIELDS + ("status",))
    values["attributes"] = [{"type": a.get("type"), "key": a.get("key"), "value": "(hidden)"} for a in callback.attributes]
    return values


def _record(verb: str, callback: Callback, by, changes: dict | None = None) -> None:
    audit.record(f"callback.{verb}", actor=by, organisation=callback.fleet.organisation_id, obj=callback, changes=changes)


def create_callback(*, fleet, client: FleetClient | None = None, by=None, **fields) -> Callback:
    """Register a callback at Stellantis, then keep it locally with the id it was given.

    Nothing is written here before Stellantis accepts it: a refusal leaves nothing behind,
    and no database transaction is held open across the HTTP call.
    """
    client = client or FleetClient.from_settings()
    fields.setdefault("target", default_webhook_target())
    fields.setdefault("remote_types", list(RemoteType.values))
    fields["batch_time_window"] = rules.time_window(fields.get("batch_size"), fields.get("batch_time_window"))
    callback = Callback(fleet=fleet, **{k: v for k, v in fields.items() if k in Callback.EDITABLE_FIELDS})
    _validate(callback)
    created = _vendor_call("create the callback", lambda: client.create_callback(fleet.external_id, callback.subscription()))
    callback.external_id = created.id
    callback.status = created.status
    callback.last_synced_at = timezone.now()
    with transaction.atomic():
        callback.save()
        _record("created", callback, by, audit.diff({}, _audited(callback)))
    return callback


def update_callback(*, callback: Callback, changes: dict, client: FleetClient | None = None, by=None) -> Callback:
    """Replace the whole callback at Stellantis (PUT), then save it here. Refused → nothing changes."""
    client = client or FleetClient.from_settings()
    candidate = Callback.objects.get(pk=callback.pk)
    before = _audited(candidate)
    for field, value in changes.items():
        if field not in Callback.EDITABLE_FIELDS:
            raise CallbackInvalid(f"{field} cannot be edited", errors={field: "cannot be edited"})
        setattr(candidate, field, value)
    # Clearing the batch size turns batching off: its window goes with it.
    candidate.batch_time_window = rules.time_window(candidate.batch_size, candidate.batch_time_window) if candidate.batch_size else None
    _validate(candidate)
    return _replace_at_vendor(candidate, "accept the change", client, record=lambda c: _record("changed", c, by, audit.diff(before, _audited(c))))


def _replace_at_vendor(candidate: Callback, what: str, client: FleetClient, record) -> Callback:
    """PUT the whole candidate; only once Stellantis has it is the local row overwritten (and audited)."""
    _vendor_call(what, lambda: client.replace_callback(candidate.fleet.external_id, candidate.external_id, candidate.subscription()))
    candidate.last_synced_at = timezone.now()
    with transaction.atomic():
        candidate.save()
        record(candidate)
    return candidate


def set_callback_status(*, callback: Callback, status: str, client: FleetClient | None = None, by=None) -> Callback:
    """Pause or resume at Stellantis; a paused callback posts nothing and cannot be used to send."""
    if status not in (CallbackStatus.RUNNING, CallbackStatus.PAUSED):
        raise CallbackInvalid("status must be Running or Paused", errors={"status": "must be Running or Paused"})
    client = client or FleetClient.from_settings()
    before = callback.status
    callback.status = _vendor_call(
        f"set the status to {status}",
        lambda: client.set_callback_status(callback.fleet.external_id, callback.external_id, status),
    )
    callback.last_synced_at = timezone.now()
    with transaction.atomic():
        callback.save(update_fields=["status", "last_synced_at", "updated_at"])
        verb = "paused" if callback.status == CallbackStatus.PAUSED else "resumed"
        _record(verb, callback, by, audit.diff({"status": before}, {"status": callback.status}))
    return callback


def pending_action_count(callback: Callback) -> int:
    # Through the reverse relation: actions live in `remotes`, which builds on callbacks.
    return callback.remote_actions.open().count()


def delete_callback(*, callback: Callback, client: FleetClient | None = None, by=None) -> None:
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
    with transaction.atomic():
        callback.save(update_fields=["deleted_at", "updated_at"])
        _record("deleted", callback, by)


def rotate_secret(*, callback: Callback, client: FleetClient | None = None, by=None) -> Callback:
    """Give the callback a new secret. The old one stays valid for the vendor's retry horizon,
    so notifications already queued with it at Stellantis are still accepted."""
    client = client or FleetClient.from_settings()
    candidate = Callback.objects.get(pk=callback.pk)
    candidate.previous_secret, candidate.secret = candidate.secret, new_secret()
    candidate.previous_secret_until = timezone.now() + dt.timedelta(seconds=NOTIFICATION_HORIZON_SECONDS)
    candidate.secret_at_vendor = True
    # Never the secrets themselves: only that one was replaced, and until when the old one holds.
    changes = {"previous_secret_until": [None, candidate.previous_secret_until.isoformat()]}
    _replace_at_vendor(candidate, "accept the new secret", client, record=lambda c: _record("secret_rotated", c, by, changes))
    return candidate


def _fields_from(subscription: Subscription | None) -> dict:
    """The Callback fields a vendor subscription says; our secret header is not one of them."""
    subscription = subscription or Subscription(target="", remote_types=[])
    defaults = {f: Callback._meta.get_field(f).get_default() for f in ("retry_number", "retry_delay")}
    return {
        "label": subscription.label,
        "target": subscription.target,
        "name": subscription.name,
        "attributes": [a for a in subscription.attributes if a.get("key") != settings.WEBHOOK_SECRET_HEADER],
        "retry_policy": subscription.retry_policy,
        # Absent under a None policy: keep the model's defaults, as a new callback would have.
        "retry_number": subscription.retry_number if subscription.retry_number is not None else defaults["retry_number"],
        "retry_delay": subscription.retry_delay if subscription.retry_delay is not None else defaults["retry_delay"],
        "batch_size": subscription.batch_size,
        "batch_time_window": rules.time_window(subscription.batch_size, subscription.batch_time_window) if subscription.batch_size else None,
        "remote_types": list(subscription.remote_types),
    }


def _vendor_secret(remote: RemoteCallback) -> str:
    return remote.subscription.attribute(settings.WEBHOOK_SECRET_HEADER) if remote.subscription else ""


@dataclass(frozen=True)
class CallbackImport:
    created: int
    updated: int
    without_secret: int


def import_callbacks(*, fleet, client: FleetClient | None = None, by=None) -> CallbackImport:
    """Mirror every callback Stellantis holds for the fleet (all pages)."""
    client = client or FleetClient.from_settings()
    remotes = _vendor_call("list the callbacks", lambda: list(client.callbacks(fleet.external_id)))
    known = {c.external_id: c for c in Callback.objects.filter(fleet=fleet, external_id__in=[r.id for r in remotes])}
    created = updated = without_secret = 0
    now = timezone.now()
    with transaction.atomic():
        for remote in remotes:
            fields = _fields_from(remote.subscription)
            callback = known.get(remote.id)
            if callback is None:
                callback = Callback(fleet=fleet, external_id=remote.id)
                before, created = {}, created + 1
            else:
                before, updated = _audited(callback), updated + 1
            for field, value in fields.items():
                setattr(callback, field, value)
            callback.status = remote.status
            callback.last_synced_at = now
            callback.deleted_at = None
            # Our webhook only trusts the secret it generated for this very row (its key and
            # secret exist before the row is first saved).
            callback.secret_at_vendor = hmac.compare_digest(_vendor_secret(remote), callback.secret_header_value)
            without_secret += not callback.secret_at_vendor
            callback.save()
            changes = audit.diff(before, _audited(callback))
            if changes or not before:
                _record("imported", callback, by, changes)
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
    theirs = {**_fields_from(remote.subscription), "status": remote.status}
    ours = {f: getattr(callback, f) for f in Callback.EDITABLE_FIELDS} | {"status": callback.status}
    diffs = [Difference(f, ours[f], theirs.get(f)) for f in ours if _normal(f, ours[f]) != _normal(f, theirs.get(f))]
    if not hmac.compare_digest(_vendor_secret(remote), callback.secret_header_value):
        diffs.append(Difference("secret", "(our secret)", "(missing or different)"))
    return diffs


def _normal(field: str, value):
    return sorted(value or []) if field == "remote_types" else value


# --- reading statuses back -------------------------------------------------------------


@dataclass
class StatusRefresh:
    """What one pass of `refresh_callback_statuses` found."""

    checked: int = 0
    changed: list[str] = dataclasses.field(default_factory=list)  # "label: Running → Failed"
    failed: int = 0  # callbacks Stellantis reports Failed
    gone: list[str] = dataclasses.field(default_factory=list)  # no longer at Stellantis: marked deleted
    errors: list[str] = dataclasses.field(default_factory=list)  # could not be read this time

    def as_dict(self) -> dict:
        return {"checked": self.checked, "changed": self.changed, "failed": self.failed, "gone": self.gone, "errors": self.errors}


def refresh_callback_statuses(*, callbacks=None, client: FleetClient | None = None) -> StatusRefresh:
    """Read the status of every live callback back from Stellantis (q2 schedule `callbacks-refresh-status`).

    Stellantis can turn a callback Failed on its own (its webhook kept refusing): the
    portal only learns it here, and `Callback.objects.serving()` then stops choosing it
    for new commands. Each callback is read on its own: a vendor error is counted and the
    pass goes on. A callback Stellantis answers 404 for is marked deleted (as
    `delete_callback` does, its row kept for the actions' history) only once the fleet's
    list of callbacks, read successfully, confirms it is gone: a 404 from a wrong base URL
    or a vanished fleet must not delete every callback here. No transaction is held open
    across a call to Stellantis; the row is written with a conditional UPDATE, so a pause,
    resume or delete made meanwhile from a page is not overwritten.
    """
    client = client or FleetClient.from_settings()
    queryset = Callback.objects.all() if callbacks is None else callbacks
    result = StatusRefresh()
    listings: dict[str, set[str] | None] = {}
    for callback in queryset.live().exclude(external_id="").select_related("fleet").order_by("pk"):
        result.checked += 1
        fleet_id = callback.fleet.external_id
        try:
            remote = client.callback(fleet_id, callback.external_id)
        except NotFound as exc:
            if fleet_id not in listings:
                listings[fleet_id] = _vendor_callback_ids(client, fleet_id)
            known = listings[fleet_id]
            if known is None or callback.external_id in known:
                result.errors.append(f"{callback}: {exc}")
                continue
            with transaction.atomic():
                if Callback.objects.filter(pk=callback.pk, deleted_at__isnull=True).update(deleted_at=timezone.now(), last_synced_at=timezone.now()):
                    log.warning("callback %s (%s) is no longer at Stellantis: marked deleted", callback.pk, callback.external_id)
                    result.gone.append(str(callback))
                    _record("deleted", callback, None, {"reason": [None, "no longer at Stellantis"]})
            continue
        except StellantisError as exc:
            log.warning("callback %s (%s): status not read back: %s", callback.pk, callback.external_id, exc)
            result.errors.append(f"{callback}: {exc}")
            continue
        if remote.status not in CallbackStatus.values:
            log.warning("callback %s (%s): Stellantis reports an unknown status %r", callback.pk, callback.external_id, remote.status)
            result.errors.append(f"{callback}: unknown status {remote.status!r}")
            continue
        result.failed += remote.status == CallbackStatus.FAILED
        # Conditional on the status read before the call: a change made meanwhile wins (the next pass sees it).
        updated = Callback.objects.filter(pk=callback.pk, status=callback.status, deleted_at__isnull=True).update(
            status=remote.status, last_synced_at=timezone.now(), updated_at=timezone.now()
        )
        if updated and remote.status != callback.status:
            _record("status_changed", callback, None, {"status": [callback.status, remote.status]})
            log.warning("callback %s (%s) is %s at Stellantis (was %s here)", callback.pk, callback.external_id, remote.status, callback.status)
            result.changed.append(f"{callback}: {callback.status} → {remote.status}")
    return result


def _vendor_callback_ids(client: FleetClient, fleet_id: str) -> set[str] | None:
    """The ids of the callbacks Stellantis lists for the fleet; None when it cannot be listed."""
    try:
        return {remote.id for remote in client.callbacks(fleet_id)}
    except StellantisError as exc:
        log.warning("fleet %s: callbacks not listed: %s", fleet_id, exc)
        return None
