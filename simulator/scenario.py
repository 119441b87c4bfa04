"""The simulated vehicles' behaviour: which events a remote action raises, when, and what it changes.

Pure functions over a SimVehicle's state at the moment the remote is posted; no database.
Delays are real-world seconds; `services` divides them by SIMULATOR_SPEED when it books them.
Each remote member has its own outcome function, so a richer behaviour (a low battery
refusing a charge, an open door refusing a lock…) is one function to change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from stellantis.vocabulary import DoneStatus, EventType, FailureCause, FeedbackDetail, PendingStatus

# Real-world-ish pacing, in seconds before each event (divided by SIMULATOR_SPEED).
ACCEPTED_AFTER = 0.5
WAKING_UP_AFTER = 0.5  # the vendor says so right after accepting
WAKE_UP_TAKES = 4.0  # a sleeping vehicle needs this long before it can take a message
SENT_AFTER = 1.5
DONE_AFTER = 2.0
CONNECTION_TIMEOUT_AFTER = 8.0  # the vendor gives up on an unreachable vehicle
AWAKE_FOR = 180.0  # a vehicle that received a message stays awake this long

# SimVehicle fields an event may set when it is raised (anything else in `effects` is ignored).
EFFECT_FIELDS = frozenset({"doors_locked", "charging", "plugged", "asleep", "online"})


@dataclass(frozen=True)
class Step:
    after: float
    event_type: str
    status: str
    failure_cause: str = ""
    feedback_detail: str = ""
    effects: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """How the vehicle answers once the message reached it: the Done event and its effects."""

    status: str = DoneStatus.SUCCESS
    failure_cause: str = ""
    feedback_detail: str = ""
    effects: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    # Seconds after the post at which the vehicle got the message (it stays awake from then on);
    # None when the message never reached it.
    reached_after: float | None


def plan(*, member: str, body: dict, vehicle, now: dt.datetime) -> Plan:
    """The events a `member` remote raises on `vehicle` as it stands at `now`."""
    # The vendor documents that a navigation skips Accepted and WakingUpVehicle.
    direct = member == "navigation"
    steps: list[Step] = []
    if not direct:
        steps.append(Step(ACCEPTED_AFTER, EventType.PENDING, PendingStatus.ACCEPTED))
    if not vehicle.online:
        if not direct:
            steps.append(Step(WAKING_UP_AFTER, EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE))
        else:
            steps.append(Step(SENT_AFTER, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
        steps.append(
            Step(
                CONNECTION_TIMEOUT_AFTER,
                EventType.DONE,
                DoneStatus.FAILED,
                failure_cause=FailureCause.VEHICLE_CONNECTION_TIMEOUT,
            )
        )
        return Plan(steps=steps, reached_after=None)
    if vehicle.is_asleep(now) and not direct:
        steps.append(Step(WAKING_UP_AFTER, EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE))
        steps.append(Step(WAKE_UP_TAKES, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
    else:
        steps.append(Step(SENT_AFTER, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
    reached_after = sum(s.after for s in steps)
    outcome = OUTCOMES[member](vehicle, body)
    steps.append(
        Step(
            DONE_AFTER,
            EventType.DONE,
            outcome.status,
            failure_cause=outcome.failure_cause,
            feedback_detail=outcome.feedback_detail,
            effects={k: v for k, v in outcome.effects.items() if k in EFFECT_FIELDS},
        )
    )
    return Plan(steps=steps, reached_after=reached_after)


# --- one outcome per Remote member --------------------------------------------------------


def _door(vehicle, body: dict) -> Outcome:
    want_locked = body.get("state") == "Locked"
    if vehicle.doors_locked == want_locked:
        return Outcome(status=DoneStatus.ALREADY_DONE)
    # The vendor reports the key blacklisting only for a forced lock.
    detail = FeedbackDetail.CID_BLACKLISTED if want_locked and body.get("forced") else ""
    return Outcome(feedback_detail=detail, effects={"doors_locked": want_locked})


def _horn(vehicle, body: dict) -> Outcome:
    return Outcome()


def _charging(vehicle, body: dict) -> Outcome:
    return Outcome()


def _preconditioning(vehicle, body: dict) -> Outcome:
    return Outcome()


def _lights(vehicle, body: dict) -> Outcome:
    return Outcome()


def _wake_up(vehicle, body: dict) -> Outcome:
    return Outcome()


def _navigation(vehicle, body: dict) -> Outcome:
    return Outcome()


def _immobilization(vehicle, body: dict) -> Outcome:
    return Outcome()


def _stolen(vehicle, body: dict) -> Outcome:
    return Outcome()


OUTCOMES: dict[str, Callable[[object, dict], Outcome]] = {
    "door": _door,
    "horn": _horn,
    "charging": _charging,
    "preconditioning": _preconditioning,
    "lights": _lights,
    "wakeUp": _wake_up,
    "navigation": _navigation,
    "immobilization": _immobilization,
    "stolen": _stolen,
}
