"""The overview's numbers, each against a known world, Org B's data never counted."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console import selectors
from remotes.models import ActionStatus

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def number(html: str, element_id: str) -> int:
    """The number shown in the element with `element_id` (a tile's .num or a span itself)."""
    match = re.search(rf'id="{element_id}"[^>]*>(?:<span class="num">)?(\d+)<', html)
    assert match, f"#{element_id} not on the page"
    return int(match.group(1))


def href(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}" href="([^"]+)"', html)
    assert match, f"#{element_id} has no link"
    return match.group(1).replace("&amp;", "&")


@pytest.fixture
def world(make_fleet, make_vehicle, make_callback, snapshot, action, other_org):
    fleet = make_fleet()
    cb = make_callback(fleet)
    v = [make_vehicle(fleet=fleet) for _ in range(6)]
    snapshot(v[0], ago=dt.timedelta(minutes=1), latitude=48.85, longitude=2.35)  # online
    snapshot(v[1], ago=H, charging_status="InProgress", plugged=True, energy_level=60, latitude=45.76, longitude=4.83)  # asleep, charging
    snapshot(v[2], ago=2 * D, energy_level=15)  # asleep, low battery, no position
    snapshot(v[3], ago=20 * D, latitude=43.3, longitude=5.37)  # offline
    snapshot(v[5])  # a snapshot that never said when: never seen, like v[4] that has none
    # Stolen / immobilized: the latest SUCCESSFUL command decides (two days ago, outside every window).
    action(v[1], cb, remote_type="Stolen", command={"stolen": {"stolen": True}}, ago=2 * D)
    action(v[2], cb, remote_type="Stolen", command={"stolen": {"stolen": True}}, ago=3 * D)
    action(v[2], cb, remote_type="Stolen", command={"stolen": {"stolen": False}}, ago=2 * D)  # recovered since
    action(v[3], cb, remote_type="Immobilization", command={"immobilization": {"activate": True}}, ago=2 * D)
    action(v[0], cb, remote_type="Immobilization", command={"immobilization": {"activate": True}}, ago=2 * D, status=ActionStatus.FAILED)
    # Commands today.
    for status in (ActionStatus.SUCCESS, ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE, ActionStatus.REJECTED, ActionStatus.QUEUED, ActionStatus.AWAITING_APPROVAL):
        action(v[0], cb, status=status)
    action(v[0], cb, status=ActionStatus.FAILED, failure_cause="DoorsOpen")
    action(v[1], cb, status=ActionStatus.FAILED, failure_cause="DoorsOpen")
    action(v[1], cb, status=ActionStatus.FAILED, failure_cause="VehicleConnectionTimeout")
    action(v[1], cb, status=ActionStatus.PENDING, submitted_at=timezone.now() - 30 * dt.timedelta(minutes=1))
    late = action(v[2], cb, status=ActionStatus.FAILED, failure_cause="DoorsOpen", ago=23 * H)  # 24 h: yes; today: maybe
    action(v[2], cb, status=ActionStatus.FAILED, failure_cause="DoorsOpen", ago=25 * H)  # outside both
    return {"fleet": fleet, "callback": cb, "vehicles": v, "late": late}


def test_it_counts_vehicles_by_state_without_another_organisations(world, viewer):
    counts = selectors.vehicle_counts(viewer, timezone.now())

    assert {k: counts[k] for k in ("total", "online", "asleep", "offline", "unknown", "charging", "plugged", "low_battery", "stolen", "immobilized")} == {
        "total": 6, "online": 1, "asleep": 2, "offline": 1, "unknown": 2, "charging": 1, "plugged": 1, "low_battery": 1, "stolen": 1, "immobilized": 1,
    }


def test_it_counts_commands_today_failures_and_what_waits(world, viewer):
    now = timezone.now()
    late_is_today = world["late"].created_at >= selectors.start_of_today(now)
    data = selectors.overview(viewer, now)

    assert data["today"] == {
        "succeeded": 3, "failed": 4 + late_is_today, "in_progress": 2, "awaiting_approval": 1, "cancelled": 0, "total": 10 + late_is_today,
    }
    assert [(f.label, f.count) for f in data["failures"]] == [
        ("Doors open", 3), ("Refused (by Stellantis or an approver)", 1), ("Vehicle connection time-out", 1),
    ]
    assert data["failures"][0].advice == "A door is open. Close it, then lock again."
    assert data["failures"][0].query == "status=failed&cause=DoorsOpen&since=24h"
    assert data["waiting"] == {"approval": 1, "vehicle": 2}
    # The chart's hours hold the same commands as the last 24 h.
    assert sum(sum(s["data"]) for s in data["per_hour"]["series"]) == 11


def test_the_page_shows_the_numbers_and_links_them_to_the_filtered_lists(client, world, viewer):
    client.force_login(viewer)
    html = client.get("/").content.decode()

    for state, n in {"online": 1, "asleep": 2, "offline": 1, "unknown": 2, "charging": 1, "low_battery": 1, "stolen": 1, "immobilized": 1}.items():
        assert number(html, f"n-{state}") == n, state
        assert href(html, f"n-{state}") == f"/vehicles/?state={state}"
    assert number(html, "today-succeeded") == 3
    assert href(html, "today-succeeded") == "/actions/?since=today&status=success&status=already_done"
    assert number(html, "waiting-approval") == 1
    assert href(html, "waiting-approval") == "/actions/?status=awaiting_approval"
    assert number(html, "waiting-vehicle") == 2
    assert 'href="/actions/?status=failed&amp;cause=DoorsOpen&amp;since=24h">3</a>' in html
    assert "A door is open. Close it, then lock again." in html
    # The pending command waits since 30 minutes and no notification ever came: quiet.
    assert 'id="quiet-warning"' in html and world["callback"].label in html
    assert 'id="chart-per-hour" role="img" aria-label=' in html
    assert 'id="overview-charts-data" type="application/json"' in html


def test_each_link_opens_a_list_holding_exactly_the_counted_actions(client, world, viewer):
    client.force_login(viewer)
    html = client.get("/").content.decode()
    for element_id in ("today-succeeded", "today-failed", "today-in_progress", "waiting-approval", "waiting-vehicle"):
        listed = client.get(href(html, element_id)).content.decode().count("<tr data-action=")
        assert listed == number(html, element_id), element_id


def test_a_person_of_another_organisation_sees_only_theirs(client, world, other_org, make_member):
    from accounts.models import Role

    bob = make_member("bob", Role.VIEWER, org=other_org["org"])
    client.force_login(bob)
    html = client.get("/").content.decode()
    assert number(html, "n-online") == 1 and number(html, "n-stolen") == 1 and number(html, "n-immobilized") == 1
    assert number(html, "today-failed") == 3
    assert number(html, "waiting-approval") == 1


def queries_of(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_overview_runs_the_same_few_queries_whatever_the_size(client, world, viewer, make_vehicle, make_callback, snapshot, action, delivery):
    client.force_login(viewer)
    before = queries_of(client, "/")
    fleet = world["fleet"]
    more_cb = make_callback(fleet)
    for i in range(30):
        v = make_vehicle(fleet=fleet)
        snapshot(v, ago=i * H, energy_level=i, charging_status="InProgress" if i % 2 else "")
        action(v, more_cb, status=ActionStatus.FAILED, failure_cause="VehicleInUse", ago=i * H)
        action(v, more_cb, remote_type="Stolen", command={"stolen": {"stolen": True}}, ago=2 * D)
        delivery(more_cb, ago=i * H, lags=(1, 2))
    after = queries_of(client, "/")
    assert after == before
    assert before <= 25  # of which 4 are the session, the user, the memberships and the header's bulk count


@pytest.mark.parametrize("state", ["online", "asleep", "offline", "unknown", "charging", "plugged", "low_battery", "stolen", "immobilized"])
def test_each_vehicle_number_equals_what_the_list_it_links_to_selects(world, viewer, make_vehicle, action, state):
    from django.http import QueryDict

    from vehicles.listing import matching

    # A Stolen command that also immobilized: both the list and the overview call it immobilized.
    v = make_vehicle(fleet=world["fleet"])
    action(v, world["callback"], remote_type="Stolen", command={"stolen": {"immobilization": {"activate": True}}}, ago=2 * D)
    counts = selectors.vehicle_counts(viewer, timezone.now())
    assert counts[state] == matching(viewer, QueryDict(f"state={state}")).count()


def test_every_status_has_an_outcome_on_the_overview():
    # A status added later must be placed in a group here, or the overview would fail on it.
    assert set(selectors.OUTCOME_OF) == set(ActionStatus.values)
