"""The vehicle list in a real browser (Debian's chromium driven by Playwright): each filter and a
sort through the page's own controls, the CSV download, the selection, and a phone's width."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Role
from remotes.models import ActionStatus, RemoteAction, Source
from stellantis.vocabulary import RemoteType
from vehicles.models import VehicleStatus

browser = pytest.mark.browser


@pytest.fixture
def fleet_of_five(transactional_db, make_fleet, make_vehicle, make_callback):
    """Five vehicles, each the only one to pass one of the filters tried below."""
    north, south = make_fleet(name="North"), make_fleet(name="South")
    now = timezone.now()
    cars = {
        "opel": make_vehicle(fleet=north, brand="Opel", motorization="Electric", label="Van 1"),
        "thermic": make_vehicle(fleet=north, brand="Peugeot", motorization="Thermic", plate="TT-111-TT"),
        "south": make_vehicle(fleet=south, brand="Peugeot", motorization="Electric"),
        "stolen": make_vehicle(fleet=north, brand="Peugeot", motorization="Hybrid"),
        "asleep": make_vehicle(fleet=north, brand="Peugeot", motorization="Electric"),
    }
    levels = {"opel": 90, "thermic": None, "south": 10, "stolen": 50, "asleep": 30}
    for key, car in cars.items():
        VehicleStatus.objects.create(
            vehicle=car, fetched_at=now, energy_level=levels[key],
            captured_at=now - (dt.timedelta(hours=5) if key == "asleep" else dt.timedelta(seconds=20)),
        )
    RemoteAction.objects.create(
        vehicle=cars["stolen"], callback=make_callback(north), remote_type=RemoteType.STOLEN, command={"stolen": {"stolen": True}},
        status=ActionStatus.SUCCESS, source=Source.WEB, expires_at=now + dt.timedelta(hours=1),
    )
    return cars


def log_in(page, url, user):
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def shown(page) -> list[str]:
    return page.locator("#vehicles tbody tr").evaluate_all("rows => rows.map(r => r.dataset.vin)")


@browser
def test_each_filter_and_a_sort_through_the_pages_controls(live_server, page, fleet_of_five, make_member):
    from playwright.sync_api import expect

    cars = fleet_of_five
    log_in(page, live_server.url, make_member("mia", Role.APPROVER))
    page.goto(f"{live_server.url}/vehicles/")
    assert sorted(shown(page)) == sorted(c.vin for c in cars.values())

    def apply(fill, expected, url_part):
        page.goto(f"{live_server.url}/vehicles/")
        fill()
        page.click("#filter-form button[type=submit]")
        page.wait_for_url(f"**{url_part}**")  # the filter is in the address: a saved filter is a URL
        assert sorted(shown(page)) == sorted(cars[k].vin for k in expected), url_part

    apply(lambda: page.fill("#f-q", "tt-111"), ["thermic"], "q=tt-111")
    apply(lambda: page.fill("#f-q", "van 1"), ["opel"], "q=van+1")
    apply(lambda: page.select_option("#f-fleet", label="South"), ["south"], "fleet=")
    apply(lambda: page.select_option("#f-brand", "Opel"), ["opel"], "brand=Opel")
    apply(lambda: page.select_option("#f-motorization", "Thermic"), ["thermic"], "motorization=Thermic")
    apply(lambda: page.locator("#f-state").get_by_label("Stolen").check(), ["stolen"], "state=stolen")
    apply(lambda: page.locator("#f-state").get_by_label("Asleep").check(), ["asleep"], "state=asleep")
    apply(lambda: page.locator("#f-capability").get_by_label("Charging").check(), ["opel", "south", "stolen", "asleep"], "capability=charging")

    # Nothing matches: said so, with the way back.
    page.goto(f"{live_server.url}/vehicles/?q=nothing-like-this")
    expect(page.locator("#no-match")).to_contain_text("No vehicle matches these filters")
    page.click("#clear-filters")
    expect(page.locator("#vehicles tbody tr")).to_have_count(5)

    # Sort by energy: a click on the header, then another for the other way; no value comes last.
    page.click("th[data-sort=energy] a")
    expect(page.locator("th[data-sort=energy]")).to_have_attribute("aria-sort", "ascending")
    assert shown(page) == [cars[k].vin for k in ("south", "asleep", "stolen", "opel", "thermic")]
    page.click("th[data-sort=energy] a")
    expect(page.locator("th[data-sort=energy]")).to_have_attribute("aria-sort", "descending")
    assert shown(page) == [cars[k].vin for k in ("opel", "stolen", "asleep", "south", "thermic")]
    expect(page.locator("th[data-sort=vin]")).to_have_attribute("aria-sort", "none")
    # A stolen vehicle says so in words.
    expect(page.locator(f"tr[data-vin={cars['stolen'].vin}] .state")).to_contain_text("Stolen")


@browser
def test_the_csv_download_holds_the_filtered_list(live_server, page, fleet_of_five, make_member):
    cars = fleet_of_five
    log_in(page, live_server.url, make_member("mia", Role.VIEWER))
    page.goto(f"{live_server.url}/vehicles/?brand=Peugeot&sort=-energy")
    with page.expect_download() as download:
        page.click("#export-csv")
    with open(download.value.path(), encoding="utf-8") as f:
        lines = list(csv.reader(io.StringIO(f.read())))
    assert lines[0][:3] == ["VIN", "Label", "Plate"]
    assert [line[0] for line in lines[1:]] == shown(page) == [cars[k].vin for k in ("stolen", "asleep", "south", "thermic")]
    assert lines[1][11] == "Stolen" and lines[4][2] == "TT-111-TT"


@browser
def test_select_all_on_this_page_ticks_every_row(live_server, page, fleet_of_five, make_member):
    from playwright.sync_api import expect

    try:
        reverse("bulk-new")
    except NoReverseMatch:
        pytest.skip("no bulk page yet (bulk-new)")
    log_in(page, live_server.url, make_member("otto", Role.OPERATOR))
    page.goto(f"{live_server.url}/vehicles/?fleet={fleet_of_five['opel'].fleet.external_id}")
    page.get_by_label("Select all on this page").check()
    expect(page.locator("#vehicles input[name=vin]:checked")).to_have_count(4)
    page.get_by_label(f"Select {fleet_of_five['opel'].vin}").uncheck()
    expect(page.locator("#select-page")).not_to_be_checked()
    expect(page.locator("#bulk-from-filter")).to_have_text("Send a command to all 4 matching")
    assert "selection=filter" in page.get_attribute("#bulk-from-filter", "href")


@browser
def test_a_phone_sees_cards_without_scrolling_sideways(live_server, page, fleet_of_five, make_member):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, make_member("mia", Role.APPROVER))
    page.goto(f"{live_server.url}/vehicles/")
    expect(page.locator("#vehicles tbody tr")).to_have_count(5)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#filters")).not_to_have_attribute("open", "")  # folded away on a phone
    page.click("#filters summary")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Each card still names its values.
    card = page.locator(f"tr[data-vin={fleet_of_five['opel'].vin}]")
    expect(card.locator("td.energy")).to_be_visible()
    assert card.locator("td.energy").evaluate("td => getComputedStyle(td, '::before').content") == '"Energy"'
