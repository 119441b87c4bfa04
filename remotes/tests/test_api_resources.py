"""The partner API's resources: fleets, vehicles, actions — scoped, filtered, cursor-paged, flat in queries."""

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, Scope
from remotes.capabilities import FEATURES, availability
from remotes.models import ActionStatus, ActionStep, RemoteAction, RemoteEvent, Source
from stellantis.vocabulary import RemoteType
from vehicles.filters import capable
from vehicles.models import Vehicle, VehicleStatus

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
API = "/api/v1"


@pytest.fixture
def partner(make_member, make_token):
    """A viewer's token of Org A: reading needs nothing more."""
    return Client(HTTP_AUTHORIZATION=f"Token {make_token(make_member('reader', Role.VIEWER), [Scope.READ])}")


@pytest.fixture
def fleet(make_fleet):
    return make_fleet(external_id="FID-A", name="Fleet A")


@pytest.fixture
def stranger(make_organisation, make_fleet, make_vehicle, make_callback):
    """Another organisation's fleet, vehicle and action: never listed, a 404 when asked for."""
    fleet = make_fleet(external_id="FID-B", name="Fleet B", organisation=make_organisation("Org B"))
    vehicle = make_vehicle(fleet=fleet, vin="VF3STRANGER000001")
    action = _action(vehicle, make_callback(fleet), RemoteType.HORN, {"horn": {"state": "Activated"}})
    return {"fleet": fleet, "vehicle": vehicle, "action": action}


_created = itertools.count()


def _action(vehicle, callback, remote_type, command, status=ActionStatus.SUCCESS, at=None):
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type=remote_type, command=command, status=status, source=Source.API,
        expires_at=T0, reason="test",
    )
    # created_at is auto_now_add: set it afterwards, one second apart, so the order is known.
    RemoteAction.objects.filter(pk=action.pk).update(created_at=at or T0 + dt.timedelta(seconds=next(_created)))
    action.refresh_from_db()
    return action


def get(client, path, **params):
    r = client.get(f"{API}{path}", params)
    return r, r.json()


def test_fleets_list_and_detail_show_only_ours(partner, fleet, make_vehicle, stranger):
    make_vehicle(fleet=fleet)
    r, body = get(partner, "/fleets/")
    assert r.status_code == 200
    assert [f["id"] for f in body["results"]] == ["FID-A"]
    assert body["results"][0]["vehicle_count"] == 1 and body["results"][0]["organisation"] == "org-a"
    r, body = get(partner, "/fleets/FID-A/")
    assert r.status_code == 200 and body["name"] == "Fleet A"
    r, body = get(partner, "/fleets/FID-B/")
    assert r.status_code == 404 and body["code"] == "not_found"


def test_a_vehicle_shows_its_capabilities_and_latest_status(partner, fleet, make_vehicle, stranger):
    vehicle = make_vehicle(fleet=fleet, motorization="Thermic", capabilities={"remote": {"horn": {"supported": False}}})
    VehicleStatus.objects.create(vehicle=vehicle, fetched_at=T0, energy_level=42.0, charging_status="Disconnected", plugged=False)

    r, body = get(partner, f"/vehicles/{vehicle.vin.lower()}/")

    assert r.status_code == 200
    assert body["fleet"] == "FID-A" and body["stolen"] is False
    assert body["status"]["energy_level"] == 42.0 and body["status"]["charging_status"] == "Disconnected"
    can = {c["feature"]: c for c in body["capabilities"]}
    assert set(can) == {f.member for f in FEATURES}
    assert not can["horn"]["available"] and "does not support" in can["horn"]["reason"]
    assert not can["charging"]["available"] and can["door"]["available"]
    assert body["remotes_url"].endswith(f"/api/v1/vehicles/{vehicle.vin}/remotes/")
    r, body = get(partner, f"/vehicles/{stranger['vehicle'].vin}/")
    assert r.status_code == 404 and body["code"] == "not_found"


def test_the_vehicle_list_filters(partner, fleet, make_fleet, make_vehicle, make_callback, stranger):
    other = make_fleet(external_id="FID-A2")
    electric = make_vehicle(fleet=fleet, vin="VF3AAAAAAAAAAAAA1", brand="Peugeot", motorization="Electric")
    thermic = make_vehicle(fleet=fleet, vin="VF3AAAAAAAAAAAAA2", brand="Citroen", motorization="Thermic")
    unsubscribed = make_vehicle(fleet=other, vin="VF3BBBBBBBBBBBBB3", brand="Opel", motorization="Electric", capabilities={"data": {}})
    VehicleStatus.objects.create(vehicle=electric, fetched_at=T0, charging_status="InProgress", plugged=True, doors_locked=True)
    callback = make_callback(fleet)
    # Declared stolen, then a later declaration that it is back: only the latest successful one counts.
    _action(thermic, callback, RemoteType.STOLEN, {"stolen": {"stolen": True}})
    _action(electric, callback, RemoteType.STOLEN, {"stolen": {"stolen": True}})
    _action(electric, callback, RemoteType.STOLEN, {"stolen": {"stolen": False}})
    _action(thermic, callback, RemoteType.STOLEN, {"stolen": {"stolen": False}}, status=ActionStatus.FAILED)

    def vins(**params):
        r, body = get(partner, "/vehicles/", **params)
        assert r.status_code == 200, body
        return [v["vin"] for v in body["results"]]

    assert vins() == [electric.vin, thermic.vin, unsubscribed.vin]
    assert vins(fleet="FID-A2") == [unsubscribed.vin]
    assert vins(brand="peugeot") == [electric.vin]
    assert vins(motorization="Thermic") == [thermic.vin]
    assert vins(capability="charging") == [electric.vin]
    assert vins(capability="horn") == [electric.vin, thermic.vin]
    assert vins(stolen="true") == [thermic.vin]
    assert vins(stolen="false") == [electric.vin, unsubscribed.vin]
    assert vins(charging_status="InProgress") == [electric.vin]
    assert vins(plugged="true", doors_locked="true") == [electric.vin]
    assert vins(search="bbbb") == [unsubscribed.vin]


@pytest.mark.parametrize("params, field", [
    ({"motorization": "Steam"}, "motorization"),
    ({"capability": "teleport"}, "capability"),
    ({"stolen": "perhaps"}, "stolen"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "many"}, "page_size"),
])
def test_a_bad_filter_or_page_parameter_is_a_400_naming_it(partner, fleet, make_vehicle, params, field):
    make_vehicle(fleet=fleet)
    r, body = get(partner, "/vehicles/", **params)
    assert r.status_code == 400 and r["Content-Type"].startswith("application/problem+json")
    assert body["code"] == "invalid" and field in body["errors"], body


def test_cursor_pages_walk_every_vehicle_once(partner, fleet, make_vehicle):
    made = sorted(make_vehicle(fleet=fleet).vin for _ in range(7))
    seen, url = [], f"{API}/vehicles/?page_size=3"
    while url:
        body = partner.get(url).json()
        seen += [v["vin"] for v in body["results"]]
        url = body["next"]
    assert seen == made


def test_the_capability_filter_agrees_with_availability(fleet, make_vehicle):
    """vehicles.filters.capable is the SQL twin of remotes.capabilities.availability."""
    shapes = [{}, {"data": {}}, {"remote": {}}, {"remote": {"horn": {"supported": False}, "charging": {"supported": True}}},
              {"remote": {"stolen": {"supported": False}, "door": {}}}, {"remote": {"wakeup": {"supported": False}}}]
    for motorization, caps in itertools.product(["", "Electric", "Thermic", "Hybrid"], shapes):
        make_vehicle(fleet=fleet, motorization=motorization, capabilities=caps)
    for feature in FEATURES:
        in_sql = set(Vehicle.objects.alias(c=capable(feature.member)).filter(c=True).values_list("pk", flat=True))
        in_python = {v.pk for v in Vehicle.objects.all() if availability(v, feature.member).available}
        assert in_sql == in_python, feature.member


def test_the_action_list_filters(partner, fleet, make_vehicle, make_callback, stranger):
    one, two = make_vehicle(fleet=fleet), make_vehicle(fleet=fleet)
    callback = make_callback(fleet)
    horn = _action(one, callback, RemoteType.HORN, {"horn": {"state": "Activated"}}, at=T0)
    door = _action(two, callback, RemoteType.DOORS, {"door": {"state": "Locked"}}, status=ActionStatus.FAILED, at=T0 + dt.timedelta(hours=1))
    wake = _action(one, callback, RemoteType.WAKE_UP, {"wakeUp": {"action": "WakeUp"}}, status=ActionStatus.QUEUED, at=T0 + dt.timedelta(hours=2))

    def ids(path="/remotes/", **params):
        r, body = get(partner, path, **params)
        assert r.status_code == 200, body
        return [a["id"] for a in body["results"]]

    assert ids() == [str(wake.pk), str(door.pk), str(horn.pk)]  # newest first, A's only
    assert ids(status="failed") == [str(door.pk)]
    assert ids(remote_type="Horn") == [str(horn.pk)]
    assert ids(vin=one.vin.lower()) == [str(wake.pk), str(horn.pk)]
    assert ids(fleet="FID-A") == [str(wake.pk), str(door.pk), str(horn.pk)]
    assert ids(created_after="2026-11-25T10:00:00Z") == [str(wake.pk), str(door.pk)]
    assert ids(created_before="2026-11-25T10:00:00Z") == [str(horn.pk)]
    assert ids(created_after="2026-11-25T09:30:00+00:00", created_before="2026-11-25T10:30:00Z") == [str(door.pk)]
    assert ids(f"/vehicles/{one.vin}/remotes/") == [str(wake.pk), str(horn.pk)]
    assert ids(f"/vehicles/{one.vin}/remotes/", status="success") == [str(horn.pk)]
    r, body = get(partner, "/remotes/")
    assert "timeline" not in body["results"][0] and body["results"][0]["url"].endswith(f"/remotes/{wake.pk}/")
    r, body = get(partner, f"/vehicles/{stranger['vehicle'].vin}/remotes/")
    assert r.status_code == 404 and body["code"] == "not_found"


@pytest.mark.parametrize("params, field", [
    ({"status": "done"}, "status"),
    ({"remote_type": "Teleport"}, "remote_type"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_before": "2026-13-01"}, "created_before"),
])
def test_a_bad_action_filter_is_a_400_naming_it(partner, params, field):
    r, body = get(partner, "/remotes/", **params)
    assert r.status_code == 400 and body["code"] == "invalid" and field in body["errors"], body


# --- query counts: the same for 3 rows as for 30 -----------------------------------------------


def _queries(client, path) -> int:
    client.get(f"{API}{path}")  # the token's first use of the minute also writes its last_used_at
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(f"{API}{path}")
    assert r.status_code == 200, r.content
    return len(ctx.captured_queries)


def _world(n, fleet, make_vehicle, make_callback):
    callback = make_callback(fleet)
    for _ in range(n):
        vehicle = make_vehicle(fleet=fleet)
        VehicleStatus.objects.create(vehicle=vehicle, fetched_at=T0, energy_level=50.0)
        action = _action(vehicle, callback, RemoteType.STOLEN, {"stolen": {"stolen": True}})
        ActionStep.objects.create(action=action, status=ActionStatus.QUEUED, at=T0)
        for i in range(3):
            RemoteEvent.objects.create(
                action=action, remote_action_id=f"r{action.pk.hex[:8]}", event_type="Pending", status="Accepted", event_date=T0 + dt.timedelta(seconds=i)
            )


@pytest.mark.parametrize("path", ["/vehicles/", "/vehicles/?capability=charging&stolen=true", "/remotes/", "/remotes/?status=success", "/fleets/"])
def test_lists_cost_the_same_queries_for_3_or_30_rows(partner, fleet, make_vehicle, make_callback, path):
    _world(3, fleet, make_vehicle, make_callback)
    small = _queries(partner, path)
    _world(27, fleet, make_vehicle, make_callback)
    assert _queries(partner, path) == small, path


def test_a_vehicles_actions_cost_the_same_queries_for_3_or_30(partner, fleet, make_vehicle, make_callback):
    vehicle = make_vehicle(fleet=fleet)
    callback = make_callback(fleet)
    for _ in range(3):
        _action(vehicle, callback, RemoteType.HORN, {"horn": {"state": "Activated"}})
    small = _queries(partner, f"/vehicles/{vehicle.vin}/remotes/")
    for _ in range(27):
        _action(vehicle, callback, RemoteType.HORN, {"horn": {"state": "Activated"}}, status=ActionStatus.QUEUED)
    assert _queries(partner, f"/vehicles/{vehicle.vin}/remotes/") == small
