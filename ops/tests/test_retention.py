"""Retention: what goes, what stays, in short batches while the webhook keeps answering."""

import datetime as dt
import io
import json
import threading
import time

import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Task

from audit.models import AuditEntry
from ops import retention
from remotes.models import ActionStatus, ActionStep, RemoteAction, RemoteEvent, WebhookDelivery
from vehicles.models import VehicleStatus

DAY = dt.timedelta(days=1)
Outcome = WebhookDelivery.Outcome


def _delivery(age_days, outcome=Outcome.PROCESSED, reviewed=False, **kw):
    d = WebhookDelivery.objects.create(body='{"events": []}', outcome=outcome, **kw)
    WebhookDelivery.objects.filter(pk=d.pk).update(
        received_at=timezone.now() - age_days * DAY, reviewed_at=timezone.now() if reviewed else None
    )
    return d.pk


def _action(vehicle, callback, age_days, status=ActionStatus.SUCCESS, rid=None):
    a = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
        status=status, remote_action_id=rid, expires_at=timezone.now(),
    )
    RemoteAction.objects.filter(pk=a.pk).update(created_at=timezone.now() - age_days * DAY)
    return a


def _task(age_days, name):
    stopped = timezone.now() - age_days * DAY
    return Task.objects.create(id=name, name=name, func="remotes.tasks.sweep", started=stopped, stopped=stopped, success=False)


def _snapshot(vehicle, age_days):
    at = timezone.now() - age_days * DAY
    return VehicleStatus.objects.create(
        vehicle=vehicle, fetched_at=at, position_at=at, latitude=48.85, longitude=2.29, energy_level=80,
        raw={"lastPosition": {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.29, 48.85]}}, "energies": []},
    )


def test_the_retention_schedule_is_created_by_the_migration(db):
    schedule = Schedule.objects.get(name="ops-retention")
    assert schedule.func == "ops.tasks.prune" and schedule.minutes == 60 and schedule.repeats == -1


def test_prune_dry_run_prints_a_line_per_kind_and_deletes_nothing(db):
    old = _delivery(40)
    _task(40, "old-task")

    out = io.StringIO()
    call_command("prune", "--dry-run", stdout=out)  # an exit status other than 0 would raise

    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "raw webhook deliveries", "q2 task results", "vehicle positions", "finished actions", "audit log",
    ]
    assert lines[0].startswith("raw webhook deliveries: 1 would go (older than 30 days)")
    assert lines[1].startswith("q2 task results: 1 would go")
    assert lines[-1] == "audit log: kept forever (never pruned: append-only)"
    assert WebhookDelivery.objects.filter(pk=old).exists() and Task.objects.filter(pk="old-task").exists()


def test_prune_deletes_only_what_is_old_and_keeps_what_must_stay(db, make_vehicle, make_callback):
    # Deliveries: old processed and old reviewed go; old flagged unreviewed and recent stay.
    old_processed = _delivery(31)
    old_flagged = [_delivery(31, outcome) for outcome in (Outcome.PARTIAL, Outcome.UNPARSEABLE, Outcome.FAILED)]
    old_reviewed = _delivery(31, Outcome.FAILED, reviewed=True)
    recent = _delivery(29)
    # An event pointing at a delivery that goes keeps its row, without the pointer.
    vehicle, other = make_vehicle(), make_vehicle()
    callback = make_callback(vehicle.fleet)
    kept_action = _action(vehicle, callback, 1, rid="r-new")
    event = RemoteEvent.objects.create(
        action=kept_action, remote_action_id="r-new", event_type="Pending", status="Accepted", event_date=timezone.now(),
        delivery_id=old_processed,
    )
    # Tasks.
    _task(31, "old-task")
    _task(1, "new-task")
    # Positions: the old one is cleared (its snapshot stays), the recent one kept.
    old_snapshot, new_snapshot = _snapshot(vehicle, 91), _snapshot(other, 10)
    # Actions: finished and old goes with its steps and events; open and old, or finished and recent, stay.
    old_done = _action(vehicle, callback, 731, rid="r-old")
    ActionStep.objects.create(action=old_done, status=ActionStatus.QUEUED, at=timezone.now() - 731 * DAY)
    RemoteEvent.objects.create(action=old_done, remote_action_id="r-old", event_type="Done", status="Success", event_date=timezone.now())
    old_open = _action(vehicle, callback, 731, status=ActionStatus.PENDING)
    recent_done = _action(vehicle, callback, 700)
    orphan = RemoteEvent.objects.create(remote_action_id="nobody", event_type="Pending", status="Accepted", event_date=timezone.now())
    RemoteEvent.objects.filter(pk=orphan.pk).update(received_at=timezone.now() - 731 * DAY)
    # The audit log, however old.
    entry = AuditEntry.objects.create(actor="system", source="system", action="remote.requested", at=timezone.now() - 5000 * DAY)

    reports = retention.prune(pause=0)

    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {*old_flagged, recent}
    assert old_reviewed not in WebhookDelivery.objects.values_list("pk", flat=True)
    event.refresh_from_db()
    assert event.delivery_id is None
    assert list(Task.objects.values_list("pk", flat=True)) == ["new-task"]
    old_snapshot.refresh_from_db()
    assert (old_snapshot.latitude, old_snapshot.longitude, old_snapshot.position_at) == (None, None, None)
    assert "lastPosition" not in old_snapshot.raw and "energies" in old_snapshot.raw and old_snapshot.energy_level == 80
    new_snapshot.refresh_from_db()
    assert new_snapshot.latitude == 48.85 and "lastPosition" in new_snapshot.raw
    assert set(RemoteAction.objects.values_list("pk", flat=True)) == {kept_action.pk, old_open.pk, recent_done.pk}
    assert not ActionStep.objects.filter(action_id=old_done.pk).exists()
    assert not RemoteEvent.objects.filter(remote_action_id__in=["r-old", "nobody"]).exists()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    done = {r.kind: r.done for r in reports}
    assert done == {"raw webhook deliveries": 2, "q2 task results": 1, "vehicle positions": 1, "finished actions": 1, "audit log": 0}
    # The clean-up is on the record.
    record = AuditEntry.objects.get(action="retention.pruned")
    assert record.changes["raw webhook deliveries"] == [None, 2] and record.actor == "system"


def test_zero_days_keeps_a_kind_forever(db, settings):
    settings.RETENTION_DELIVERIES_DAYS = 0
    pk = _delivery(3000)

    reports = retention.prune(pause=0)

    assert WebhookDelivery.objects.filter(pk=pk).exists()
    assert reports[0].line(dry_run=False) == "raw webhook deliveries: kept forever (RETENTION_DELIVERIES_DAYS=0)"


def test_a_spent_time_budget_leaves_the_rest_to_the_next_run(db):
    pks = [_delivery(40) for _ in range(5)]

    first = retention.prune(pause=0, batch_size=2, budget=0)
    assert first[0].unfinished and first[0].done == 0 and WebhookDelivery.objects.count() == 5

    second = retention.prune(pause=0, batch_size=2)
    assert second[0].done == 5 and len(second[0].batches) == 3
    assert not WebhookDelivery.objects.filter(pk__in=pks).exists()


def test_the_q2_task_returns_what_it_pruned(db):
    _delivery(40)
    from ops import tasks

    result = tasks.prune()
    assert result["raw webhook deliveries"]["pruned"] == 1 and result["raw webhook deliveries"]["unfinished"] is False


def test_mark_reviewed_lets_retention_prune_a_flagged_delivery(db, client):
    boss = User.objects.create_superuser("boss", password="pw-boss-12345")
    client.force_login(boss)
    flagged, processed = _delivery(40, Outcome.UNPARSEABLE), _delivery(40)

    r = client.post("/admin/remotes/webhookdelivery/", {"action": "mark_reviewed", "_selected_action": [flagged, processed]}, follow=True)

    assert r.status_code == 200 and b"1 flagged delivery(ies) marked reviewed" in r.content
    assert WebhookDelivery.objects.get(pk=flagged).reviewed_at is not None
    assert WebhookDelivery.objects.get(pk=processed).reviewed_at is None  # nothing to review
    assert AuditEntry.objects.filter(action="delivery.reviewed", object_id=str(flagged), actor="boss").exists()
    retention.prune(pause=0)
    assert not WebhookDelivery.objects.exists()


# --- under load: batches short enough for the webhook to keep answering ------------------------

SEED_BODY = json.dumps({"callbackId": "cb0001", "attributes": [], "events": [{
    "remoteActionId": "seeded", "vin": "VF3SEED0000000001", "eventDate": "2026-01-01T00:00:00Z", "remoteType": "Horn",
    "eventStatus": {"type": "Done", "status": "Success"},
}]})


def _seed_old_deliveries(count: int) -> None:
    """`count` processed deliveries 40 days old, a thousandth of them with an event pointing at them."""
    table, events = WebhookDelivery._meta.db_table, RemoteEvent._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {table} (callback_id, received_at, remote_addr, headers, query, body, outcome, error, event_count, bad_events)
                    SELECT NULL, now() - interval '40 days' + g * interval '1 ms', '10.0.0.1', '{{}}', '', %s, 'processed', '', 1, '[]'
                    FROM generate_series(1, %s) AS g""",
                [SEED_BODY, count],
            )
            cursor.execute(
                f"""INSERT INTO {events} (action_id, remote_action_id, vin, remote_type, event_type, status, failure_cause,
                        feedback_detail, event_date, received_at, delivery_id)
                    SELECT NULL, 'seeded-' || id, '', 'Horn', 'Done', 'Success', '', '', now(), now(), id
                    FROM {table} WHERE id % 1000 = 0""",
            )
            cursor.execute(f"ANALYZE {table}; ANALYZE {events}")
        return
    old = timezone.now() - 40 * DAY
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(body=SEED_BODY, outcome=Outcome.PROCESSED, event_count=1) for _ in range(count)], batch_size=5000
    )
    WebhookDelivery.objects.update(received_at=old)


def _prune_while_the_webhook_is_busy(live_server, make_vehicle, make_callback, count: int, capsys, batch_size=retention.BATCH_SIZE):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
        status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at=timezone.now() + 3650 * DAY,
    )
    started = time.monotonic()
    _seed_old_deliveries(count)
    seeded_in = time.monotonic() - started
    assert WebhookDelivery.objects.count() == count

    url = live_server.url + "/webhooks/stellantis/remote/"
    answers: list[tuple[int, float]] = []
    stop = threading.Event()

    def webhook_traffic():
        session = requests.Session()
        n = 0
        while not stop.is_set():
            n += 1
            event = {"remoteActionId": "cafe01", "vin": vehicle.vin, "remoteType": "Horn",
                     "eventDate": (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + n * dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
                     "eventStatus": {"type": "Pending", "status": "Accepted"}}
            t0 = time.monotonic()
            r = session.post(url, data=json.dumps({"callbackId": callback.external_id, "events": [event]}),
                             headers={"Content-Type": "application/json", "X-Fleetportal-Secret": callback.secret_header_value}, timeout=30)
            answers.append((r.status_code, time.monotonic() - t0))

    traffic = threading.Thread(target=webhook_traffic, daemon=True)
    traffic.start()
    try:
        time.sleep(0.3)
        before = len(answers)
        t0 = time.monotonic()
        report = retention.prune(pause=0.01, budget=None, batch_size=batch_size)[0]
        pruned_in = time.monotonic() - t0
        during = len(answers) - before
    finally:
        stop.set()
        traffic.join(timeout=30)

    slowest = max(seconds for _, seconds in answers)
    with capsys.disabled():
        print(
            f"\n[{connection.vendor}] seeded {count} deliveries in {seeded_in:.1f} s; pruned {report.done} in {pruned_in:.1f} s, "
            f"{len(report.batches)} batches, longest transaction {report.longest_batch * 1000:.0f} ms, "
            f"median {sorted(report.batches)[len(report.batches) // 2] * 1000:.0f} ms; "
            f"webhook: {during} deliveries answered meanwhile, slowest {slowest * 1000:.0f} ms"
        )
    assert report.done == count
    # Every delivery the webhook stored meanwhile is recent: all kept.
    assert WebhookDelivery.objects.count() == len(answers)
    # The lock on the delivery rows lasts as long as a batch's transaction: under a second, each.
    assert report.longest_batch < 1.0, report.batches
    assert during >= 3 and {status for status, _ in answers} == {200}
    assert slowest < 2.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="a million rows is a PostgreSQL test (INSERT … SELECT generate_series); SQLite runs the 20,000-row one")
def test_a_million_deliveries_are_pruned_in_short_batches_while_the_webhook_answers(live_server, make_vehicle, make_callback, capsys):
    _prune_while_the_webhook_is_busy(live_server, make_vehicle, make_callback, 1_000_000, capsys)


@pytest.mark.django_db(transaction=True)
def test_twenty_thousand_deliveries_are_pruned_in_short_batches_while_the_webhook_answers(live_server, make_vehicle, make_callback, capsys):
    _prune_while_the_webhook_is_busy(live_server, make_vehicle, make_callback, 20_000, capsys, batch_size=1000)
