"""The admin's history lists (events, actions, deliveries, audit) do not grow with history (issue 14).

A page runs the same queries at N and 10×N rows, never counts the whole table, its filters
still narrow the list, and a member still sees their organisation's rows only. On
PostgreSQL, the status filter's main query is planned on an index (remotes 0014).
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEntry
from core.admin import CappedCountPaginator
from remotes.models import ActionStatus, RemoteAction, RemoteEvent, Source, WebhookDelivery

pytestmark = pytest.mark.django_db

LISTS = {
    "events": "/admin/remotes/remoteevent/",
    "actions": "/admin/remotes/remoteaction/",
    "deliveries": "/admin/remotes/webhookdelivery/",
    "audit": "/admin/audit/auditentry/",
}
TABLES = {
    "events": "remotes_remoteevent",
    "actions": "remotes_remoteaction",
    "deliveries": "callbacks_webhookdelivery",
    "audit": "audit_auditentry",
}


@pytest.fixture
def history(organisation, make_vehicle, make_callback):
    """add(n): n more actions, each with two events and a delivery, and an audit entry, in Org A."""
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    made = {"n": 0}

    def add(n):
        now = timezone.now()
        for _ in range(n):
            i = made["n"] = made["n"] + 1
            failed = i % 3 == 0
            action = RemoteAction.objects.create(
                vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source=Source.API,
                status=ActionStatus.FAILED if failed else ActionStatus.SUCCESS, failure_cause="DoorsOpen" if failed else "",
                remote_action_id=f"rid-{i}", expires_at=now + dt.timedelta(hours=1),
            )
            delivery = WebhookDelivery.objects.create(
                callback=callback, body="{}", event_count=1,
                outcome=WebhookDelivery.Outcome.FAILED if failed else WebhookDelivery.Outcome.PROCESSED,
            )
            for k, (kind, status) in enumerate([("Pending", "Accepted"), ("Done", "Failed" if failed else "Success")]):
                RemoteEvent.objects.create(
                    action=action, remote_action_id=f"rid-{i}", event_type=kind, status=status, delivery=delivery,
                    event_date=now - dt.timedelta(minutes=i, seconds=-k),
                )
            AuditEntry.objects.create(actor="someone", organisation=organisation, source="api", action="remote.requested",
                                      object_repr=f"Horn {i}")
        return vehicle

    return add


@pytest.fixture
def admin_of_a(make_member):
    return make_member("a-admin", Role.ADMIN, is_staff=True)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root-1")


def _page(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return response, [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("who", ["superuser", "member"])
@pytest.mark.parametrize("name", LISTS)
def test_a_history_list_runs_the_same_queries_at_ten_times_the_rows_and_never_counts_the_table(
    client, history, superuser, admin_of_a, monkeypatch, name, who
):
    # A cap and a page smaller than the rows, so that both sizes page and the larger one is capped.
    monkeypatch.setattr(CappedCountPaginator, "cap", 12)
    client.force_login(superuser if who == "superuser" else admin_of_a)
    history(3)
    small, small_sql = _page(client, LISTS[name])
    history(27)
    big, big_sql = _page(client, LISTS[name])

    assert len(big_sql) == len(small_sql), "\n".join(big_sql)
    assert len(big.context["cl"].result_list) > len(small.context["cl"].result_list)
    for sql in big_sql:
        if "COUNT(" in sql.upper():
            assert "LIMIT 13" in sql.upper(), f"a count of the whole table: {sql}"
    assert "More than 12" in big.content.decode()
    assert "More than" not in small.content.decode()


def test_the_event_list_reads_each_rows_action_in_the_same_query(client, history, superuser):
    client.force_login(superuser)
    history(20)
    response, sql = _page(client, LISTS["events"])

    assert len(response.context["cl"].result_list) == 40
    assert not any('FROM "remotes_remoteaction" WHERE' in q and "LIMIT 21" in q for q in sql)  # no action fetched row by row
    assert len(sql) < 15


def test_the_filters_still_narrow_the_lists(client, history, superuser):
    client.force_login(superuser)
    history(9)

    failed_events = client.get(LISTS["events"] + "?status=Failed").context["cl"].result_list
    assert {e.status for e in failed_events} == {"Failed"} and len(failed_events) == 3
    page = client.get(LISTS["events"]).content.decode()
    assert "?status=Failed" in page and "?status=Accepted" in page  # the values, from the index

    doors_open = client.get(LISTS["actions"] + "?failure_cause=DoorsOpen").context["cl"].result_list
    assert {a.failure_cause for a in doors_open} == {"DoorsOpen"} and len(doors_open) == 3
    assert {a.status for a in client.get(LISTS["actions"] + "?status__exact=success").context["cl"].result_list} == {"success"}

    flagged = client.get(LISTS["deliveries"] + "?outcome__exact=failed").context["cl"].result_list
    assert len(flagged) == 3

    today = timezone.localdate()
    since = f"?created_at__gte={today}&created_at__lt={today + dt.timedelta(days=1)}"
    assert len(client.get(LISTS["actions"] + since).context["cl"].result_list) == 9
    assert len(client.get(LISTS["actions"] + f"?created_at__lt={today}").context["cl"].result_list) == 0

    requested = client.get(LISTS["audit"] + "?action=remote.requested").context["cl"].result_list
    assert len(requested) == 9
    assert "?action=remote.requested" in client.get(LISTS["audit"]).content.decode()


def test_the_last_received_events_come_first_and_the_date_column_sorts_both_ways(client, history, superuser):
    client.force_login(superuser)
    history(5)
    latest = RemoteEvent.objects.latest("pk")
    newest_first = list(client.get(LISTS["events"]).context["cl"].result_list)
    oldest_first = list(client.get(LISTS["events"] + "?o=0").context["cl"].result_list)  # o=0: the date column
    assert newest_first[0] == latest and oldest_first[-1] == latest and oldest_first == newest_first[::-1]


def test_a_member_still_sees_only_their_organisations_history(client, history, make_organisation, make_member, make_fleet,
                                                              make_vehicle, make_callback):
    history(4)
    org_b = make_organisation("Org B")
    b_vehicle = make_vehicle(fleet=make_fleet(organisation=org_b, name="Bravo fleet"))
    b_callback = make_callback(b_vehicle.fleet)
    b_action = RemoteAction.objects.create(
        vehicle=b_vehicle, callback=b_callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source=Source.API,
        status=ActionStatus.FAILED, failure_cause="VehicleError", remote_action_id="b-rid", expires_at=timezone.now(),
    )
    RemoteEvent.objects.create(action=b_action, remote_action_id="b-rid", event_type="Done", status="Failed", event_date=timezone.now())
    client.force_login(make_member("b-admin", Role.ADMIN, org=org_b, is_staff=True))

    assert [e.remote_action_id for e in client.get(LISTS["events"] + "?status=Failed").context["cl"].result_list] == ["b-rid"]
    assert [a.pk for a in client.get(LISTS["actions"]).context["cl"].result_list] == [b_action.pk]
    assert list(client.get(LISTS["deliveries"]).context["cl"].result_list) == []
    assert list(client.get(LISTS["audit"]).context["cl"].result_list) == []


def test_a_delivery_replay_from_the_list_still_reads_the_body(client, history, superuser):
    client.force_login(superuser)
    history(1)
    delivery = WebhookDelivery.objects.get()
    response = client.post(LISTS["deliveries"], {"action": "replay", "_selected_action": [delivery.pk]}, follow=True)
    assert response.status_code == 200
    assert f"Delivery {delivery.pk}:" in response.content.decode()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's planner")
@pytest.mark.parametrize("name, url", [
    ("events", LISTS["events"] + "?status=Failed"),
    ("actions", LISTS["actions"] + "?status__exact=failed"),
    ("actions", LISTS["actions"] + "?failure_cause=DoorsOpen"),
    ("deliveries", LISTS["deliveries"] + "?outcome__exact=failed"),
])
def test_on_postgresql_a_status_filter_is_read_from_an_index(client, history, superuser, name, url):
    vehicle = history(3)
    # 60,000 more rows of history, 1 in 100 failed, set-based (the ORM would take minutes).
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO remotes_remoteaction (id, vehicle_id, callback_id, remote_type, command, status, pending_status, failure_cause,
                feedback_detail, error, remote_action_id, source, reason, decision_comment, decision, created_at, expires_at,
                submit_attempts, verification)
            SELECT md5('x' || i)::uuid, %(vehicle)s, (SELECT id FROM callbacks_callback LIMIT 1), 'Horn', '{}'::jsonb,
                   CASE WHEN i %% 100 = 0 THEN 'failed' ELSE 'success' END, '', CASE WHEN i %% 100 = 0 THEN 'DoorsOpen' ELSE '' END,
                   '', '', 'x-' || i, 'api', '', '', '', now() - i * interval '1 s', now(), 1, ''
            FROM generate_series(1, 20000) AS i
            """, {"vehicle": vehicle.pk},
        )
        cur.execute(
            """
            INSERT INTO remotes_remoteevent (action_id, remote_action_id, vin, remote_type, event_type, status, failure_cause,
                feedback_detail, event_date, received_at)
            SELECT a.id, a.remote_action_id, '', 'Horn', 'Done', CASE WHEN a.status = 'failed' THEN 'Failed' ELSE 'Success' END, '', '',
                   a.created_at + s.n * interval '1 ms', now()
            FROM remotes_remoteaction a CROSS JOIN generate_series(1, 2) AS s(n) WHERE a.remote_action_id LIKE 'x-%'
            """
        )
        cur.execute(
            """
            INSERT INTO callbacks_webhookdelivery (callback_id, received_at, headers, query, body, outcome, error, event_count, bad_events)
            SELECT (SELECT id FROM callbacks_callback LIMIT 1), now() - i * interval '1 s', '{}'::jsonb, '', '{}',
                   CASE WHEN i % 500 = 0 THEN 'failed' ELSE 'processed' END, '', 1, '[]'::jsonb
            FROM generate_series(1, 20000) AS i
            """
        )
        cur.execute("ANALYZE remotes_remoteaction, remotes_remoteevent, callbacks_webhookdelivery")
    client.force_login(superuser)
    _, sql = _page(client, url)
    # The page's rows: the one SELECT of the table that is ordered (the others are counts and filters).
    main = [q for q in sql if f'FROM "{TABLES[name]}"' in q and "ORDER BY" in q and "COUNT(" not in q]
    assert len(main) == 1, sql
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + main[0])
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert f"Seq Scan on {TABLES[name]}" not in plan, plan
    assert "Index" in plan, plan
