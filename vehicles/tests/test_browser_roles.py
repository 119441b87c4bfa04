"""What each role sees on a vehicle page, in a real browser (Debian's chromium driven by Playwright)."""

import pytest

from accounts.models import Role

# `page` (conftest.py): Debian's chromium, skipped where it is not installed.
browser = pytest.mark.browser


@pytest.fixture
def vehicle(transactional_db, make_vehicle, make_callback):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    return vehicle


def open_vehicle(page, url, user, vehicle):
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.goto(f"{url}/vehicles/{vehicle.vin}/")


@browser
def test_a_viewer_sees_no_command_button_only_that_their_role_reads(live_server, page, vehicle, make_member):
    from playwright.sync_api import expect

    open_vehicle(page, live_server.url, make_member("vera", Role.VIEWER), vehicle)

    expect(page.locator("#read-only")).to_contain_text("Sending commands needs the operator role.")
    expect(page.locator("#quick button, #features a, [data-remote], [data-feature], #remote-form")).to_have_count(0)
    expect(page.locator("h1")).to_have_text(vehicle.vin)  # the page itself is there


@browser
def test_an_operator_sees_unlock_disabled_with_the_reason(live_server, page, vehicle, make_member):
    from playwright.sync_api import expect

    open_vehicle(page, live_server.url, make_member("otto", Role.OPERATOR), vehicle)

    expect(page.locator("button[data-remote=horn]")).to_be_enabled()
    expect(page.locator("button[data-remote=door-locked]")).to_be_enabled()
    unlock = page.locator("#features li", has=page.locator("[data-feature=door]"))
    expect(unlock.locator("[data-feature=door]")).to_have_attribute("aria-disabled", "true")
    expect(unlock.locator("a")).to_have_count(0)  # nothing to click through to a form
    expect(unlock).to_contain_text("Unlock doors")
    expect(unlock.locator(".reason")).to_be_visible()
    expect(unlock.locator(".reason")).to_have_text("Unlock, immobilization and stolen need the approver role.")
    for member in ("immobilization", "stolen"):
        expect(page.locator(f"span[data-feature={member}]")).to_have_attribute("aria-disabled", "true")
    expect(page.locator("a[data-feature=lights]")).to_be_visible()

    # Typing the form's address gives the reason, not a form to fill in.
    page.goto(f"{live_server.url}/vehicles/{vehicle.vin}/remote/door/?state=Unlocked")
    expect(page.locator("#not-allowed")).to_have_text("Unlock, immobilization and stolen need the approver role.")
    expect(page.locator("#remote-form, button[type=submit]:has-text('Send')")).to_have_count(0)


@browser
def test_an_approver_sees_unlock_enabled(live_server, page, vehicle, make_member):
    from playwright.sync_api import expect

    open_vehicle(page, live_server.url, make_member("april", Role.APPROVER), vehicle)

    unlock = page.locator("a[data-feature=door]")
    expect(unlock).to_be_enabled()
    expect(unlock).to_have_text("Unlock doors…")
    unlock.click()
    expect(page.locator("#remote-form select[name=state] option[value=Unlocked]")).to_have_count(1)
    expect(page.locator("#remote-form button[type=submit]")).to_be_enabled()


# The same refusals without a browser: what is not the user's to send is not a form, and a
# POST made anyway is refused (403) and leaves no action.


def test_a_viewer_posting_a_command_anyway_is_refused(client, vehicle, make_member):
    from remotes.models import RemoteAction

    client.force_login(make_member("vera", Role.VIEWER))
    r = client.post(f"/vehicles/{vehicle.vin}/remote/horn/")
    assert r.status_code == 403 and b"Sending commands needs the operator role." in r.content
    assert b'id="remote-form"' not in r.content and RemoteAction.objects.count() == 0


def test_an_operators_door_form_offers_only_lock(client, vehicle, make_member):
    from remotes.models import RemoteAction

    client.force_login(make_member("otto", Role.OPERATOR))
    r = client.get(f"/vehicles/{vehicle.vin}/remote/door/")
    assert r.status_code == 200 and b'value="Locked"' in r.content and b'value="Unlocked"' not in r.content
    assert b'id="field-confirm"' not in r.content
    r = client.post(f"/vehicles/{vehicle.vin}/remote/door/", {"state": "Unlocked", "confirm": "on"})
    assert r.status_code == 403 and RemoteAction.objects.count() == 0
    for member in ("immobilization", "stolen"):
        assert client.get(f"/vehicles/{vehicle.vin}/remote/{member}/").status_code == 403
