"""Push: partners' webhook endpoints, the events we owe them, and their delivery.

Endpoints are registered per organisation (`create_endpoint` …). A status change of an action
becomes one `PushDelivery` per enabled endpoint of its organisation that wants it (`emit`),
delivered by the q2 task `pushes.tasks.deliver`: signed per Standard Webhooks, retried with
backoff, `failed` after MAX_ATTEMPTS. At least once: a worker that dies after the POST left
sends it again; the `webhook-id` is the same, receivers deduplicate with it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

import requests
from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task
from standardwebhooks.webhooks import Webhook

from accounts import access
from audit import services as audit
from core.errors import ServiceError
from remotes.models import FINAL_STATUSES, ActionStatus, RemoteAction
from remotes.services import person_of

from . import targets
from .models import EventType, PushDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

DELIVER_TASK = "pushes.tasks.deliver"
FAN_OUT_TASK = "pushes.tasks.fan_out"
# Delay before retry n (1-based) = PUSH_RETRY_BASE_SECONDS × BACKOFF[n-1]: 5 s, 30 s, 2 min,
# 10 min, 1 h, 2 h, 4 h with the default base; the 8th failed attempt is the last (~7.5 h).
BACKOFF = (1, 6, 24, 120, 720, 1440, 2880)
MAX_ATTEMPTS = len(BACKOFF) + 1
TIMEOUT = (5, 5)  # connect, read: a slow partner holds a worker 10 s at most
# A worker holds a delivery this long while it sends (the claim's lease); past it, the sweep hands it on.
LEASE_SECONDS = 60
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class EndpointInvalid(ServiceError):
    status, code = 400, "invalid_endpoint"


class EndpointNotAllowed(ServiceError):
    status, code = 403, "permission_denied"


# --- endpoints ---------------------------------------------------------------------------------


def may_manage(user, organisation_id) -> bool:
    """Endpoints get every fleet's events: the `callbacks` ability over the whole organisation
    (an organisation admin, or a token with the `callbacks` scope of such a member)."""
    return access.access_of(user).may_in(access.CALLBACKS, organisation_id)


def require_manage(user, organisation_id) -> None:
    if not may_manage(user, organisation_id):
        by_token = getattr(user, "token", None) is not None
        raise EndpointNotAllowed(
            "This token needs the 'callbacks' scope, over all the organisation's fleets, to manage webhook endpoints."
            if by_token else "Managing webhook endpoints needs the organisation admin role."
        )


def _check(url: str | None, events) -> dict[str, str]:
    errors = {}
    if url is not None:
        why = targets.check_url(url)
        if why:
            errors["url"] = why
        elif len(url) > 500:
            errors["url"] = "must be at most 500 characters"
    if events is not None:
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            errors["events"] = f"choose at least one event type: {', '.join(EventType.values)}"
        elif unknown := [e for e in events if e not in EventType.values]:
            errors["events"] = f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(EventType.values)}"
    return errors


def _refuse_if(errors: dict) -> None:
    if errors:
        raise EndpointInvalid("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)


def create_endpoint(*, organisation, url: str, events: list, description: str = "", by=None) -> WebhookEndpoint:
    """Register an endpoint; the caller shows its `secret` once, now."""
    require_manage(by, organisation.pk)
    _refuse_if(_check(url, events))
    person = person_of(by)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            organisation=organisation, url=url, events=list(dict.fromkeys(events)), description=description[:200], created_by=person
        )
        audit.record("push_endpoint.created", actor=by, organisation=organisation, obj=endpoint, changes={"url": [None, url], "events": [None, endpoint.events]})
    transaction.on_commit(refresh_cache, robust=True)  # this process at once, the others within CACHE_SECONDS
    return endpoint


def update_endpoint(*, endpoint: WebhookEndpoint, changes: dict, by=None) -> WebhookEndpoint:
    """Change url, events, description or enabled. Re-enabling clears `disabled_reason`."""
    require_manage(by, endpoint.organisation_id)
    _refuse_if(_check(changes.get("url"), changes.get("events")))
    before = {k: getattr(endpoint, k) for k in changes}
    for key, value in changes.items():
        setattr(endpoint, key, value)
    if changes.get("enabled") is True:
        endpoint.disabled_reason = ""
    elif changes.get("enabled") is False and not endpoint.disabled_reason:
        endpoint.disabled_reason = f"Disabled by {audit.actor_name(by)}"[:300]
    with transaction.atomic():
        endpoint.save()
        audit.record("push_endpoint.changed", actor=by, organisation=endpoint.organisation_id, obj=endpoint, changes=audit.diff(before, changes))
    transaction.on_commit(refresh_cache, robust=True)  # this process at once, the others within CACHE_SECONDS
    return endpoint


def delete_endpoint(*, endpoint: WebhookEndpoint, by=None) -> None:
    """Gone with its delivery log; pending deliveries are never sent."""
    require_manage(by, endpoint.organisation_id)
    with transaction.atomic():
        audit.record("push_endpoint.deleted", actor=by, organisation=endpoint.organisation_id, obj=endpoint)
        endpoint.delete()
    transaction.on_commit(refresh_cache, robust=True)  # this process at once, the others within CACHE_SECONDS


# --- emission ------------------------------------------------------------------------------------


def action_url(action_id) -> str:
    return settings.PORTAL_PUBLIC_URL.rstrip("/") + reverse("api-remote-detail", args=[action_id])


def _state_of(status: str, pending_status: str) -> str:
    # Pending steps are events of their own (SentToVehicle, …); every other status once per action.
    return f"{status}:{pending_status}" if status == ActionStatus.PENDING and pending_status else str(status)


def payload_of(action: RemoteAction, status: str, now: dt.datetime) -> dict:
    failure = None
    if action.failure_cause:
        failure = {"cause": action.failure_cause, "label": action.failure_label, "advice": action.failure_advice}
    return {
        "type": EventType.STATUS_CHANGED.value,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {
            "id": str(action.pk),
            "status": str(status),
            "remote_type": action.remote_type,
            "vin": action.vehicle.vin,
            "pending_status": action.pending_status or None,
            "failure": failure,
            "error": action.error if status in FINAL_STATUSES else "",
            "url": action_url(action.pk),
        },
    }


def emit(*, action_ids, status: str | None = None) -> int:
    """Owe each subscribed endpoint one `remote.status_changed` event per action and state; enqueue them.

    `status` is where the portal moved the action (its hook knows); without it (after vendor
    events) the action's current status is read. A state already pushed to an endpoint is not
    pushed again: the unique constraint refuses the second row (two emitters may race). Runs
    after the change committed. Answers how many deliveries were created.
    """
    # Only the actions of organisations with an enabled endpoint: for the others (most, and every
    # bulk request's batch in an organisation without partners) this one query finds nothing.
    with_endpoint = WebhookEndpoint.objects.filter(organisation_id=OuterRef("vehicle__fleet__organisation_id"), enabled=True)
    actions = list(
        RemoteAction.objects.filter(pk__in=list(action_ids)).filter(Exists(with_endpoint)).select_related("vehicle__fleet").only(
            "id", "status", "pending_status", "remote_type", "failure_cause", "error", "vehicle__vin", "vehicle__fleet__organisation_id"
        )
    )
    orgs = {a.vehicle.fleet.organisation_id for a in actions} - {None}
    if not orgs:
        return 0
    endpoints: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(organisation_id__in=orgs).subscribed(EventType.STATUS_CHANGED):
        endpoints.setdefault(endpoint.organisation_id, []).append(endpoint)
    now = timezone.now()
    created = []
    for action in actions:
        current = status or action.status
        if current == ActionStatus.SUBMITTING:
            continue  # our internal step between queued and submitted: nothing for a partner
        state = _state_of(current, action.pending_status if current == action.status else "")
        for endpoint in endpoints.get(action.vehicle.fleet.organisation_id, []):
            try:
                with transaction.atomic():
                    created.append(
                        PushDelivery.objects.create(
                            endpoint=endpoint, event_type=EventType.STATUS_CHANGED, action=action, action_state=state,
                            payload=payload_of(action, current, now), next_attempt_at=now,
                        ).pk
                    )
            except IntegrityError:
                pass  # already owed to this endpoint (another emitter got there first)
    for pk in created:
        transaction.on_commit(lambda pk=pk: enqueue_deliver(pk))
    return len(created)


def emit_for_vendor_events(*, remote_action_ids) -> int:
    """After vendor events: push what the actions are now (the webhook's statement does not say)."""
    ids = RemoteAction.objects.filter(remote_action_id__in=list(remote_action_ids)).values_list("pk", flat=True)
    return emit(action_ids=list(ids))


# --- whether a webhook delivery concerns an endpoint: a per-process answer, never waited for --------

# Callback ids whose fleet's organisation has an enabled endpoint, and when they were read.
# The webhook's hot path only looks this set up: it never queries for it. A stale set (older
# than CACHE_SECONDS) is still used while a background thread reads it again, so the webhook
# never waits for the push's bookkeeping (`test_a_partial_delivery_on_postgresql_is_still_one_statement`
# holds). Registering or changing an endpoint re-reads it at once in that process; the others
# follow within CACHE_SECONDS; a final status missed meanwhile is owed by the sweep.
_CACHE: dict = {"callbacks": None, "at": 0.0}
_REFRESHING = threading.Lock()
CACHE_SECONDS = 5.0


def _read_callbacks_with_endpoints() -> frozenset[int]:
    return frozenset(
        WebhookEndpoint.objects.filter(enabled=True).values_list("organisation__fleets__callbacks", flat=True).distinct()
    ) - {None}


def refresh_cache() -> None:
    """Read the set now (one query), in the caller's thread."""
    callbacks = _read_callbacks_with_endpoints()
    _CACHE.update(callbacks=callbacks, at=time.monotonic())


def forget_cache() -> None:
    """Cold: the next webhook delivery reads the set again in the background (tests start here)."""
    _CACHE.update(callbacks=None, at=0.0)


def _refresh_in_background() -> None:
    if not _REFRESHING.acquire(blocking=False):
        return  # another thread is at it

    def run():
        try:
            refresh_cache()
        except Exception:
            log.exception("could not read which callbacks have push endpoints")
        finally:
            _REFRESHING.release()
            connections.close_all()  # this thread's own connection

    threading.Thread(target=run, name="push-endpoint-cache", daemon=True).start()


def wait_for_refresh(timeout: float = 5.0) -> None:
    """Until a background read in flight has ended (tests: before the tables are emptied, whose
    TRUNCATE would otherwise deadlock with the read's locks taken in another order)."""
    if _REFRESHING.acquire(timeout=timeout):
        _REFRESHING.release()


def callback_has_endpoints(callback_id) -> bool:
    """Whether deliveries of `callback_id` may move actions a partner wants to hear about; no query here."""
    callbacks = _CACHE["callbacks"]
    if callbacks is None or time.monotonic() - _CACHE["at"] >= CACHE_SECONDS:
        _refresh_in_background()
    return callbacks is not None and callback_id in callbacks


# --- delivery ------------------------------------------------------------------------------------


def enqueue_deliver(delivery_id, *, delay: float = 0) -> None:
    """Now (a q2 task), or later through ONE q2 Schedule (q2 has no delayed task), like remotes' submit."""
    if delay <= 0:
        async_task(DELIVER_TASK, delivery_id, task_name=f"push-{delivery_id}-{timezone.now().timestamp():.3f}")
        return
    Schedule.objects.create(
        name=f"push-{delivery_id}-{timezone.now().timestamp():.3f}",
        func=DELIVER_TASK,
        args=repr(delivery_id),
        schedule_type=Schedule.ONCE,
        repeats=1,
        next_run=timezone.now() + dt.timedelta(seconds=delay),
    )


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return settings.PUSH_RETRY_BASE_SECONDS * BACKOFF[min(attempts, len(BACKOFF)) - 1]


def _claim(delivery_id) -> bool:
    """Due and pending → ours for LEASE_SECONDS. Of two workers handed the same id, one sends."""
    now = timezone.now()
    return (
        PushDelivery.objects.filter(pk=delivery_id, state=PushDelivery.State.PENDING, endpoint__enabled=True)
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True))
        .update(next_attempt_at=now + dt.timedelta(seconds=LEASE_SECONDS), attempts=F("attempts") + 1)
        == 1
    )


def body_of(delivery: PushDelivery) -> str:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, event_id: str, body: str, now: dt.datetime) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with the standardwebhooks library."""
    signature = Webhook(secret).sign(event_id, now, body)
    return {"webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


def _post(delivery: PushDelivery, body: str) -> tuple[int | None, str]:
    """(status code, error): one attempt. Refuses a target that resolves where it may not go."""
    try:
        pinned = targets.pin(delivery.endpoint.url)
    except targets.TargetRefused as exc:
        return None, f"not sent: the URL {exc}"
    now = timezone.now()
    headers = {
        **signed_headers(delivery.endpoint.secret, delivery.event_id, body, now),
        "Content-Type": "application/json",
        "User-Agent": "fleetportal-push/1",
        "Host": pinned.host_header,
    }
    try:
        with targets.pinned_session(pinned) as session:
            response = session.post(pinned.url, data=body.encode(), headers=headers, timeout=TIMEOUT, allow_redirects=False)
            response.close()
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}" + (" (redirects are not followed)" if response.is_redirect else "")


def deliver(*, delivery_id) -> str:
    """One attempt at one delivery; schedules the next one on failure. Returns what happened, for logs."""
    if not _claim(delivery_id):
        return "not claimed: delivered, failed, not due, disabled, or another worker has it"
    delivery = PushDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone: its endpoint was deleted"
    code, error = _post(delivery, body_of(delivery))
    now = timezone.now()
    mine = PushDelivery.objects.filter(pk=delivery_id, state=PushDelivery.State.PENDING, attempts=delivery.attempts)
    if not error:
        mine.update(state=PushDelivery.State.DELIVERED, delivered_at=now, next_attempt_at=None, last_status_code=code, last_error="")
        return "delivered"
    if delivery.attempts >= MAX_ATTEMPTS:
        mine.update(state=PushDelivery.State.FAILED, next_attempt_at=None, last_status_code=code, last_error=error[:500])
        log.info("push %s to endpoint %s failed for good after %s attempts: %s", delivery.event_id, delivery.endpoint_id, delivery.attempts, error)
        return "failed"
    delay = retry_delay(delivery.attempts)
    if mine.update(next_attempt_at=now + dt.timedelta(seconds=delay), last_status_code=code, last_error=error[:500]):
        # After that write: a worker dying in between leaves the lease to run out, and the sweep re-enqueues.
        enqueue_deliver(delivery_id, delay=delay)
    return f"retry in {delay:.1f} s"


def replay(*, delivery: PushDelivery, by=None) -> PushDelivery:
    """Send a logged event again (same webhook-id, fresh attempts), whatever its state."""
    require_manage(by, delivery.endpoint.organisation_id)
    with transaction.atomic():
        PushDelivery.objects.filter(pk=delivery.pk).update(
            state=PushDelivery.State.PENDING, attempts=0, next_attempt_at=timezone.now(), delivered_at=None
        )
        audit.record("push_delivery.replayed", actor=by, organisation=delivery.endpoint.organisation_id, obj=delivery)
        transaction.on_commit(lambda: enqueue_deliver(delivery.pk))
    delivery.refresh_from_db()
    return delivery


def sweep(*, now: dt.datetime | None = None) -> dict:
    """Every minute: hand on deliveries whose enqueue or worker was lost; owe final statuses nobody emitted.

    A final status whose emission was lost (a process dying between the change's commit and
    its on_commit, a fan-out task lost) is found here within the hour: actions finished since
    the endpoint exists, without a delivery of that status to it.
    """
    now = now or timezone.now()
    overdue = now - dt.timedelta(seconds=LEASE_SECONDS)
    due = list(
        PushDelivery.objects.filter(state=PushDelivery.State.PENDING, endpoint__enabled=True, next_attempt_at__lt=overdue)
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        enqueue_deliver(pk)
    missed = 0
    since = now - dt.timedelta(hours=1)
    for endpoint in WebhookEndpoint.objects.filter(enabled=True).subscribed(EventType.STATUS_CHANGED):
        ids = list(
            RemoteAction.objects.filter(
                vehicle__fleet__organisation_id=endpoint.organisation_id, status__in=FINAL_STATUSES,
                finished_at__gte=max(since, endpoint.created_at), finished_at__lt=now - dt.timedelta(seconds=30),
            )
            .exclude(pk__in=PushDelivery.objects.filter(endpoint=endpoint, action_state=F("action__status")).values("action_id"))
            .values_list("pk", flat=True)[:500]
        )
        if ids:
            missed += emit(action_ids=ids)
    return {"requeued": len(due), "emitted_late": missed}
