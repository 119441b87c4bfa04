"""Paging: the client follows `_links.next.href` as the vendor gives it.

First against a fake vendor (relative links, missing client_id, loops, another host), then
over real HTTP against the simulator in both of its paging modes (pageToken, indexRange)."""

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.utils import timezone

from callbacks.models import Callback
from callbacks.services import import_callbacks
from simulator import vendor as sim_vendor
from simulator.models import SimRemoteAction
from simulator.seeding import seed_world
from stellantis.client import ClientConfig, FleetClient
from stellantis.errors import BadPaging, StellantisError
from vehicles.models import Fleet

from .fakes import fake_client, page, vehicle

BASE = "https://api.example/connectedcar/v3"


def pages_at(answers: dict[str, dict]):
    """A vendor whose pages are keyed by 'path?query-without-client_id', in any query order."""

    def key(url: str) -> str:
        parts = urlsplit(url)
        query = sorted((k, v) for k, vs in parse_qs(parts.query).items() for v in vs if k != "client_id")
        return parts.path + "?" + "&".join(f"{k}={v}" for k, v in query)

    table = {key(f"https://api.example{k}"): v for k, v in answers.items()}
    return lambda request: (200, table[key(request.url)], {})


@pytest.mark.parametrize(
    "next_href",
    [
        "/connectedcar/v3/fleets/f/vehicles?indexRange=2-3&pageSize=2",  # path-absolute
        "vehicles?indexRange=2-3&pageSize=2",  # relative to the page it came from
        "?indexRange=2-3&pageSize=2",  # query only
        f"{BASE}/fleets/f/vehicles?indexRange=2-3&pageSize=2",  # absolute
        "https://API.example:443/connectedcar/v3/fleets/f/vehicles?indexRange=2-3&pageSize=2",  # same origin, spelt otherwise
    ],
)
def test_a_next_link_is_followed_as_given_and_keeps_our_client_id(next_href):
    client, fake = fake_client(
        pages_at(
            {
                "/connectedcar/v3/fleets/f/vehicles?pageSize=2": page([vehicle(0), vehicle(1)], next_href),
                "/connectedcar/v3/fleets/f/vehicles?indexRange=2-3&pageSize=2": page([vehicle(2)]),
            }
        )
    )

    ids = [v.id for v in client.vehicles("f", page_size=2)]

    assert ids == ["v0", "v1", "v2"]
    assert len(fake.seen) == 2
    assert fake.query(1)["indexRange"] == ["2-3"]
    assert fake.query(1)["client_id"] == ["cid"]  # the link lacked it: added, once


def test_a_client_id_the_link_carries_is_kept_as_is():
    client, fake = fake_client(
        pages_at(
            {
                "/connectedcar/v3/fleets/f/vehicles?pageSize=60": page([vehicle(0)], "vehicles?pageToken=abc&client_id=cid"),
                "/connectedcar/v3/fleets/f/vehicles?pageToken=abc": page([vehicle(1)]),
            }
        )
    )

    assert [v.id for v in client.vehicles("f")] == ["v0", "v1"]
    assert fake.query(1)["client_id"] == ["cid"]


def test_a_link_back_to_a_page_already_read_ends_the_walk():
    client, fake = fake_client(
        pages_at(
            {
                "/connectedcar/v3/fleets/f/vehicles?pageSize=60": page([vehicle(0)], "vehicles?indexRange=1-"),
                "/connectedcar/v3/fleets/f/vehicles?indexRange=1-": page([vehicle(1)], "vehicles?indexRange=1-"),
            }
        )
    )

    assert [v.id for v in client.vehicles("f")] == ["v0", "v1"]
    assert len(fake.seen) == 2


def test_a_link_back_to_the_first_page_ends_the_walk_however_its_query_is_ordered():
    client, fake = fake_client(
        pages_at({"/connectedcar/v3/fleets/f/vehicles?pageSize=60": page([vehicle(0)], "vehicles?client_id=cid&pageSize=60")})
    )

    assert [v.id for v in client.vehicles("f")] == ["v0"]
    assert len(fake.seen) == 1


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://evil.example/connectedcar/v3/fleets/f/vehicles?indexRange=1-",
        "http://api.example/connectedcar/v3/fleets/f/vehicles?indexRange=1-",  # a downgrade to plain HTTP
        "https://api.example:8443/connectedcar/v3/fleets/f/vehicles?indexRange=1-",
        "//evil.example/x",
    ],
)
def test_a_next_link_to_another_host_is_refused_before_anything_is_sent_there(elsewhere):
    client, fake = fake_client(
        pages_at({"/connectedcar/v3/fleets/f/vehicles?pageSize=60": page([vehicle(0)], elsewhere)}), user="u", password="p"
    )

    with pytest.raises(BadPaging) as exc:
        list(client.vehicles("f"))

    assert isinstance(exc.value, StellantisError) and exc.value.permanent and not exc.value.ambiguous
    assert len(fake.seen) == 1  # our credentials never went there


# --- over real HTTP, both of the simulator's paging modes ---------------------------------------

MODES = ["token", "index"]


@pytest.fixture(params=MODES)
def paging(request, settings):
    settings.SIMULATOR_PAGING = request.param
    return request.param


def recording_client(stack, settings) -> tuple[FleetClient, list[str]]:
    seen: list[str] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *a, **kw: seen.append(response.url))
    client = FleetClient(ClientConfig(base_url=f"{stack.url}/{settings.SIMULATOR_PATH}", client_id="paging-test", user=settings.STELLANTIS_USER, password=settings.STELLANTIS_PASSWORD), session=session)
    return client, seen


def assert_paged_the_way(mode: str, seen: list[str]) -> None:
    later = [parse_qs(urlsplit(url).query) for url in seen[1:]]
    assert later, "more than one page was read"
    for query in later:
        assert query["client_id"] == ["paging-test"]
        if mode == "index":
            assert "indexRange" in query and "pageToken" not in query
        else:
            assert "pageToken" in query


def test_every_vehicle_of_a_large_fleet_is_read_once(stack, settings, paging):
    fleet = seed_world(fleet_name="Big", vehicle_count=130, seed=3)
    client, seen = recording_client(stack, settings)

    vins = [v.vin for v in client.vehicles(fleet.id)]

    assert len(vins) == 130 == len(set(vins))
    assert len(seen) == 3
    assert_paged_the_way(paging, seen)


def subscription(n: int, target: str) -> dict:
    return {"label": f"cb {n}", "callback": {"webhook": {"target": target, "name": f"hook {n}", "attributes": []}}, "remoteTypes": ["Horn"]}


def test_callback_import_reads_every_page(stack, settings, paging):
    sim_fleet = seed_world(fleet_name="Many callbacks", vehicle_count=1, seed=8)
    for n in range(65):
        sim_vendor.create_callback(fleet_id=sim_fleet.id, subscribe=subscription(n, f"{stack.url}/hook/{n}"))
    fleet = Fleet.objects.create(external_id=sim_fleet.id, name="Many callbacks")
    client, seen = recording_client(stack, settings)

    result = import_callbacks(fleet=fleet, client=client)

    assert (result.created, result.updated) == (65, 0)
    assert Callback.objects.filter(fleet=fleet).count() == 65
    assert_paged_the_way(paging, seen)


def test_find_remote_by_label_looks_past_the_first_page(stack, settings, paging):
    sim_fleet = seed_world(fleet_name="Many remotes", vehicle_count=1, seed=9)
    car = sim_fleet.vehicles.get()
    callback = sim_vendor.create_callback(fleet_id=sim_fleet.id, subscribe=subscription(0, f"{stack.url}/hook"))
    start = timezone.now() - dt.timedelta(hours=1)
    SimRemoteAction.objects.bulk_create(
        SimRemoteAction(
            fleet=sim_fleet, vehicle=car, callback=callback, remote={"label": f"label-{n}", "horn": {"state": "Activated"}},
            remote_type="Horn", status="Success", created_at=start + dt.timedelta(seconds=n),
        )
        for n in range(125)
    )
    mine = SimRemoteAction.objects.get(remote__label="label-124")
    client, seen = recording_client(stack, settings)

    found = client.find_remote_by_label(sim_fleet.id, car.id, callback.id, "label-124")

    assert found is not None and found.remote_action_id == mine.id
    assert len(seen) == 3
    assert_paged_the_way(paging, seen)
    assert client.find_remote_by_label(sim_fleet.id, car.id, callback.id, "label-125") is None
