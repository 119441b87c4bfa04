"""Applying notification events: idempotent, order-proof, early arrivals adopted."""

import datetime as dt

import pytest
from django.db import transaction

from remotes import events as remote_events
from remotes import services
from remotes.models import ActionStatus, RemoteAction, RemoteEvent
from stellantis.webhook import ParsedEvent

T0 = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.UTC)


def ev(rid, kind, status, seconds, cause=""):
    return ParsedEvent(
        remote_action_id=rid, vin="VF3TEST0000000001", event_date=T0 + dt.timedelta(seconds=seconds),
        remote_type="Horn", event_type=kind, status=status, failure_cause=cause,
    )


def apply(events):
    with transaction.atomic():
        return remote_events.apply_events(events)


@pytest.fixture
def submitted(db, make_vehicle, make_callback):
    vehicle = make_vehicle()
    cb = make_callback(vehicle.fleet)
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=cb, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
        status=ActionStatus.SUBMITTED, remote_action_id="aa01", expires_at=T0,
    )


BATCH = [
    ev("aa01", "Pending", "Accepted", 0),
    ev("aa01", "Pending", "WakingUpVehicle", 1),
    ev("aa01", "Pending", "SentToVehicle", 5),
    ev("aa01", "Done", "Success", 7),
]


def test_the_same_batch_three_times_stores_each_event_once(submitted):
    for _ in range(3):
        apply(BATCH)

    assert RemoteEvent.objects.count() == 4
    submitted.refresh_from_db()
    assert submitted.status == ActionStatus.SUCCESS


def test_done_is_final_whatever_arrives_after_it(submitted):
    apply([BATCH[3]])
    apply(BATCH[:3])  # late Pending events

    submitted.refresh_from_db()
    assert submitted.status == ActionStatus.SUCCESS
    assert [e.status for e in submitted.events.all()] == ["Accepted", "WakingUpVehicle", "SentToVehicle", "Success"]


def test_among_pending_events_the_latest_event_date_wins(submitted):
    apply([BATCH[2]])
    apply([BATCH[0]])

    submitted.refresh_from_db()
    assert submitted.status == ActionStatus.PENDING
    assert submitted.pending_status == "SentToVehicle"


def test_a_failure_keeps_its_cause(submitted):
    apply([ev("aa01", "Pending", "Accepted", 0), ev("aa01", "Done", "Failed", 3, cause="VehicleConnectionTimeout")])

    submitted.refresh_from_db()
    assert submitted.status == ActionStatus.FAILED
    assert submitted.failure_cause == "VehicleConnectionTimeout"
    assert "out of network coverage" in submitted.failure_advice


def test_an_event_before_its_action_is_known_is_kept_and_adopted_later(submitted):
    result = apply([ev("bb02", "Pending", "Accepted", 0), ev("bb02", "Done", "Success", 2)])
    assert result.orphan_action_ids == ["bb02"]
    assert RemoteEvent.objects.filter(action__isnull=True).count() == 2

    other = RemoteAction.objects.create(
        vehicle=submitted.vehicle, callback=submitted.callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTING, expires_at=T0,
    )
    services._record_submitted(other, "bb02", "test")

    other.refresh_from_db()
    assert other.status == ActionStatus.SUCCESS
    assert other.events.count() == 2


def test_a_batch_costs_the_same_number_of_queries_as_a_single_event(submitted):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(rid, n):
        RemoteAction.objects.filter(pk=submitted.pk).update(remote_action_id=rid)
        with CaptureQueriesContext(connection) as ctx:
            apply([ev(rid, "Pending", "Accepted", i) for i in range(n)])
        return len(ctx.captured_queries)

    # 60 events fit one INSERT even under SQLite's bound-parameter limit.
    assert cost("aa01", 1) == cost("aa02", 60) <= 8
    assert RemoteEvent.objects.count() == 61
