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
from django.db import DatabaseError, DataError, connection, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from audit import services as audit
from callbacks.models import Callback
from stellantis.webhook import ParsedDelivery, attributes_of_broken_body, parse_remote_events

from . import pg_ingest
from .events import ApplyResult, adopt_orphan_events, apply_events, enqueue_status_refresh
from .models import WebhookDelivery
from .signals import delivery_received_now, events_applied_on_commit, succeeded_ids

log = logging.getLogger(__name__)

# Where our secret may arrive, lower-cased: the header we register, and the same name with
# the "x-" the vendor's spec says it adds to header attributes ("added as http header
# extension x-…"). The same names are accepted as the key of a Body attribute.
_SECRET_NAMES = (settings.WEBHOOK_SECRET_HEADER.lower(), "x-" + settings.WEBHOOK_SECRET_HEADER.lower())
# Headers never written to the raw store: they carry secrets or nothing useful.
_SECRET_HEADERS = {"authorization", "cookie", *_SECRET_NAMES}
_SECRET_REMOVED = "(secret removed)"


class WebhookUnauthorized(Exception):
    pass


class _CallbackGone(Exception):
    """The callback was deleted (perhaps by another process a moment ago): roll back, store nothing."""


@dataclass(frozen=True)
class Receipt:
    delivery_id: int
    outcome: str
    events: int
    new_events: int
    refused: int = 0
    event_dates: tuple = ()  # the readable events' eventDates (metrics: the vendor's lag)


# webhook_key → (fetched at, pk, secret, previous secret, previous valid until, deleted at).
# Every delivery would otherwise start with the same SELECT; a mismatch always re-reads the
# row, so a rotation is seen at once, and an entry lives a minute at most. The cache is only
# a first filter: what decides is the callback row as the delivery is written (the statement
# of `pg_ingest`, `_callback_is_live` in the ORM branch of `receive_delivery`: a deleted
# callback stores and applies nothing), so a deletion by another process is obeyed at once.
_SECRETS: dict[str, tuple] = {}
_SECRETS_TTL = 60.0


def _secrets_for(key: str, *, fresh: bool) -> tuple | None:
    now = time.monotonic()
    entry = _SECRETS.get(key)
    if entry is None or fresh or now - entry[0] > _SECRETS_TTL:
        row = (
            Callback.objects.filter(webhook_key=key).order_by()
            .values_list("pk", "secret", "previous_secret", "previous_secret_until", "deleted_at").first()
        )
        if row is None:
            _SECRETS.pop(key, None)
            return None
        if len(_SECRETS) > 10_000:
            _SECRETS.clear()
        entry = _SECRETS[key] = (now, *row)
    return entry


def _matches(secret: str, entry: tuple) -> bool:
    _, _, current, previous, previous_until, deleted_at = entry
    if deleted_at is not None:
        return False  # neither secret, nor the previous one of a rotation in flight
    # Bytes: compare_digest refuses str with non-ASCII characters, which a sender may well send.
    given = secret.encode("utf-8", "surrogatepass")
    ok = hmac.compare_digest(given, current.encode())
    if previous and (previous_until is None or previous_until > timezone.now()):
        ok = hmac.compare_digest(given, previous.encode()) or ok
    return ok


def forget_secrets(*, instance: Callback, **_) -> None:
    """Drop this process's cached secrets of a callback when it is saved (rotation, deletion);
    other processes re-read it on the first mismatch, or within a minute (a deletion they
    learn from the database at their next delivery: see `_secrets_for`)."""
    _SECRETS.pop(instance.webhook_key, None)


def _forget_callback(callback_id: int) -> None:
    """Drop a callback's cached secrets by pk: the database said it is deleted (rare; a scan is fine)."""
    for key, entry in list(_SECRETS.items()):
        if entry[1] == callback_id:
            _SECRETS.pop(key, None)


# A signal, not a call from callbacks.services: the inbox builds on callbacks, not the reverse.
post_save.connect(forget_secrets, sender=Callback, dispatch_uid="inbox-forget-secrets")


def authenticate(*values: str | None) -> int:
    """The callback whose secret one of `values` carries ("<webhook_key>.<secret>"), the first that does.

    Constant-time compare against current and previous secret. Several values because the
    secret may arrive in more than one place (a header, its x- name, a Body attribute).
    Returns the callback's pk (enough to link the delivery; no model instance on the hot path).
    """
    reason = "missing secret"
    for value in values:
        if not isinstance(value, str) or "." not in value:
            continue
        key, _, secret = value.partition(".")
        key = key[:16]
        # Our keys are hex (new_webhook_key): anything else is nobody's, and is never sent to
        # the database (a NUL in it would be a DataError there, that is a 500).
        known = key.isascii() and key.isalnum()
        entry = _secrets_for(key, fresh=False) if known else None
        if entry is not None and entry[5] is None and not _matches(secret, entry):
            entry = _secrets_for(key, fresh=True)  # rotated since we cached it?
        if entry is None:
            # Compare anyway so an unknown key costs the same time as a wrong secret.
            hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), b"x" * 43)
            reason = "unknown callback" if reason == "missing secret" else reason
            continue
        if _matches(secret, entry):
            return entry[1]
        # Deleted: refused here without asking the database again (the entry says so).
        reason = "deleted callback" if entry[5] is not None else "wrong secret"
    raise WebhookUnauthorized(reason)


def _authenticate(secret_headers: dict[str, str], attributes: list[tuple[str, str]]) -> int:
    """Our secret from the header we register, the same with an x- prefix, or a Body attribute of that name."""
    in_headers = [secret_headers.get(name) for name in _SECRET_NAMES]
    try:
        return authenticate(*in_headers)
    except WebhookUnauthorized as exc:
        # The first two only: each unknown key costs a SELECT, and a sender writes as many as it likes.
        in_body = [value for key, value in attributes if key.lower() in _SECRET_NAMES][:2]
        if not in_body:
            raise
        try:
            return authenticate(*in_body)
        except WebhookUnauthorized as body_exc:
            raise WebhookUnauthorized(f"{exc} in the headers, {body_exc} in the Body attributes") from None


def _as_text(body: bytes) -> tuple[str, str]:
    """The body as text any database stores, and a note when that is not the bytes as they came.

    Bytes that are not UTF-8 are written \\xNN and a NUL \\x00 (neither is valid JSON, so the
    text reads back unambiguously); PostgreSQL text refuses both as they are.
    """
    note = ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text, note = body.decode("utf-8", "backslashreplace"), "bytes that are not UTF-8 are kept written as \\xNN"
    if "\x00" in text:
        text, note = text.replace("\x00", "\\x00"), note or "NUL characters are kept written as \\x00"
    return text, note


def _storable(value: str) -> str:
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def receive_delivery(
    *, body: bytes, headers, query: str = "", remote_addr: str | None = None, over_limit: bool = False
) -> Receipt:
    """`_receive_delivery`, and the `delivery_received` signal telling how it ended (the metrics
    count it; sent at once, costs no SQL, and a failing listener never changes the answer)."""
    received_at = time.time()
    try:
        receipt = _receive_delivery(body=body, headers=headers, query=query, remote_addr=remote_addr, over_limit=over_limit)
    except WebhookUnauthorized:
        delivery_received_now(outcome="unauthorized")
        raise
    except DatabaseError:
        delivery_received_now(outcome="error")
        raise
    delivery_received_now(outcome=receipt.outcome, event_dates=receipt.event_dates, received_at=received_at)
    return receipt


def _receive_delivery(
    *, body: bytes, headers, query: str = "", remote_addr: str | None = None, over_limit: bool = False
) -> Receipt:
    """Authenticate a notification, store it as received and apply its events, in one transaction.

    Raw first: once authenticated, the delivery row is written whatever the body says. A
    body we cannot read (whole, or some of its events), one cut at the size limit
    (`over_limit`: `body` is its first WEBHOOK_MAX_BODY_BYTES), or one whose processing
    fails on our side is stored and flagged, and the sender is told we received it (it
    would retry forever otherwise). Raises WebhookUnauthorized, nothing stored, when no
    accepted place carries a valid secret; a database failure propagates and rolls
    everything back, so the caller answers 500 and the sender retries.
    """
    secret_headers, clean_headers = {}, {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _SECRET_HEADERS:
            secret_headers[lowered] = value
        else:
            clean_headers[name] = _storable(value)
    if over_limit:
        parsed = ParsedDelivery(events=[], attributes=attributes_of_broken_body(body))
    else:
        parsed = parse_remote_events(body)
    callback_id = _authenticate(secret_headers, parsed.attributes)

    text, note = _as_text(body)
    for key, value in parsed.attributes:
        # Our secret as a Body attribute: kept out of the store, as the header is.
        if key.lower() in _SECRET_NAMES and len(value) >= 8:
            text = text.replace(value, _SECRET_REMOVED)
    if over_limit:
        outcome = WebhookDelivery.Outcome.UNPARSEABLE
        error = (
            f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes: its first {settings.WEBHOOK_MAX_BODY_BYTES} bytes are kept and "
            "nothing was applied (a retry would be as big); reconciliation reads back the actions still open"
        )
    elif parsed.error:
        outcome, error = WebhookDelivery.Outcome.UNPARSEABLE, parsed.error
    elif parsed.bad_events:
        outcome, error = WebhookDelivery.Outcome.PARTIAL, parsed.summary()
    else:
        outcome, error = WebhookDelivery.Outcome.PROCESSED, ""
    if outcome != WebhookDelivery.Outcome.PROCESSED:
        log.warning("webhook delivery %s: %s", outcome, error)
    if note:
        error = f"{error} ({note})"
    events = parsed.events
    positions = _positions(parsed)
    raw = {
        "callback_id": callback_id,
        "body": text,
        "headers": clean_headers,
        "query": _storable(query[:2000]),
        "remote_addr": remote_addr,
        "event_count": parsed.event_count,
    }
    result, refused = None, len(parsed.bad_events)
    try:
        if events and connection.vendor == "postgresql":
            delivery_id, result = _store_and_apply_in_one_statement(
                raw, events, positions, outcome=outcome, error=error, bad_events=parsed.bad_events
            )
        else:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(outcome=outcome, error=error, bad_events=parsed.bad_events, **raw)
                delivery_id = delivery.pk
                # After the insert: on SQLite that write holds the database's lock, so no
                # deletion commits between this check and our commit.
                if not _callback_is_live(callback_id):
                    raise _CallbackGone
                if events:
                    result = apply_events(events, delivery=delivery, positions=positions)
                    if result.refused:
                        outcome, error, delivery.bad_events = _with_refusals(parsed, result.refused)
                        delivery.outcome, delivery.error = outcome, error
                        delivery.save(update_fields=["outcome", "error", "bad_events"])
    except _CallbackGone:
        _forget_callback(callback_id)
        raise WebhookUnauthorized("deleted callback") from None
    except DatabaseError as exc:
        if not isinstance(exc, DataError):
            raise
        # The database refused a value of this delivery (one the parser should have kept
        # from it): a fault of ours, not an outage, and a retry would be refused again.
        # Kept as a failure of our code is, below.
        delivery_id, result, outcome = _store_failed(raw), None, WebhookDelivery.Outcome.FAILED
    except Exception:
        # A bug of ours, not a database failure: the transaction is rolled back whole
        # (nothing half-applied), the raw delivery is stored again flagged, and the sender
        # is told we received it. Replay it from the admin once fixed.
        delivery_id, result, outcome = _store_failed(raw), None, WebhookDelivery.Outcome.FAILED
    if result and result.refused:
        outcome, refused = WebhookDelivery.Outcome.PARTIAL, len(parsed.bad_events) + len(result.refused)
        log.warning("webhook delivery %s: %s event(s) for actions sent through another callback, refused", delivery_id, len(result.refused))
    if result and result.orphan_action_ids:
        # Events for actions whose submit is recording its id right now: that commit and
        # ours may have crossed, so look again now that ours is visible (the submit side
        # does the same after its own commit; whichever comes second adopts them).
        adopt_orphan_events(remote_action_ids=result.orphan_action_ids)
    if result and (result.new_events or result.orphan_action_ids):
        # Partners' push: ONE signal per delivery naming its actions, nothing per event and
        # nothing inside pg_ingest's statement; the pushes listener costs a dict lookup unless
        # this callback's organisation has an enabled endpoint (then one q2 task).
        events_applied_on_commit(
            callback_id=callback_id, remote_action_ids=[e.remote_action_id for e in events], succeeded=succeeded_ids(events)
        )
    return Receipt(
        delivery_id=delivery_id, outcome=outcome, events=parsed.event_count,
        new_events=result.new_events if result else 0, refused=refused, event_dates=tuple(e.event_date for e in events),
    )


def _positions(parsed: ParsedDelivery) -> list[int] | None:
    """Where each readable event sits in the body's `events` (None: 0, 1, …, nothing was refused by the parser)."""
    if not parsed.bad_events:
        return None
    bad = {b["index"] for b in parsed.bad_events}
    return [i for i in range(parsed.event_count) if i not in bad]


def _with_refusals(parsed: ParsedDelivery, refused: list[dict]) -> tuple[str, str, list[dict]]:
    """Outcome, error and bad_events of a delivery some of whose events `apply_events` refused.

    TWIN: `pg_ingest.STATEMENT` (its `d`) words them the same, as ParsedDelivery.summary
    does. No "(note)" here: a body with events is UTF-8 without NUL (strict JSON), it has none.
    """
    merged = sorted([*parsed.bad_events, *refused], key=lambda b: b["index"])
    first = merged[0]
    error = f"{len(merged)} of {parsed.event_count} events refused; the first, events[{first['index']}]: {first['error']}"
    return WebhookDelivery.Outcome.PARTIAL, error, merged


def _callback_is_live(callback_id: int) -> bool:
    """Whether the callback is not deleted, read inside the caller's transaction.

    The ORM twin of `live` in pg_ingest.STATEMENT: a deletion committed before is seen; one
    committing meanwhile orders after this delivery (on SQLite our insert already holds the
    database's write lock, so none can). No row lock, for the reason given there.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {Callback._meta.db_table} WHERE id = %s AND deleted_at IS NULL", [callback_id])  # noqa: S608
        return cursor.fetchone() is not None


def _store_failed(raw: dict) -> int:
    """The raw delivery alone, flagged `failed` with the traceback of what went wrong (called from an except block)."""
    log.exception("webhook delivery could not be processed")
    return WebhookDelivery.objects.create(outcome=WebhookDelivery.Outcome.FAILED, error=traceback.format_exc()[-4000:], **raw).pk


def _store_and_apply_in_one_statement(raw: dict, events, positions, **flags):
    """PostgreSQL: the same as the ORM branch of receive_delivery, one round trip (pg_ingest)."""
    row = {**raw, **flags, "now": timezone.now()}
    # A savepoint only when a caller holds a transaction: alone, the statement is its own.
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        done = pg_ingest.store_and_apply(delivery=row, events=events, positions=positions)
    if done is None:  # the callback is deleted: the statement wrote nothing
        raise _CallbackGone
    for vehicle_id in done.refreshed_vehicle_ids:
        transaction.on_commit(lambda vid=vehicle_id: enqueue_status_refresh(vid))
    return done.delivery_id, ApplyResult(new_events=done.new_events, orphan_action_ids=done.orphan_action_ids, refused=done.refused)


def replay_delivery(*, delivery: WebhookDelivery, by=None) -> Receipt:
    """Process a stored delivery again (after a fix, say). Safe: known events are no-ops.

    Its callback's secret vouched for actions sent through that callback only: the others'
    events are refused, as when it first arrived. A delivery of a callback deleted since is
    replayed (it was accepted while the callback was live).
    """
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("callback__fleet").get(pk=delivery.pk)
        before = delivery.outcome
        organisation = delivery.callback.fleet.organisation_id if delivery.callback else None
        parsed = parse_remote_events(delivery.body)
        if parsed.error:
            delivery.outcome, delivery.error, delivery.bad_events = WebhookDelivery.Outcome.UNPARSEABLE, parsed.error, []
            delivery.save(update_fields=["outcome", "error", "bad_events"])
            audit.record("delivery.replayed", actor=by, organisation=organisation, obj=delivery, changes=audit.diff({"outcome": before}, {"outcome": delivery.outcome}))
            return Receipt(delivery_id=delivery.pk, outcome=delivery.outcome, events=0, new_events=0)
        already = delivery.events.count()  # stored by its first processing: not new now
        result = apply_events(parsed.events, delivery=delivery, positions=_positions(parsed))
        result.new_events -= already
        delivery.outcome = WebhookDelivery.Outcome.PARTIAL if parsed.bad_events else WebhookDelivery.Outcome.PROCESSED
        delivery.error, delivery.bad_events, delivery.event_count = parsed.summary(), parsed.bad_events, parsed.event_count
        if result.refused:
            delivery.outcome, delivery.error, delivery.bad_events = _with_refusals(parsed, result.refused)
        delivery.save(update_fields=["outcome", "error", "bad_events", "event_count"])
        audit.record(
            "delivery.replayed", actor=by, organisation=organisation, obj=delivery,
            changes={**audit.diff({"outcome": before}, {"outcome": delivery.outcome}), "new_events": [0, result.new_events]},
        )
    if result.orphan_action_ids:
        adopt_orphan_events(remote_action_ids=result.orphan_action_ids)
    if delivery.callback_id:  # partners' push, as in receive_delivery
        events_applied_on_commit(
            callback_id=delivery.callback_id, remote_action_ids=[e.remote_action_id for e in parsed.events], succeeded=succeeded_ids(parsed.events)
        )
    return Receipt(
        delivery_id=delivery.pk, outcome=delivery.outcome, events=parsed.event_count, new_events=result.new_events,
        refused=len(delivery.bad_events),
    )
