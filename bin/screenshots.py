"""Take the README's screenshots from a running demo (`make run`), desktop and phone.

    .venv/bin/python bin/screenshots.py [http://127.0.0.1:8000] [--user admin --password fleetportal-demo]

Logs in, presses Sound horn on the first vehicle (so there is an action with a live timeline),
then saves docs/screenshots/<page>-desktop.png (1280 px) and <page>-phone.png (390 px) for the
overview, the vehicle list, the map, a vehicle and that action. Debian's chromium, headless;
map tiles load only where the machine reaches OpenStreetMap (the markers show either way).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import time

from playwright.sync_api import sync_playwright

OUT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="fleetportal-demo")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-quic"],
        )
        context = browser.new_context(viewport=VIEWPORTS["desktop"], timezone_id="Europe/Paris")
        page = context.new_page()
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state("load")

        page.goto(f"{base}/vehicles/")
        vin = page.locator("a[href^='/vehicles/']").filter(has_text=re.compile(r"^[A-Z0-9]{17}$")).first.inner_text().strip()
        page.goto(f"{base}/vehicles/{vin}/")
        page.locator("button", has_text="Sound horn").first.click()
        page.wait_for_url(re.compile(r"/actions/[0-9a-f-]{36}/"))
        action_url = page.url
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "Done" not in page.content():
            time.sleep(1)

        pages = {
            "overview": f"{base}/",
            "vehicles": f"{base}/vehicles/",
            "map": f"{base}/map/",
            "vehicle": f"{base}/vehicles/{vin}/",
            "action": action_url,
        }
        for device, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            for name, url in pages.items():
                page.goto(url)
                page.wait_for_load_state("load")
                time.sleep(1.0)  # charts and map markers draw after load
                path = OUT / f"{name}-{device}.png"
                page.screenshot(path=str(path), full_page=device == "desktop")
                print(path)
        browser.close()


if __name__ == "__main__":
    main()
