"""Vehicle pages and admin bulk actions, through Django's test client."""

import pytest
from django.contrib.auth.models import User

from remotes.models import ActionStatus, RemoteAction, Source
from stellantis.vocabulary import RemoteType

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet_with_vehicles(make_fleet, make_vehicle, make_callback):
    fleet = make_fleet()
    make_callback(fleet)
    return fleet, [make_vehicle(fleet=fleet) for _ in range(3)]


@pytest.fixture
def staff(client):
    user = User.objects.create_superuser("boss", password="pw-boss-12345")
    client.force_login(user)
    return user


def test_the_vehicle_list_needs_a_login(client):
    r = client.get("/vehicles/")
    assert r.status_code == 302 and "/login/" in r["Location"]


def test_the_vehicle_list_costs_the_same_queries_for_3_or_30_vehicles(client, staff, fleet_with_vehicles, make_vehicle, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from vehicles import listing

    fleet, vehicles = fleet_with_vehicles
    for v in vehicles:  # each with a last action: its words cost no query per row
        RemoteAction.objects.create(vehicle=v, callback=fleet.callbacks.first(), remote_type=RemoteType.HORN, command={"horn": {"state": "Activated"}}, source=Source.WEB, expires_at="2099-01-01T00:00:00Z")
    client.get("/vehicles/")  # the brand choices are cached from the first visit on
    with CaptureQueriesContext(connection) as three:
        r = client.get("/vehicles/")
    assert r.status_code == 200 and r.content.count(b'class="mono"') == 3
    for _ in range(27):
        make_vehicle(fleet=fleet)
    monkeypatch.setattr(listing, "PAGE_SIZE", 20)
    with CaptureQueriesContext(connection) as thirty:
        r = client.get("/vehicles/?sort=-contact")
    assert r.content.count(b'class="mono"') == 20
    with CaptureQueriesContext(connection) as later:
        r = client.get("/vehicles/" + r.context["next_url"])
    assert r.content.count(b'class="mono"') == 10
    # (A page none of whose vehicles has an action skips the one query for them.)
    # (+1: a page spanning the vehicles with a last contact and those without reads both ranges.)
    assert len(thirty) <= len(three) + 1 and len(later) <= len(three) + 1 and len(three) <= 11, [q["sql"][:80] for q in three.captured_queries]


def test_pressing_horn_queues_an_action_and_opens_its_page(client, staff, fleet_with_vehicles):
    _, vehicles = fleet_with_vehicles
    r = client.post(f"/vehicles/{vehicles[0].vin}/remote/horn/")

    action = RemoteAction.objects.get()
    assert action.command == {"horn": {"state": "Activated"}}
    assert r.status_code == 302 and r["Location"] == f"/actions/{action.pk}/"
    assert action.source == Source.WEB and action.requested_by == staff
    page = client.get(r["Location"])
    assert b"Queued" in page.content


def test_unlock_from_the_web_needs_a_confirmation(client, staff, fleet_with_vehicles):
    _, vehicles = fleet_with_vehicles
    r = client.post(f"/vehicles/{vehicles[0].vin}/remote/door/", {"state": "Unlocked"})
    assert r.status_code == 200 and b"Tick to confirm" in r.content
    assert RemoteAction.objects.count() == 0
    client.post(f"/vehicles/{vehicles[0].vin}/remote/door/", {"state": "Unlocked", "confirm": "on", "reason": "locked out"})
    action = RemoteAction.objects.get()
    assert action.reason == "locked out" and action.command == {"door": {"state": "Unlocked"}}


def test_a_missing_callback_is_told_not_swallowed(client, staff, make_vehicle):
    vehicle = make_vehicle()  # a fleet with no callback at all
    r = client.post(f"/vehicles/{vehicle.vin}/remote/horn/", follow=True)
    assert b"No running callback" in r.content and b"Horn" in r.content
    assert RemoteAction.objects.count() == 0


def test_admin_bulk_horn_queues_one_action_per_selected_vehicle(client, staff, fleet_with_vehicles):
    _, vehicles = fleet_with_vehicles
    r = client.post(
        "/admin/vehicles/vehicle/",
        {"action": "remote_horn", "_selected_action": [v.pk for v in vehicles]},
        follow=True,
    )
    assert r.status_code == 200
    assert b"one bulk request for 3 vehicle(s)" in r.content and r.redirect_chain[-1][0].startswith("/bulk/")  # issue 14
    from bulk.testing import run_now

    run_now(send=False)
    assert RemoteAction.objects.filter(source=Source.ADMIN, remote_type=RemoteType.HORN, status=ActionStatus.QUEUED).count() == 3


def test_admin_bulk_unlock_asks_first_then_sends(client, staff, fleet_with_vehicles):
    _, vehicles = fleet_with_vehicles
    selected = [v.pk for v in vehicles[:2]]
    r = client.post("/admin/vehicles/vehicle/", {"action": "remote_door_unlocked", "_selected_action": selected})
    assert r.status_code == 200 and b"Tick to confirm" in r.content
    assert RemoteAction.objects.count() == 0

    client.post("/admin/vehicles/vehicle/", {"action": "remote_door_unlocked", "_selected_action": selected, "apply": "1", "confirm": "on", "reason": "fleet day"})
    from bulk.testing import run_now

    run_now(send=False)
    assert sorted(a.command["door"]["state"] for a in RemoteAction.objects.all()) == ["Unlocked", "Unlocked"]


def test_admin_bulk_action_reports_vehicles_it_could_not_serve(client, staff, fleet_with_vehicles, make_vehicle):
    _, vehicles = fleet_with_vehicles
    orphan = make_vehicle()  # other fleet, no callback
    r = client.post("/admin/vehicles/vehicle/", {"action": "remote_door_locked", "_selected_action": [vehicles[0].pk, orphan.pk]}, follow=True)
    from bulk.testing import run_now

    bulk = run_now(send=False)[0]
    assert RemoteAction.objects.count() == 1
    r = client.get(f"/bulk/{bulk.pk}/?show=refused")  # the bulk request's page tells the refusals (issue 14)
    assert orphan.vin.encode() in r.content and b"No running callback" in r.content


def test_a_parameterised_bulk_action_on_select_all_reaches_every_vehicle(client, staff, fleet_with_vehicles):
    """"Select all N" (select_across) with a command that asks for parameters: the page said
    "Send to N" but the command went to the one vehicle whose id the form carried."""
    _, vehicles = fleet_with_vehicles
    first = {"action": "remote_lights_form", "_selected_action": [vehicles[0].pk], "select_across": "1", "index": "0"}
    r = client.post("/admin/vehicles/vehicle/", first)
    assert r.status_code == 200 and b"Send to 3 vehicle(s)" in r.content
    assert r.content.count(b'name="_selected_action"') == 1 and b'name="select_across" value="1"' in r.content

    client.post("/admin/vehicles/vehicle/", {**first, "apply": "1", "on": "1"})
    from bulk.testing import run_now

    run_now(send=False)
    assert sorted(a.vehicle_id for a in RemoteAction.objects.all()) == sorted(v.pk for v in vehicles)
