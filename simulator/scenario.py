"""The simulated vehicles' behaviour: which events a remote action raises, when, and what it changes.

Pure functions over a SimVehicle's state at the moment the remote is posted; no database.
Delays are real-world seconds; `vendor.send_remote` divides them by SIMULATOR_SPEED when it books them.

The vendor's checks come in a fixed order, each one ending the scenario when it fails:
1. the remote-control subscription (MissingRights);
2. a vehicle reported stolen takes only stolen and immobilization commands;
3. one action of a type at a time per vehicle (SameActionInProgress);
4. waking a sleeping vehicle: the monthly wake-up budget, deep sleep and coverage;
5. the vehicle itself: one outcome function per Remote member (an open door refusing a
   lock, a low battery refusing preconditioning…).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from stellantis.vocabulary import ELECTRIFIED, DoneStatus, EventType, FailureCause, FeedbackDetail, PendingStatus

# Real-world-ish pacing, in seconds before each event (divided by SIMULATOR_SPEED).
ACCEPTED_AFTER = 0.5
CHECK_AFTER = 1.0  # a refusal from the vendor's own checks (rights, stolen, busy, budget)
WAKING_UP_AFTER = 0.5  # the vendor says so right after accepting
WAKE_UP_TAKES = 4.0  # a sleeping vehicle needs this long before it can take a message
SENT_AFTER = 1.5
REFUSED_AFTER = 1.0  # the vehicle's own Pending refusal (battery too low) before its Done
DONE_AFTER = 2.0
CONNECTION_TIMEOUT_AFTER = 8.0  # the vendor gives up on an unreachable vehicle
DEEP_SLEEP_TIMEOUT_AFTER = 120.0  # …and waits longer for one in deep sleep before giving up
AWAKE_FOR = 180.0  # a vehicle that received a message stays awake this long

LOW_BATTERY_LEVEL = 15.0  # percent: below it an electrified vehicle refuses preconditioning

# Members the vendor still takes from a vehicle reported stolen.
ALLOWED_WHILE_STOLEN = frozenset({"stolen", "immobilization"})

# An effect value the pump replaces with the moment it raises the event.
NOW = "$now"

# SimVehicle fields an event may set when it is raised (anything else in `effects` is ignored).
EFFECT_FIELDS = frozenset(
    {
        "doors_locked",
        "charging",
        "plugged",
        "asleep",
        "online",
        "lights_on",
        "immobilized",
        "stolen",
        "stolen_since",
        "preconditioning_on",
        "preconditioning_programs",
        "charge_programs",
        "charge_preferences",
        "next_delayed_charge",
        "tracking_running",
        "tracking_shutdown",
        "navigation_positions",
    }
)


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
    """How the vehicle answers once the message reached it: Pending refusals, the Done event, its effects."""

    status: str = DoneStatus.SUCCESS
    failure_cause: str = ""
    feedback_detail: str = ""
    effects: dict = field(default_factory=dict)
    pending: tuple[str, ...] = ()


def _failed(cause: str, *, pending: tuple[str, ...] = ()) -> Outcome:
    return Outcome(status=DoneStatus.FAILED, failure_cause=cause, pending=pending)


ALREADY_DONE = Outcome(status=DoneStatus.ALREADY_DONE)


@dataclass(frozen=True)
class Plan:
    steps: list[Step]
    # Seconds after the post at which the vehicle got the message (it stays awake from then on);
    # None when the message never reached it.
    reached_after: float | None
    # A wake-up is spent from the vehicle's monthly budget.
    wakes: bool = False


def plan(*, member: str, body: dict, vehicle, now: dt.datetime, busy: bool = False) -> Plan:
    """The events a `member` remote raises on `vehicle` as it stands at `now`.

    `busy`: another action of the same type on this vehicle has no Done event yet.
    """
    # The vendor documents that a navigation skips Accepted and WakingUpVehicle.
    direct = member == "navigation"
    steps: list[Step] = []
    if not direct:
        steps.append(Step(ACCEPTED_AFTER, EventType.PENDING, PendingStatus.ACCEPTED))

    refusal = _refusal(member, vehicle, busy)
    if refusal:
        steps.append(Step(CHECK_AFTER, EventType.DONE, DoneStatus.FAILED, failure_cause=refusal))
        return Plan(steps=steps, reached_after=None)

    # A navigation is delivered whenever the vehicle next wakes: it is never woken for one.
    waking = vehicle.is_asleep(now) and not direct
    if waking:
        if vehicle.wake_ups_left(now) <= 0:
            steps.append(Step(CHECK_AFTER, EventType.PENDING, PendingStatus.TOO_MANY_WAKE_UPS_OVER_MONTH))
            steps.append(_timeout(CHECK_AFTER, FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH))
            return Plan(steps=steps, reached_after=None)
        steps.append(Step(WAKING_UP_AFTER, EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE))
        if vehicle.is_deep_asleep(now):
            # Parked for weeks, the telematics box no longer listens: the wake-up is spent in vain.
            steps.append(_timeout(DEEP_SLEEP_TIMEOUT_AFTER, FailureCause.VEHICLE_CONNECTION_TIMEOUT))
            return Plan(steps=steps, reached_after=None, wakes=True)

    if not vehicle.online or (direct and vehicle.is_deep_asleep(now)):
        if direct:
            steps.append(Step(SENT_AFTER, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
        elif not waking:
            # The vendor tries to reach an out-of-coverage vehicle as it would a sleeping one.
            steps.append(Step(WAKING_UP_AFTER, EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE))
        wait = CONNECTION_TIMEOUT_AFTER if not vehicle.online else DEEP_SLEEP_TIMEOUT_AFTER
        steps.append(_timeout(wait, FailureCause.VEHICLE_CONNECTION_TIMEOUT))
        return Plan(steps=steps, reached_after=None, wakes=waking)

    steps.append(Step(WAKE_UP_TAKES if waking else SENT_AFTER, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
    reached_after = sum(s.after for s in steps)
    outcome = OUTCOMES[member](vehicle, body)
    for status in outcome.pending:
        steps.append(Step(REFUSED_AFTER, EventType.PENDING, status))
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
    return Plan(steps=steps, reached_after=reached_after, wakes=waking)


def _refusal(member: str, vehicle, busy: bool) -> str:
    """The failure cause of the vendor's own checks, before anything is sent to the vehicle."""
    if not vehicle.remote_subscribed:
        return FailureCause.MISSING_RIGHTS
    if vehicle.stolen and member not in ALLOWED_WHILE_STOLEN:
        return FailureCause.NOT_POSSIBLE_STOLEN_STATE
    if busy:
        return FailureCause.SAME_ACTION_IN_PROGRESS
    return ""


def _timeout(after: float, cause: str) -> Step:
    return Step(after, EventType.DONE, DoneStatus.FAILED, failure_cause=cause)


def _electrified(vehicle) -> bool:
    return vehicle.motorization in ELECTRIFIED


def _by_slot(current: list, programs: list) -> list:
    """`current` programs with `programs` applied slot by slot: Set replaces, Delete removes."""
    slots = {p["slot"]: p for p in current or [] if isinstance(p, dict) and "slot" in p}
    for program in programs:
        if program.get("actionsType") == "Delete":
            slots.pop(program["slot"], None)
        else:
            slots[program["slot"]] = {k: v for k, v in program.items() if k != "actionsType"}
    return [slots[slot] for slot in sorted(slots)]


# --- one outcome per Remote member --------------------------------------------------------


def _door(vehicle, body: dict) -> Outcome:
    want_locked = body.get("state") == "Locked"
    if want_locked and vehicle.door_open:
        return _failed(FailureCause.DOORS_OPEN)
    if vehicle.doors_locked == want_locked:
        return ALREADY_DONE
    # The vendor reports the key blacklisting only for a forced lock.
    detail = FeedbackDetail.CID_BLACKLISTED if want_locked and body.get("forced") else ""
    return Outcome(feedback_detail=detail, effects={"doors_locked": want_locked})


def _horn(vehicle, body: dict) -> Outcome:
    return Outcome()


def _lights(vehicle, body: dict) -> Outcome:
    return Outcome(effects={"lights_on": bool(body.get("on"))})


def _charging(vehicle, body: dict) -> Outcome:
    if not _electrified(vehicle):
        return _failed(FailureCause.WRONG_COMMAND)
    effects: dict = {}
    if body.get("immediate") is True:
        # No cable: the vehicle finds no charging point to draw from.
        if not vehicle.plugged:
            return _failed(FailureCause.EXTERNAL_CHARGING_SYSTEM_ERROR)
        if not vehicle.charging:
            if vehicle.in_use:
                return _failed(FailureCause.VEHICLE_IN_USE)
            effects["charging"] = True
    elif body.get("immediate") is False and vehicle.charging:
        effects["charging"] = False
    schedule = body.get("schedule") or {}
    if "nextDelayedTime" in schedule:
        effects["next_delayed_charge"] = schedule["nextDelayedTime"]
    if "programs" in schedule:
        effects["charge_programs"] = _by_slot(vehicle.charge_programs, schedule["programs"])
    if "preferences" in body:
        effects["charge_preferences"] = {**(vehicle.charge_preferences or {}), **body["preferences"]}
    # Only an immediate start or stop can find the vehicle already as asked.
    return Outcome(effects=effects) if effects else ALREADY_DONE


def _preconditioning(vehicle, body: dict) -> Outcome:
    if not _electrified(vehicle):
        return _failed(FailureCause.WRONG_COMMAND)
    ac = body.get("airConditioning") or {}
    immediate, programs = ac.get("immediate"), ac.get("programs")
    # Stopping costs nothing; starting or programming would draw on the traction battery.
    if (immediate is True or programs) and vehicle.energy_level < LOW_BATTERY_LEVEL:
        return _failed(FailureCause.NOT_POSSIBLE_BATTERY_LEVEL, pending=(PendingStatus.VEHICLE_BATTERY_CHARGE_TOO_LOW,))
    if immediate is True and vehicle.preconditioning_on and not programs:
        return ALREADY_DONE
    effects: dict = {}
    if immediate is not None:
        effects["preconditioning_on"] = immediate
    if programs:
        effects["preconditioning_programs"] = _by_slot(vehicle.preconditioning_programs, programs)
    return Outcome(effects=effects)


def _wake_up(vehicle, body: dict) -> Outcome:
    # Nothing changes but the vehicle reports afresh (the pump refreshes its status date).
    return Outcome()


def _navigation(vehicle, body: dict) -> Outcome:
    return Outcome(effects={"navigation_positions": list(body.get("positions") or [])})


def _immobilize(vehicle, activate: bool) -> Outcome:
    if activate and vehicle.in_use:
        return _failed(FailureCause.VEHICLE_IN_USE)
    if vehicle.immobilized == activate:
        return ALREADY_DONE
    return Outcome(effects={"immobilized": activate})


def _immobilization(vehicle, body: dict) -> Outcome:
    return _immobilize(vehicle, bool(body.get("activate")))


def _stolen(vehicle, body: dict) -> Outcome:
    if "immobilization" in body:
        return _immobilize(vehicle, bool(body["immobilization"].get("activate")))
    if "trackingPeriod" in body:
        period = body["trackingPeriod"]
        effects = {f"tracking_{key}": period[key] for key in ("running", "shutdown") if key in period}
        return Outcome(effects=effects)
    stolen = bool(body.get("stolen"))
    if vehicle.stolen == stolen:
        return ALREADY_DONE
    return Outcome(effects={"stolen": stolen, "stolen_since": NOW if stolen else None})


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
