"""Notifications as the vendor sends them: attributes, retry policy, batch policy, paused callbacks."""

import datetime as dt

import pytest
from django.utils import timezone

from simulator import pump
from simulator.models import SimEvent, SimNotification, SimVehicle
from stellantis import spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("simulator.tests.urls")]


def assert_remote_events(body):
    errors = spec.schema_errors(spec.WEBHOOK_FILE, "RemoteEvents", body)
    assert errors == [], errors


def later(seconds: float = 3600) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def test_attributes_arrive_as_headers_query_and_body_with_variables_filled(
    api, fleet, awake_vehicle, receiver, pump_all, reference_dir
):
    attributes = [
        {"type": "Header", "key": "X-Fleetportal-Secret", "value": "s3cret"},
        {"type": "Header", "key": "X-Vehicle", "value": "$vin"},
        {"type": "Query", "key": "cb", "value": "$callbackID"},
        {"type": "Query", "key": "type", "value": "$remoteType"},
        {"type": "Body", "key": "fleet", "value": "$fleetID"},
        {"type": "Body", "key": "plain", "value": "hello"},
    ]
    callback_id = api.create_callback(fleet.id, receiver.url, attributes=attributes)

    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump_all()

    assert len(receiver.received) == 3
    for received in receiver.received:
        assert_remote_events(received.body)
        assert received.path == "/hook"
        assert received.headers["X-Fleetportal-Secret"] == "s3cret"
        assert received.headers["X-Vehicle"] == awake_vehicle.vin
        assert received.query == {"cb": [callback_id], "type": ["Horn"]}
        assert received.body["attributes"] == [{"key": "fleet", "value": fleet.id}, {"key": "plain", "value": "hello"}]


def test_bounded_policy_retries_until_the_webhook_takes_it(api, fleet, awake_vehicle, receiver, pump_all):
    # The webhook fails the Accepted notification twice, then takes everything.
    receiver.respond = lambda r: 500 if "Accepted" in r.statuses and receiver.count("Accepted") <= 2 else 200
    callback_id = api.create_callback(
        fleet.id, receiver.url, retryPolicy={"policy": "Bounded", "retryNumber": 3, "retryDelay": 1}
    )

    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump_all()

    assert receiver.count("Accepted") == 3
    accepted = SimNotification.objects.get(event__status="Accepted")
    assert (accepted.state, accepted.attempts) == ("delivered", 3)
    assert set(SimNotification.objects.values_list("state", flat=True)) == {"delivered"}


def test_bounded_policy_gives_up_after_its_retries(api, fleet, awake_vehicle, receiver, pump_all):
    receiver.respond = lambda r: 500
    callback_id = api.create_callback(
        fleet.id, receiver.url, retryPolicy={"policy": "Bounded", "retryNumber": 2, "retryDelay": 1}
    )

    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump_all()

    assert receiver.count("Accepted") == 3
    assert set(SimNotification.objects.values_list("state", "attempts")) == {("dead", 3)}


def test_none_policy_makes_exactly_two_attempts(api, fleet, awake_vehicle, receiver, pump_all):
    receiver.respond = lambda r: 500
    callback_id = api.create_callback(fleet.id, receiver.url, retryPolicy={"policy": "None"})

    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    result = pump_all()

    assert [receiver.count(s) for s in ("Accepted", "SentToVehicle", "Success")] == [2, 2, 2]
    assert set(SimNotification.objects.values_list("state", "attempts")) == {("dead", 2)}
    assert result.dead == 3
    last_error = SimNotification.objects.first().last_error
    assert "500" in last_error


def test_an_unreachable_webhook_counts_as_a_failed_attempt(api, fleet, awake_vehicle, pump_all):
    callback_id = api.create_callback(fleet.id, "http://127.0.0.1:9/nothing-listens-here")

    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump_all()

    assert set(SimNotification.objects.values_list("state", "attempts")) == {("dead", 2)}


def test_a_batch_of_three_goes_in_one_request(api, fleet, receiver, settings, reference_dir):
    settings.SIMULATOR_SPEED = 1.0  # the three Accepted fall due well before any SentToVehicle
    callback_id = api.create_callback(fleet.id, receiver.url, batchNotify={"size": 3, "timeWindow": 60})
    vehicles = list(SimVehicle.objects.filter(fleet=fleet).order_by("vin")[:3])
    SimVehicle.objects.filter(pk__in=[v.pk for v in vehicles]).update(asleep=False, online=True)
    for vehicle in vehicles:
        api.send(vehicle, callback_id, {"horn": {"state": "Activated"}})
    # Raise only each action's Accepted: three events for the batch.
    accepted_due = max(SimEvent.objects.filter(status="Accepted").values_list("due_at", flat=True))

    pump.run_due(now=accepted_due)

    assert len(receiver.received) == 1
    body = receiver.received[0].body
    assert_remote_events(body)
    assert [e["eventStatus"]["status"] for e in body["events"]] == ["Accepted"] * 3
    assert {e["vin"] for e in body["events"]} == {v.vin for v in vehicles}


def test_a_partial_batch_waits_for_its_time_window(api, fleet, awake_vehicle, receiver, settings):
    settings.SIMULATOR_SPEED = 1.0  # a 60 s window stays 60 s
    callback_id = api.create_callback(fleet.id, receiver.url, batchNotify={"size": 10, "timeWindow": 60})
    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    done_at = SimEvent.objects.get(event_type="Done").due_at

    pump.run_due(now=done_at)
    assert receiver.received == []
    pump.run_due(now=done_at + dt.timedelta(seconds=61))

    assert len(receiver.received) == 1
    assert receiver.received[0].statuses == ["Accepted", "SentToVehicle", "Success"]


def test_vin_as_query_attribute_turns_batching_off(api, fleet, awake_vehicle, receiver):
    callback_id = api.create_callback(
        fleet.id,
        receiver.url,
        batchNotify={"size": 3},
        attributes=[{"type": "Query", "key": "vin", "value": "$vin"}],
    )

    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    pump.run_due(now=later())

    assert [r.statuses for r in receiver.received] == [["Accepted"], ["SentToVehicle"], ["Success"]]
    assert all(r.query == {"vin": [awake_vehicle.vin]} for r in receiver.received)


def test_a_paused_callback_posts_nothing_but_the_action_can_be_read_back(api, fleet, awake_vehicle, receiver, pump_all):
    callback_id = api.create_callback(fleet.id, receiver.url)
    action_id = api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}}).json()["remoteActionId"]
    api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status", {"status": "Paused"})

    pump_all()

    assert receiver.received == []
    assert not SimNotification.objects.exists()
    read = api.get(f"fleets/{fleet.id}/vehicles/{awake_vehicle.id}/callbacks/{callback_id}/remotes/{action_id}")
    assert read.json()["status"] == "Success"


def test_notifications_queued_before_a_pause_go_out_on_resume(api, fleet, awake_vehicle, receiver):
    callback_id = api.create_callback(fleet.id, receiver.url)
    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})
    accepted_at = SimEvent.objects.get(status="Accepted").due_at
    receiver.respond = lambda r: 500
    pump.run_due(now=accepted_at)  # the Accepted notification fails once and waits for its retry
    receiver.respond = None
    api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status", {"status": "Paused"})
    pump.run_due(now=later())
    assert receiver.count("Accepted") == 1

    api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status", {"status": "Running"})
    pump.run_due(now=later())

    assert receiver.statuses() == ["Accepted", "Accepted"]
    assert SimNotification.objects.get().state == "delivered"


def test_retries_stop_at_the_three_day_horizon(api, fleet, awake_vehicle, receiver):
    receiver.respond = lambda r: 500
    callback_id = api.create_callback(
        fleet.id, receiver.url, retryPolicy={"policy": "Bounded", "retryNumber": 50, "retryDelay": 3600}
    )
    api.send(awake_vehicle, callback_id, {"wakeUp": {}})
    accepted_at = SimEvent.objects.get(status="Accepted").due_at
    pump.run_due(now=accepted_at)
    notification = SimNotification.objects.get()

    pump.run_due(now=notification.created_at + dt.timedelta(days=3) - dt.timedelta(seconds=1))

    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == ("dead", 2)
