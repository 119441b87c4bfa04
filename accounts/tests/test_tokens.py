"""Partner tokens over real HTTP: what a token may do is its scopes, its fleets and its member's role."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import PartnerToken, Role, Scope
from remotes.models import RemoteAction
from stellantis.vocabulary import RemoteType

HORN = {"horn": {"state": "Activated"}}
UNLOCK = {"door": {"state": "Unlocked"}, "reason": "locked out"}
EVERY_COMMAND = [
    HORN, {"door": {"state": "Locked"}}, {"lights": {"on": True}}, {"wakeUp": {"action": "WakeUp"}},
    {"door": {"state": "Unlocked"}}, {"stolen": {"stolen": True}}, {"immobilization": {"activate": True}},
]


@pytest.fixture
def world(stack, make_fleet, make_vehicle, make_callback):
    fleet, other_fleet = make_fleet(), make_fleet()  # two fleets of the same organisation
    vehicle, other_vehicle = make_vehicle(fleet=fleet), make_vehicle(fleet=other_fleet)
    callback = make_callback(fleet, remote_types=list(RemoteType.values))
    other_callback = make_callback(other_fleet, remote_types=list(RemoteType.values))
    return {
        "url": f"{stack.url}/api/v1",
        "fleet": fleet, "vehicle": vehicle, "callback": callback,
        "other_vehicle": other_vehicle, "other_callback": other_callback,
    }


def remotes(world, vehicle="vehicle"):
    return f"{world['url']}/vehicles/{world[vehicle].vin}/remotes/"


def test_a_viewers_token_is_refused_every_command(world, api, make_member, make_token):
    viewer = api(make_token(make_member("vera", Role.VIEWER)))  # every scope, but its member only reads

    for command in EVERY_COMMAND:
        r = viewer.post(remotes(world), json=command, timeout=10)
        assert r.status_code == 403, (command, r.text)
        assert r.json()["code"] == "permission_denied"
    assert viewer.get(f"{world['url']}/callbacks/", timeout=10).status_code == 200  # it still reads
    assert RemoteAction.objects.count() == 0


def test_a_token_without_the_dangerous_scope_cannot_unlock(world, api, make_member, make_token):
    approver = make_member("april", Role.APPROVER)  # the person could; the token was not given it
    token = api(make_token(approver, [Scope.READ, Scope.COMMAND]))

    r = token.post(remotes(world), json=UNLOCK, timeout=10)

    assert r.status_code == 403 and "dangerous_command" in r.json()["detail"]
    assert RemoteAction.objects.count() == 0
    assert token.post(remotes(world), json=HORN, timeout=10).status_code == 202  # ordinary ones go
    assert api(make_token(approver)).post(remotes(world), json=UNLOCK, timeout=10).status_code == 202


def test_a_revoked_token_is_unauthenticated(world, api, make_member, make_token):
    key = make_token(make_member("ada", Role.ADMIN))
    assert api(key).get(f"{world['url']}/callbacks/", timeout=10).status_code == 200
    PartnerToken.objects.update(revoked_at=timezone.now())

    for r in (api(key).get(f"{world['url']}/callbacks/", timeout=10), api(key).post(remotes(world), json=HORN, timeout=10)):
        assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
        assert "revoked" in r.json()["detail"]
    assert RemoteAction.objects.count() == 0


def test_an_expired_token_is_unauthenticated(world, api, make_member, make_token):
    key = make_token(make_member("ada", Role.ADMIN), expires_at=timezone.now() - dt.timedelta(seconds=1))

    for r in (api(key).get(f"{world['url']}/callbacks/", timeout=10), api(key).post(remotes(world), json=HORN, timeout=10)):
        assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
        assert "expired" in r.json()["detail"]
    assert RemoteAction.objects.count() == 0


def test_a_token_limited_to_one_fleet_sees_nothing_of_the_others(world, api, make_member, make_token):
    token = api(make_token(make_member("ada", Role.ADMIN), fleets=[world["fleet"]]))

    r = token.post(remotes(world, "other_vehicle"), json=HORN, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    other = token.get(f"{world['url']}/callbacks/{world['other_callback'].pk}/", timeout=10)
    assert other.status_code == 404

    listed = token.get(f"{world['url']}/callbacks/", timeout=10)
    assert listed.status_code == 200
    assert [cb["id"] for cb in listed.json()] == [world["callback"].pk]
    assert {cb["fleet"] for cb in listed.json()} == {world["fleet"].external_id}
    assert token.post(remotes(world), json=HORN, timeout=10).status_code == 202  # its own fleet: yes
