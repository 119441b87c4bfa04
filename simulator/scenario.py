"""The simulated vehicles' behaviour: which events a remote action raises, when, and what it changes.

Pure functions over a SimVehicle's state at the moment the remote is posted; no database.
Delays are real-world seconds; `vendor.send_remote` divides them by SIMULATOR_SPEED when it books them.

The vendor's checks come in a fixed order, each one ending the scenario when it fails:
1. the remote-control subscription (MissingRights);
2. the vehicle's request limits: too many remotes today (TooManyRequestSent) or within a
   minute (TooManyRequestInShortTime);
3. a vehicle reported stolen takes only stolen and immobilization commands;
4. one action of a type at a time per vehicle (SameActionInProgress);
5. waking a sleeping vehicle: the monthly wake-up budget, deep sleep and coverage;
6. before a dangerous command (a door unlock, an immobilization) the vendor checks the
   vehicle (Pending CheckingVehicle): an immobilization needs it parked (VehicleInUse) and
   locked (VehicleIsNotLocked);
7. the vehicle itself: one outcome function per Remote member (an open door or a key inside
   refusing a lock, a low battery refusing preconditioning, a faulty charger…).

`SimVehicle.next_failure` forces the cause of the next command (demos and tests): the command
goes through the Pending steps a real vehicle shows before that cause (FORCED_AT says where),
whatever the vehicle's state, and ends Failed with it; `vendor.send_remote` then clears it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from stellantis import behaviour
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
AWAKE_FOR = behaviour.AWAKE_FOR.total_seconds()  # a vehicle that received a message stays awake this long

# The vendor's request limits per vehicle. They count the client's requests, so they are
# wall-clock windows, never scaled by SIMULATOR_SPEED; every remote posted counts, refused or not.
SHORT_TIME_WINDOW = 60.0  # seconds
SHORT_TIME_LIMIT = 10  # remotes a vehicle takes within SHORT_TIME_WINDOW; the next is TooManyRequestInShortTime
DAY_WINDOW = 24 * 3600.0
DAY_LIMIT = 100  # remotes a vehicle takes within DAY_WINDOW; the next is TooManyRequestSent

LOW_BATTERY_LEVEL = 15.0  # percent: below it an electrified vehicle refuses preconditioning

ALLOWED_WHILE_STOLEN = behaviour.ALLOWED_WHILE_STOLEN  # members the vendor still takes from a stolen vehicle

# Where a forced cause (SimVehicle.next_failure) ends the command:
# "vendor": right after Accepted, the vendor's own refusal, nothing sent to the vehicle;
# "wake-up": while trying to reach the vehicle (budget spent, no answer);
# "check": at the vendor's CheckingVehicle before a door unlock or an immobilization (a
#          command without that check meets these causes at the vehicle instead);
# "vehicle" (every other cause): the vehicle's own answer, after SentToVehicle.
VENDOR_CAUSES = frozenset(
    {
        FailureCause.GENERAL_ERROR,
        FailureCause.MISSING_RIGHTS,
        FailureCause.TOO_MANY_REQUEST_SENT,
        FailureCause.TOO_MANY_REQUEST_IN_SHORT_TIME,
        FailureCause.NOT_POSSIBLE_STOLEN_STATE,
        FailureCause.SAME_ACTION_IN_PROGRESS,
    }
)
WAKE_UP_CAUSES = frozenset({FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH, FailureCause.VEHICLE_CONNECTION_TIMEOUT})
CHECK_CAUSES = frozenset({FailureCause.VEHICLE_IN_USE, FailureCause.VEHICLE_IS_NOT_LOCKED})
FORCED_AT = {
    **dict.fromkeys(FailureCause.values, "vehicle"),
    **dict.fromkeys(CHECK_CAUSES, "check"),
    **dict.fromkeys(WAKE_UP_CAUSES, "wake-up"),
    **dict.fromkeys(VENDOR_CAUSES, "vendor"),
}

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


def plan(
    *,
    member: str,
    body: dict,
    vehicle,
    now: dt.datetime,
    busy: bool = False,
    requests_in_short_time: int = 0,
    requests_today: int = 0,
) -> Plan:
    """The events a `member` remote raises on `vehicle` as it stands at `now`.

    `busy`: another action of the same type on this vehicle has no Done event yet.
    `requests_in_short_time`, `requests_today`: remotes already posted to this vehicle within
    SHORT_TIME_WINDOW and DAY_WINDOW (refused ones included).
    """
    forced = vehicle.next_failure or ""
    # The vendor documents that a navigation skips Accepted and WakingUpVehicle.
    direct = member == "navigation"
    steps: list[Step] = []
    if not direct:
        steps.append(Step(ACCEPTED_AFTER, EventType.PENDING, PendingStatus.ACCEPTED))

    if forced:
        refusal = forced if FORCED_AT[forced] == "vendor" else ""
    else:
        refusal = _refusal(
            member,
            vehicle,
            busy=busy,
            requests_in_short_time=requests_in_short_time,
            requests_today=requests_today,
        )
    if refusal:
        steps.append(Step(CHECK_AFTER, EventType.DONE, DoneStatus.FAILED, failure_cause=refusal))
        return Plan(steps=steps, reached_after=None)

    # A navigation is delivered whenever the vehicle next wakes: it is never woken for one.
    waking = vehicle.is_asleep(now) and not direct
    spent = waking and vehicle.wake_ups_left(now) <= 0
    if forced == FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH or (spent and not forced):
        steps.append(Step(CHECK_AFTER, EventType.PENDING, PendingStatus.TOO_MANY_WAKE_UPS_OVER_MONTH))
        steps.append(_timeout(CHECK_AFTER, FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH))
        return Plan(steps=steps, reached_after=None)
    if waking:
        steps.append(Step(WAKING_UP_AFTER, EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE))

    wait = _unreachable_for(vehicle, now, direct=direct, waking=waking, forced=forced)
    if wait is not None:
        if direct:
            steps.append(Step(SENT_AFTER, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
        elif not waking:
            # The vendor tries to reach an out-of-coverage vehicle as it would a sleeping one.
            steps.append(Step(WAKING_UP_AFTER, EventType.PENDING, PendingStatus.WAKING_UP_VEHICLE))
        steps.append(_timeout(wait, FailureCause.VEHICLE_CONNECTION_TIMEOUT))
        return Plan(steps=steps, reached_after=None, wakes=waking)

    first_contact = WAKE_UP_TAKES if waking else SENT_AFTER
    if _checked(member, body):
        steps.append(Step(first_contact, EventType.PENDING, PendingStatus.CHECKING_VEHICLE))
        reached_after = sum(s.after for s in steps)
        found = (forced if FORCED_AT[forced] == "check" else "") if forced else _check(member, body, vehicle)
        if found:
            steps.append(Step(REFUSED_AFTER, EventType.DONE, DoneStatus.FAILED, failure_cause=found))
            return Plan(steps=steps, reached_after=reached_after, wakes=waking)
        steps.append(Step(SENT_AFTER, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
    else:
        steps.append(Step(first_contact, EventType.PENDING, PendingStatus.SENT_TO_VEHICLE))
        reached_after = sum(s.after for s in steps)

    outcome = _forced(forced) if forced else OUTCOMES[member](vehicle, body)
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


def _refusal(member: str, vehicle, *, busy: bool, requests_in_short_time: int, requests_today: int) -> str:
    """The failure cause of the vendor's own checks, before anything is sent to the vehicle."""
    if not vehicle.remote_subscribed:
        return FailureCause.MISSING_RIGHTS
    if requests_today >= DAY_LIMIT:
        return FailureCause.TOO_MANY_REQUEST_SENT
    if requests_in_short_time >= SHORT_TIME_LIMIT:
        return FailureCause.TOO_MANY_REQUEST_IN_SHORT_TIME
    if vehicle.stolen and member not in ALLOWED_WHILE_STOLEN:
        return FailureCause.NOT_POSSIBLE_STOLEN_STATE
    if busy:
        return FailureCause.SAME_ACTION_IN_PROGRESS
    return ""


def _unreachable_for(vehicle, now: dt.datetime, *, direct: bool, waking: bool, forced: str) -> float | None:
    """Seconds the vendor waits for a vehicle that will not answer before giving up; None if it answers."""
    if forced:
        return CONNECTION_TIMEOUT_AFTER if forced == FailureCause.VEHICLE_CONNECTION_TIMEOUT else None
    if waking and vehicle.is_deep_asleep(now):
        # Parked for weeks, the telematics box no longer listens: the wake-up is spent in vain.
        return DEEP_SLEEP_TIMEOUT_AFTER
    if not vehicle.online:
        return CONNECTION_TIMEOUT_AFTER
    if direct and vehicle.is_deep_asleep(now):
        return DEEP_SLEEP_TIMEOUT_AFTER
    return None


def _immobilization_of(member: str, body: dict) -> dict | None:
    """The immobilization a command carries (its own member, or the stolen one's), if any."""
    if member == "immobilization":
        return body
    if member == "stolen" and isinstance(body.get("immobilization"), dict):
        return body["immobilization"]
    return None


def _checked(member: str, body: dict) -> bool:
    """The vendor checks the vehicle (CheckingVehicle) before an unlock or an immobilization."""
    return (member == "door" and body.get("state") == "Unlocked") or _immobilization_of(member, body) is not None


def _check(member: str, body: dict, vehicle) -> str:
    """What the vendor's check finds: an immobilization needs the vehicle parked and locked."""
    immobilization = _immobilization_of(member, body)
    if immobilization and immobilization.get("activate"):
        if vehicle.in_use:
            return FailureCause.VEHICLE_IN_USE
        if not vehicle.doors_locked:
            return FailureCause.VEHICLE_IS_NOT_LOCKED
    return ""


def _forced(cause: str) -> Outcome:
    """The vehicle's answer when `next_failure` forces `cause` (a battery refusal shows its Pending step)."""
    if cause == FailureCause.NOT_POSSIBLE_BATTERY_LEVEL:
        return _failed(cause, pending=(PendingStatus.VEHICLE_BATTERY_CHARGE_TOO_LOW,))
    return _failed(cause)


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
    if body.get("state") != "Locked":
        return Outcome(effects={"doors_locked": False}) if vehicle.doors_locked else ALREADY_DONE
    if vehicle.door_open:
        return _failed(FailureCause.DOORS_OPEN)
    # A vehicle being driven has its key (CID) inside.
    key_inside = vehicle.in_use
    if body.get("forced"):
        # A forced lock locks anyway and blacklists a key left inside, so it no longer opens
        # nor starts the vehicle (the stolen-vehicle case); without a key inside there is none
        # to blacklist. The vendor tells which in feedbackDetail.
        if key_inside:
            return Outcome(feedback_detail=FeedbackDetail.CID_BLACKLISTED, effects={"doors_locked": True})
        if vehicle.doors_locked:
            return ALREADY_DONE
        return Outcome(feedback_detail=FeedbackDetail.NO_CID_BLACKLISTED, effects={"doors_locked": True})
    if vehicle.doors_locked:
        return ALREADY_DONE
    if key_inside:
        return _failed(FailureCause.CID_INSIDE)
    return Outcome(effects={"doors_locked": True})


def _horn(vehicle, body: dict) -> Outcome:
    return Outcome()


def _lights(vehicle, body: dict) -> Outcome:
    return Outcome(effects={"lights_on": bool(body.get("on"))})


def _charging(vehicle, body: dict) -> Outcome:
    if not _electrified(vehicle):
        return _failed(FailureCause.WRONG_COMMAND)
    # Reporting a charge in progress with no cable connected: the on-board charger is faulty.
    if vehicle.charging and not vehicle.plugged:
        return _failed(FailureCause.VEHICLE_CHARGING_SYSTEM_ERROR)
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
    # Being driven or unlocked, the vehicle was already refused at the vendor's check (`_check`).
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
