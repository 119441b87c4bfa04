"""The pump works in bounded slices, re-armed while work remains: a backlog never freezes it."""

import time

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from simulator import pump, tasks, vendor
from simulator.models import SimEvent, SimNotification, SimPumpLease, SimVehicle

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """What q2's time-out does to a task: not an error the pump may catch and go on from."""


@pytest.fixture
def backlog(fleet, receiver):
    """Two actions per vehicle, every one of their events due now."""
    SimVehicle.objects.filter(fleet=fleet).update(asleep=False, awake_until=None, online=True, in_use=False)
    callback = vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": ["Horn", "Lights"]},
    )
    for vehicle in SimVehicle.objects.filter(fleet=fleet):
        for body in ({"horn": {"state": "Activated"}}, {"lights": {"on": True}}):
            vendor.send_remote(fleet_id=fleet.id, vehicle_id=vehicle.id, callback_id=callback.id, body=body)
    SimEvent.objects.update(due_at=timezone.now())
    return SimEvent.objects.count()


@pytest.fixture
def slow_events(monkeypatch):
    """Each event takes 20 ms to raise, so that a slice of 0.2 s cannot raise them all."""
    real = pump._raise_event

    def slow(**kwargs):
        time.sleep(0.02)
        return real(**kwargs)

    monkeypatch.setattr(pump, "_raise_event", slow)


def test_a_slice_stays_within_its_time_budget(backlog, slow_events):
    started = time.monotonic()
    result = pump.pump(max_seconds=0.2)

    # One event or one webhook call past the deadline at most.
    assert time.monotonic() - started < 0.2 + 0.5
    assert 0 < result.raised < backlog
    assert SimEvent.objects.filter(raised_at__isnull=True).exists()


def test_a_slice_budget_leaves_room_within_the_q2_time_out(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 60}
    settings.SIMULATOR_WEBHOOK_TIMEOUT = 5.0
    assert pump.slice_seconds() + settings.SIMULATOR_WEBHOOK_TIMEOUT <= 30

    settings.SIMULATOR_WEBHOOK_TIMEOUT = 28.0  # a slow webhook shortens the slices
    assert pump.slice_seconds() + settings.SIMULATOR_WEBHOOK_TIMEOUT <= 30


def test_a_backlog_larger_than_a_slice_drains_through_successive_slices(backlog, slow_events, receiver):
    slices = 0
    while pump.next_work_at() is not None and slices < 50:
        before = OrmQ.objects.count()
        pump.pump(max_seconds=0.2)
        slices += 1
        if pump.next_work_at() is not None:
            # Re-armed: the slice handed the rest to a new task.
            assert OrmQ.objects.count() == before + 1
            OrmQ.objects.all().delete()  # as the cluster would, running it

    assert slices > 1
    assert not SimEvent.objects.filter(raised_at__isnull=True).exists()
    assert set(SimNotification.objects.values_list("state", flat=True)) == {"delivered"}
    assert len(receiver.events()) == backlog


def test_under_a_backlog_a_slice_delivers_too(backlog, slow_events, receiver):
    pump.pump(max_seconds=0.3)

    # Raising did not take the whole slice: what it raised is already out.
    assert receiver.events()


def test_after_a_kill_mid_slice_the_next_run_goes_on(backlog, receiver, monkeypatch):
    real = pump._raise_event
    calls = []

    def killed_on_the_fifth(**kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise Killed
        return real(**kwargs)

    monkeypatch.setattr(pump, "_raise_event", killed_on_the_fifth)
    with pytest.raises(Killed):
        pump.pump(max_seconds=10)
    monkeypatch.undo()

    assert SimEvent.objects.filter(raised_at__isnull=False).count() == 4
    # The next slice is scheduled before the error goes up, and the lease is free.
    assert Schedule.objects.get(name=pump.SCHEDULE_NAME).next_run > timezone.now()
    tasks.pump()

    assert not SimEvent.objects.filter(raised_at__isnull=True).exists()
    assert len(receiver.events()) == backlog


def test_a_pump_killed_without_cleaning_up_is_taken_over_by_the_safety_net(backlog, receiver):
    # A worker killed by q2: its lease stays held (it lapses) and nothing re-armed the pump.
    assert pump._claim_lease("killed")
    SimPumpLease.objects.update(leased_until=timezone.now())

    tasks.pump_safety_net()

    assert not SimEvent.objects.filter(raised_at__isnull=True).exists()
    assert len(receiver.events()) == backlog


def test_the_safety_net_is_scheduled_every_minute():
    schedule = Schedule.objects.get(name="simulator pump (safety net)")

    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("simulator.tasks.pump_safety_net", "I", 1)


def test_a_burst_of_remotes_enqueues_one_pump_task(fleet, awake_vehicle, receiver):
    queued = OrmQ.objects.count()

    for _ in range(5):
        pump.enqueue_pump()

    assert OrmQ.objects.count() == queued + 1
    # Once that task starts, the next remote may arm another.
    assert pump._claim_lease("started")
    pump._release_lease("started")
    pump.enqueue_pump()
    assert OrmQ.objects.count() == queued + 2


def test_no_task_is_enqueued_while_a_pump_runs(fleet):
    queued = OrmQ.objects.count()
    assert pump._claim_lease("running")

    pump.enqueue_pump()

    assert OrmQ.objects.count() == queued
