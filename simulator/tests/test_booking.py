"""A remote's booking in a request (vendor._Booking): two round trips on PostgreSQL, and as safe as one
statement after the other — remotes to one vehicle plan against each other, a refusal or an error
leaves nothing behind, the pump is armed after commit."""

import threading
import time

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from simulator import pump, vendor
from simulator.models import SimPumpLease, SimRemoteAction, SimVehicle

pytestmark = pytest.mark.django_db(transaction=True)
HORN = {"horn": {"state": "Activated"}}
postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="batched on PostgreSQL only")


@pytest.fixture
def callback(fleet):
    subscribe = {"callback": {"webhook": {"target": "http://127.0.0.1:9/hook", "name": "t"}}, "remoteTypes": ["Horn"]}
    return vendor.create_callback(fleet_id=fleet.id, subscribe=subscribe)


def send(vehicle, callback, body=HORN):
    return vendor.send_remote(fleet_id=vehicle.fleet_id, vehicle_id=vehicle.id, callback_id=callback.id, body=body)


def done_of(action) -> tuple[str, str]:
    event = action.events.get(event_type="Done")
    return event.status, event.failure_cause


def no_transaction_open() -> bool:
    if connection.vendor != "postgresql":
        return not connection.in_atomic_block
    from psycopg.pq import TransactionStatus

    return connection.connection.info.transaction_status == TransactionStatus.IDLE


@postgresql
def test_a_remote_in_a_request_makes_two_round_trips(awake_vehicle, callback):
    pump.enqueue_pump()  # armed: the remote finds a pump waiting, as under load
    with CaptureQueriesContext(connection) as captured:
        action = send(awake_vehicle, callback)

    sent = [q["sql"] for q in captured.captured_queries]
    assert len(sent) == 2, sent
    assert sent[0].startswith("BEGIN; SELECT") and "FOR UPDATE OF v FOR SHARE OF c" in sent[0]
    assert "COMMIT; SELECT 1 FROM simulator_simpumplease" in sent[1]
    assert no_transaction_open()
    assert done_of(action) == ("Success", "")
    assert SimRemoteAction.objects.filter(pk=action.pk).exists()


def test_a_refused_remote_books_nothing_and_leaves_no_transaction_open(awake_vehicle, callback):
    SimVehicle.objects.filter(pk=awake_vehicle.pk).update(next_failure="CanceledByDriver")
    vendor.change_callback_status(callback=callback, status="Paused")

    with pytest.raises(vendor.SimInvalid, match="Paused"):
        send(awake_vehicle, callback)
    assert no_transaction_open()
    with pytest.raises(vendor.SimInvalid, match="horn.state"):
        send(awake_vehicle, callback, {"horn": {"state": "Loud"}})
    assert no_transaction_open()
    with pytest.raises(vendor.SimNotFound, match="No vehicle nope"):
        vendor.send_remote(fleet_id=awake_vehicle.fleet_id, vehicle_id="nope", callback_id=callback.id,
                           body={"horn": {"state": "Loud"}})  # the lookups come first, the body after them
    assert no_transaction_open()

    assert not SimRemoteAction.objects.exists()
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == "CanceledByDriver"


def test_an_error_while_writing_rolls_the_booking_back(awake_vehicle, callback, monkeypatch):
    SimVehicle.objects.filter(pk=awake_vehicle.pk).update(next_failure="CanceledByDriver")
    real = vendor._insert_statements

    def failing(*args):
        return [*real(*args), ("SELECT * FROM simulator_no_such_table", [])]

    monkeypatch.setattr(vendor, "_insert_statements", failing)
    with pytest.raises(DatabaseError):
        send(awake_vehicle, callback)
    assert no_transaction_open()
    assert not SimRemoteAction.objects.exists()
    assert SimVehicle.objects.get(pk=awake_vehicle.pk).next_failure == "CanceledByDriver"

    monkeypatch.setattr(vendor, "_insert_statements", real)
    assert done_of(send(awake_vehicle, callback)) == ("Failed", "CanceledByDriver")  # the connection is fine


def test_the_pump_is_armed_after_commit_when_none_runs_or_waits(awake_vehicle, callback):
    OrmQ.objects.all().delete()
    SimPumpLease.objects.all().delete()

    send(awake_vehicle, callback)
    assert OrmQ.objects.count() == 1
    assert SimPumpLease.objects.get(pk=1).armed_until is not None

    send(awake_vehicle, callback, {"horn": {"state": "Activated"}})  # armed: nothing more to enqueue
    assert OrmQ.objects.count() == 1


@postgresql
def test_a_remote_waiting_for_the_vehicle_plans_against_the_one_that_held_it(awake_vehicle, callback):
    """The load is read once the lock is granted: it sees the remote committed meanwhile (in progress)."""
    result = {}

    def second():
        try:
            result["action"] = send(awake_vehicle, callback)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            result["error"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        first = send(awake_vehicle, callback)  # holds the vehicle's lock until this block commits
        thread = threading.Thread(target=second)
        thread.start()
        _wait_until_blocked()
    thread.join(timeout=10)

    assert "error" not in result, result.get("error")
    assert done_of(first) == ("Success", "")
    assert done_of(result["action"]) == ("Failed", "SameActionInProgress")
    assert no_transaction_open()


def _wait_until_blocked(timeout: float = 5.0) -> None:
    """Until another session waits for a lock this one holds (the second remote, for the vehicle's row)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the second remote never waited for the vehicle's lock")


def test_enqueue_pump_arms_one_task_until_it_starts():
    OrmQ.objects.all().delete()
    SimPumpLease.objects.all().delete()
    pump.enqueue_pump()
    pump.enqueue_pump()

    assert OrmQ.objects.count() == 1


@postgresql
def test_with_server_side_binding_the_statements_go_one_by_one(awake_vehicle, callback, monkeypatch):
    """psycopg's server-side binding takes one statement per execute: no batch then."""
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {**connection.settings_dict.get("OPTIONS", {}),
                                                                "server_side_binding": True})
    pump.enqueue_pump()
    with CaptureQueriesContext(connection) as captured:
        action = send(awake_vehicle, callback)

    assert [q["sql"] for q in captured.captured_queries][0] == "BEGIN"  # transaction.atomic's, then one by one
    assert len(captured) >= 5
    assert done_of(action) == ("Success", "")
    assert no_transaction_open()
