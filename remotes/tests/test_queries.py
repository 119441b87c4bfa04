"""Query counts of the pages and endpoints people poll: flat, whatever the history."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from remotes import events
from remotes.models import ActionStatus, RemoteAction
from stellantis.webhook import ParsedEvent

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def action(make_vehicle, make_callback):
    vehicle = make_vehicle()
    cb = make_callback(vehicle.fleet)
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=cb, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
        status=ActionStatus.SUBMITTED, remote_action_id="ab12", expires_at=T0,
    )


def add_events(n, offset=0):
    with transaction.atomic():
        events.apply_events([
            ParsedEvent(remote_action_id="ab12", vin="V", event_date=T0 + dt.timedelta(seconds=offset + i), remote_type="Horn", event_type="Pending", status="Accepted")
            for i in range(n)
        ])


def cost(fetch):
    with CaptureQueriesContext(connection) as ctx:
        response = fetch()
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_action_page_and_its_live_fragment_cost_the_same_for_2_or_40_events(action, client, make_member):
    client.force_login(make_member("u", Role.VIEWER))
    add_events(2)
    page, fragment = cost(lambda: client.get(f"/actions/{action.pk}/")), cost(lambda: client.get(f"/actions/{action.pk}/timeline/"))
    add_events(38, offset=10)
    assert cost(lambda: client.get(f"/actions/{action.pk}/")) == page <= 8
    assert cost(lambda: client.get(f"/actions/{action.pk}/timeline/")) == fragment <= 8


def test_the_api_action_detail_costs_the_same_for_2_or_40_events(action, make_member, make_token):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(make_member('p', Role.VIEWER))}")
    api.get(f"/api/v1/remotes/{action.pk}/")  # the token's first use writes its last_used_at (then once a minute)
    add_events(2)
    first = cost(lambda: api.get(f"/api/v1/remotes/{action.pk}/"))
    add_events(38, offset=10)
    # 4 of them are the token's: itself, its fleet list, its member's role and fleet list.
    assert cost(lambda: api.get(f"/api/v1/remotes/{action.pk}/")) == first <= 9


def test_the_callback_list_costs_the_same_for_1_or_12_callbacks(client, make_fleet, make_callback):
    client.force_login(User.objects.create_superuser("b", password="pw-b-123456"))
    fleet = make_fleet()
    make_callback(fleet)
    one = cost(lambda: client.get("/callbacks/"))
    for _ in range(11):
        make_callback(fleet)
    # 10: the page, its callbacks, their health (one read for all) and the header's counts.
    assert cost(lambda: client.get("/callbacks/")) == one <= 10


@pytest.mark.django_db(transaction=True)  # as in production: no transaction around the request, so no savepoint
def test_a_webhook_delivery_costs_the_same_queries_for_1_or_a_batch_of_events(action, client):
    """Through the view: the secret is cached, then one statement on PostgreSQL (a few through the ORM)."""
    import json

    from django.conf import settings

    from remotes.models import RemoteEvent

    def deliver(first, n):
        events = [
            {"remoteActionId": "ab12", "vin": "V", "eventDate": (T0 + dt.timedelta(seconds=first + i)).isoformat(), "remoteType": "Horn",
             "eventStatus": {"type": "Pending", "status": "Accepted"}}
            for i in range(n)
        ]
        return client.post(
            "/webhooks/stellantis/remote/", json.dumps({"events": events}), content_type="application/json",
            headers={settings.WEBHOOK_SECRET_HEADER: action.callback.secret_header_value},
        )

    # SQLite's ORM path splits an INSERT past its bound-parameter limit (about 90 events).
    on_pg = connection.vendor == "postgresql"
    many = 100 if on_pg else 60
    deliver(0, 1)  # reads the secret once; later deliveries take it from the process cache
    one, batch = cost(lambda: deliver(10, 1)), cost(lambda: deliver(100, many))

    assert one == batch <= (1 if on_pg else 8)
    assert RemoteEvent.objects.filter(action=action).count() == 2 + many
