"""Fleet import and the demo seed, through the client and the simulator over HTTP."""

import json
import re
import time
import uuid

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command

from accounts import access
from accounts.access import token_access
from accounts.models import Membership, PartnerToken, Role
from callbacks.models import Callback
from simulator.models import SimCallback
from simulator.seeding import seed_world
from simulator.testing import a_day_starting_now
from stellantis.client import ClientConfig, FleetClient, pacer_from_settings
from stellantis.pacing import NoPacer
from stellantis.vocabulary import CallbackStatus, RemoteType
from vehicles.models import Fleet, Vehicle
from vehicles.services import import_fleet

VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


def test_import_creates_then_refreshes_without_duplicates(stack):
    sim = seed_world(fleet_name="Imported", vehicle_count=75, seed=5)

    first = import_fleet(fleet_id=sim.id)
    again = import_fleet(fleet_id=sim.id)

    assert (first.created, first.updated) == (75, 0)
    assert (again.created, again.updated) == (0, 75)
    assert Vehicle.objects.filter(fleet=first.fleet).count() == 75
    assert first.fleet.name == "Imported"


@pytest.mark.parametrize("paging", ["token", "index"])
def test_a_fleet_of_130_vehicles_is_imported_whole_in_either_paging_mode(stack, settings, paging):
    settings.SIMULATOR_PAGING = paging
    sim = seed_world(fleet_name="Large", vehicle_count=130, seed=15)

    result = import_fleet(fleet_id=sim.id)

    assert (result.created, result.updated) == (130, 0)
    assert set(Vehicle.objects.filter(fleet=result.fleet).values_list("vin", flat=True)) == set(
        sim.vehicles.values_list("vin", flat=True)
    )
    assert not Vehicle.objects.filter(fleet=result.fleet, capabilities={}).exists()


@pytest.mark.parametrize("shared_budget", [True, False], ids=["shared budget", "no pacer"])
def test_a_spent_rate_limit_stops_the_capability_reads_and_keeps_what_was_read(stack, settings, shared_budget):
    settings.STELLANTIS_CLIENT_ID = f"import-{uuid.uuid4().hex[:8]}"  # the simulator counts per client_id
    a_day_starting_now(settings, limit=6, seconds=3600)  # the fleet, one page of vehicles, then 4 capabilities
    sim = seed_world(fleet_name="Throttled", vehicle_count=10, seed=16)
    statuses = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *a, **kw: statuses.append(response.status_code))
    # With no pacer, only the import itself stands between a 429 and six more calls.
    client = FleetClient(ClientConfig.from_settings(), session=session, pacer=pacer_from_settings() if shared_budget else NoPacer())

    result = import_fleet(fleet_id=sim.id, client=client)

    vehicles = Vehicle.objects.filter(fleet=result.fleet)
    assert result.created == 10 == vehicles.count()  # every vehicle imported all the same
    assert vehicles.exclude(capabilities={}).count() == 4  # what was read is kept
    assert vehicles.filter(capabilities={}).count() == 6  # the rest stays unknown
    # After the window was spent, one call found out (the 429) and the loop stopped there,
    # instead of sending the six remaining reads into the spent window.
    assert statuses == [200] * 6 + [429]


def test_import_fleet_command_reports_what_it_did(stack, capsys):
    sim = seed_world(fleet_name="Cmd", vehicle_count=3, seed=6)
    call_command("import_fleet", sim.id)
    assert "3 new" in capsys.readouterr().out


def test_seed_demo_prints_one_json_object_and_is_idempotent(stack, capsys):
    call_command("seed_demo", "--json")
    first = json.loads(capsys.readouterr().out)
    call_command("seed_demo", "--json")
    second = json.loads(capsys.readouterr().out)

    assert set(first) == {
        "admin_username", "admin_password", "api_token", "limited_api_token", "viewer_api_token", "approver_api_token",
        "fleet_id", "vins", "other_org", "simulator_user", "simulator_password", "metrics_token",
    }
    assert first["metrics_token"] == settings.METRICS_TOKEN  # the demo's Bearer token for /metrics
    assert set(first["other_org"]) == {"admin_username", "admin_password", "api_token", "fleet_id", "vins"}
    # The simulator's Basic credentials, for the banner of `make run`.
    assert f"{first['simulator_user']}:{first['simulator_password']}" == settings.SIMULATOR_CREDENTIALS
    assert first == second  # the same tokens on every run: `make run` seeds on every start
    assert len(first["vins"]) == 50 and all(VIN.match(v) for v in first["vins"])
    other = first["other_org"]
    assert len(other["vins"]) >= 10 and not set(other["vins"]) & set(first["vins"])
    assert Vehicle.objects.count() == 50 + len(other["vins"])
    for fleet_id in (first["fleet_id"], other["fleet_id"]):
        callback = Callback.objects.get(fleet__external_id=fleet_id)
        assert callback.status == CallbackStatus.RUNNING and set(callback.remote_types) == set(RemoteType.values)
        assert SimCallback.objects.get(id=callback.external_id)  # registered at the (simulated) vendor
    demo, other_org = Fleet.objects.get(external_id=first["fleet_id"]).organisation, Fleet.objects.get(external_id=other["fleet_id"]).organisation
    assert demo != other_org and None not in (demo, other_org)

    def abilities(key):
        token = PartnerToken.objects.get(prefix=PartnerToken.split(key)[0])
        assert token.matches(key) and token.key_hash != key  # only a hash is stored
        return token, token_access(token).grants[token.organisation_id].abilities

    token, can = abilities(first["api_token"])
    assert token.organisation == demo and {access.READ, access.COMMAND, access.DANGEROUS} <= can
    assert access.CALLBACKS in can  # it registers push endpoints and callbacks too
    token, can = abilities(first["limited_api_token"])
    assert access.COMMAND in can and access.DANGEROUS not in can
    token, can = abilities(first["viewer_api_token"])
    assert can == {access.READ}
    approver, _ = abilities(first["approver_api_token"])
    assert approver.user != token.user and Membership.objects.get(user=approver.user, organisation=demo).role == Role.APPROVER
    token, can = abilities(other["api_token"])
    assert token.organisation == other_org and access.DANGEROUS in can
    assert User.objects.get(username=other["admin_username"]).check_password(other["admin_password"])


def test_seed_demo_says_to_start_the_server_when_the_simulator_is_not_reachable(db, settings):
    from django.core.management.base import CommandError

    settings.STELLANTIS_API_BASE = "http://127.0.0.1:9/simulator/connectedcar/v3"
    with pytest.raises(CommandError, match="Start the web server"):
        call_command("seed_demo", "--json")


def test_the_admin_action_imports_a_fleets_vehicles_in_the_background_with_its_progress_shown(stack, client, q2_cluster):
    sim = seed_world(fleet_name="Admin import", vehicle_count=4, seed=12)
    fleet = Fleet.objects.create(external_id=sim.id, name="placeholder")
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-12345"))

    r = client.post("/admin/vehicles/fleet/", {"action": "import_vehicles", "_selected_action": [fleet.pk]}, follow=True)

    assert b"import started in the background" in r.content
    for _ in range(150):  # the q2 cluster does it
        page = client.get("/admin/vehicles/fleet/").content.decode()
        if "Done " in page:
            break
        time.sleep(0.2)
    assert "4 new, 0 refreshed vehicles." in page
    fleet.refresh_from_db()
    assert fleet.name == "Admin import" and fleet.vehicles.count() == 4 and fleet.last_synced_at is not None
    assert not fleet.vehicles.filter(capabilities={}).exists()


def test_a_background_import_works_in_slices_and_shows_how_far_it_got(stack, client, monkeypatch):
    from vehicles import services

    queued = []
    monkeypatch.setattr(services, "async_task", lambda task, *args, **kw: queued.append(args))
    monkeypatch.setattr(services, "IMPORT_SLICE_SECONDS", 0.0)  # one vehicle per slice
    sim = seed_world(fleet_name="Sliced", vehicle_count=3, seed=22)
    fleet = Fleet.objects.create(external_id=sim.id, name="placeholder")
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-12345"))

    r = client.post("/admin/vehicles/fleet/", {"action": "import_vehicles", "_selected_action": [fleet.pk]}, follow=True)
    assert b"import started in the background" in r.content and fleet.vehicles.count() == 0  # nothing done in the request
    assert "Running: reading the vehicle list" in client.get("/admin/vehicles/fleet/").content.decode()
    again = client.post("/admin/vehicles/fleet/", {"action": "import_vehicles", "_selected_action": [fleet.pk]}, follow=True)
    assert b"an import is already running" in again.content and len(queued) == 1

    seen = []
    while queued:  # a q2 worker, one slice at a time
        fleet_pk, run, after_vin = queued.pop(0)
        services.import_fleet_slice(fleet_pk=fleet_pk, run=run, after_vin=after_vin)
        seen.append(re.search(r"(Running|Done)[^<]*", client.get("/admin/vehicles/fleet/").content.decode()).group(0))

    assert seen[:2] == ["Running: 1 of 3 vehicles read", "Running: 2 of 3 vehicles read"]
    assert len(seen) == 3 and seen[2].startswith("Done ") and seen[2].endswith("3 new, 0 refreshed vehicles.")
    fleet.refresh_from_db()
    assert fleet.vehicles.count() == 3 and not fleet.vehicles.filter(capabilities={}).exists() and fleet.last_synced_at
    # Done: the fleet is free for the next import.
    assert services.start_fleet_import(fleet=fleet)
