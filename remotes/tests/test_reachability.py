"""What the portal says before a command is sent: awake or asleep, and the wake-ups left."""

import datetime as dt

import pytest

from remotes.models import ActionStatus, RemoteAction, RemoteEvent
from remotes.reachability import estimate, summarise
from stellantis.behaviour import Connectivity
from vehicles.models import Vehicle, VehicleStatus

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def car(make_vehicle, make_callback):
    vehicle = make_vehicle()
    vehicle.callback = make_callback(vehicle.fleet)
    return vehicle


def _seen(vehicle, ago: dt.timedelta):
    VehicleStatus.objects.update_or_create(vehicle=vehicle, defaults={"captured_at": NOW - ago, "fetched_at": NOW - ago})
    vehicle.refresh_from_db()


def _action_with(vehicle, callback, *statuses, created=NOW - dt.timedelta(days=1), cause=""):
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
        status=ActionStatus.FAILED if cause else ActionStatus.SUCCESS, failure_cause=cause, expires_at=NOW,
    )
    RemoteAction.objects.filter(pk=action.pk).update(created_at=created)
    for i, status in enumerate(statuses):
        RemoteEvent.objects.create(
            action=action, remote_action_id=str(action.pk), event_type="Pending", status=status, event_date=created + dt.timedelta(seconds=i)
        )
    return action


def test_a_vehicle_asleep_for_days_says_so_and_counts_its_wake_ups(car):
    _seen(car, dt.timedelta(days=3, hours=2))
    for _ in range(18):
        _action_with(car, car.callback, "Accepted", "WakingUpVehicle", "SentToVehicle")
    _action_with(car, car.callback, "Accepted", "SentToVehicle")  # awake then: no wake-up spent
    # Last month's wake-ups do not count against this one.
    _action_with(car, car.callback, "WakingUpVehicle", created=dt.datetime(2026, 10, 31, 23, 0, tzinfo=dt.UTC))
    reach = estimate(car, NOW)
    assert reach.connectivity == Connectivity.ASLEEP
    assert (reach.wakeups_used, reach.wakeups_left) == (18, 2)
    assert reach.sentence == "Asleep for 3 days: waking it may take 2 minutes or fail; 2 of 20 wake-ups left this month"


def test_an_online_vehicle_goes_straight_through(car):
    _seen(car, dt.timedelta(minutes=1))
    reach = estimate(car, NOW)
    assert reach.connectivity == Connectivity.ONLINE and not reach.needs_wake_up
    assert reach.sentence.startswith("Online (last contact 1 min ago): a command goes straight to it; 20 of 20 wake-ups left")


def test_the_vendors_refusal_means_no_wake_up_left(car):
    _seen(car, dt.timedelta(hours=5))
    _action_with(car, car.callback, "Accepted", cause="TooManyWakeUpsOverMonth")
    reach = estimate(car, NOW)
    assert reach.wakeups_left == 0
    assert "Stellantis will refuse it" in reach.sentence and reach.sentence.endswith("no wake-ups left this month")


def test_deep_sleep_and_never_seen(car, make_vehicle):
    _seen(car, dt.timedelta(days=20))
    assert estimate(car, NOW).sentence.startswith("Offline for 20 days: in deep sleep, a wake-up will most likely time out")
    fresh = make_vehicle()
    assert estimate(fresh, NOW).sentence.startswith("Never seen: no status read yet")


def test_summarise_counts_a_fleet(car, make_vehicle):
    fleet = car.fleet
    _seen(car, dt.timedelta(minutes=1))
    asleep = make_vehicle(fleet=fleet)
    _seen(asleep, dt.timedelta(days=2))
    spent = make_vehicle(fleet=fleet)
    _seen(spent, dt.timedelta(days=1))
    for _ in range(20):
        _action_with(spent, car.callback, "WakingUpVehicle")
    gone = make_vehicle(fleet=fleet)
    _seen(gone, dt.timedelta(days=30))
    make_vehicle(fleet=fleet)  # never seen
    summary = summarise(Vehicle.objects.filter(fleet=fleet), NOW)
    assert (summary.total, summary.online, summary.asleep, summary.offline, summary.unknown) == (5, 1, 2, 1, 1)
    assert summary.no_wakeups_left == 1
    assert summary.need_wake_up == 4
    assert "1 with no wake-ups left this month" in summary.sentence
