"""The console in a real browser (Debian's chromium driven by Playwright): the overview's numbers
and where they lead, the map's markers with and without OpenStreetMap's tiles, the destination
picker, and the 390 px phone layouts."""

import base64
import datetime as dt

import pytest
from django.utils import timezone

from remotes.models import ActionStatus

browser = pytest.mark.browser
TILES = "https://tile.openstreetmap.org/**"
# A 1x1 transparent PNG: what a tile request gets when the test lets tiles "load".
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
PLACES = [(48.8584, 2.2945), (45.764, 4.8357), (43.2965, 5.3698)]  # Paris, Lyon, Marseille


def log_in(page, url, user):
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.fixture
def fleet_world(transactional_db, make_fleet, make_vehicle, make_callback, snapshot, action, other_org):
    fleet = make_fleet()
    cb = make_callback(fleet)
    vehicles = [make_vehicle(fleet=fleet) for _ in PLACES]
    for v, (lat, lon), ago in zip(vehicles, PLACES, (dt.timedelta(minutes=1), dt.timedelta(hours=2), dt.timedelta(days=20)), strict=True):
        snapshot(v, ago=ago, latitude=lat, longitude=lon, energy_level=50)
    action(vehicles[1], cb, remote_type="Stolen", command={"stolen": {"stolen": True}}, ago=dt.timedelta(days=2))
    action(vehicles[0], cb, status=ActionStatus.FAILED, failure_cause="DoorsOpen")
    action(vehicles[0], cb, status=ActionStatus.FAILED, failure_cause="VehicleInUse")
    action(vehicles[2], cb, status=ActionStatus.SUCCESS)
    action(vehicles[2], cb, status=ActionStatus.PENDING, submitted_at=timezone.now() - dt.timedelta(minutes=30))
    return {"fleet": fleet, "vehicles": vehicles, "callback": cb}


@browser
def test_the_overview_shows_the_numbers_and_each_opens_its_filtered_list(live_server, page, fleet_world, viewer):
    from playwright.sync_api import expect

    page.route(TILES, lambda route: route.abort())
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    log_in(page, live_server.url, viewer)

    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("#n-stolen .num")).to_have_text("1")
    expect(page.locator("#n-online .num")).to_have_text("1")
    expect(page.locator("#n-asleep .num")).to_have_text("1")
    expect(page.locator("#n-offline .num")).to_have_text("1")
    expect(page.locator("#today-failed .num")).to_have_text("2")
    expect(page.locator("#failure-causes")).to_contain_text("Doors open")
    expect(page.locator("#failure-causes")).to_contain_text("A door is open. Close it, then lock again.")
    expect(page.locator("#quiet-warning")).to_contain_text(fleet_world["callback"].label)
    # The charts are drawn (Chart.js sizes its canvas) and labelled for screen readers.
    expect(page.locator("#chart-per-hour")).to_have_attribute("aria-label", "Commands per hour over the last 24 hours, stacked by outcome; the same numbers are in the table below.")
    page.wait_for_function("!!Chart.getChart(document.getElementById('chart-per-hour')) && !!Chart.getChart(document.getElementById('chart-causes'))")
    assert [m for m in messages if "Content Security Policy" in m] == []  # charts drawn under script-src 'self'

    page.click("#n-stolen")
    page.wait_for_url(f"{live_server.url}/vehicles/?state=stolen")
    expect(page.locator("#vehicles tr[data-vin]")).to_have_count(1)
    expect(page.locator(f"#vehicles tr[data-vin='{fleet_world['vehicles'][1].vin}']")).to_be_visible()

    # Every vehicle number opens a list holding as many vehicles as it says.
    for state in ("online", "asleep", "offline", "unknown", "charging", "low_battery", "stolen", "immobilized"):
        page.goto(f"{live_server.url}/")
        shown = int(page.locator(f"#n-{state} .num").inner_text())
        page.click(f"#n-{state}")
        page.wait_for_url(f"{live_server.url}/vehicles/?state={state}")
        expect(page.locator("#vehicles tr[data-vin]")).to_have_count(shown)

    page.goto(f"{live_server.url}/")
    page.click("#today-failed")
    page.wait_for_url("**/actions/?since=today&status=failed&status=rejected&status=error&status=expired&status=unknown")
    expect(page.locator("#actions tbody tr[data-action]")).to_have_count(2)
    expect(page.locator("#actions")).to_contain_text("Failed: Doors open")

    page.goto(f"{live_server.url}/")
    page.click("#failure-causes a >> nth=0")
    expect(page.locator("#actions tbody tr[data-action]")).to_have_count(1)


@browser
def test_the_overview_refreshes_itself_in_place(live_server, page, fleet_world, viewer, action):
    from playwright.sync_api import expect

    log_in(page, live_server.url, viewer)
    expect(page.locator("#today-failed .num")).to_have_text("2")
    assert page.get_attribute("#overview-live", "hx-trigger") == "every 60s"
    action(fleet_world["vehicles"][0], fleet_world["callback"], status=ActionStatus.FAILED, failure_cause="DoorsOpen")
    # What the minute's poll does, now rather than in a minute.
    page.evaluate("htmx.ajax('GET', '/', {target: '#overview-live', select: '#overview-live', swap: 'outerHTML'})")
    expect(page.locator("#today-failed .num")).to_have_text("3")
    expect(page.locator("#failure-causes tr[data-cause=DoorsOpen] a")).to_have_text("2")
    expect(page.locator("#overview-live")).to_have_count(1)
    page.wait_for_function("!!Chart.getChart(document.getElementById('chart-per-hour'))")  # drawn again on the new canvas


@browser
def test_the_map_shows_a_marker_per_vehicle_and_a_popup_leads_to_its_page(live_server, page, fleet_world, viewer):
    from playwright.sync_api import expect

    page.route(TILES, lambda route: route.fulfill(status=200, content_type="image/png", body=PNG))
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    log_in(page, live_server.url, viewer)
    page.goto(f"{live_server.url}/map/")

    expect(page.locator("#map-count")).to_have_text("3 vehicles with a known position")
    expect(page.locator(".leaflet-marker-icon.vehicle-marker")).to_have_count(3)
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("OpenStreetMap")
    expect(page.locator("#tiles-note")).to_be_hidden()
    assert [m for m in messages if "Content Security Policy" in m] == []  # tiles from OSM allowed by img-src
    stolen = fleet_world["vehicles"][1]
    page.locator(f".vehicle-marker[title^='{stolen.vin}']").click()
    link = page.locator(".leaflet-popup .popup-open")
    expect(link).to_have_attribute("href", f"/vehicles/{stolen.vin}/")
    expect(page.locator(".leaflet-popup")).to_contain_text("Asleep")
    link.click()
    page.wait_for_url(f"{live_server.url}/vehicles/{stolen.vin}/")


@browser
def test_the_map_still_shows_its_markers_where_tiles_cannot_load(live_server, page, fleet_world, viewer):
    from playwright.sync_api import expect

    page.route(TILES, lambda route: route.abort())
    log_in(page, live_server.url, viewer)
    page.goto(f"{live_server.url}/map/")

    expect(page.locator("#tiles-note")).to_be_visible()
    expect(page.locator(".leaflet-marker-icon.vehicle-marker")).to_have_count(3)
    page.click("#map-list-box summary")
    expect(page.locator("#map-list li")).to_have_count(3)
    expect(page.locator("#map-list")).to_contain_text(fleet_world["vehicles"][0].vin)


@browser
def test_thousands_of_vehicles_are_clustered(live_server, page, viewer, make_fleet):
    from playwright.sync_api import expect

    from vehicles.models import Vehicle, VehicleStatus

    fleet = make_fleet()
    now = timezone.now()
    vehicles = Vehicle.objects.bulk_create(
        Vehicle(fleet=fleet, external_id=f"bulk{i}", vin=f"VF3CLUSTER{i:07d}", brand="Peugeot") for i in range(2000)
    )
    VehicleStatus.objects.bulk_create(
        VehicleStatus(vehicle=v, fetched_at=now, captured_at=now, latitude=48.0 + (i % 50) / 25, longitude=2.0 + (i // 50) / 25)
        for i, v in enumerate(vehicles)
    )
    page.route(TILES, lambda route: route.abort())
    log_in(page, live_server.url, viewer)
    page.goto(f"{live_server.url}/map/")

    expect(page.locator("#map-count")).to_have_text("2000 vehicles with a known position")
    expect(page.locator(".marker-cluster").first).to_be_visible()
    shown = page.locator(".leaflet-marker-icon").count()
    assert 0 < shown < 200  # clusters, not 2,000 icons


@browser
def test_the_destination_picker_writes_the_clicked_point_into_the_navigation_form(live_server, page, fleet_world, make_member):
    from playwright.sync_api import expect

    from accounts.models import Role

    page.route(TILES, lambda route: route.abort())
    operator = make_member("otto", Role.OPERATOR)
    log_in(page, live_server.url, operator)
    vehicle = fleet_world["vehicles"][0]  # last seen in Paris: the map starts there
    page.goto(f"{live_server.url}/vehicles/{vehicle.vin}/remote/navigation/?positions=48.8584%2C+2.2945")

    picker = page.locator("[data-destination-map]")
    expect(picker).to_have_attribute("data-point-count", "1")
    page.locator(".destination-map").click(position={"x": 60, "y": 60})
    expect(picker).to_have_attribute("data-point-count", "2")
    lines = page.input_value("#id_positions").splitlines()
    assert lines[0] == "48.8584, 2.2945"
    lat, lon = (float(x) for x in lines[1].split(","))
    assert 40 <= lat <= 55 and -5 <= lon <= 10 and (lat, lon) != (48.8584, 2.2945)  # near the vehicle, not elsewhere
    page.click("text=Remove the last point")
    assert page.input_value("#id_positions") == "48.8584, 2.2945"


@browser
@pytest.mark.parametrize("path", ["/", "/actions/", "/map/"])
def test_phone_pages_have_no_horizontal_scroll(live_server, page, fleet_world, viewer, path):
    from playwright.sync_api import expect

    page.route(TILES, lambda route: route.abort())
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, viewer)
    page.goto(f"{live_server.url}{path}")
    expect(page.locator("h1")).to_be_visible()
    if path == "/map/":
        expect(page.locator(".vehicle-marker.leaflet-marker-icon")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
