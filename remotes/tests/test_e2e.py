"""The whole path over real sockets: partner API → q2 worker → simulator → webhook → timeline."""

import pytest

from fleetportal.testing import wait_for

pytestmark = pytest.mark.e2e


def test_a_horn_from_the_partner_api_reaches_success_in_the_timeline(demo_fleet, q2_cluster, api, operator, make_token):
    partner = api(make_token(operator))
    vin = demo_fleet.vehicles.order_by("vin").first().vin

    r = partner.post(f"{partner.base_url}/api/v1/vehicles/{vin}/remotes/", json={"horn": {"state": "Activated"}}, timeout=10)
    assert r.status_code == 202
    url = r.json()["url"]

    final = wait_for(
        lambda: (d := partner.get(url, timeout=10).json())["status"] in ("success", "failed", "error", "rejected") and d,
        timeout=60,
        message="the horn to finish",
    )
    assert final["status"] == "success"
    vendor = [t["status"] for t in final["timeline"] if t["origin"] == "stellantis"]
    assert vendor[0] == "Accepted" and "SentToVehicle" in vendor and vendor[-1] == "Success"
    portal = [t["status"] for t in final["timeline"] if t["origin"] == "portal"]
    assert portal == ["queued", "submitted"]
    assert final["remote_action_id"]
