"""Every refusal of the partner API has one shape, over real HTTP: walk each endpoint's error paths."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Role, Scope
from remotes.models import ActionStatus, RemoteAction, Source
from stellantis.vocabulary import RemoteType

PROBLEM_MEMBERS = {"type", "title", "status", "code", "detail", "errors"}


def assert_problem(r, status: int, code: str, *, field: str | None = None) -> dict:
    """The RFC 9457 problem document: same members, status echoed, field errors as strings."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert PROBLEM_MEMBERS <= set(body), body
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in body["errors"].items()), body["errors"]
    if field:
        assert field in body["errors"], body["errors"]
    return body


@pytest.fixture
def world(stack, make_vehicle, make_callback, api, make_member, make_token):
    electric = make_vehicle()
    thermic = make_vehicle(fleet=electric.fleet, motorization="Thermic")
    callback = make_callback(electric.fleet, remote_types=[RemoteType.HORN, RemoteType.DOORS, RemoteType.CHARGING])
    # An action still waiting for its Done event: deleting its callback is refused.
    RemoteAction.objects.create(
        vehicle=electric, callback=callback, remote_type=RemoteType.HORN, command={"horn": {"state": "Activated"}},
        status=ActionStatus.SUBMITTED, source=Source.API, expires_at=timezone.now(),
    )
    # An organisation admin limited to ordinary commands by its token's scopes; a viewer.
    operator = make_member("op", Role.ADMIN)
    nobody = make_member("nobody", Role.VIEWER)
    return {
        "vin": electric.vin,
        "thermic": thermic.vin,
        "fleet": electric.fleet.external_id,
        "callback": callback.pk,
        "partner": api(make_token(operator, [Scope.READ, Scope.COMMAND, Scope.CALLBACKS])),
        "powerless": api(make_token(nobody)),
        "anonymous": api(),
        "url": stack.url + "/api/v1",
    }


HORN = {"horn": {"state": "Activated"}}


def test_the_remotes_endpoint_refuses_in_one_shape(world):
    p, url, vin = world["partner"], world["url"], world["vin"]
    remotes = f"{url}/vehicles/{vin}/remotes/"

    assert_problem(world["anonymous"].post(remotes, json=HORN, timeout=10), 401, "not_authenticated")
    assert_problem(world["anonymous"].post(remotes, json=HORN, headers={"Authorization": "Token nope"}, timeout=10), 401, "authentication_failed")
    assert_problem(p.post(f"{url}/vehicles/VF3XXXXXXXXXXXXXX/remotes/", json=HORN, timeout=10), 404, "not_found")
    assert_problem(p.post(remotes, json=[1, 2], timeout=10), 400, "invalid", field="non_field_errors")
    assert_problem(p.post(remotes, data="{not json", headers={"Content-Type": "application/json"}, timeout=10), 400, "parse_error")
    assert_problem(p.post(remotes, data="horn=1", headers={"Content-Type": "text/plain"}, timeout=10), 415, "unsupported_media_type")
    assert_problem(p.post(remotes, json={"door": {"state": "Ajar"}}, timeout=10), 400, "invalid_command", field="door.state")
    assert_problem(p.post(remotes, json={}, timeout=10), 400, "invalid_command", field="non_field_errors")
    assert_problem(p.post(remotes, json={"door": {"state": "Unlocked"}}, timeout=10), 403, "permission_denied")
    assert_problem(world["powerless"].post(remotes, json=HORN, timeout=10), 403, "permission_denied")
    thermic = f"{url}/vehicles/{world['thermic']}/remotes/"
    assert_problem(p.post(thermic, json={"charging": {"immediate": True}}, timeout=10), 409, "not_capable")
    missing = assert_problem(p.post(remotes, json={"lights": {"on": True}}, timeout=10), 409, "missing_remote_type")
    assert missing["missing_remote_type"] == "Lights"
    assert_problem(p.put(remotes, json=HORN, timeout=10), 405, "method_not_allowed")  # GET lists the vehicle's actions
    assert RemoteAction.objects.count() == 1  # the fixture's own: no refused request left an action behind


def test_the_action_endpoint_refuses_in_one_shape(world):
    p, url = world["partner"], world["url"]
    action = RemoteAction.objects.get()

    assert_problem(world["anonymous"].get(f"{url}/remotes/{action.pk}/", timeout=10), 401, "not_authenticated")
    assert_problem(p.get(f"{url}/remotes/00000000-0000-0000-0000-000000000000/", timeout=10), 404, "not_found")
    assert_problem(p.post(f"{url}/remotes/{action.pk}/", json={}, timeout=10), 405, "method_not_allowed")


def test_the_approval_endpoints_refuse_in_one_shape(world, make_member, make_token, api, django_user_model):
    p, url = world["partner"], world["url"]
    submitted = RemoteAction.objects.get()
    requester = django_user_model.objects.get(username="op")  # the person behind the partner token
    waiting = RemoteAction.objects.create(
        vehicle=submitted.vehicle, callback=submitted.callback, remote_type=RemoteType.IMMOBILIZATION,
        command={"immobilization": {"activate": True}}, status=ActionStatus.AWAITING_APPROVAL, source=Source.API,
        reason="overdue", requested_by=requester, expires_at=timezone.now(), approval_expires_at=timezone.now() + dt.timedelta(minutes=15),
    )
    dangerous = [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND]
    own = api(make_token(requester, dangerous))
    approver = api(make_token(make_member("ann", Role.APPROVER), dangerous))

    for verb in ("approve", "reject", "cancel"):
        path = f"{url}/remotes/{waiting.pk}/{verb}/"
        assert_problem(world["anonymous"].post(path, json={}, timeout=10), 401, "not_authenticated")
        assert_problem(p.post(f"{url}/remotes/00000000-0000-0000-0000-000000000000/{verb}/", json={}, timeout=10), 404, "not_found")
        assert_problem(p.post(f"{url}/remotes/not-a-uuid/{verb}/", json={}, timeout=10), 404, "not_found")
        assert_problem(world["powerless"].post(path, json={}, timeout=10), 403, "permission_denied")
        assert_problem(approver.post(path, json={"comment": 7}, timeout=10), 400, "invalid", field="comment")
        assert_problem(approver.post(path, json=[1, 2], timeout=10), 400, "invalid", field="non_field_errors")
        assert_problem(approver.post(path, data="{not json", headers={"Content-Type": "application/json"}, timeout=10), 400, "parse_error")
        assert_problem(approver.post(path, data="ok", headers={"Content-Type": "text/plain"}, timeout=10), 415, "unsupported_media_type")
        assert_problem(approver.get(path, timeout=10), 405, "method_not_allowed")
        assert_problem(approver.post(f"{url}/remotes/{submitted.pk}/{verb}/", json={}, timeout=10), 409, "not_awaiting_approval")
    # Deciding needs the token's dangerous_command scope; the requester never decides.
    assert_problem(p.post(f"{url}/remotes/{waiting.pk}/approve/", json={}, timeout=10), 403, "permission_denied")
    assert_problem(own.post(f"{url}/remotes/{waiting.pk}/approve/", json={}, timeout=10), 403, "self_approval")
    assert_problem(own.post(f"{url}/remotes/{waiting.pk}/reject/", json={}, timeout=10), 403, "self_approval")
    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.AWAITING_APPROVAL


def test_the_callback_endpoints_refuse_in_one_shape(world):
    p, url, pk = world["partner"], world["url"], world["callback"]
    good = {"fleet": world["fleet"], "remote_types": ["Horn"]}

    assert_problem(world["anonymous"].get(f"{url}/callbacks/", timeout=10), 401, "not_authenticated")
    assert_problem(world["powerless"].post(f"{url}/callbacks/", json=good, timeout=10), 403, "permission_denied")
    assert_problem(p.post(f"{url}/callbacks/", json={"remote_types": ["Horn"]}, timeout=10), 400, "invalid", field="fleet")
    assert_problem(p.post(f"{url}/callbacks/", json={**good, "remote_types": ["Teleport"]}, timeout=10), 400, "invalid", field="remote_types.0")
    bounded = {**good, "retry_policy": "Bounded", "retry_number": 0}
    assert_problem(p.post(f"{url}/callbacks/", json=bounded, timeout=10), 400, "invalid", field="retry_number")
    attrs = {**good, "attributes": [{"type": "Cookie", "key": "k", "value": "v"}]}
    assert_problem(p.post(f"{url}/callbacks/", json=attrs, timeout=10), 400, "invalid", field="attributes.0.type")
    assert_problem(p.post(f"{url}/callbacks/", json={**good, "fleet": "no-such-fleet"}, timeout=10), 404, "not_found")

    detail = f"{url}/callbacks/{pk}/"
    assert_problem(p.get(f"{url}/callbacks/999999/", timeout=10), 404, "not_found")
    assert_problem(world["powerless"].put(detail, json=good, timeout=10), 403, "permission_denied")
    assert_problem(world["powerless"].delete(detail, timeout=10), 403, "permission_denied")
    in_use = assert_problem(p.delete(detail, timeout=10), 409, "callback_in_use")
    assert "still pending" in in_use["detail"]
    assert_problem(p.post(detail, json=good, timeout=10), 405, "method_not_allowed")

    status = f"{url}/callbacks/{pk}/status/"
    assert_problem(p.put(status, json={"status": "Sleeping"}, timeout=10), 400, "invalid", field="status")
    assert_problem(p.put(f"{url}/callbacks/999999/status/", json={"status": "Paused"}, timeout=10), 404, "not_found")
    assert_problem(world["powerless"].put(status, json={"status": "Paused"}, timeout=10), 403, "permission_denied")


def test_a_change_stellantis_refuses_is_a_502_in_the_same_shape(world):
    # The fixture's callback was never created at the simulator: Stellantis answers 404 to the PUT.
    r = world["partner"].put(f"{world['url']}/callbacks/{world['callback']}/status/", json={"status": "Paused"}, timeout=10)
    body = assert_problem(r, 502, "vendor_refused")
    assert "Nothing was changed here" in body["detail"] and "support ref" in body["detail"]


@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/v2/vehicles/", "/api/"])
def test_unknown_api_paths_are_a_problem_document_not_a_page(world, path):
    for method in ("get", "post"):  # a POST too: not Django's CSRF page
        r = getattr(world["partner"], method)(world["url"].removesuffix("/api/v1") + path, timeout=10)
        body = assert_problem(r, 404, "not_found")
        assert path in body["detail"]


def test_the_resource_endpoints_refuse_in_one_shape(world, make_organisation, make_fleet):
    p, url, vin = world["partner"], world["url"], world["vin"]
    theirs = make_fleet(external_id="FID-THEIRS", organisation=make_organisation("Theirs"))

    for path in ("/fleets/", f"/fleets/{world['fleet']}/", "/vehicles/", f"/vehicles/{vin}/", f"/vehicles/{vin}/remotes/", "/remotes/"):
        assert_problem(world["anonymous"].get(url + path, timeout=10), 401, "not_authenticated")
        assert_problem(world["anonymous"].get(url + path, headers={"Authorization": "Token nope"}, timeout=10), 401, "authentication_failed")
        assert_problem(p.post(url + path, json={}, timeout=10) if path != f"/vehicles/{vin}/remotes/" else p.put(url + path, json={}, timeout=10),
                       405, "method_not_allowed")
    assert_problem(p.get(f"{url}/fleets/{theirs.external_id}/", timeout=10), 404, "not_found")  # another organisation's
    assert_problem(p.get(f"{url}/fleets/no-such-fleet/", timeout=10), 404, "not_found")
    assert_problem(p.get(f"{url}/vehicles/VF3XXXXXXXXXXXXXX/", timeout=10), 404, "not_found")
    assert_problem(p.get(f"{url}/vehicles/VF3XXXXXXXXXXXXXX/remotes/", timeout=10), 404, "not_found")
    for path, params, field in [
        ("/fleets/", {"cursor": "garbage"}, "cursor"),
        ("/vehicles/", {"motorization": "Steam"}, "motorization"),
        ("/vehicles/", {"capability": "teleport"}, "capability"),
        ("/vehicles/", {"stolen": "maybe"}, "stolen"),
        ("/vehicles/", {"page_size": "1000"}, "page_size"),
        (f"/vehicles/{vin}/remotes/", {"status": "done"}, "status"),
        ("/remotes/", {"status": "done"}, "status"),
        ("/remotes/", {"remote_type": "Teleport"}, "remote_type"),
        ("/remotes/", {"created_after": "yesterday"}, "created_after"),
        ("/remotes/", {"cursor": "garbage"}, "cursor"),
    ]:
        assert_problem(p.get(url + path, params=params, timeout=10), 400, "invalid", field=field)
