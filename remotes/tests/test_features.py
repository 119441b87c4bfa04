"""All nine features from the three places a command can come from, through the simulator."""

import pytest
from django.contrib.auth.models import User
from django_q.models import OrmQ

from fleetportal.testing import drive
from remotes.models import ActionStatus, RemoteAction, Source
from simulator.models import SimVehicle

# member → (web/admin form data, API body)
FEATURES = {
    "charging": ({"mode": "now"}, {"charging": {"immediate": True}}),
    "preconditioning": ({"immediate": "on"}, {"preconditioning": {"airConditioning": {"immediate": True}}}),
    "door": ({"state": "Unlocked", "confirm": "on", "reason": "every entry point"}, {"door": {"state": "Unlocked"}}),
    "horn": ({}, {"horn": {"state": "Activated"}}),
    "lights": ({"on": "1"}, {"lights": {"on": True}}),
    "wakeUp": ({}, {"wakeUp": {"action": "WakeUp"}}),
    "navigation": ({"positions": "48.8584, 2.2945\n45.7640, 4.8357"}, {"navigation": {"positions": [
        {"type": "Point", "coordinates": [2.2945, 48.8584]}, {"type": "Point", "coordinates": [4.8357, 45.764]}]}}),
    "immobilization": ({"activate": "1", "confirm": "on", "reason": "every entry point"}, {"immobilization": {"activate": True}}),
    "stolen": ({"mode": "declare", "confirm": "on", "reason": "every entry point"}, {"stolen": {"stolen": True}}),
}
ADMIN_ACTION = {"horn": "remote_horn", "door": "remote_door_unlocked", "wakeUp": "remote_wakeUp"}


@pytest.fixture
def vehicle(demo_fleet):
    vehicle = demo_fleet.vehicles.order_by("vin").first()
    # Ready for anything: plugged in (charging), not immobilized, not stolen.
    SimVehicle.objects.filter(vin=vehicle.vin).update(plugged=True)
    return vehicle


@pytest.fixture
def boss(db):
    return User.objects.create_superuser("boss", password="pw-boss-12345")


def finished(action):
    action = drive(action.pk)
    assert action.status == ActionStatus.SUCCESS, (action.status, action.failure_cause, action.error)
    assert action.events.filter(event_type="Done", status="Success").exists()
    return action


@pytest.mark.parametrize("member", FEATURES)
def test_from_the_vehicle_page(member, vehicle, client, boss):
    client.force_login(boss)
    form, _ = FEATURES[member]
    r = client.post(f"/vehicles/{vehicle.vin}/remote/{member}/", form)
    assert r.status_code == 302, r.content.decode()[:2000]
    action = RemoteAction.objects.get()
    assert action.source == Source.WEB
    finished(action)


@pytest.mark.parametrize("member", FEATURES)
def test_from_an_admin_bulk_action(member, vehicle, client, boss):
    client.force_login(boss)
    form, _ = FEATURES[member]
    name = ADMIN_ACTION.get(member, f"remote_{member}_form")
    r = client.post("/admin/vehicles/vehicle/", {"action": name, "_selected_action": [vehicle.pk], "apply": "1", **form}, follow=True)
    assert r.status_code == 200
    from bulk.testing import run_now

    run_now()  # one bulk request (issue 14), its background work done here
    action = RemoteAction.objects.get()
    assert action.source == Source.ADMIN
    finished(action)


@pytest.mark.parametrize("member", FEATURES)
def test_from_the_partner_api(member, vehicle, api, boss, make_token):
    partner = api(make_token(boss))
    _, body = FEATURES[member]
    r = partner.post(f"{partner.base_url}/api/v1/vehicles/{vehicle.vin}/remotes/", json={**body, "reason": "every entry point"}, timeout=10)
    assert r.status_code == 202, r.text
    finished(RemoteAction.objects.get(pk=r.json()["id"]))


def test_a_state_refresh_stores_a_snapshot_matching_the_simulated_vehicle(vehicle, operator):
    from remotes import services
    from vehicles.tasks import refresh_status

    SimVehicle.objects.filter(vin=vehicle.vin).update(energy_level=63.5, autonomy_km=212, doors_locked=False, latitude=45.75, longitude=4.85)
    action = services.request_remote(vehicle=vehicle, command={"wakeUp": {}}, by=operator)
    finished(action)

    queued = [q for q in OrmQ.objects.all() if q.func() == "vehicles.tasks.refresh_status"]
    assert [q.task["args"] for q in queued] == [(vehicle.pk,)]  # enqueued once, by the Done · Success
    refresh_status(vehicle.pk)

    snap = vehicle.__class__.objects.get(pk=vehicle.pk).status_snapshot
    sim = SimVehicle.objects.get(vin=vehicle.vin)
    assert (snap.energy_level, snap.autonomy_km, snap.doors_locked) == (sim.energy_level, sim.autonomy_km, sim.doors_locked)
    assert (snap.latitude, snap.longitude) == (sim.latitude, sim.longitude)
