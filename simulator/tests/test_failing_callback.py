"""A callback whose webhook keeps refusing turns Failed, posts nothing more, and can be resumed."""

import datetime as dt

import pytest
from django.utils import timezone

from simulator import pump, vendor
from simulator.models import SimCallback, SimEvent, SimNotification, SimVehicle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("simulator.tests.urls")]


def later(seconds: float = 3600) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def fail_after_three(settings):
    settings.SIMULATOR_CALLBACK_FAIL_AFTER = 3


@pytest.fixture
def vehicles(fleet):
    SimVehicle.objects.filter(fleet=fleet).update(asleep=False, awake_until=None, online=True, in_use=False, stolen=False)
    return list(SimVehicle.objects.filter(fleet=fleet).order_by("vin")[:2])


def status_path(fleet, callback_id: str) -> str:
    return f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status"


def test_a_webhook_that_refuses_every_retry_of_three_notifications_fails_the_callback(
    api, fleet, vehicles, receiver, pump_all
):
    receiver.respond = lambda r: 500
    callback_id = api.create_callback(fleet.id, receiver.url, retryPolicy={"policy": "Bounded", "retryNumber": 1, "retryDelay": 1})
    for vehicle in vehicles:  # six notifications: three are enough
        api.send(vehicle, callback_id, {"horn": {"state": "Activated"}})

    pump_all()

    assert SimCallback.objects.get(pk=callback_id).status == "Failed"
    assert api.get(f"fleets/{fleet.id}/remote/callbacks/{callback_id}").json()["status"] == "Failed"
    assert SimNotification.objects.filter(state="dead").count() == 3
    assert not SimNotification.objects.filter(state="delivered").exists()
    # It posts nothing more: what was waiting stays, what is raised now is not queued.
    posted = len(receiver.received)
    pump.run_due(now=later())
    assert len(receiver.received) == posted
    assert not SimEvent.objects.filter(raised_at__isnull=True).exists()
    assert pump.next_work_at() is None
    # …and takes no new command, like a Paused one.
    refused = api.send(vehicles[0], callback_id, {"horn": {"state": "Activated"}})
    assert refused.status_code == 400 and "Failed" in refused.text


def test_resuming_a_failed_callback_sends_what_waited_and_counts_afresh(api, fleet, vehicles, receiver, pump_all):
    receiver.respond = lambda r: 500
    callback_id = api.create_callback(fleet.id, receiver.url, retryPolicy={"policy": "Bounded", "retryNumber": 1, "retryDelay": 1})
    for vehicle in vehicles:
        api.send(vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump_all()
    assert SimCallback.objects.get(pk=callback_id).status == "Failed"
    waiting = SimNotification.objects.filter(state="pending").count()

    receiver.respond = None  # the target is fixed
    resumed = api.put(status_path(fleet, callback_id), {"status": "Running"})
    assert resumed.status_code == 202 and resumed.json()["status"] == "Running"
    pump_all()

    assert SimCallback.objects.get(pk=callback_id).status == "Running"
    assert SimNotification.objects.filter(state="delivered").count() == waiting
    assert not SimNotification.objects.filter(state="pending").exists()


def test_a_paused_callback_is_not_failed(api, fleet, vehicles, receiver):
    receiver.respond = lambda r: 500
    callback_id = api.create_callback(fleet.id, receiver.url, retryPolicy={"policy": "None"})
    for vehicle in vehicles:
        api.send(vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump.run_due(now=later())
    api.put(status_path(fleet, callback_id), {"status": "Paused"})

    callback = SimCallback.objects.get(pk=callback_id)
    SimNotification.objects.update(state="dead", next_attempt_at=later(7200))
    pump._fail_if_refused(callback, at=later(7200))

    assert SimCallback.objects.get(pk=callback_id).status == "Paused"


# --- the count, on rows made directly -----------------------------------------------------


@pytest.fixture
def outbox(fleet, vehicles, receiver):
    """A Running callback and its raised events; `add(state, at)` makes a finished notification."""
    callback = vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": ["Horn"]},
    )
    action = vendor.send_remote(
        fleet_id=fleet.id, vehicle_id=vehicles[0].id, callback_id=callback.id, body={"horn": {"state": "Activated"}}
    )
    event = SimEvent.objects.filter(action=action).first()
    start = SimCallback.objects.get(pk=callback.pk).updated_at

    def add(state: str, seconds: float) -> None:
        at = start + dt.timedelta(seconds=seconds)
        SimNotification.objects.create(
            callback=callback, event=event, state=state, attempts=2, next_attempt_at=at, created_at=at,
            delivered_at=at if state == "delivered" else None, last_error="" if state == "delivered" else "HTTP 500",
        )

    def check(seconds: float) -> str:
        pump._fail_if_refused(SimCallback.objects.get(pk=callback.pk), at=start + dt.timedelta(seconds=seconds))
        return SimCallback.objects.get(pk=callback.pk).status

    add.check = check
    add.callback = callback
    add.start = start
    return add


def test_three_given_up_in_a_row_fail_it_two_do_not(outbox):
    outbox("dead", 1)
    outbox("dead", 2)
    assert outbox.check(2) == "Running"
    outbox("dead", 3)
    assert outbox.check(3) == "Failed"


def test_a_notification_the_webhook_took_starts_the_count_again(outbox):
    outbox("dead", 1)
    outbox("dead", 2)
    outbox("delivered", 3)
    outbox("dead", 4)
    outbox("dead", 5)
    assert outbox.check(5) == "Running"


def test_a_resume_starts_the_count_again(outbox):
    for second in (1, 2, 3):
        outbox("dead", second)
    # Resumed (or replaced with PUT) after those three were given up.
    SimCallback.objects.filter(pk=outbox.callback.pk).update(updated_at=outbox.start + dt.timedelta(seconds=10))
    outbox("dead", 11)
    assert outbox.check(11) == "Running"
