"""The pump: one at a time across processes, never leaving work stranded."""

import datetime as dt

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from simulator import pump, vendor
from simulator.models import SimEvent, SimPumpLease

pytestmark = pytest.mark.django_db


def _horn(fleet, vehicle, receiver):
    callback = vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": ["Horn"]},
    )
    return vendor.send_remote(
        fleet_id=fleet.id, vehicle_id=vehicle.id, callback_id=callback.id, body={"horn": {"state": "Activated"}}
    )


def test_only_one_pump_holds_the_lease():
    assert pump._claim_lease("first")
    assert not pump._claim_lease("second")

    assert pump.run_due().skipped
    assert pump.pump(max_seconds=1).skipped
    pump._release_lease("first")
    assert pump._claim_lease("second")


def test_an_expired_lease_can_be_taken_over():
    assert pump._claim_lease("crashed")
    SimPumpLease.objects.update(leased_until=timezone.now() - dt.timedelta(seconds=1))

    assert pump._claim_lease("next")
    assert SimPumpLease.objects.get().holder == "next"


def test_run_due_releases_the_lease():
    pump.run_due()

    assert pump._claim_lease("after")


def test_the_pump_raises_everything_and_delivers(fleet, awake_vehicle, receiver):
    action = _horn(fleet, awake_vehicle, receiver)

    result = pump.pump(max_seconds=10)

    assert (result.raised, result.delivered) == (3, 3)
    assert not SimEvent.objects.filter(action=action, raised_at__isnull=True).exists()
    assert pump.next_work_at() is None


def test_a_pump_out_of_time_hands_over_to_a_new_task(fleet, awake_vehicle, receiver, settings):
    settings.SIMULATOR_SPEED = 1.0
    _horn(fleet, awake_vehicle, receiver)
    queued = OrmQ.objects.count()

    pump.pump(max_seconds=0)

    assert OrmQ.objects.count() == queued + 1
    assert SimEvent.objects.filter(raised_at__isnull=True).exists()


def test_work_far_ahead_gets_a_one_off_schedule(fleet, awake_vehicle, receiver, settings):
    settings.SIMULATOR_SPEED = 0.01  # the first event is 50 s away
    _horn(fleet, awake_vehicle, receiver)

    pump.pump(max_seconds=1)
    pump.pump(max_seconds=1)

    schedule = Schedule.objects.get(name=pump.SCHEDULE_NAME)
    assert schedule.schedule_type == Schedule.ONCE
    assert schedule.next_run == SimEvent.objects.order_by("due_at").first().due_at


def test_the_pump_task_returns_as_soon_as_nothing_is_left(fleet, awake_vehicle, receiver):
    from simulator import tasks

    _horn(fleet, awake_vehicle, receiver)

    tasks.pump()

    assert pump.next_work_at() is None
    assert len(receiver.received) == 3
