"""The one-statement ingestion (PostgreSQL) follows the same rules as the ORM path.

The rules live twice: in `events._derive` (SQLite, replay, adoption) and in the SQL of
`remotes.pg_ingest` (every webhook delivery on PostgreSQL). Hypothesis feeds both the same
events, cut into deliveries and shuffled, and the two actions must end identical.

The SQL runs on PostgreSQL only. On SQLite these tests are skipped with a reason that says
"NOT CHECKED" (shown in every run's summary, `-ra`): CI runs them on PostgreSQL.
"""

import datetime as dt
import itertools

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remotes import events, pg_ingest
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery
from stellantis.vocabulary import DoneStatus, PendingStatus
from stellantis.webhook import ParsedEvent

_NOT_POSTGRESQL = connection.vendor != "postgresql"

T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
DERIVED = ("status", "pending_status", "pending_at", "failure_cause", "feedback_detail", "finished_at", "error")
_ids = itertools.count()

pending = st.tuples(st.just("Pending"), st.sampled_from(PendingStatus.values), st.just(""))
done = st.tuples(st.just("Done"), st.sampled_from(DoneStatus.values), st.sampled_from(["", "VehicleOffline", "LowBattery"]))
event = st.tuples(st.one_of(pending, pending, pending, done), st.integers(0, 6))  # few distinct dates: ties happen
deliveries = st.lists(st.lists(event, min_size=1, max_size=6), min_size=1, max_size=5)
start = st.sampled_from([ActionStatus.SUBMITTED, ActionStatus.PENDING, ActionStatus.ERROR, ActionStatus.SUCCESS, ActionStatus.EXPIRED])


def parsed(rid, spec):
    (kind, status, cause), seconds = spec
    return ParsedEvent(
        remote_action_id=rid, vin="VF3TEST0000000001", event_date=T0 + dt.timedelta(seconds=seconds),
        remote_type="Horn", event_type=kind, status=status, failure_cause=cause,
    )


@pytest.fixture
def make_action(db, make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    other = make_vehicle()
    elsewhere = make_callback(other.fleet)  # another fleet's callback: its deliveries may not move our actions

    def make(status, *, foreign=False):
        n = next(_ids)
        return RemoteAction.objects.create(
            vehicle=other if foreign else vehicle, callback=elsewhere if foreign else callback, remote_type="Horn",
            command={"horn": {"state": "Activated"}}, source="api", status=status, remote_action_id=f"prop{n:06d}", expires_at=T0,
            error="gave up" if status == ActionStatus.ERROR else "",
        )

    make.callback = callback
    return make


def raw_delivery(callback_id):
    return {"callback_id": callback_id, "now": T0, "remote_addr": None, "headers": {}, "query": "", "body": "{}"}


@pytest.mark.skipif(
    _NOT_POSTGRESQL,
    reason="NOT CHECKED: the SQL twin of remotes.events._derive (remotes.pg_ingest) runs only on PostgreSQL; "
    "run with DATABASE_URL=postgres://… to compare them",
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=deliveries, status=start, foreign=st.lists(st.booleans(), min_size=5, max_size=5))
# Two Pending steps with one eventDate in two deliveries: the newer row wins on both paths.
@example(batches=[[(("Pending", "Accepted", ""), 5)], [(("Pending", "SentToVehicle", ""), 5)]], status=ActionStatus.SUBMITTED, foreign=[True] * 5)
# Two different Done events for one action, the later-dated one first.
@example(batches=[[(("Done", "Failed", "LowBattery"), 9)], [(("Done", "Success", ""), 3)]], status=ActionStatus.PENDING, foreign=[False, True, False, False, False])
def test_one_statement_and_orm_paths_end_in_the_same_state(make_action, batches, status, foreign):
    by_sql, by_orm = make_action(status), make_action(status)
    # An action of another fleet's callback, whose events some deliveries also carry: refused by both.
    theirs_sql, theirs_orm = make_action(status, foreign=True), make_action(status, foreign=True)
    for batch, with_foreign in zip(batches, foreign + [False] * len(batches), strict=False):
        delivery = WebhookDelivery.objects.create(body="{}", callback=make_action.callback)
        for_sql = [parsed(by_sql.remote_action_id, e) for e in batch]
        for_orm = [parsed(by_orm.remote_action_id, e) for e in batch]
        if with_foreign:
            for_sql.insert(1, parsed(theirs_sql.remote_action_id, batch[0]))
            for_orm.insert(1, parsed(theirs_orm.remote_action_id, batch[0]))
        with transaction.atomic():
            done = pg_ingest.store_and_apply(delivery=raw_delivery(make_action.callback.pk), events=for_sql)
            result = events.apply_events(for_orm, delivery=delivery)
        rid_free = [({**r, "event": {**r["event"], "remote_action_id": "-"}}) for r in done.refused]
        assert rid_free == [({**r, "event": {**r["event"], "remote_action_id": "-"}}) for r in result.refused]
        assert [r["index"] for r in done.refused] == ([1] if with_foreign else [])
        stored = WebhookDelivery.objects.get(pk=done.delivery_id)
        assert stored.bad_events == done.refused
        assert stored.outcome == (WebhookDelivery.Outcome.PARTIAL if with_foreign else WebhookDelivery.Outcome.PROCESSED)

    for action in (by_sql, by_orm, theirs_sql, theirs_orm):
        action.refresh_from_db()
    assert {f: getattr(by_sql, f) for f in DERIVED} == {f: getattr(by_orm, f) for f in DERIVED}
    assert RemoteEvent.objects.filter(action=by_sql).count() == RemoteEvent.objects.filter(action=by_orm).count()
    for theirs in (theirs_sql, theirs_orm):
        assert theirs.status == status and not RemoteEvent.objects.filter(remote_action_id=theirs.remote_action_id).exists()


@pytest.mark.skipif(
    _NOT_POSTGRESQL,
    reason="NOT CHECKED: remotes.pg_ingest (the PostgreSQL-only webhook path) keeping orphan events; "
    "run with DATABASE_URL=postgres://… to check it",
)
def test_events_of_unknown_actions_are_kept_and_reported_as_orphans(make_action):
    done = pg_ingest.store_and_apply(
        delivery=raw_delivery(make_action.callback.pk),
        events=[parsed("nobody-yet", (("Pending", "Accepted", ""), 1)), parsed("nobody-yet", (("Pending", "Accepted", ""), 1))],
    )

    assert done.orphan_action_ids == ["nobody-yet"]
    assert done.new_events == 1  # the repeat inside one batch is dropped too
    assert RemoteEvent.objects.get().delivery_id == done.delivery_id


@pytest.mark.skipif(
    _NOT_POSTGRESQL,
    reason="NOT CHECKED: remotes.pg_ingest's one-event statement runs only on PostgreSQL; run with DATABASE_URL=postgres://… to check it",
)
def test_a_delivery_of_one_event_runs_the_one_event_statement_with_the_same_outcomes(make_action):
    from django.test.utils import CaptureQueriesContext

    ours, theirs = make_action(ActionStatus.PENDING), make_action(ActionStatus.PENDING, foreign=True)
    cases = [  # (remote action id, event) → what the delivery reports
        (ours.remote_action_id, (("Done", "Failed", "VehicleOffline"), 3)),
        ("nobody-yet-1", (("Pending", "Accepted", ""), 1)),
        (theirs.remote_action_id, (("Done", "Success", ""), 2)),
    ]
    reports = []
    for rid, spec in cases:
        with CaptureQueriesContext(connection) as ctx:
            reports.append(pg_ingest.store_and_apply(delivery=raw_delivery(make_action.callback.pk), events=[parsed(rid, spec)]))
        assert [q["sql"] for q in ctx.captured_queries] == [pg_ingest.STATEMENT_ONE]

    moved, orphan, refused = reports
    ours.refresh_from_db()
    assert (ours.status, ours.failure_cause, ours.finished_at) == (ActionStatus.FAILED, "VehicleOffline", T0 + dt.timedelta(seconds=3))
    assert moved.new_events == 1 and not moved.orphan_action_ids and not moved.refused
    assert orphan.orphan_action_ids == ["nobody-yet-1"] and orphan.new_events == 1
    assert refused.new_events == 0 and [r["index"] for r in refused.refused] == [0]
    assert WebhookDelivery.objects.get(pk=refused.delivery_id).outcome == WebhookDelivery.Outcome.PARTIAL
    theirs.refresh_from_db()
    assert theirs.status == ActionStatus.PENDING
