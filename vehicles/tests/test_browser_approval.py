"""Four-eyes in a real browser (Debian's chromium driven by Playwright), over the live server
with the simulator and a q2 cluster: one approver asks for an immobilization, another sees it
counted in the header, reviews it, approves it with a comment, and watches it reach the vehicle."""

import pytest

from accounts.models import Role

# `page` (conftest.py): Debian's chromium, skipped where it is not installed.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def log_in(page, url, user):
    page.context.clear_cookies()  # whoever was logged in before is gone
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.fixture
def parked_vehicle(demo_fleet):
    """A vehicle the simulator immobilizes: online, awake, parked (not in use) and locked."""
    from simulator.models import SimVehicle

    vehicle = demo_fleet.vehicles.order_by("vin").first()
    SimVehicle.objects.filter(vin=vehicle.vin).update(
        online=True, asleep=False, in_use=False, doors_locked=True, door_open=False, stolen=False, immobilized=False, next_failure=""
    )
    return vehicle


def test_a_second_approver_approves_an_immobilization_and_watches_it_succeed(stack, q2_cluster, parked_vehicle, organisation, page, make_member):
    from playwright.sync_api import expect

    from remotes.models import ActionStatus, RemoteAction

    organisation.approval_required_for = ["immobilization", "stolen"]
    organisation.save()
    rita, arno = make_member("rita", Role.APPROVER), make_member("arno", Role.APPROVER)
    vin = parked_vehicle.vin

    # Rita asks, with a reason, from the vehicle page: nothing is sent, it waits.
    log_in(page, stack.url, rita)
    page.goto(f"{stack.url}/vehicles/{vin}/")
    page.click("a[data-feature=immobilization]")
    expect(page.locator("#reason-required")).to_be_visible()
    page.select_option("select[name=activate]", "1")
    page.fill("input[name=reason]", "Not returned after rental")
    page.check("input[name=confirm]")
    page.click("text=Send to the vehicle")
    expect(page.locator(".messages")).to_contain_text("waits for another approver's approval (until")
    expect(page.locator("#action-status")).to_have_text("Waiting for approval")
    expect(page.locator("#waiting-for-another")).to_be_visible()
    expect(page.locator("#decide-form")).to_have_count(0)  # not hers to approve
    action = RemoteAction.objects.get()
    assert action.status == ActionStatus.AWAITING_APPROVAL and action.submitted_at is None

    # Arno: the header counts it; the list leads to it; he approves it with a comment.
    log_in(page, stack.url, arno)
    expect(page.locator("#approvals-count")).to_have_text("1")
    page.click("#approvals-link")
    row = page.locator(f"#awaiting tr[data-action='{action.pk}']")
    expect(row).to_contain_text("Not returned after rental")
    expect(row).to_contain_text("rita")
    row.locator("text=Review…").click()
    expect(page.locator("#reason")).to_contain_text("Not returned after rental")
    page.fill("#decision-comment", "Checked with the rental desk")
    page.click("#approve-button")

    # The timeline: the request, the approval (who, comment), then the vendor's events, live.
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Approved by arno: Checked with the rental desk")
    expect(timeline).to_contain_text("Done · Success", timeout=60_000)
    expect(page.locator("#action-status")).to_have_text("Success")
    text = timeline.inner_text()
    assert text.index("Waiting for approval") < text.index("Approved by arno") < text.index("Done · Success")
    expect(page.locator("#decision")).to_contain_text("Approved by arno")
    expect(page.locator("#approvals-count")).to_have_text("0")
    assert RemoteAction.objects.get().status == ActionStatus.SUCCESS
