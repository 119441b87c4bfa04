"""A fleet manager in a real browser (Debian's chromium driven by Playwright)."""

import pytest

# `page` (conftest.py): Debian's chromium, skipped where it is not installed.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def log_in(page, url, user):
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-operator-1")
    page.click("button[type=submit]")


def test_pressing_horn_shows_the_timeline_reaching_success(demo_fleet, q2_cluster, stack, page, operator):
    from playwright.sync_api import expect

    vin = demo_fleet.vehicles.order_by("vin").first().vin
    log_in(page, stack.url, operator)
    page.click("nav >> text=Vehicles")  # the login lands on the overview
    expect(page.locator("#vehicles tbody tr")).to_have_count(demo_fleet.vehicles.count())

    page.click(f"#vehicles a[href='/vehicles/{vin}/']")
    page.click("button[data-remote=horn]")

    expect(page.locator("#timeline")).to_contain_text("Done · Success", timeout=60_000)
    expect(page.locator("#action-status")).to_have_text("Success")
    expect(page.locator("#timeline")).to_contain_text("Pending · Accepted by Stellantis")


def test_unlock_asks_for_confirmation_first(demo_fleet, stack, page, operator):
    from playwright.sync_api import expect

    from remotes.models import RemoteAction

    vin = demo_fleet.vehicles.order_by("vin").first().vin
    log_in(page, stack.url, operator)
    page.goto(f"{stack.url}/vehicles/{vin}/")
    page.click("a[data-feature=door]")
    page.fill("input[name=reason]", "Driver locked out")
    page.click("text=Send to the vehicle")

    expect(page.locator("#field-confirm")).to_contain_text("Tick to confirm")
    assert RemoteAction.objects.count() == 0
    page.check("input[name=confirm]")
    page.click("text=Send to the vehicle")
    expect(page.locator("#action-status")).to_be_visible()
    action = RemoteAction.objects.get()
    assert action.command == {"door": {"state": "Unlocked"}} and action.reason == "Driver locked out"
