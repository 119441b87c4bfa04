"""A fleet manager in a real browser (Debian's chromium driven by Playwright)."""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (.ci/run installs it)"),
]


@pytest.fixture
def page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # alongside it are still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page()
        page.set_default_timeout(20_000)
        yield page
        browser.close()


def log_in(page, url, user):
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-operator-1")
    page.click("button[type=submit]")


def test_pressing_horn_shows_the_timeline_reaching_success(demo_fleet, q2_cluster, stack, page, operator):
    from playwright.sync_api import expect

    vin = demo_fleet.vehicles.order_by("vin").first().vin
    log_in(page, stack.url, operator)
    expect(page.locator("#vehicles tbody tr")).to_have_count(demo_fleet.vehicles.count())

    page.click(f"text={vin}")
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
