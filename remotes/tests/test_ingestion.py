"""Ingestion under the conditions real senders create: races, reordering, failures, replays."""

import datetime as dt
import json
import threading

import pytest
import requests
from django.conf import settings
from django.db import connection

from remotes import inbox
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery
from remotes.selectors import timeline

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def setup(live_server, make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Doors", command={"door": {"state": "Locked"}}, source="api",
        status=ActionStatus.SUBMITTED, remote_action_id="beef01", expires_at=T0, submitted_at=T0,
    )
    return live_server, callback, action


def events(rid="beef01"):
    steps = [("Pending", "Accepted", 0), ("Pending", "WakingUpVehicle", 2), ("Pending", "SentToVehicle", 9), ("Done", "Success", 12)]
    return [
        {"remoteActionId": rid, "vin": "VF3TEST0000000001", "eventDate": (T0 + dt.timedelta(seconds=s)).isoformat().replace("+00:00", "Z"),
         "remoteType": "Doors", "eventStatus": {"type": t, "status": st}}
        for t, st, s in steps
    ]


def post(server, callback, evs):
    return requests.post(
        server.url + "/webhooks/stellantis/remote/",
        data=json.dumps({"callbackId": callback.external_id, "attributes": [], "events": evs}),
        headers={"Content-Type": "application/json", settings.WEBHOOK_SECRET_HEADER: callback.secret_header_value},
        timeout=15,
    )


def test_a_shuffled_batch_with_done_first_ends_done_with_an_ordered_timeline(setup):
    server, callback, action = setup
    evs = events()
    assert post(server, callback, [evs[3], evs[1]]).status_code == 200
    assert post(server, callback, [evs[2], evs[0]]).status_code == 200

    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS
    vendor = [t.status for t in timeline(RemoteAction.objects.prefetch_related("events", "steps").get(pk=action.pk)) if t.origin == "stellantis"]
    assert vendor == ["Accepted", "WakingUpVehicle", "SentToVehicle", "Success"]


def test_two_workers_posting_the_same_batch_at_once_store_each_event_once(setup):
    server, callback, action = setup
    results, barrier = [], threading.Barrier(4)

    def worker():
        barrier.wait()
        results.append(post(server, callback, events()).status_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert results == [200, 200, 200, 200]
    assert RemoteEvent.objects.count() == 4
    assert WebhookDelivery.objects.count() == 4
    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS


@pytest.fixture
def event_inserts_fail():
    """A real database failure after the delivery row is written: the event insert raises."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
            )
            cursor.execute("CREATE TRIGGER test_disk_full BEFORE INSERT ON remotes_remoteevent FOR EACH ROW EXECUTE FUNCTION test_disk_full()")
        else:
            cursor.execute("CREATE TRIGGER test_disk_full BEFORE INSERT ON remotes_remoteevent BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER test_disk_full" + (" ON remotes_remoteevent" if connection.vendor == "postgresql" else ""))
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION test_disk_full()")


def test_a_database_failure_mid_delivery_answers_500_and_writes_nothing(setup, event_inserts_fail):
    server, callback, action = setup

    r = post(server, callback, events())

    assert r.status_code == 500
    assert WebhookDelivery.objects.count() == 0  # the raw row rolled back with the rest: the sender retries
    assert RemoteEvent.objects.count() == 0
    action.refresh_from_db()
    assert action.status == ActionStatus.SUBMITTED


def test_replaying_a_stored_delivery_is_safe(setup):
    server, callback, action = setup
    post(server, callback, events())
    delivery = WebhookDelivery.objects.get()

    receipt = inbox.replay_delivery(delivery=delivery)

    assert (receipt.events, receipt.new_events) == (4, 0)
    assert RemoteEvent.objects.count() == 4


def test_a_delivery_for_an_unknown_action_is_kept_and_replay_attaches_it_later(setup):
    server, callback, action = setup
    post(server, callback, events(rid="f00d02"))
    assert RemoteEvent.objects.filter(action__isnull=True).count() == 4

    RemoteAction.objects.filter(pk=action.pk).update(remote_action_id="f00d02")
    inbox.replay_delivery(delivery=WebhookDelivery.objects.get())

    assert RemoteEvent.objects.filter(action=action).count() == 4
    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and ON CONFLICT under real concurrency need PostgreSQL")
def test_concurrent_pending_and_done_on_postgresql_never_regress(setup):
    server, callback, action = setup
    evs = events()
    barrier = threading.Barrier(2)

    def send(batch):
        barrier.wait()
        post(server, callback, batch)

    for _ in range(5):
        RemoteEvent.objects.all().delete()
        RemoteAction.objects.filter(pk=action.pk).update(status=ActionStatus.SUBMITTED)
        threads = [threading.Thread(target=send, args=(b,)) for b in ([evs[3]], evs[:3])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        action.refresh_from_db()
        assert action.status == ActionStatus.SUCCESS


def test_a_delivery_our_code_fails_to_process_is_kept_flagged_and_acknowledged(setup, monkeypatch):
    from remotes import events as remote_events
    from remotes import pg_ingest

    server, callback, action = setup

    def bug(*args, **kwargs):
        raise ValueError("a bug of ours")

    # The code that applies events: one statement on PostgreSQL, the ORM elsewhere.
    if connection.vendor == "postgresql":
        monkeypatch.setattr(pg_ingest, "store_and_apply", bug)
    else:
        monkeypatch.setattr(remote_events, "_recompute", bug)
    r = post(server, callback, events())

    assert r.status_code == 200  # received: the sender must not retry our bug forever
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == WebhookDelivery.Outcome.FAILED and "a bug of ours" in delivery.error
    assert RemoteEvent.objects.count() == 0  # nothing half-applied; replay once fixed
    monkeypatch.undo()
    inbox.replay_delivery(delivery=delivery)
    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS


def test_events_that_beat_the_submit_answer_are_adopted_when_it_records_the_id(setup):
    """Over HTTP, on either database: the notification arrives before the POST's answer is recorded."""
    from remotes import services as remote_services

    server, callback, action = setup
    RemoteAction.objects.filter(pk=action.pk).update(status=ActionStatus.SUBMITTING, remote_action_id=None)
    assert post(server, callback, events(rid="early01")).status_code == 200
    assert RemoteEvent.objects.filter(action__isnull=True).count() == 4

    action.refresh_from_db()
    remote_services._record_submitted(action, "early01", "test")

    action.refresh_from_db()
    assert action.status == ActionStatus.SUCCESS
    vendor = [t.status for t in timeline(RemoteAction.objects.prefetch_related("events", "steps").get(pk=action.pk)) if t.origin == "stellantis"]
    assert vendor == ["Accepted", "WakingUpVehicle", "SentToVehicle", "Success"]
