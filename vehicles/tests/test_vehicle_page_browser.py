"""The vehicle, action and command-form pages in a real browser: a phone's width, the person's
time zone, a stolen vehicle's commands (Debian's chromium driven by Playwright)."""

import datetime as dt

import pytest
from django.utils import timezone

from remotes.models import ActionStatus, RemoteAction, Source

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def vehicle(transactional_db, make_vehicle, make_callback):
    from vehicles.models import VehicleStatus

    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    VehicleStatus.objects.create(
        vehicle=vehicle, captured_at=timezone.now() - dt.timedelta(days=3), fetched_at=timezone.now(), energy_type="Electric",
        energy_level=64.0, autonomy_km=212, charging_status="Stopped", plugged=True, locked_states=["Locked"], doors_locked=True,
        latitude=48.85661, longitude=2.35222,
    )
    return vehicle


@pytest.fixture
def action(vehicle):
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=vehicle.fleet.callbacks.first(), remote_type="ElectricBatteryChargingRequest",
        command={"charging": {"schedule": {"nextDelayedTime": "2030-01-15T21:00:00Z"}}}, source=Source.WEB, status=ActionStatus.FAILED,
        failure_cause="NotPossibleDueToVehicleBatteryLevel", expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    RemoteAction.objects.filter(pk=action.pk).update(created_at=dt.datetime(2026, 1, 15, 13, 5, tzinfo=dt.UTC))
    return action


def log_in(page, url, user):
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def no_sideways_scroll(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide on a {PHONE['width']} px phone"


def test_vehicle_action_and_form_pages_fit_a_phone(live_server, page, vehicle, action, operator):
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)
    log_in(page, live_server.url, operator)
    page.goto(f"{live_server.url}/vehicles/{vehicle.vin}/")
    expect(page.locator("#reachability")).to_contain_text("Asleep for 3 days")
    expect(page.locator("#recent-actions")).to_contain_text("Start charging at 22:00 on 15 Jan 2030")
    no_sideways_scroll(page)

    page.goto(f"{live_server.url}/actions/{action.pk}/")
    expect(page.locator("#action-status")).to_have_text("Failed")
    expect(page.locator("#failure")).to_contain_text("Vehicle battery level too low")
    no_sideways_scroll(page)

    for member in ("charging", "preconditioning", "navigation", "door", "stolen"):
        page.goto(f"{live_server.url}/vehicles/{vehicle.vin}/remote/{member}/")
        expect(page.locator("#remote-form")).to_be_visible()
        if member == "charging":
            page.select_option("select[name=mode]", "programs")  # the widest: four program rows
        if member == "preconditioning":
            expect(page.locator("label[for=id_p1_enabled]")).to_be_visible()
        no_sideways_scroll(page)


def test_times_show_the_persons_zone_the_browsers_first_then_their_choice(live_server, page, action, operator):
    from playwright.sync_api import expect

    from accounts.models import Preference

    tokyo = page.context.browser.new_context(timezone_id="Asia/Tokyo")
    page = tokyo.new_page()
    log_in(page, live_server.url, operator)
    # The first page sent the browser's zone: it is the person's from now on.
    from fleetportal.testing import wait_for

    wait_for(lambda: Preference.objects.filter(user=operator, time_zone="Asia/Tokyo").exists(), message="the browser's zone to be kept")
    page.goto(f"{live_server.url}/actions/{action.pk}/")
    expect(page.locator("#time-zone-link")).to_have_text("Asia/Tokyo")
    expect(page.locator("#requested")).to_contain_text("15 Jan 22:05:00 JST")
    expect(page.locator("#action-title")).to_contain_text("Start charging at 06:00 on 16 Jan 2030 (Asia/Tokyo)")

    page.click("#time-zone-link")
    page.select_option("#id_time_zone", "America/New_York")
    page.click("#time-zone-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Times are now shown in America/New_York")
    page.goto(f"{live_server.url}/actions/{action.pk}/")
    expect(page.locator("#requested")).to_contain_text("15 Jan 08:05:00 EST")
    expect(page.locator("#time-zone-link")).to_have_text("America/New_York")
    tokyo.close()


def test_a_stolen_vehicle_shows_it_and_its_commands_say_why_they_are_off(live_server, page, vehicle, operator):
    from playwright.sync_api import expect

    RemoteAction.objects.create(
        vehicle=vehicle, callback=vehicle.fleet.callbacks.first(), remote_type="Stolen", command={"stolen": {"stolen": True}},
        source=Source.WEB, status=ActionStatus.SUCCESS, reason="theft", expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    log_in(page, live_server.url, operator)
    page.goto(f"{live_server.url}/vehicles/{vehicle.vin}/")
    expect(page.locator("#stolen-badge")).to_have_text("⚠ Reported stolen")
    for key in ("horn", "door-locked", "lights", "wakeUp"):
        expect(page.locator(f"button[data-remote={key}]")).to_be_disabled()
    expect(page.locator("#why-horn")).to_contain_text("reported stolen")
    expect(page.locator("button[data-remote=horn]")).to_have_attribute("aria-describedby", "why-horn")
    expect(page.locator("span[data-feature=charging]")).to_have_attribute("aria-disabled", "true")
    expect(page.locator("a[data-feature=stolen]")).to_be_visible()  # declaring it recovered still works
    expect(page.locator("a[data-feature=immobilization]")).to_be_visible()


@pytest.mark.e2e
def test_the_live_timeline_appends_new_steps_announces_them_and_shows_the_verified_outcome(demo_fleet, q2_cluster, stack, page, operator):
    from playwright.sync_api import expect

    from simulator import demo
    from simulator.models import SimVehicle

    vehicle = demo_fleet.vehicles.order_by("vin").first()
    sim = SimVehicle.objects.get(vin=vehicle.vin)
    demo.set_vehicles_state(vehicle_ids=[sim.pk], doors_locked=False, asleep=False, awake_until=timezone.now() + dt.timedelta(hours=1))
    log_in(page, stack.url, operator)
    page.goto(f"{stack.url}/vehicles/{vehicle.vin}/")
    page.click("button[data-remote=door-locked]")

    timeline = page.locator("#timeline")
    expect(timeline).to_have_attribute("aria-live", "polite")
    page.evaluate("window.firstStep = document.querySelector('#timeline li')")
    expect(page.locator("#action-title")).to_contain_text("Lock doors")
    expect(timeline).to_contain_text("Done · Success", timeout=60_000)
    expect(page.locator("#action-status")).to_have_text("Success")
    expect(page.locator("#verification")).to_contain_text("✓ Verified The doors report Locked.", timeout=60_000)
    expect(timeline).to_contain_text("Verified")
    # New steps were appended to the live region, not redrawn (what was there stays the same node).
    assert page.evaluate("document.querySelector('#timeline li') === window.firstStep")
