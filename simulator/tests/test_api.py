"""The simulated Fleet Owner API over real HTTP: shapes (checked against api-b2b.yaml), auth, paging, errors."""

import base64
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings
from django.db import connection

from simulator import seeding
from simulator.models import SimCallback, SimRemoteAction
from simulator.testing import a_day_starting_now
from stellantis import spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("simulator.tests.urls")]


def _AUTH() -> tuple[str, str]:  # noqa: N802 - reads like the constant it stands for
    """The simulator's credentials, for a request made without the Api helper."""
    user, _, password = settings.SIMULATOR_CREDENTIALS.partition(":")
    return user, password


def assert_schema(schema: str, body):
    errors = spec.schema_errors(spec.API_FILE, schema, body)
    assert errors == [], f"{schema}: {errors}"


def test_fleet_and_vehicle_endpoints_answer_the_vendor_schemas(api, fleet, awake_vehicle, reference_dir):
    fleets = api.get("fleets")
    assert fleets.status_code == 200
    assert fleets.headers["Content-Type"].startswith("application/hal+json")
    assert_schema("Fleets", fleets.json())
    assert [f["id"] for f in fleets.json()["_embedded"]["fleets"]] == [fleet.id]

    one = api.get(f"fleets/{fleet.id}")
    assert_schema("Fleet", one.json())
    assert one.json()["name"] == "Test fleet"

    vehicles = api.get(f"fleets/{fleet.id}/vehicles")
    assert_schema("Vehicles", vehicles.json())
    assert vehicles.json()["total"] == 6

    vehicle = api.get(f"fleets/{fleet.id}/vehicles/{awake_vehicle.id}")
    assert_schema("Vehicle", vehicle.json())
    assert vehicle.json()["vin"] == awake_vehicle.vin


@pytest.mark.parametrize("motorization", ["Electric", "Hybrid", "Thermic", "Hydrogen"])
def test_status_reports_the_vehicle_state_in_the_status_schema(api, fleet, awake_vehicle, motorization, reference_dir):
    type(awake_vehicle).objects.filter(pk=awake_vehicle.pk).update(motorization=motorization, energy_level=42.5)

    response = api.get(f"fleets/{fleet.id}/vehicles/{awake_vehicle.id}/status")

    assert response.status_code == 200
    body = response.json()
    assert_schema("Status", body)
    assert body["vin"] == awake_vehicle.vin
    assert body["doorsState"]["lockedStates"] == ["Locked"]
    assert body["lastPosition"]["geometry"]["coordinates"] == [awake_vehicle.longitude, awake_vehicle.latitude]
    energy = body["energies"][0]
    assert energy["level"] == 42.5
    assert energy["type"] == ("Fuel" if motorization == "Thermic" else "Electric")
    if motorization != "Thermic":
        assert "charging" in energy["extension"]["electric"]


def test_callback_lifecycle_answers_the_vendor_schemas(api, fleet, receiver, reference_dir):
    subscribe = {
        "label": "portal",
        "callback": {"webhook": {"target": receiver.url, "name": "hook", "attributes": []}},
        "retryPolicy": {"policy": "Bounded", "retryNumber": 2, "retryDelay": 5},
        "batchNotify": {"size": 5, "timeWindow": 10},
        "remoteTypes": ["Horn", "Doors"],
    }
    created = api.post(f"fleets/{fleet.id}/remote/callbacks", subscribe)
    assert created.status_code == 200
    assert_schema("CallbackRef", created.json())
    assert created.json()["status"] == "Running"
    callback_id = created.json()["callbackId"]

    one = api.get(f"fleets/{fleet.id}/remote/callbacks/{callback_id}")
    assert_schema("RemoteCallback", one.json())
    assert one.json()["subscribe"] == subscribe
    assert one.json()["_links"]["remotes"]["templated"] is True

    listing = api.get(f"fleets/{fleet.id}/remote/callbacks")
    assert_schema("RemoteCallbacks", listing.json())
    assert [c["id"] for c in listing.json()["_embedded"]["callbacks"]] == [callback_id]
    assert api.get(f"fleets/{fleet.id}/remote/callbacks", params={"types": "Lights"}).json()["total"] == 0

    replaced = api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}", {**subscribe, "remoteTypes": ["Lights"]})
    assert replaced.status_code == 202
    assert_schema("CallbackRef", replaced.json())
    assert SimCallback.objects.get(pk=callback_id).subscribe["remoteTypes"] == ["Lights"]

    paused = api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status", {"status": "Paused"})
    assert paused.status_code == 202
    assert paused.json()["status"] == "Paused"
    assert SimCallback.objects.get(pk=callback_id).status == "Paused"

    deleted = api.delete(f"fleets/{fleet.id}/remote/callbacks/{callback_id}")
    assert deleted.status_code == 204
    assert api.get(f"fleets/{fleet.id}/remote/callbacks/{callback_id}").status_code == 404


def test_remote_post_and_reads_answer_the_vendor_schemas(api, fleet, awake_vehicle, receiver, pump_all, reference_dir):
    callback_id = api.create_callback(fleet.id, receiver.url)

    posted = api.send(awake_vehicle, callback_id, {"label": "corr-1", "horn": {"state": "Activated"}})

    assert posted.status_code == 202
    assert_schema("RemotePostResponse", posted.json())
    action_id = posted.json()["remoteActionId"]
    assert posted.json()["type"] == "Horn"
    base = f"fleets/{fleet.id}/vehicles/{awake_vehicle.id}/callbacks/{callback_id}/remotes"
    pump_all()

    listing = api.get(base)
    assert_schema("RemoteActions", listing.json())
    [item] = listing.json()["_embedded"]["remoteActions"]
    assert item["remote"] == {"label": "corr-1", "horn": {"state": "Activated"}}

    one = api.get(f"{base}/{action_id}")
    assert_schema("RemoteAction", one.json())
    assert one.json()["status"] == "Success"
    assert one.json()["remoteActionId"] == action_id


def test_the_portal_client_reads_every_vehicle_once_across_pages(api, live_server):
    big = seeding.seed_world(fleet_name="Big fleet", vehicle_count=130, seed=3)
    client = api.client()

    vins = [v.vin for v in client.vehicles(big.id, page_size=60)]

    assert len(vins) == 130
    assert sorted(vins) == sorted(big.vehicles.values_list("vin", flat=True))


def test_pages_carry_totals_and_links(api, reference_dir):
    big = seeding.seed_world(fleet_name="Big fleet", vehicle_count=130, seed=3)

    first = api.get(f"fleets/{big.id}/vehicles", params={"pageSize": 60}).json()

    assert_schema("Vehicles", first)
    assert (first["total"], first["totalPage"], first["currentPage"]) == (130, 3, 1)
    assert "pageToken=" in first["_links"]["next"]["href"]
    assert "prev" not in first["_links"]
    second = requests.get(first["_links"]["next"]["href"], timeout=10, auth=_AUTH()).json()
    third = requests.get(second["_links"]["next"]["href"], timeout=10, auth=_AUTH()).json()
    assert (second["currentPage"], third["currentPage"]) == (2, 3)
    assert len(third["_embedded"]["vehicles"]) == 10
    assert "next" not in third["_links"]
    assert third["_links"]["last"]["href"] == second["_links"]["next"]["href"]


def test_index_range_limits_the_collection(api):
    big = seeding.seed_world(fleet_name="Big fleet", vehicle_count=20, seed=3)

    body = api.get(f"fleets/{big.id}/vehicles", params={"indexRange": "5-9"}).json()

    assert body["total"] == 5
    expected = list(big.vehicles.order_by("vin").values_list("vin", flat=True)[5:10])
    assert [v["vin"] for v in body["_embedded"]["vehicles"]] == expected


@pytest.mark.parametrize("params", [{"pageSize": 0}, {"pageSize": 61}, {"pageSize": "x"}, {"pageToken": "nonsense"}])
def test_bad_paging_is_a_400(api, fleet, params, reference_dir):
    response = api.get(f"fleets/{fleet.id}/vehicles", params=params)

    assert response.status_code == 400
    assert_schema("xError", response.json())


@pytest.mark.parametrize("mode", ["token", "index"])
def test_both_paging_modes_walk_the_whole_collection_through_next_links(api, settings, mode, reference_dir):
    settings.SIMULATOR_PAGING = mode
    big = seeding.seed_world(fleet_name="Big fleet", vehicle_count=130, seed=3)

    bodies = [api.get(f"fleets/{big.id}/vehicles", params={"pageSize": 60}).json()]
    while "next" in bodies[-1]["_links"]:
        bodies.append(requests.get(bodies[-1]["_links"]["next"]["href"], timeout=10, auth=_AUTH()).json())

    for body in bodies:
        assert_schema("Vehicles", body)
    vins = [v["vin"] for body in bodies for v in body["_embedded"]["vehicles"]]
    assert vins == list(big.vehicles.order_by("vin").values_list("vin", flat=True))
    assert [b["currentPage"] for b in bodies] == [1, 2, 3]
    assert {b["total"] for b in bodies} == {130} and {b["totalPage"] for b in bodies} == {3}
    nexts = [b["_links"]["next"]["href"] for b in bodies[:-1]]
    if mode == "index":
        assert all("indexRange=" in href and "pageToken" not in href for href in nexts)
        assert "indexRange=60-" in nexts[0] and "indexRange=120-" in nexts[1]
        assert re.match(r"^\d+-\d*$", parse_qs(urlsplit(nexts[0]).query)["indexRange"][0])  # the spec's pattern
    else:
        assert all("pageToken=" in href and "indexRange" not in href for href in nexts)
    assert all("client_id=test-client" in href for href in nexts)


def test_index_paging_keeps_a_range_the_client_bounded(api, settings):
    settings.SIMULATOR_PAGING = "index"
    big = seeding.seed_world(fleet_name="Big fleet", vehicle_count=30, seed=3)

    first = api.get(f"fleets/{big.id}/vehicles", params={"pageSize": 10, "indexRange": "5-24"}).json()
    second = requests.get(first["_links"]["next"]["href"], timeout=10, auth=_AUTH()).json()

    assert "indexRange=15-24" in first["_links"]["next"]["href"]
    assert len(first["_embedded"]["vehicles"]) == len(second["_embedded"]["vehicles"]) == 10
    assert "next" not in second["_links"]
    expected = list(big.vehicles.order_by("vin").values_list("vin", flat=True)[5:25])
    assert [v["vin"] for v in first["_embedded"]["vehicles"] + second["_embedded"]["vehicles"]] == expected


def _rate_headers(response) -> dict:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit") or k.lower() == "retry-after"}


def test_rate_limits_are_reported_on_every_answer_and_enforced_with_a_429(api, fleet, settings, reference_dir):
    a_day_starting_now(settings, limit=3, seconds=3600)
    client_id = f"limits-{uuid.uuid4().hex[:8]}"  # the counters are per client_id

    answers = [api.get(f"fleets/{fleet.id}", client_id=client_id) for _ in range(3)]
    refused = api.get(f"fleets/{fleet.id}", client_id=client_id)
    not_found = api.get("fleets/nope", client_id=f"{client_id}-other")

    assert [r.status_code for r in answers] == [200, 200, 200]
    assert [r.headers["X-RateLimit-Remaining-1"] for r in answers] == ["2", "1", "0"]
    assert all(r.headers["X-RateLimit-Limit-1"] == "3" for r in answers)
    assert "Retry-After" not in answers[0].headers
    assert refused.status_code == 429
    assert_schema("xError", refused.json())
    assert refused.json()["uuid"] and refused.json()["timestamp"]
    assert refused.headers["X-RateLimit-Remaining-1"] == "0"
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600  # the day turned a moment ago (DAY_STARTS_AT)
    assert refused.headers["X-RateLimit-Reset"] == refused.headers["Retry-After"]
    # Another client_id has a budget of its own, and errors carry the headers too.
    assert not_found.status_code == 404 and not_found.headers["X-RateLimit-Remaining-1"] == "2"
    # The counts live in the database, where every worker process counts.
    with connection.cursor() as cursor:
        cursor.execute("SELECT used FROM simulator_ratewindow WHERE name = %s", [f"{client_id}:1"])
        assert cursor.fetchone() == (3,)


def test_the_burst_window_refuses_the_call_too_many_within_one_second(api, fleet, settings):
    settings.SIMULATOR_RATE_LIMIT_PER_SECOND = 2
    client_id = f"burst-{uuid.uuid4().hex[:8]}"
    time.sleep(1.02 - time.time() % 1)  # at the start of a second, so three calls fit in it

    statuses = [api.get(f"fleets/{fleet.id}", client_id=client_id) for _ in range(3)]

    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining-2"] for r in statuses] == ["1", "0", "0"]
    assert statuses[2].headers["Retry-After"] == "1"
    assert "X-RateLimit-Limit-1" not in statuses[0].headers  # no daily limit configured, none reported


def test_no_limit_configured_means_no_rate_headers(api, fleet):
    assert _rate_headers(api.get(f"fleets/{fleet.id}")) == {}


def test_missing_client_id_is_a_401(api, fleet, reference_dir):
    response = api.get("fleets", client_id=None)

    assert response.status_code == 401
    assert_schema("xError", response.json())
    assert "client_id" in response.json()["message"]


def test_credentials_are_enforced_when_configured(api, fleet, settings):
    settings.SIMULATOR_CREDENTIALS = "sim-user:s3cret"

    assert api.get("fleets", auth=()).status_code == 401
    assert api.get("fleets", auth=("sim-user", "wrong")).status_code == 401
    assert api.get("fleets", auth=("sim-user", "s3cret")).status_code == 200
    garbage = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
    assert api.get("fleets", headers=garbage, auth=()).status_code == 401


def test_the_simulator_is_always_locked(api, fleet, settings):
    """Nothing configured: credentials derived from SECRET_KEY, demanded over real HTTP."""
    user, _, password = settings.SIMULATOR_CREDENTIALS.partition(":")
    assert user and password

    response = api.get("fleets", auth=())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert api.get("fleets", auth=(user, "wrong")).status_code == 401
    assert api.get("fleets", auth=("anyone", password)).status_code == 401
    assert api.get("fleets", auth=(user, password)).status_code == 200


def test_an_empty_credentials_setting_opens_nothing(api, fleet, settings):
    settings.SIMULATOR_CREDENTIALS = ""

    assert api.get("fleets", auth=()).status_code == 401
    assert api.get("fleets", auth=("", "")).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "fleets/nope",
        "fleets/{fid}/vehicles/nope",
        "fleets/{fid}/vehicles/nope/status",
        "fleets/{fid}/remote/callbacks/abc123",
        "fleets/{fid}/vehicles/{vid}/callbacks/abc123/remotes",
        "fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes/abc123",
        "no/such/path",
    ],
)
def test_unknown_resources_are_a_404_xerror(api, fleet, awake_vehicle, receiver, path, reference_dir):
    callback_id = api.create_callback(fleet.id, receiver.url)

    response = api.get(path.format(fid=fleet.id, vid=awake_vehicle.id, cbid=callback_id))

    assert response.status_code == 404
    assert_schema("xError", response.json())
    assert response.json()["code"] == 40400


def test_a_vehicle_of_another_fleet_is_not_found(api, fleet):
    other = seeding.seed_world(fleet_name="Other fleet", vehicle_count=1, seed=9)
    stranger = other.vehicles.get()

    assert api.get(f"fleets/{fleet.id}/vehicles/{stranger.id}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["callback"]["webhook"].pop("target"), "callback.webhook.target"),
        (lambda b: b["callback"]["webhook"].pop("name"), "callback.webhook.name"),
        (lambda b: b.update(remoteTypes=[]), "remoteTypes"),
        (lambda b: b.update(remoteTypes=["Teleport"]), "remoteTypes"),
        (lambda b: b.update(retryPolicy={"policy": "Always"}), "retryPolicy.policy"),
        (lambda b: b.update(retryPolicy={"policy": "Bounded", "retryNumber": 0}), "retryPolicy.retryNumber"),
        (lambda b: b.update(retryPolicy={"policy": "Bounded", "retryDelay": 0}), "retryPolicy.retryDelay"),
        (lambda b: b.update(batchNotify={"timeWindow": 10}), "batchNotify.size"),
        (lambda b: b.update(batchNotify={"size": 0}), "batchNotify.size"),
        (lambda b: b.update(batchNotify={"size": 2, "timeWindow": 4}), "batchNotify.timeWindow"),
        (
            lambda b: b["callback"]["webhook"].update(attributes=[{"type": "Cookie", "key": "k", "value": "v"}]),
            "attributes.0.type",
        ),
        (lambda b: b["callback"]["webhook"].update(attributes=[{"type": "Header", "value": "v"}]), "attributes.0.key"),
        (
            lambda b: b["callback"]["webhook"].update(attributes=[{"type": "Query", "key": "k", "value": "$plate"}]),
            "attributes.0.value",
        ),
    ],
)
def test_an_invalid_subscription_is_a_400_naming_the_field(api, fleet, receiver, change, field, reference_dir):
    body = {"callback": {"webhook": {"target": receiver.url, "name": "hook"}}, "remoteTypes": ["Horn"]}
    change(body)

    response = api.post(f"fleets/{fleet.id}/remote/callbacks", body)

    assert response.status_code == 400, response.text
    assert_schema("xError", response.json())
    assert field in response.json()["message"]
    assert not SimCallback.objects.exists()


def test_the_callback_list_filters_on_the_spec_types_parameter(api, fleet, receiver, reference_dir):
    horn = api.create_callback(fleet.id, receiver.url, remoteTypes=["Horn"])
    doors = api.create_callback(fleet.id, receiver.url, remoteTypes=["Doors", "Lights"])
    api.create_callback(fleet.id, receiver.url, remoteTypes=["WakeUp"])
    document = spec.load(spec.API_FILE)
    parameters = document["paths"]["/fleets/{fid}/remote/callbacks"]["get"]["parameters"]
    names = {document["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"] if "$ref" in p else p["name"] for p in parameters}
    assert "types" in names and "remoteType" not in names  # the spec is the reference

    def ids(**params):
        body = api.get(f"fleets/{fleet.id}/remote/callbacks", params=params).json()
        return sorted(c["id"] for c in body["_embedded"]["callbacks"])

    assert ids(types="Horn") == [horn]
    assert ids(types=["Horn", "Lights"]) == sorted([horn, doors])  # repeated, as the spec's array parameter
    assert ids(types="Horn,Doors") == sorted([horn, doors])
    assert len(ids()) == 3
    unknown = api.get(f"fleets/{fleet.id}/remote/callbacks", params={"types": "Teleport"})
    assert unknown.status_code == 400 and "Teleport" in unknown.json()["message"]
    assert_schema("xError", unknown.json())


def test_status_setter_takes_only_running_or_paused(api, fleet, receiver):
    callback_id = api.create_callback(fleet.id, receiver.url)

    response = api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status", {"status": "Failed"})

    assert response.status_code == 400
    assert SimCallback.objects.get(pk=callback_id).status == "Running"


def test_an_invalid_remote_is_a_400_naming_the_field(api, fleet, awake_vehicle, receiver, reference_dir):
    callback_id = api.create_callback(fleet.id, receiver.url)

    response = api.send(awake_vehicle, callback_id, {"label": "x", "horn": {"state": "Loud"}})

    assert response.status_code == 400
    assert_schema("xError", response.json())
    assert "horn.state" in response.json()["message"]
    assert not SimRemoteAction.objects.exists()


def test_a_body_that_is_not_json_is_a_400(api, fleet, awake_vehicle, receiver):
    callback_id = api.create_callback(fleet.id, receiver.url)

    response = api.call(
        "POST",
        f"fleets/{fleet.id}/vehicles/{awake_vehicle.id}/callbacks/{callback_id}/remotes",
        data=b"{horn",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400


def test_a_remote_needs_a_running_callback_that_serves_its_type(api, fleet, awake_vehicle, receiver):
    callback_id = api.create_callback(fleet.id, receiver.url, remoteTypes=["Horn"])

    wrong_type = api.send(awake_vehicle, callback_id, {"lights": {"on": True}})
    api.put(f"fleets/{fleet.id}/remote/callbacks/{callback_id}/status", {"status": "Paused"})
    paused = api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})

    assert wrong_type.status_code == 400
    assert "Lights" in wrong_type.json()["message"]
    assert paused.status_code == 400
    assert "Paused" in paused.json()["message"]
    assert not SimRemoteAction.objects.exists()


def test_deleting_a_callback_with_a_pending_action_is_refused_until_it_is_done(
    api, fleet, awake_vehicle, receiver, pump_all, reference_dir
):
    callback_id = api.create_callback(fleet.id, receiver.url)
    api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})

    refused = api.delete(f"fleets/{fleet.id}/remote/callbacks/{callback_id}")
    pump_all()
    accepted = api.delete(f"fleets/{fleet.id}/remote/callbacks/{callback_id}")

    assert refused.status_code == 400
    assert_schema("xError", refused.json())
    assert "pending" in refused.json()["message"]
    assert accepted.status_code == 204
    assert not SimCallback.objects.exists()


def test_ids_fit_the_vendor_path_pattern(api, fleet, awake_vehicle, receiver):
    callback_id = api.create_callback(fleet.id, receiver.url)
    action_id = api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}}).json()["remoteActionId"]

    for value in (callback_id, action_id):
        assert len(value) == 32
        assert set(value) <= set("0123456789abcdef")


def test_find_remote_by_label_through_the_portal_client(api, fleet, awake_vehicle, receiver):
    callback_id = api.create_callback(fleet.id, receiver.url)
    api.send(awake_vehicle, callback_id, {"label": "other", "horn": {"state": "Activated"}})
    action_id = api.send(awake_vehicle, callback_id, {"label": "mine", "horn": {"state": "Activated"}}).json()[
        "remoteActionId"
    ]
    client = api.client()

    found = client.find_remote_by_label(fleet.id, awake_vehicle.id, callback_id, "mine")

    assert found.remote_action_id == action_id and found.label == "mine"


def test_the_portal_client_reads_the_onboard_capabilities(api, fleet, awake_vehicle, reference_dir):
    capabilities = api.client().vehicle_capabilities(fleet.id, awake_vehicle.id)

    assert capabilities["remote"]["horn"] == {"supported": True, "scopeName": "remote:horn:write", "parameters": {}}
    assert_schema("OnboardCapabilities", capabilities)
