"""The vehicle-behaviour pump: raise the events that fall due and deliver the notifications they queue."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from stellantis.vocabulary import NOTIFICATION_HORIZON_SECONDS, CallbackStatus, DoneStatus, EventType

from . import dispatch, scenario
from .models import SimCallback, SimEvent, SimNotification, SimPumpLease, SimRemoteAction, SimVehicle

log = logging.getLogger(__name__)

LEASE_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PUMP_BUDGET = 45.0  # q2 kills a task after 60 s
MAX_SLEEP = 0.5  # the pump re-reads the tables at least this often: new work may fall due sooner
ROWS_PER_PASS = 500
SCHEDULE_NAME = "simulator pump (next due work)"


@dataclass
class PassResult:
    raised: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead: int = 0
    skipped: bool = False  # another pump holds the lease

    def add(self, other: PassResult) -> None:
        self.raised += other.raised
        self.delivered += other.delivered
        self.failed_attempts += other.failed_attempts
        self.dead += other.dead


def enqueue_pump() -> None:
    """Hand the pump to django-q2 (call it after commit)."""
    async_task("simulator.tasks.pump", task_name=f"simulator-pump-{uuid.uuid4().hex[:8]}")


def _lease_seconds() -> float:
    # Renewed after every webhook call, so it only has to outlive one of them.
    return 10.0 + 2 * float(settings.SIMULATOR_WEBHOOK_TIMEOUT)


def _claim_lease(token: str) -> bool:
    SimPumpLease.objects.get_or_create(pk=1, defaults={"leased_until": LEASE_EPOCH})
    now = timezone.now()
    until = now + dt.timedelta(seconds=_lease_seconds())
    # Conditional UPDATE: exactly one pump moves an expired lease forward.
    return SimPumpLease.objects.filter(pk=1, leased_until__lt=now).update(holder=token, leased_until=until) == 1


def _renew_lease(token: str) -> bool:
    until = timezone.now() + dt.timedelta(seconds=_lease_seconds())
    return SimPumpLease.objects.filter(pk=1, holder=token).update(leased_until=until) == 1


def _release_lease(token: str) -> None:
    SimPumpLease.objects.filter(pk=1, holder=token).update(holder="", leased_until=LEASE_EPOCH)


def run_due(*, now: dt.datetime | None = None) -> PassResult:
    """One pass without sleeping: raise the events due at `now`, then deliver the notifications due."""
    token = uuid.uuid4().hex
    if not _claim_lease(token):
        return PassResult(skipped=True)
    try:
        return _run_once(token=token, now=now)
    finally:
        _release_lease(token)


def pump(*, max_seconds: float = PUMP_BUDGET, follow_up: bool = True) -> PassResult:
    """Run passes, sleeping until the next due work, for at most `max_seconds`; re-enqueue if work remains.

    `follow_up=False` is for a caller that loops anyway (the simulator_pump command).
    """
    token = uuid.uuid4().hex
    if not _claim_lease(token):
        return PassResult(skipped=True)
    total = PassResult()
    deadline = time.monotonic() + max_seconds
    try:
        while True:
            total.add(_run_once(token=token, deadline=deadline))
            if not _renew_lease(token):
                log.warning("simulator pump lost its lease; stopping")
                break
            next_at = next_work_at()
            left = deadline - time.monotonic()
            if next_at is None or left <= 0:
                break
            wait = (next_at - timezone.now()).total_seconds()
            if wait > left:
                break
            if wait > 0:
                time.sleep(min(wait, MAX_SLEEP))
    finally:
        _release_lease(token)
    # Work committed while we were finishing found the lease taken and was dropped by its
    # own pump task; looking again after the release means it is never stranded.
    if follow_up:
        _follow_up()
    return total


def next_work_at() -> dt.datetime | None:
    """When the pump next has something to do: an event falls due or a notification may be sent."""
    event_at = SimEvent.objects.filter(raised_at__isnull=True).aggregate(at=Min("due_at"))["at"]
    notice_at = SimNotification.objects.filter(
        state=SimNotification.State.PENDING, callback__status=CallbackStatus.RUNNING
    ).aggregate(at=Min("next_attempt_at"))["at"]
    candidates = [at for at in (event_at, notice_at) if at is not None]
    return min(candidates) if candidates else None


def _follow_up() -> None:
    next_at = next_work_at()
    if next_at is None:
        return
    # A new pump task can wait for work due within its budget; anything later is scheduled.
    if next_at <= timezone.now() + dt.timedelta(seconds=PUMP_BUDGET):
        enqueue_pump()
        return
    # Far away (a long retry delay): a one-off q2 schedule instead of a worker sleeping on it.
    with transaction.atomic():
        Schedule.objects.filter(name=SCHEDULE_NAME, next_run__gt=next_at).delete()
        if not Schedule.objects.filter(name=SCHEDULE_NAME).exists():
            Schedule.objects.create(
                name=SCHEDULE_NAME,
                func="simulator.tasks.pump",
                schedule_type=Schedule.ONCE,
                repeats=-1,
                next_run=next_at,
            )


def _run_once(*, token: str, now: dt.datetime | None = None, deadline: float | None = None) -> PassResult:
    result = PassResult()
    result.raised = _raise_due_events(now=now)
    _deliver_due(result, token=token, now=now, deadline=deadline)
    return result


def _raise_due_events(*, now: dt.datetime | None) -> int:
    raised = 0
    while True:
        at = now or timezone.now()
        due = list(
            SimEvent.objects.filter(raised_at__isnull=True, due_at__lte=at)
            .order_by("due_at", "seq", "id")
            .values_list("id", flat=True)[:ROWS_PER_PASS]
        )
        for event_id in due:
            raised += _raise_event_isolated(event_id=event_id, now=at)
        if len(due) < ROWS_PER_PASS:
            return raised


# The database itself failing (locked, connection lost) is no fault of one row: the pass
# stops and the next one tries the same row again.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


def _raise_event_isolated(*, event_id: int, now: dt.datetime) -> int:
    """Raise one event; a row that cannot be applied must not stop every other vehicle.

    An event whose effects the database refuses (say a tracking period of 10**30 seconds
    in a PositiveIntegerField) is raised without them: its action still moves on and its
    notification still goes out, so the portal sees the action end. If even that fails,
    the event is only marked raised, so that it is not tried again on every pass.
    """
    try:
        return _raise_event(event_id=event_id, now=now)
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        log.exception("simulator: the effects of event %s cannot be applied; raising it without them", event_id)
    try:
        return _raise_event(event_id=event_id, now=now, with_effects=False)
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        log.exception("simulator: event %s cannot be raised; marking it raised so that the pump goes on", event_id)
    SimEvent.objects.filter(pk=event_id, raised_at__isnull=True).update(raised_at=now)
    return 0


def _raise_event(*, event_id: int, now: dt.datetime, with_effects: bool = True) -> int:
    with transaction.atomic():
        # Claim: only the pass that flips raised_at applies the event.
        if not SimEvent.objects.filter(pk=event_id, raised_at__isnull=True).update(raised_at=now):
            return 0
        event = SimEvent.objects.select_related("action__callback").get(pk=event_id)
        action = event.action
        effects = {
            k: (now if v == scenario.NOW else v)
            for k, v in ((event.effects or {}) if with_effects else {}).items()
            if k in scenario.EFFECT_FIELDS
        }
        # A vehicle that answered sends a fresh status along (a WakeUp is asked for just that).
        answered = event.event_type == EventType.DONE and event.status != DoneStatus.FAILED
        if effects or answered:
            SimVehicle.objects.filter(pk=action.vehicle_id).update(**effects, updated_at=now)
        SimRemoteAction.objects.filter(pk=action.pk).update(
            status=event.status,
            failure_cause=event.failure_cause,
            feedback_detail=event.feedback_detail,
            updated_at=now,
        )
        _queue_notification(callback=action.callback, event=event, now=now)
    return 1


def _queue_notification(*, callback: SimCallback, event: SimEvent, now: dt.datetime) -> None:
    """Put the raised event in the callback's outbox.

    Only a Running callback gets one: an event raised while the callback is Paused (or
    Failed) is not queued and never posted, as the vendor does; it can still be read back
    with GET …/remotes/{rid}. Resuming sends what was queued before the pause, not what
    was raised during it.
    """
    if callback.status != CallbackStatus.RUNNING:
        return
    policy = dispatch.batch_policy(callback.subscribe)
    next_attempt_at = now + policy[1] if policy else now
    SimNotification.objects.create(callback=callback, event=event, next_attempt_at=next_attempt_at, created_at=now)


def _deliver_due(result: PassResult, *, token: str, now: dt.datetime | None, deadline: float | None) -> None:
    at = now or timezone.now()
    rows = list(
        SimNotification.objects.filter(state=SimNotification.State.PENDING, callback__status=CallbackStatus.RUNNING)
        .filter(Q(next_attempt_at__lte=at) | Q(attempts=0))
        .select_related("callback", "event__action__vehicle")
        .order_by("created_at", "id")[:ROWS_PER_PASS]
    )
    by_callback: dict[str, list[SimNotification]] = defaultdict(list)
    for row in rows:
        by_callback[row.callback_id].append(row)
    with requests.Session() as session:
        for items in by_callback.values():
            callback = items[0].callback
            for batch in dispatch.plan_batches(callback.subscribe, items, at):
                if deadline is not None and time.monotonic() > deadline:
                    return
                # Failed during this pass (see _fail_if_refused): it posts nothing more.
                if callback.status != CallbackStatus.RUNNING:
                    break
                _deliver(batch, callback=callback, session=session, now=now, result=result)
                if not _renew_lease(token):
                    return


def _request_error(batch: list[SimNotification], *, callback: SimCallback, session) -> str:
    """POST the batch; "" when the webhook took it, else what went wrong.

    A batch the simulator cannot even build (a broken row, a subscription it cannot
    read) is a failed attempt like any other: it is retried by the callback's policy and
    then given up, rather than raising on every pass and holding up every other callback.
    """
    try:
        notices = [
            dispatch.Notice(
                remote_action_id=n.event.action_id,
                vin=n.event.action.vehicle.vin,
                event_date=n.event.due_at,
                remote_type=n.event.action.remote_type,
                event_type=n.event.event_type,
                status=n.event.status,
                failure_cause=n.event.failure_cause,
                feedback_detail=n.event.feedback_detail,
            )
            for n in batch
        ]
        delivery = dispatch.build_delivery(
            callback_id=callback.id, fleet_id=callback.fleet_id, subscribe=callback.subscribe, notices=notices
        )
        # No transaction is open during the POST: the webhook may be the portal writing to
        # this very database.
        return dispatch.post(delivery, session=session)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        log.exception("simulator: notifications %s cannot be sent", [n.pk for n in batch])
        return f"simulator error: {exc.__class__.__name__}: {exc}"[:1000]


def _deliver(batch: list[SimNotification], *, callback: SimCallback, session, now, result: PassResult) -> None:
    error = _request_error(batch, callback=callback, session=session)
    at = now or timezone.now()
    horizon = dt.timedelta(seconds=NOTIFICATION_HORIZON_SECONDS)
    gave_up = 0
    with transaction.atomic():
        for row in batch:
            attempts = row.attempts + 1
            mine = SimNotification.objects.filter(pk=row.pk, state=SimNotification.State.PENDING, attempts=row.attempts)
            if not error:
                result.delivered += mine.update(
                    state=SimNotification.State.DELIVERED, attempts=attempts, delivered_at=at, last_error=""
                )
                continue
            result.failed_attempts += 1
            retry_at = at + dispatch.retry_delay(callback.subscribe)
            if attempts >= dispatch.max_attempts(callback.subscribe) or retry_at > row.created_at + horizon:
                # A dead row's next_attempt_at says when it was given up (_fail_if_refused counts from it).
                gave_up += mine.update(
                    state=SimNotification.State.DEAD, attempts=attempts, next_attempt_at=at, last_error=error
                )
            else:
                mine.update(attempts=attempts, next_attempt_at=retry_at, last_error=error)
    result.dead += gave_up
    if gave_up:
        _fail_if_refused(callback, at=at)


def _fail_if_refused(callback: SimCallback, *, at: dt.datetime) -> None:
    """Turn the callback Failed once its webhook refused every retry of N notifications in a row.

    N is SIMULATOR_CALLBACK_FAIL_AFTER. "In a row": given up since the last notification
    it took and since the callback was last resumed or replaced (`updated_at`), so that a
    resumed callback starts afresh. A Failed callback posts nothing, like a Paused one:
    its pending notifications wait, and go out if it is set Running again. No field of
    its own: everything is counted from the outbox rows.
    """
    fresh = SimCallback.objects.filter(pk=callback.pk).values_list("status", "updated_at").first()
    if fresh is None or fresh[0] != CallbackStatus.RUNNING:
        return
    notifications = SimNotification.objects.filter(callback_id=callback.pk)
    last_taken = notifications.filter(state=SimNotification.State.DELIVERED).aggregate(at=Max("delivered_at"))["at"]
    since = max(moment for moment in (fresh[1], last_taken) if moment is not None)
    given_up = notifications.filter(state=SimNotification.State.DEAD, next_attempt_at__gte=since).count()
    if given_up < settings.SIMULATOR_CALLBACK_FAIL_AFTER:
        return
    # Conditional: a pause or a resume that landed meanwhile wins.
    if SimCallback.objects.filter(pk=callback.pk, status=CallbackStatus.RUNNING, updated_at=fresh[1]).update(
        status=CallbackStatus.FAILED, updated_at=at
    ):
        callback.status = CallbackStatus.FAILED
        log.warning(
            "simulator: callback %s is Failed: its webhook refused %s notifications in a row", callback.pk, given_up
        )


# --- from the admin ----------------------------------------------------------------------


def retry_notifications(*, notification_ids: list[int]) -> int:
    """Send dead or pending notifications again now, with a fresh attempt budget."""
    with transaction.atomic():
        count = (
            SimNotification.objects.filter(pk__in=notification_ids)
            .exclude(state=SimNotification.State.DELIVERED)
            .update(
                state=SimNotification.State.PENDING,
                attempts=0,
                next_attempt_at=timezone.now(),
                created_at=timezone.now(),
            )
        )
        transaction.on_commit(enqueue_pump, robust=True)
    return count
