"""One bad row must not wedge the pump for every vehicle: it is set aside and the others go on."""

import datetime as dt

import pytest
from django.db import OperationalError
from django.utils import timezone

from simulator import pump, vendor
from simulator.models import SimCallback, SimEvent, SimNotification, SimRemoteAction, SimVehicle

pytestmark = pytest.mark.django_db(transaction=True)

POISON = 10**30  # no integer column of any database stores this


def later(seconds: float = 3600) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def _callback(fleet, target: str, **subscribe) -> SimCallback:
    return vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": target, "name": "h"}}, "remoteTypes": ["Horn", "Stolen"], **subscribe},
    )


def _horn(fleet, vehicle, callback) -> SimRemoteAction:
    return vendor.send_remote(
        fleet_id=fleet.id, vehicle_id=vehicle.id, callback_id=callback.id, body={"horn": {"state": "Activated"}}
    )


@pytest.fixture
def vehicles(fleet):
    SimVehicle.objects.filter(fleet=fleet).update(asleep=False, awake_until=None, online=True, in_use=False, stolen=False)
    return list(SimVehicle.objects.filter(fleet=fleet).order_by("vin")[:3])


def test_an_event_whose_effects_the_database_refuses_does_not_stop_the_other_vehicles(fleet, vehicles, receiver):
    callback = _callback(fleet, receiver.url)
    poisoned, *healthy = [_horn(fleet, vehicle, callback) for vehicle in vehicles]
    # As a stolen command with trackingPeriod.running = 10**30 would leave it, had the vendor accepted it.
    SimEvent.objects.filter(action=poisoned, event_type="Done").update(effects={"tracking_running": POISON})

    pump.run_due(now=later())
    pump.run_due(now=later())  # nothing left to wedge a second pass either

    assert not SimEvent.objects.filter(raised_at__isnull=True).exists()
    for action in healthy:
        assert SimRemoteAction.objects.get(pk=action.pk).status == "Success"
    # The poisoned event was raised without its effects: its action still ends and is notified.
    assert SimRemoteAction.objects.get(pk=poisoned.pk).status == "Success"
    assert SimVehicle.objects.get(pk=vehicles[0].pk).tracking_running is None
    assert set(SimNotification.objects.values_list("state", flat=True)) == {"delivered"}
    done = [e for e in receiver.events() if e["eventStatus"]["type"] == "Done"]
    assert sorted(e["vin"] for e in done) == sorted(v.vin for v in vehicles)


def test_an_event_that_cannot_be_raised_at_all_is_set_aside(fleet, vehicles, receiver, monkeypatch):
    callback = _callback(fleet, receiver.url)
    poisoned, healthy = _horn(fleet, vehicles[0], callback), _horn(fleet, vehicles[1], callback)
    real = pump._raise_event

    def broken(*, event_id, now, with_effects=True):
        if SimEvent.objects.filter(pk=event_id, action=poisoned).exists():
            raise ValueError("this row is beyond repair")
        return real(event_id=event_id, now=now, with_effects=with_effects)

    monkeypatch.setattr(pump, "_raise_event", broken)
    pump.run_due(now=later())

    assert SimRemoteAction.objects.get(pk=healthy.pk).status == "Success"
    # Marked raised so that no pass tries it again; nothing was sent for it.
    assert not SimEvent.objects.filter(action=poisoned, raised_at__isnull=True).exists()
    assert not SimNotification.objects.filter(event__action=poisoned).exists()
    assert {e["remoteActionId"] for e in receiver.events()} == {healthy.pk}


def test_a_database_failure_is_not_taken_for_a_bad_row(fleet, vehicles, receiver, monkeypatch):
    callback = _callback(fleet, receiver.url)
    _horn(fleet, vehicles[0], callback)

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(pump, "_raise_event", locked)
    with pytest.raises(OperationalError):
        pump.run_due(now=later())

    # Left for the next pass, effects and all.
    assert not SimEvent.objects.filter(raised_at__isnull=False).exists()
    monkeypatch.undo()
    pump.run_due(now=later())
    assert not SimEvent.objects.filter(raised_at__isnull=True).exists()


def test_a_notification_that_cannot_be_built_fails_its_attempts_and_the_others_go_out(fleet, vehicles, receiver):
    broken = _callback(fleet, receiver.url, retryPolicy={"policy": "Bounded", "retryNumber": 1, "retryDelay": 1})
    healthy = _callback(fleet, receiver.url)
    broken_action, healthy_action = _horn(fleet, vehicles[0], broken), _horn(fleet, vehicles[1], healthy)
    # A subscription the simulator cannot read (no webhook at all).
    SimCallback.objects.filter(pk=broken.pk).update(subscribe={"remoteTypes": ["Horn"]})

    pump.run_due(now=later())
    pump.run_due(now=later(7200))

    assert SimRemoteAction.objects.get(pk=healthy_action.pk).status == "Success"
    assert set(SimNotification.objects.filter(callback=healthy).values_list("state", flat=True)) == {"delivered"}
    assert {e["remoteActionId"] for e in receiver.events()} == {healthy_action.pk}
    rows = SimNotification.objects.filter(callback=broken)
    assert rows.count() == 3
    for row in rows:
        assert (row.state, row.attempts) == ("dead", 2)
        assert row.last_error.startswith("simulator error: KeyError")
    assert SimEvent.objects.filter(action=broken_action, raised_at__isnull=True).count() == 0
