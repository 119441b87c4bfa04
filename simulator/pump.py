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
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from stellantis.vocabulary import NOTIFICATION_HORIZON_SECONDS, CallbackStatus, DoneStatus, EventType

from . import dispatch, scenario
from .models import SimCallback, SimEvent, SimNotification, SimPumpLease, SimRemoteAction, SimVehicle

log = logging.getLogger(__name__)

LEASE_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# A slice of pump work: short, so that its last webhook call (SIMULATOR_WEBHOOK_TIMEOUT) and
# its last event still end far within q2's task time-out (Q_CLUSTER["timeout"], 60 s). A
# task killed at the time-out never reaches its `finally` nor re-arms the pump; at 10,000
# commands the old 45 s budget (with an unbounded raising loop) was killed 34 times.
SLICE_SECONDS = 15.0
MAX_SLEEP = 0.5  # the pump re-reads the tables at least this often: new work may fall due sooner
ROWS_PER_PASS = 500
RENEW_EVERY = 50  # events raised between two renewals of the lease
SCHEDULE_NAME = "simulator pump (next due work)"
# Enqueued and not started this long, a pump task is presumed lost and the next remote arms another.
ARMED_FOR = dt.timedelta(seconds=30)
# After a slice failed (the database gone, a bug), the next one runs this much later, not at once.
RETRY_AFTER_ERROR = dt.timedelta(seconds=10)


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


def slice_seconds() -> float:
    """A slice's time budget: with its last webhook call it stays under half of q2's task time-out."""
    timeout = float(settings.Q_CLUSTER.get("timeout") or 60)
    return max(1.0, min(SLICE_SECONDS, timeout / 2 - float(settings.SIMULATOR_WEBHOOK_TIMEOUT)))


def enqueue_pump() -> None:
    """Make sure a pump runs soon (call it after commit): enqueue a q2 task unless one runs or waits.

    Cheap when a pump is busy, which is most of the time under load: one read of the lease
    row, no task. Why a skipped post is never stranded: the running pump releases its lease
    *before* `_follow_up` looks for work, and this looks at the lease *after* the post
    committed, so either this sees the lease free, or the pump's last look sees the post.
    """
    sql, params = pump_busy_statement(timezone.now())
    with connection.cursor() as cursor:  # SQL, not the ORM: this runs after every remote
        cursor.execute(sql, params)
        if cursor.fetchone():
            return
    arm_pump()


def pump_busy_statement(now: dt.datetime) -> tuple[str, list]:
    """The read `enqueue_pump` starts with: a row when a pump runs or waits. `vendor` sends it
    right after a remote's COMMIT, in the same round trip, then calls `arm_pump` if it found none."""
    at = connection.ops.adapt_datetimefield_value(now)
    return _BUSY, [at, at]


def arm_pump() -> None:
    """Enqueue a pump task, unless a pump started or was armed since the caller found none."""
    now = timezone.now()
    SimPumpLease.objects.get_or_create(pk=1, defaults={"leased_until": LEASE_EPOCH})
    # Conditional: of posts committing together, one arms the pump and enqueues.
    armed = (
        SimPumpLease.objects.filter(pk=1, leased_until__lte=now)
        .filter(Q(armed_until__isnull=True) | Q(armed_until__lte=now))
        .update(armed_until=now + ARMED_FOR)
    )
    if armed:
        async_task("simulator.tasks.pump", task_name=f"simulator-pump-{uuid.uuid4().hex[:8]}")


_BUSY = "SELECT 1 FROM simulator_simpumplease WHERE id = 1 AND (leased_until > %s OR armed_until > %s)"


def _lease_seconds() -> float:
    # Renewed after every webhook call and every chunk of events, so it only has to outlive one of them.
    return 10.0 + 2 * float(settings.SIMULATOR_WEBHOOK_TIMEOUT)


def _claim_lease(token: str) -> bool:
    SimPumpLease.objects.get_or_create(pk=1, defaults={"leased_until": LEASE_EPOCH})
    now = timezone.now()
    until = now + dt.timedelta(seconds=_lease_seconds())
    # Conditional UPDATE: exactly one pump moves an expired lease forward. The task that
    # armed the pump has started, whether it wins or not: the next remote may arm another.
    return (
        SimPumpLease.objects.filter(pk=1, leased_until__lt=now).update(holder=token, leased_until=until, armed_until=None)
        == 1
    )


def _renew_lease(token: str) -> bool:
    until = timezone.now() + dt.timedelta(seconds=_lease_seconds())
    return SimPumpLease.objects.filter(pk=1, holder=token).update(leased_until=until) == 1


def _release_lease(token: str) -> None:
    SimPumpLease.objects.filter(pk=1, holder=token).update(holder="", leased_until=LEASE_EPOCH)


def run_due(*, now: dt.datetime | None = None) -> PassResult:
    """One pass without sleeping nor time budget: raise the events due at `now`, then deliver the notifications due."""
    token = uuid.uuid4().hex
    if not _claim_lease(token):
        return PassResult(skipped=True)
    try:
        return _run_once(token=token, now=now)
    finally:
        _release_lease(token)


def pump(*, max_seconds: float | None = None, follow_up: bool = True) -> PassResult:
    """One slice: run passes, sleeping until the next due work, for at most `max_seconds`
    (default `slice_seconds()`); then re-arm the pump if work remains.

    A slice overruns its budget by at most one webhook call. It stops between events and
    between webhook calls, never inside one, so whatever it did is committed and the next
    slice goes on from there. `follow_up=False` is for a caller that loops anyway (the
    simulator_pump command).
    """
    token = uuid.uuid4().hex
    if not _claim_lease(token):
        return PassResult(skipped=True)
    total = PassResult()
    deadline = time.monotonic() + (slice_seconds() if max_seconds is None else max_seconds)
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
    except BaseException:
        # Whatever stopped this slice (the database gone, a bug, a worker told to stop), the
        # work left must not wait for the next remote: the next slice runs a little later.
        if follow_up:
            _schedule_at(timezone.now() + RETRY_AFTER_ERROR, quietly=True)
        raise
    finally:
        _release_lease(token)
    # Work committed while we were finishing found the lease taken and enqueued nothing;
    # looking again after the release means it is never stranded.
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
    # A new pump task can wait for work due within a slice; anything later is scheduled.
    if next_at <= timezone.now() + dt.timedelta(seconds=slice_seconds()):
        enqueue_pump()
        return
    # Far away (a long retry delay): a one-off q2 schedule instead of a worker sleeping on it.
    _schedule_at(next_at)


def _schedule_at(next_at: dt.datetime, *, quietly: bool = False) -> None:
    """A one-off q2 schedule of the pump at `next_at` (an earlier one already there stays)."""
    try:
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
    except Exception:
        if not quietly:
            raise
        # The database is what failed: the every-minute safety net runs the pump anyway.
        log.exception("simulator: cannot schedule the next pump slice")


def _run_once(*, token: str, now: dt.datetime | None = None, deadline: float | None = None) -> PassResult:
    result = PassResult()
    # Under a backlog, raising alone could fill the whole slice and leave notifications
    # frozen until every event is raised: raising gets half of what is left, delivery the rest.
    raise_until = None if deadline is None else time.monotonic() + (deadline - time.monotonic()) / 2
    result.raised = _raise_due_events(now=now, token=token, deadline=raise_until)
    _deliver_due(result, token=token, now=now, deadline=deadline)
    return result


def _raise_due_events(*, now: dt.datetime | None, token: str | None = None, deadline: float | None = None) -> int:
    raised = 0
    while True:
        at = now or timezone.now()
        due = list(
            SimEvent.objects.filter(raised_at__isnull=True, due_at__lte=at)
            .order_by("due_at", "seq", "id")
            .values_list("id", flat=True)[:ROWS_PER_PASS]
        )
        for i, event_id in enumerate(due, start=1):
            if deadline is not None and time.monotonic() > deadline:
                return raised
            raised += _raise_event_isolated(event_id=event_id, now=at)
            # Renewed as it goes: on a loaded machine a chunk may take longer than the lease.
            if token is not None and i % RENEW_EVERY == 0 and not _renew_lease(token):
                return raised
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
