"""Outcome verified: after a Success, read the vehicle's status back and say whether it agrees.

Stellantis' Done · Success says the vehicle took the command; it does not say the doors are
locked now. For doors, charging, preconditioning and immobilization the portal reads the
vehicle's status back (`vehicles.services.refresh_status`, the State refresh's own code, so the
snapshot the pages show is refreshed too), compares it with what was asked, and marks the
action `verified` or `not_confirmed`, with a timeline step in words.

Triggered after commit by `remotes.signals`: `events_applied` (every webhook delivery, both
database paths, reconciliation, adoption) and `action_status_changed`. The webhook names the
actions its events say succeeded, with their remote type (a filter over the events it parsed):
a delivery without a Done · Success of a verifiable kind costs nothing more; one with it costs
one indexed SELECT by `remote_action_id` and a q2 task for an action never checked. The task claims the action
with a conditional UPDATE (`verified_at`), so a duplicate trigger does nothing.

What the vendor's status cannot tell: it has no immobilization field. An immobilization is
verified by what it guarantees and the status shows: the vehicle is stopped (ignition off, not
moving). Programs, schedules and preferences are not compared (only starts and stops are).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from stellantis.errors import StellantisError
from stellantis.vocabulary import RemoteType

from .models import ActionStatus, ActionStep, RemoteAction

log = logging.getLogger(__name__)

VERIFY_TASK = "remotes.tasks.verify_outcome"
VERIFIED, NOT_CONFIRMED, UNVERIFIED = "verified", "not_confirmed", "unverified"
VERIFIABLE_TYPES = (RemoteType.DOORS, RemoteType.CHARGING, RemoteType.THERMAL_PRECONDITIONING, RemoteType.IMMOBILIZATION, RemoteType.STOLEN)
SUCCEEDED = (ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE)
# A status read that fails is tried again this many times, this far apart, then given up.
ATTEMPTS = 3
RETRY_AFTER = dt.timedelta(seconds=20)


@dataclass(frozen=True)
class Expectation:
    """What the status should say after the command, and how to say it in words."""

    subject: str  # "the doors"
    wanted: str  # "Locked"

    def check(self, snapshot) -> tuple[bool | None, str]:
        """(agrees, what the status reports in words) for a `VehicleStatus`; None: it cannot tell."""
        raise NotImplementedError


class _Doors(Expectation):
    def check(self, snapshot):
        if snapshot.doors_locked is None:
            return None, "the status does not report the doors"
        now = "Locked" if snapshot.doors_locked else "Unlocked"
        return now == self.wanted, now


class _Charging(Expectation):
    def check(self, snapshot):
        status = snapshot.charging_status
        if not status:
            return None, "the status does not report charging"
        charging = status == "InProgress"
        words = "charging in progress" if charging else f"charging {status.lower()}"
        return charging == (self.wanted == "charging in progress"), words


class _Preconditioning(Expectation):
    def check(self, snapshot):
        status = snapshot.preconditioning_status
        if not status:
            return None, "the status does not report preconditioning"
        on = status == "Enabled"
        return on == (self.wanted == "preconditioning on"), "preconditioning on" if on else "preconditioning off"


class _Immobilized(Expectation):
    def check(self, snapshot):
        if not snapshot.ignition and snapshot.moving is None:
            return None, "the status reports neither ignition nor movement"
        stopped = snapshot.ignition != "Start" and not snapshot.moving
        return stopped, "stopped (ignition off, not moving)" if stopped else "running (ignition on or moving)"


def expectation(action) -> Expectation | None:
    """What to compare for this action's command, or None when the status cannot tell."""
    try:
        ((member, body),) = (action.command or {}).items()
    except ValueError:
        return None
    body = body if isinstance(body, dict) else {}
    if member == "door" and body.get("state") in ("Locked", "Unlocked"):
        return _Doors("the doors", body["state"])
    if member == "charging" and isinstance(body.get("immediate"), bool) and "schedule" not in body:
        return _Charging("the vehicle", "charging in progress" if body["immediate"] else "charging stopped")
    if member == "preconditioning":
        immediate = (body.get("airConditioning") or {}).get("immediate")
        if isinstance(immediate, bool):
            return _Preconditioning("the vehicle", "preconditioning on" if immediate else "preconditioning off")
    immobilization = body if member == "immobilization" else (body.get("immobilization") if member == "stolen" else None)
    if isinstance(immobilization, dict) and immobilization.get("activate") is True:
        return _Immobilized("the vehicle", "stopped")
    return None


# How long the action page keeps following a succeeded action for its verdict (retries included).
FOLLOW_FOR = RETRY_AFTER * ATTEMPTS + dt.timedelta(seconds=30)


def awaits(action, now: dt.datetime | None = None) -> bool:
    """A verdict is still to come (the page keeps listening): succeeded lately, verifiable, not checked yet."""
    if action.status not in SUCCEEDED or action.verified_at or action.verification or expectation(action) is None:
        return False
    finished = action.finished_at or action.created_at
    return finished is not None and (now or timezone.now()) - finished < FOLLOW_FOR


def verdict_of(action, entries) -> dict | None:
    """The verdict's timeline step, for the action page's banner: kind, title and sentence."""
    for entry in reversed(entries):
        if entry.origin == "portal" and entry.kind in (VERIFIED, NOT_CONFIRMED, UNVERIFIED):
            # The banner shows the title as a badge: the sentence without it ("the doors report Locked.").
            detail = entry.detail.removeprefix(f"{entry.title}: ")
            return {"kind": entry.kind, "title": entry.title, "detail": detail[:1].upper() + detail[1:], "at": entry.at}
    return None


def expectation_type(command: dict) -> str:
    """The remote type of a stored command (for tests and tools that build actions by hand)."""
    from stellantis.vocabulary import MEMBER_TO_TYPE

    return MEMBER_TO_TYPE[next(iter(command))]


def _candidates(qs):
    return qs.filter(status__in=SUCCEEDED, verification="", verified_at__isnull=True, remote_type__in=VERIFIABLE_TYPES)


def enqueue(action_ids, *, attempt: int = 1, delay: dt.timedelta | None = None) -> None:
    for action_id in action_ids:
        if delay:
            Schedule.objects.create(
                name=f"verify-{action_id}-{attempt}", func=VERIFY_TASK, args=f"{str(action_id)!r}, {attempt}",
                schedule_type=Schedule.ONCE, repeats=1, next_run=timezone.now() + delay,
            )
        else:
            async_task(VERIFY_TASK, str(action_id), attempt, task_name=f"verify-{action_id}-{attempt}")


def on_events_applied(sender, *, remote_action_ids, succeeded=None, **kwargs):
    """After a delivery (or read-back) committed. The webhook says which actions got a Done ·
    Success (`succeeded`, filtered from its parsed events): a delivery without one costs no SQL;
    one with one costs an indexed SELECT and a task. Other callers (None) are not hot paths."""
    if succeeded is None:
        wanted = remote_action_ids
    else:  # a horn's or a light's Success costs nothing here
        wanted = [rid for rid, remote_type in succeeded.items() if remote_type in VERIFIABLE_TYPES or not remote_type]
    if not wanted:
        return
    ids = list(_candidates(RemoteAction.objects.filter(remote_action_id__in=wanted)).values_list("pk", flat=True))
    if ids:
        enqueue(ids)


def on_status_changed(sender, *, action_ids, status, **kwargs):
    if status in SUCCEEDED:
        ids = list(_candidates(RemoteAction.objects.filter(pk__in=action_ids)).values_list("pk", flat=True))
        if ids:
            enqueue(ids)


def _step(action_id, kind: str, detail: str) -> None:
    ActionStep.objects.create(action_id=action_id, status=kind, at=timezone.now(), detail=detail[:500])


def verify(*, action_id, attempt: int = 1, client=None) -> str:
    """Read the vehicle's status and mark the action verified or not confirmed. Returns the verdict."""
    from vehicles.services import refresh_status

    action = RemoteAction.objects.select_related("vehicle__fleet").filter(pk=action_id).first()
    if action is None or action.status not in SUCCEEDED or action.verification or action.verified_at:
        return "nothing to do"
    wanted = expectation(action)
    if wanted is None:
        return "not verifiable"
    try:
        snapshot = refresh_status(vehicle=action.vehicle, client=client)
    except StellantisError as exc:
        if attempt < ATTEMPTS:
            enqueue([action.pk], attempt=attempt + 1, delay=RETRY_AFTER)
            return f"status read failed ({exc}), retrying"
        with transaction.atomic():
            # Claimed like a verdict (verified_at), so no later trigger tries again.
            if RemoteAction.objects.filter(pk=action.pk, verification="", verified_at__isnull=True).update(verified_at=timezone.now()):
                _step(action.pk, UNVERIFIED, f"Could not read the vehicle's status after {ATTEMPTS} tries ({exc}): the outcome is not verified.")
        return "gave up"
    agrees, reported = wanted.check(snapshot)
    now = timezone.now()
    if agrees is None:
        verdict, detail = UNVERIFIED, f"Not verified: {reported}."
        field = ""
    elif agrees:
        verdict, field = VERIFIED, VERIFIED
        detail = f"Verified: {wanted.subject} report{'s' if wanted.subject != 'the doors' else ''} {reported}."
    else:
        verdict, field = NOT_CONFIRMED, NOT_CONFIRMED
        still = " still" if wanted.subject == "the doors" else ""
        detail = f"Not confirmed: {wanted.subject}{still} report{'s' if wanted.subject != 'the doors' else ''} {reported}, not {wanted.wanted}."
    with transaction.atomic():
        claimed = RemoteAction.objects.filter(pk=action.pk, verification="", verified_at__isnull=True).update(verification=field, verified_at=now)
        if not claimed:  # another worker got there first
            return "nothing to do"
        _step(action.pk, verdict, detail)
    log.info("action %s outcome %s: %s", action.pk, verdict, detail)
    return verdict
