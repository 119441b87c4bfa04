"""The map's positions: compact, scoped, one query whatever the fleet's size."""

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext


def test_positions_are_the_visible_vehicles_with_a_known_position(client, viewer, make_fleet, make_vehicle, snapshot, other_org):
    fleet = make_fleet()
    here = make_vehicle(fleet=fleet, brand="Peugeot")
    snapshot(here, ago=dt.timedelta(minutes=1), latitude=48.8584, longitude=2.2945)
    asleep = make_vehicle(fleet=fleet, brand="Opel")
    snapshot(asleep, ago=dt.timedelta(hours=5), latitude=45.764, longitude=4.8357)
    snapshot(make_vehicle(fleet=fleet), ago=dt.timedelta(hours=1))  # no position: not on the map
    client.force_login(viewer)

    data = client.get("/map/positions.json").json()

    assert data["columns"] == ["vin", "lat", "lon", "label", "state"]
    assert sorted(data["vehicles"]) == sorted([[here.vin, 48.8584, 2.2945, "Peugeot", "online"], [asleep.vin, 45.764, 4.8357, "Opel", "asleep"]])
    assert other_org["vehicle"].vin not in str(data)
    assert data["states"]["asleep"] == "Asleep"
    assert client.get(f"/map/positions.json?fleet={fleet.external_id}").json()["vehicles"]
    assert client.get("/map/positions.json?fleet=fleet-b").json()["vehicles"] == []
    assert [r[0] for r in client.get("/map/positions.json?state=asleep").json()["vehicles"]] == [asleep.vin]
    assert len(client.get("/map/positions.json?state=asleep&state=online").json()["vehicles"]) == 2


def test_positions_take_the_same_queries_for_many_vehicles(client, viewer, make_fleet, make_vehicle, snapshot):
    fleet = make_fleet()
    client.force_login(viewer)
    snapshot(make_vehicle(fleet=fleet), latitude=1.0, longitude=1.0)
    with CaptureQueriesContext(connection) as one:
        client.get("/map/positions.json")
    for i in range(40):
        snapshot(make_vehicle(fleet=fleet), latitude=1.0 + i / 100, longitude=1.0)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get("/map/positions.json").json()["vehicles"]) == 41
    assert len(many.captured_queries) == len(one.captured_queries)


def test_positions_travel_compressed(client, viewer, make_fleet, make_vehicle, snapshot):
    import gzip
    import json

    fleet = make_fleet()
    for i in range(300):
        snapshot(make_vehicle(fleet=fleet), latitude=45 + i / 1000, longitude=4.0)
    client.force_login(viewer)
    response = client.get("/map/positions.json", HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(response.content))["vehicles"]) == 300


def test_the_map_page_names_its_parts_for_everyone(client, viewer):
    client.force_login(viewer)
    html = client.get("/map/").content.decode()
    assert 'aria-label="Map of the vehicles\' latest known positions"' in html
    assert 'data-positions-url="/map/positions.json"' in html
    filtered = client.get("/map/?state=offline&fleet=x&junk=1").content.decode()
    assert 'data-positions-url="/map/positions.json?state=offline&amp;fleet=x"' in filtered
    assert "vendor/leaflet-markercluster/leaflet.markercluster.js" in html
    assert 'id="tiles-note" hidden' in html
