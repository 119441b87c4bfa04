"""Every way a command can end, through the portal and the simulator over real HTTP.

For each of the vendor's 20 failure causes (RemoteFailedEventStatus), the CheckingVehicle step
and both feedback details of a forced lock: the simulated vehicle is put in the state that
causes it (or, where no state of ours can, told to fail with `simulator_vehicle --next-failure`),
a command is requested through `remotes.services.request_remote`, submitted to the simulator,
and its notifications come back to our webhook; the action ends with that cause and the
timeline shows it in plain words with the advice.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command
from django.utils import timezone

from fleetportal.testing import drive
from remotes import services
from remotes.models import ActionStatus
from remotes.selectors import timeline
from simulator import scenario
from simulator.models import SimCallback, SimRemoteAction, SimVehicle, current_month
from stellantis.vocabulary import FAILURE_ADVICE, FailureCause, FeedbackDetail, label_of

HORN = {"horn": {"state": "Activated"}}
LOCK = {"door": {"state": "Locked"}}
FORCED_LOCK = {"door": {"state": "Locked", "forced": True}}
UNLOCK = {"door": {"state": "Unlocked"}}
IMMOBILIZE = {"immobilization": {"activate": True}}
CHARGE_NOW = {"charging": {"immediate": True}}
AIR_NOW = {"preconditioning": {"airConditioning": {"immediate": True}}}
NAVIGATE = {"navigation": {"positions": [{"type": "Point", "coordinates": [2.2945, 48.8584]}]}}


@dataclass(frozen=True)
class Case:
    command: dict
    state: dict = field(default_factory=dict)  # the simulated vehicle's state: a realistic trigger
    forced: bool = False  # no state of ours causes it: `simulator_vehicle VIN --next-failure CAUSE`
    earlier: tuple[int, float] = (0, 0.0)  # remotes posted to the vehicle before: (how many, seconds ago)
    pending: tuple[str, ...] = ()  # Pending statuses the timeline must show on the way
    status: str = ActionStatus.FAILED
    feedback: str = ""


CAUSES = {
    FailureCause.GENERAL_ERROR: Case(HORN, forced=True, pending=("Accepted",)),
    FailureCause.VEHICLE_ERROR: Case(HORN, forced=True, pending=("Accepted", "SentToVehicle")),
    # The portal imported an electric vehicle; the simulator's turns out thermic.
    FailureCause.WRONG_COMMAND: Case(CHARGE_NOW, {"motorization": "Thermic"}, pending=("SentToVehicle",)),
    FailureCause.VEHICLE_CONNECTION_TIMEOUT: Case(HORN, {"online": False}, pending=("Accepted", "WakingUpVehicle")),
    FailureCause.MISSING_RIGHTS: Case(HORN, {"remote_subscribed": False}, pending=("Accepted",)),
    FailureCause.NOT_POSSIBLE_BATTERY_LEVEL: Case(
        AIR_NOW, {"energy_level": 9.0}, pending=("SentToVehicle", "VehicleBatteryChargeTooLow")
    ),
    FailureCause.NOT_POSSIBLE_PRIVACY_LEVEL: Case(NAVIGATE, forced=True, pending=("SentToVehicle",)),
    FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH: Case(
        {"wakeUp": {"action": "WakeUp"}},
        {"asleep": True, "awake_until": None, "wake_up_budget": 20, "wake_ups_used": 20, "wake_up_month": "$month"},
        pending=("Accepted", "TooManyWakeUpsOverMonth"),
    ),
    FailureCause.TOO_MANY_REQUEST_IN_SHORT_TIME: Case(
        HORN, earlier=(scenario.SHORT_TIME_LIMIT, 20.0), pending=("Accepted",)
    ),
    FailureCause.SAME_ACTION_IN_PROGRESS: Case(HORN, pending=("Accepted",)),  # a second horn while one runs
    FailureCause.NOT_POSSIBLE_STOLEN_STATE: Case(HORN, {"stolen": True}, pending=("Accepted",)),
    FailureCause.VEHICLE_IN_USE: Case(IMMOBILIZE, {"in_use": True}, pending=("Accepted", "CheckingVehicle")),
    FailureCause.TOO_MANY_REQUEST_SENT: Case(HORN, earlier=(scenario.DAY_LIMIT, 3 * 3600.0), pending=("Accepted",)),
    FailureCause.DOORS_OPEN: Case(LOCK, {"door_open": True, "doors_locked": False}, pending=("SentToVehicle",)),
    FailureCause.VEHICLE_ERROR_OR_CID_INSIDE: Case(LOCK, {"doors_locked": False}, forced=True, pending=("SentToVehicle",)),
    # Being driven: the key is inside.
    FailureCause.CID_INSIDE: Case(LOCK, {"in_use": True, "doors_locked": False}, pending=("SentToVehicle",)),
    FailureCause.EXTERNAL_CHARGING_SYSTEM_ERROR: Case(CHARGE_NOW, {"plugged": False}, pending=("SentToVehicle",)),
    # Charging with no cable: the on-board charger is faulty.
    FailureCause.VEHICLE_CHARGING_SYSTEM_ERROR: Case(
        CHARGE_NOW, {"plugged": False, "charging": True}, pending=("SentToVehicle",)
    ),
    FailureCause.VEHICLE_IS_NOT_LOCKED: Case(IMMOBILIZE, {"doors_locked": False}, pending=("Accepted", "CheckingVehicle")),
    FailureCause.CANCELED_BY_DRIVER: Case(AIR_NOW, forced=True, pending=("SentToVehicle",)),
}
OTHER_OUTCOMES = {
    "CheckingVehicle": Case(UNLOCK, pending=("Accepted", "CheckingVehicle", "SentToVehicle"), status=ActionStatus.SUCCESS),
    "CIDBlacklisted": Case(FORCED_LOCK, {"in_use": True}, status=ActionStatus.SUCCESS, feedback="CIDBlacklisted"),
    "NoCIDBlacklisted": Case(
        FORCED_LOCK, {"doors_locked": False}, status=ActionStatus.SUCCESS, feedback="NoCIDBlacklisted"
    ),
}
ALL = {**{str(cause): case for cause, case in CAUSES.items()}, **OTHER_OUTCOMES}


def test_every_cause_of_the_vendor_is_covered():
    assert set(CAUSES) == set(FailureCause.values) == set(FAILURE_ADVICE)


@pytest.fixture
def vehicle(stack, settings, organisation):
    """One fleet of one fit vehicle (electric, plugged, awake, locked), imported with a callback for every type."""
    from callbacks.services import create_callback
    from simulator.seeding import seed_world
    from vehicles.services import import_fleet

    settings.SIMULATOR_SPEED = 1000.0
    sim_fleet = seed_world(fleet_name="Every cause", vehicle_count=1, seed=10)
    SimVehicle.objects.filter(fleet=sim_fleet).update(asleep=False, awake_until=None)
    fleet = import_fleet(fleet_id=sim_fleet.id, organisation=organisation).fleet
    create_callback(fleet=fleet, label="every cause")
    return fleet.vehicles.get()


def _posted_earlier(sim: SimVehicle, count: int, seconds_ago: float) -> None:
    """`count` remotes the vehicle took `seconds_ago` (their outcome does not matter to the limits)."""
    at = timezone.now() - dt.timedelta(seconds=seconds_ago)
    callback = SimCallback.objects.get(fleet=sim.fleet)
    SimRemoteAction.objects.bulk_create(
        SimRemoteAction(
            fleet=sim.fleet, vehicle=sim, callback=callback, remote=HORN, remote_type="Horn", status="Success", created_at=at
        )
        for _ in range(count)
    )


@pytest.mark.parametrize("outcome", ALL)
def test_every_outcome_reaches_the_timeline_in_plain_words(outcome, vehicle, operator):
    case = ALL[outcome]
    sim = SimVehicle.objects.get(vin=vehicle.vin)
    state = {k: (current_month() if v == "$month" else v) for k, v in case.state.items()}
    SimVehicle.objects.filter(pk=sim.pk).update(**state)
    if case.earlier[0]:
        _posted_earlier(sim, *case.earlier)
    if case.forced:
        out = io.StringIO()
        call_command("simulator_vehicle", vehicle.vin, "--next-failure", outcome, stdout=out)
        assert outcome in out.getvalue()
    if outcome == FailureCause.SAME_ACTION_IN_PROGRESS:
        first = services.request_remote(vehicle=vehicle, command=case.command, by=operator, reason="cause drill")
        services.submit_remote_action(action_id=first.pk)

    action = drive(services.request_remote(vehicle=vehicle, command=case.command, by=operator, reason="cause drill").pk)

    cause = outcome if outcome in FailureCause.values else ""
    assert (action.status, action.failure_cause, action.feedback_detail) == (case.status, cause, case.feedback)
    entries = timeline(action)
    vendor = [e for e in entries if e.origin == "stellantis"]
    shown = [e.status for e in vendor if e.kind == "Pending"]
    assert [s for s in shown if s in case.pending] == list(case.pending), shown
    done = vendor[-1]
    assert done.kind == "Done"
    if cause:
        assert done.title == "Done · Failed" and done.tone == "bad"
        assert label_of(FailureCause, cause) in done.detail
        assert FAILURE_ADVICE[cause] in done.detail
    else:
        assert done.tone == "good"
    if case.feedback:
        assert f"{FeedbackDetail(case.feedback).label}." in done.detail
    # A forced failure is spent by the command that met it.
    assert SimVehicle.objects.get(pk=sim.pk).next_failure == ""


def test_a_tracking_period_the_vendor_cannot_hold_is_refused_and_shown_and_nothing_wedges(vehicle, operator):
    """10**30 s is valid per the spec (minimum 5, no maximum) but fits no column: the vendor's 400, not a wedged pump."""
    huge = {"stolen": {"trackingPeriod": {"running": 10**30}}}

    action = drive(services.request_remote(vehicle=vehicle, command=huge, by=operator, reason="cause drill").pk)

    assert action.status == ActionStatus.REJECTED
    assert "stolen.trackingPeriod.running" in action.error
    rejected = [e for e in timeline(action) if e.origin == "portal" and e.status == ActionStatus.REJECTED]
    assert len(rejected) == 1 and "stolen.trackingPeriod.running" in rejected[0].detail
    assert rejected[0].tone == "bad"
    assert not SimRemoteAction.objects.exists()  # nothing booked, nothing for the pump to choke on

    horn = drive(services.request_remote(vehicle=vehicle, command=HORN, by=operator).pk)

    assert horn.status == ActionStatus.SUCCESS
