"""The partner API over HTTP: token auth, 202 + a URL to follow, clear 4xx on bad input."""

import pytest

from remotes.models import RemoteAction
from stellantis.vocabulary import RemoteType


@pytest.fixture
def partner(api, operator, make_token):
    return api(make_token(operator))


@pytest.fixture
def vin(make_vehicle, make_callback, stack):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet, remote_types=[RemoteType.HORN, RemoteType.DOORS])
    return vehicle.vin


def post(s, vin, body):
    return s.post(f"{s.base_url}/api/v1/vehicles/{vin}/remotes/", json=body, timeout=10)


def test_a_horn_is_accepted_with_a_url_to_follow(partner, vin):
    r = post(partner, vin, {"horn": {"state": "Activated"}})

    assert r.status_code == 202
    data = r.json()
    assert data["status"] == "queued" and data["remote_type"] == "Horn"
    detail = partner.get(data["url"], timeout=10)
    assert detail.status_code == 200
    assert detail.json()["id"] == data["id"]
    assert [t["kind"] for t in detail.json()["timeline"]] == ["queued"]
    assert r.headers["Location"] == data["url"]


def test_an_unknown_vin_is_404(partner, vin):
    assert post(partner, "VF3XXXXXXXXXXXXXX", {"horn": {"state": "Activated"}}).status_code == 404


def test_no_action_or_two_actions_is_400_saying_so(partner, vin):
    r = post(partner, vin, {})
    assert r.status_code == 400 and "No action given" in r.json()["errors"]["non_field_errors"]
    r = post(partner, vin, {"horn": {"state": "Activated"}, "door": {"state": "Locked"}})
    assert r.status_code == 400 and "Only one action" in r.json()["errors"]["non_field_errors"]
    r = post(partner, vin, {"door": {"state": "Ajar"}})
    assert r.status_code == 400 and r.json()["errors"]["door.state"] == "must be one of Locked, Unlocked"
    assert RemoteAction.objects.count() == 0


def test_a_type_no_callback_serves_is_409_naming_it(partner, vin):
    r = post(partner, vin, {"lights": {"on": True}})
    assert r.status_code == 409
    assert r.json()["missing_remote_type"] == "Lights" and r.json()["code"] == "missing_remote_type"


def test_without_a_token_it_is_401(api, vin):
    assert post(api(), vin, {"horn": {"state": "Activated"}}).status_code == 401
    assert post(api("not-a-token"), vin, {"horn": {"state": "Activated"}}).status_code == 401


def test_an_unknown_action_id_is_404(partner, stack):
    r = partner.get(f"{stack.url}/api/v1/remotes/00000000-0000-0000-0000-000000000000/", timeout=10)
    assert r.status_code == 404
