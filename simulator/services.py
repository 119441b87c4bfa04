"""Operations of the embedded Stellantis simulator: the API's writes, the pump and the seeding.

Views, admin, tasks and the management commands call these. Errors the API must answer
are `SimError`s carrying their HTTP status and the vendor-style code.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from stellantis.remotes import CommandInvalid, parse_remote
from stellantis.vocabulary import (
    ATTRIBUTE_VARIABLES,
    ELECTRIFIED,
    NOTIFICATION_HORIZON_SECONDS,
    AttributeType,
    CallbackStatus,
    DoneStatus,
    EventType,
    FailureCause,
    Motorization,
    RemoteType,
    RetryPolicy,
)

from . import dispatch, scenario
from .models import (
    DEEP_SLEEP_AFTER,
    SimCallback,
    SimEvent,
    SimFleet,
    SimNotification,
    SimPumpLease,
    SimRemoteAction,
    SimVehicle,
    current_month,
)

log = logging.getLogger(__name__)


class SimError(Exception):
    """An error the simulated API answers as an xError."""

    status = 400
    code = 40000

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class SimInvalid(SimError):
    status = 400
    code = 40000


class SimNotFound(SimError):
    status = 404
    code = 40400


# --- lookups ------------------------------------------------------------------------------


def get_fleet(*, fleet_id: str) -> SimFleet:
    fleet = SimFleet.objects.filter(pk=fleet_id).first()
    if fleet is None:
        raise SimNotFound(f"No fleet {fleet_id}.")
    return fleet


def get_vehicle(*, fleet_id: str, vehicle_id: str) -> SimVehicle:
    fleet = get_fleet(fleet_id=fleet_id)
    vehicle = SimVehicle.objects.filter(fleet=fleet, pk=vehicle_id).first()
    if vehicle is None:
        raise SimNotFound(f"No vehicle {vehicle_id} in fleet {fleet_id}.")
    return vehicle


def get_callback(*, fleet_id: str, callback_id: str) -> SimCallback:
    fleet = get_fleet(fleet_id=fleet_id)
    callback = SimCallback.objects.filter(fleet=fleet, pk=callback_id).first()
    if callback is None:
        raise SimNotFound(f"No remote callback {callback_id} in fleet {fleet_id}.")
    return callback


def get_action(*, fleet_id: str, vehicle_id: str, callback_id: str, action_id: str) -> SimRemoteAction:
    vehicle = get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id)
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    action = SimRemoteAction.objects.filter(vehicle=vehicle, callback=callback, pk=action_id).first()
    if action is None:
        raise SimNotFound(f"No remote action {action_id} for this vehicle and callback.")
    return action


# --- callbacks ----------------------------------------------------------------------------

_SUBSCRIBE_FIELDS = {"label", "retryPolicy", "batchNotify", "callback", "remoteTypes"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def validate_subscribe(body) -> dict:
    """The RemoteCallbackSubscribe body if the vendor would take it; SimInvalid naming each bad field otherwise."""
    if not isinstance(body, dict):
        raise SimInvalid("The body must be a RemoteCallbackSubscribe JSON object.")
    errors: dict[str, str] = {}
    for key in body:
        if key not in _SUBSCRIBE_FIELDS:
            errors[key] = "is not a known field"
    if "label" in body and not isinstance(body["label"], str):
        errors["label"] = "must be a string"

    callback = body.get("callback")
    webhook = callback.get("webhook") if isinstance(callback, dict) else None
    if not isinstance(webhook, dict):
        errors["callback.webhook"] = "is required"
    else:
        target = webhook.get("target")
        parts = urlsplit(target) if isinstance(target, str) else None
        if not target:
            errors["callback.webhook.target"] = "is required"
        elif parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            errors["callback.webhook.target"] = "must be an http(s) URL"
        if not isinstance(webhook.get("name"), str) or not webhook.get("name"):
            errors["callback.webhook.name"] = "is required"
        _validate_attributes(webhook.get("attributes"), errors)

    types = body.get("remoteTypes")
    if not isinstance(types, list) or not types:
        errors["remoteTypes"] = "give at least one remote type"
    else:
        unknown = [t for t in types if t not in RemoteType.values]
        if unknown:
            errors["remoteTypes"] = f"unknown {', '.join(map(str, unknown))}; use {', '.join(RemoteType.values)}"

    retry = body.get("retryPolicy")
    if retry is not None:
        if not isinstance(retry, dict):
            errors["retryPolicy"] = "must be an object"
        else:
            if retry.get("policy") not in RetryPolicy.values:
                errors["retryPolicy.policy"] = f"must be one of {', '.join(RetryPolicy.values)}"
            for key in retry:
                if key not in ("policy", "retryNumber", "retryDelay"):
                    errors[f"retryPolicy.{key}"] = "is not a known field"
            for key in ("retryNumber", "retryDelay"):
                if key in retry and not _is_int(retry[key], minimum=1):
                    errors[f"retryPolicy.{key}"] = "must be a whole number of at least 1"

    batch = body.get("batchNotify")
    if batch is not None:
        if not isinstance(batch, dict):
            errors["batchNotify"] = "must be an object"
        else:
            for key in batch:
                if key not in ("size", "timeWindow"):
                    errors[f"batchNotify.{key}"] = "is not a known field"
            if not _is_int(batch.get("size"), minimum=1):
                errors["batchNotify.size"] = "is required and must be a whole number above 0"
            if "timeWindow" in batch and not _is_int(batch["timeWindow"], minimum=5):
                errors["batchNotify.timeWindow"] = "must be a whole number of seconds, at least 5"
    if errors:
        raise SimInvalid("Invalid RemoteCallbackSubscribe: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    return body


def _validate_attributes(attributes, errors: dict) -> None:
    if attributes is None:
        return
    if not isinstance(attributes, list):
        errors["callback.webhook.attributes"] = "must be a list"
        return
    for i, attribute in enumerate(attributes):
        path = f"callback.webhook.attributes.{i}"
        if not isinstance(attribute, dict):
            errors[path] = "must be an object"
            continue
        if attribute.get("type") not in AttributeType.values:
            errors[f"{path}.type"] = f"must be one of {', '.join(AttributeType.values)}"
        key, value = attribute.get("key"), attribute.get("value")
        if not isinstance(key, str) or not key:
            errors[f"{path}.key"] = "is required"
        elif attribute.get("type") == AttributeType.HEADER and not _HEADER_NAME.match(key):
            errors[f"{path}.key"] = "is not a valid HTTP header name"
        if not isinstance(value, str):
            errors[f"{path}.value"] = "is required and must be a string"
        elif value.startswith("$") and value not in ATTRIBUTE_VARIABLES:
            errors[f"{path}.value"] = f"unknown variable; use {', '.join(ATTRIBUTE_VARIABLES)}"
        elif "\n" in value or "\r" in value:
            errors[f"{path}.value"] = "must be on one line"


def _is_int(value, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def create_callback(*, fleet_id: str, subscribe) -> SimCallback:
    """Register a callback for the fleet; it starts Running."""
    fleet = get_fleet(fleet_id=fleet_id)
    return SimCallback.objects.create(fleet=fleet, subscribe=validate_subscribe(subscribe))


def replace_callback(*, fleet_id: str, callback_id: str, subscribe) -> SimCallback:
    """Replace the whole subscription (the vendor does not merge); the status is kept."""
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    callback.subscribe = validate_subscribe(subscribe)
    callback.save(update_fields=["subscribe", "updated_at"])
    return callback


def set_callback_status(*, fleet_id: str, callback_id: str, body) -> SimCallback:
    """Apply a RemoteCallbacksStatusSetter body: pause or resume a callback."""
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in (CallbackStatus.RUNNING, CallbackStatus.PAUSED):
        raise SimInvalid("status: must be Running or Paused")
    change_callback_status(callback=callback, status=status)
    return callback


def change_callback_status(*, callback: SimCallback, status: str) -> None:
    """Set the status; a Running callback gets the notifications queued before a pause sent."""
    with transaction.atomic():
        callback.status = status
        callback.save(update_fields=["status", "updated_at"])
        if status == CallbackStatus.RUNNING:
            transaction.on_commit(enqueue_pump, robust=True)


def delete_callback(*, fleet_id: str, callback_id: str) -> None:
    """Delete a callback, refused while a remote action sent through it has no Done event yet."""
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    with transaction.atomic():
        # The row lock makes a remote posted at the same moment wait, so it cannot slip in
        # between the check and the delete.
        callback = SimCallback.objects.select_for_update().filter(pk=callback.pk).first()
        if callback is None:
            raise SimNotFound(f"No remote callback {callback_id} in fleet {fleet_id}.")
        if callback.remote_actions.exclude(status__in=DoneStatus.values).exists():
            raise SimInvalid("The callback has a pending remote action; delete it once every action is done.")
        callback.delete()


# --- remote actions -------------------------------------------------------------------------


def send_remote(*, fleet_id: str, vehicle_id: str, callback_id: str, body) -> SimRemoteAction:
    """Accept a Remote body, book its scenario as events and wake the pump after commit."""
    vehicle = get_vehicle(fleet_id=fleet_id, vehicle_id=vehicle_id)
    callback = get_callback(fleet_id=fleet_id, callback_id=callback_id)
    try:
        command = parse_remote(body)
    except CommandInvalid as exc:
        raise SimInvalid(f"Invalid Remote: {exc}") from exc
    if "label" in body and not isinstance(body["label"], str):
        raise SimInvalid("Invalid Remote: label: must be a string")
    with transaction.atomic():
        callback = SimCallback.objects.select_for_update().filter(pk=callback.pk).first()
        if callback is None:
            raise SimNotFound(f"No remote callback {callback_id} in fleet {fleet_id}.")
        if callback.status != CallbackStatus.RUNNING:
            raise SimInvalid(f"The callback is {callback.status}; only a Running callback takes remote actions.")
        if command.remote_type not in callback.remote_types:
            raise SimInvalid(
                f"The callback does not serve {command.remote_type}; it serves {', '.join(callback.remote_types)}."
            )
        # Locked so two remotes posted together plan against each other's wake-up, wake-up
        # count and action in progress.
        vehicle = SimVehicle.objects.select_for_update().get(pk=vehicle.pk)
        now = timezone.now()
        plan = scenario.plan(
            member=command.member,
            body=command.body,
            vehicle=vehicle,
            now=now,
            busy=_action_in_progress(vehicle=vehicle, remote_type=command.remote_type),
        )
        action = SimRemoteAction.objects.create(
            fleet_id=fleet_id,
            vehicle=vehicle,
            callback=callback,
            remote=body,
            remote_type=command.remote_type,
            created_at=now,
        )
        due_at, events = now, []
        for seq, step in enumerate(plan.steps):
            due_at += dispatch.scaled(step.after)
            events.append(
                SimEvent(
                    action=action,
                    seq=seq,
                    event_type=step.event_type,
                    status=step.status,
                    failure_cause=step.failure_cause,
                    feedback_detail=step.feedback_detail,
                    effects=step.effects,
                    due_at=due_at,
                )
            )
        SimEvent.objects.bulk_create(events)
        # Booked now rather than when the events are raised, so the next remote sees them.
        changed = []
        if plan.wakes:
            month = current_month(now)
            vehicle.wake_ups_used = (vehicle.wake_ups_used if vehicle.wake_up_month == month else 0) + 1
            vehicle.wake_up_month = month
            changed += ["wake_ups_used", "wake_up_month"]
        if plan.reached_after is not None:
            awake_until = now + dispatch.scaled(plan.reached_after + scenario.AWAKE_FOR)
            if vehicle.awake_until is None or vehicle.awake_until < awake_until:
                vehicle.awake_until = awake_until
                changed.append("awake_until")
        if changed:
            SimVehicle.objects.filter(pk=vehicle.pk).update(**{f: getattr(vehicle, f) for f in changed})
        transaction.on_commit(enqueue_pump, robust=True)
    return action


def _action_in_progress(*, vehicle: SimVehicle, remote_type: str) -> bool:
    """Another action of this type on the vehicle still waits for its Done event.

    Actions refused as SameActionInProgress do not count: they are not in progress on the vehicle.
    """
    return (
        SimEvent.objects.filter(
            action__vehicle=vehicle,
            action__remote_type=remote_type,
            event_type=EventType.DONE,
            raised_at__isnull=True,
        )
        .exclude(failure_cause=FailureCause.SAME_ACTION_IN_PROGRESS)
        .exists()
    )


# What a demo may flip: anything a raised event may set, plus the traits that make events fail.
VEHICLE_DEMO_FIELDS = scenario.EFFECT_FIELDS | {
    "awake_until",
    "energy_level",
    "autonomy_km",
    "last_driven_at",
    "remote_subscribed",
    "wake_up_budget",
    "wake_ups_used",
    "wake_up_month",
    "door_open",
    "in_use",
}


def set_vehicles_state(*, vehicle_ids: list[str], **changes) -> int:
    """Flip demo state (asleep, online, doors, traits…) on some vehicles; answers how many changed."""
    unknown = set(changes) - VEHICLE_DEMO_FIELDS
    if unknown:
        raise ValueError(f"not a demo field: {', '.join(sorted(unknown))}")
    return SimVehicle.objects.filter(pk__in=vehicle_ids).update(**changes, updated_at=timezone.now())


def reset_wake_ups(*, vehicle_ids: list[str]) -> int:
    """Give some vehicles their whole monthly wake-up budget back; answers how many changed."""
    return SimVehicle.objects.filter(pk__in=vehicle_ids).update(
        wake_ups_used=0, wake_up_month="", updated_at=timezone.now()
    )


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


def enqueue_pump() -> None:
    """Hand the pump to django-q2 (call it after commit)."""
    from django_q.tasks import async_task

    async_task("simulator.tasks.pump", task_name=f"simulator-pump-{uuid.uuid4().hex[:8]}")


# --- the pump: raise due events, deliver due notifications ---------------------------------

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
    from django_q.models import Schedule

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
            raised += _raise_event(event_id=event_id, now=at)
        if len(due) < ROWS_PER_PASS:
            return raised


def _raise_event(*, event_id: int, now: dt.datetime) -> int:
    with transaction.atomic():
        # Claim: only the pass that flips raised_at applies the event.
        if not SimEvent.objects.filter(pk=event_id, raised_at__isnull=True).update(raised_at=now):
            return 0
        event = SimEvent.objects.select_related("action__callback").get(pk=event_id)
        action = event.action
        effects = {
            k: (now if v == scenario.NOW else v)
            for k, v in (event.effects or {}).items()
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
                _deliver(batch, callback=callback, session=session, now=now, result=result)
                if not _renew_lease(token):
                    return


def _deliver(batch: list[SimNotification], *, callback: SimCallback, session, now, result: PassResult) -> None:
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
    # No transaction is open during the POST: the webhook may be the portal writing to this
    # very database.
    error = dispatch.post(delivery, session=session)
    at = now or timezone.now()
    horizon = dt.timedelta(seconds=NOTIFICATION_HORIZON_SECONDS)
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
                result.dead += mine.update(state=SimNotification.State.DEAD, attempts=attempts, last_error=error)
            else:
                mine.update(attempts=attempts, next_attempt_at=retry_at, last_error=error)


# --- seeding ---------------------------------------------------------------------------------

# (brand, WMI, weight): Stellantis brands the portal drives, with their manufacturer codes.
BRANDS = [
    ("Peugeot", "VF3", 30),
    ("Citroën", "VF7", 25),
    ("DS", "VR1", 10),
    ("Opel", "W0L", 20),
    ("Vauxhall", "W0V", 15),
]
MOTORIZATIONS = [
    (Motorization.ELECTRIC, 35),
    (Motorization.HYBRID, 25),
    (Motorization.THERMIC, 37),
    (Motorization.HYDROGEN, 3),
]
VIN_CHARACTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q
_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True))}
_VIN_VALUES.update(dict(zip("JKLMN", range(1, 6), strict=True)))
_VIN_VALUES.update({"P": 7, "R": 9})
_VIN_VALUES.update(dict(zip("STUVWXYZ", range(2, 10), strict=True)))
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
MODEL_YEARS = "LMNPRS"  # 2020 … 2025
# Cities the vehicles are parked around, by market.
CITIES = {
    "FR": [
        (2.3522, 48.8566),
        (4.8357, 45.7640),
        (5.3698, 43.2965),
        (3.0573, 50.6292),
        (-1.6778, 48.1173),
        (7.7521, 48.5734),
    ],
    "DE": [(8.4232, 49.9929), (13.4050, 52.5200), (6.9603, 50.9375)],
    "GB": [(-0.1276, 51.5072), (-0.4200, 51.8787), (-2.2426, 53.4808)],
}
_MARKET = {"Opel": "DE", "Vauxhall": "GB"}
_ID_NAMESPACE = uuid.UUID("5b0e8f0e-3c1a-4d53-9a55-0c7f1ee7a001")


def vin_check_digit(vin: str) -> str:
    """Position 9 of a VIN: weighted sum of the transliterated characters modulo 11, 10 written X."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin.upper(), _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _make_vin(rng: random.Random, wmi: str) -> str:
    vds = "".join(rng.choice(VIN_CHARACTERS) for _ in range(5))
    year = rng.choice(MODEL_YEARS)
    plant = rng.choice(VIN_CHARACTERS)
    serial = f"{rng.randrange(1_000_000):06d}"
    vin = f"{wmi}{vds}0{year}{plant}{serial}"
    return vin[:8] + vin_check_digit(vin) + vin[9:]


# Fleets this large get a demo's mix of troubled vehicles; smaller ones (tests) stay healthy.
TRAITS_FROM = 20
# The first vehicles by VIN are always fit for every command: the portal's tests and a demo's
# first click pick them.
SAFE_FIRST = 2
LOW_BATTERY_LEVELS = (5.0, 12.0)


def seed_world(*, fleet_name: str, vehicle_count: int, seed: int) -> SimFleet:
    """A fleet of `vehicle_count` plausible vehicles, the same every time for the same name and seed.

    From TRAITS_FROM vehicles on, a few are troubled so a demo shows failures (see `_give_traits`).
    """
    fleet_id = uuid.uuid5(_ID_NAMESPACE, f"fleet:{fleet_name}:{seed}").hex
    fleet, _ = SimFleet.objects.get_or_create(
        pk=fleet_id,
        defaults={"name": fleet_name, "description": f"Simulated fleet (seed {seed})", "seed": seed},
    )
    # The name joins the seed so two fleets seeded alike still get distinct (unique) VINs.
    rng = random.Random(f"{fleet_name}:{seed}")
    now = timezone.now()
    vins: set[str] = set()
    vehicles = []
    for index in range(vehicle_count):
        brand, wmi, _weight = rng.choices(BRANDS, weights=[b[2] for b in BRANDS])[0]
        vin = _make_vin(rng, wmi)
        while vin in vins:
            vin = _make_vin(rng, wmi)
        vins.add(vin)
        motorization = rng.choices(MOTORIZATIONS, weights=[m[1] for m in MOTORIZATIONS])[0][0]
        electrified = motorization != Motorization.THERMIC
        level = round(rng.uniform(12.0, 96.0), 1)
        if level < scenario.LOW_BATTERY_LEVEL:
            # Only the low-battery trait goes below the threshold (lifted without a new draw,
            # so the VINs stay those earlier seeds gave).
            level = round(level + scenario.LOW_BATTERY_LEVEL, 1)
        range_km = _range_km(rng, motorization)
        plugged = electrified and rng.random() < 0.3
        lon, lat = rng.choice(CITIES[_MARKET.get(brand, "FR")])
        vehicles.append(
            SimVehicle(
                id=uuid.uuid5(_ID_NAMESPACE, f"vehicle:{vin}").hex,
                fleet=fleet,
                vin=vin,
                brand=brand,
                motorization=motorization,
                # A few doze (one for sure from the second vehicle on, so demos always have one).
                asleep=rng.random() < 0.2 or index == 1,
                online=True,
                doors_locked=True,
                energy_level=level,
                autonomy_km=math.floor(level / 100 * range_km),
                plugged=plugged,
                charging=plugged and level < 80 and rng.random() < 0.5,
                longitude=round(lon + rng.uniform(-0.08, 0.08), 6),
                latitude=round(lat + rng.uniform(-0.05, 0.05), 6),
                last_driven_at=now - dt.timedelta(minutes=rng.randrange(10, 60 * 72)),
                created_at=now,
            )
        )
    by_vin = sorted(vehicles, key=lambda v: v.vin)
    for vehicle in by_vin[:SAFE_FIRST]:
        _make_fit(vehicle)
    if vehicle_count >= TRAITS_FROM:
        given = _give_traits(by_vin[SAFE_FIRST:], rng=random.Random(f"{fleet_name}:{seed}:traits"), now=now)
        log.info("seeding %s: troubled vehicles %s", fleet_name, given)
    # Idempotent and safe against a concurrent seeding: existing rows are left alone.
    SimVehicle.objects.bulk_create(vehicles, ignore_conflicts=True, batch_size=500)
    return fleet


def _range_km(rng: random.Random, motorization: str) -> float:
    """Range on a full tank or battery, km."""
    if motorization == Motorization.ELECTRIC:
        return rng.uniform(250, 420)
    if motorization == Motorization.HYBRID:
        return rng.uniform(45, 65)
    if motorization == Motorization.HYDROGEN:
        return rng.uniform(350, 420)
    return rng.uniform(600, 900)


def _make_fit(vehicle: SimVehicle) -> None:
    """Electrified, plugged in and not yet charging: every command can succeed on it."""
    if vehicle.motorization not in ELECTRIFIED:
        vehicle.motorization = Motorization.ELECTRIC
        vehicle.autonomy_km = math.floor(vehicle.energy_level / 100 * 330)
    vehicle.plugged, vehicle.charging = True, False


# One vehicle each (two offline from 50 vehicles on), in this order; see `_give_traits`.
TRAITS = ("offline", "deep_sleep", "no_subscription", "door_open", "in_use", "low_battery", "wake_ups_spent")


def _give_traits(candidates: list[SimVehicle], *, rng: random.Random, now: dt.datetime) -> dict[str, list[str]]:
    """Make a few vehicles troubled, each in one way, so a demo meets every common failure.

    offline → VehicleConnectionTimeout; deep sleep → VehicleConnectionTimeout after a long
    wait; no subscription → MissingRights; door open → DoorsOpen on a lock; in use →
    VehicleInUse on a charge or immobilization; low battery (an EV) → preconditioning refused
    (NotPossibleDueToVehicleBatteryLevel); wake-ups spent → TooManyWakeUpsOverMonth.
    Answers the VINs per trait.
    """
    pool = list(candidates)
    rng.shuffle(pool)
    given: dict[str, list[str]] = defaultdict(list)

    def take(*, prefer=None) -> SimVehicle | None:
        for vehicle in pool:
            if prefer is None or prefer(vehicle):
                pool.remove(vehicle)
                return vehicle
        return pool.pop(0) if pool and prefer is not None else None

    offline_count = 2 if len(candidates) + SAFE_FIRST >= 50 else 1
    for trait in TRAITS:
        for _ in range(offline_count if trait == "offline" else 1):
            prefer = (lambda v: v.motorization == Motorization.ELECTRIC) if trait == "low_battery" else None
            vehicle = take(prefer=prefer)
            if vehicle is None:
                return dict(given)
            _TRAIT_SETTERS[trait](vehicle, rng, now)
            given[trait].append(vehicle.vin)
    return dict(given)


def _offline(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.online = False


def _deep_sleep(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.asleep, vehicle.charging = True, False
    vehicle.last_driven_at = now - DEEP_SLEEP_AFTER - dt.timedelta(days=rng.randrange(5, 40))


def _no_subscription(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.remote_subscribed = False


def _door_open(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.door_open, vehicle.doors_locked = True, False


def _in_use(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.in_use, vehicle.asleep, vehicle.plugged, vehicle.charging = True, False, False, False
    vehicle.last_driven_at = now


def _low_battery(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    if vehicle.motorization not in ELECTRIFIED:
        vehicle.motorization = Motorization.ELECTRIC
    old = vehicle.energy_level
    vehicle.energy_level = round(rng.uniform(*LOW_BATTERY_LEVELS), 1)
    vehicle.autonomy_km = math.floor(vehicle.autonomy_km * vehicle.energy_level / old) if old else 0
    vehicle.charging = False


def _wake_ups_spent(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    # Asleep, so the next remote needs a wake-up the budget no longer allows (until next month).
    vehicle.asleep, vehicle.charging = True, False
    vehicle.wake_ups_used = vehicle.wake_up_budget
    vehicle.wake_up_month = current_month(now)


_TRAIT_SETTERS = {
    "offline": _offline,
    "deep_sleep": _deep_sleep,
    "no_subscription": _no_subscription,
    "door_open": _door_open,
    "in_use": _in_use,
    "low_battery": _low_battery,
    "wake_ups_spent": _wake_ups_spent,
}
