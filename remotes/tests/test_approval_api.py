"""Four-eyes through the partner API, over HTTP: a dangerous command waits for a second
approver's token; the requester (person or token) never decides; rejected, cancelled and
expired commands are never sent."""

import datetime as dt

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from accounts.models import Role, Scope
from remotes import services
from remotes.models import ActionStatus, RemoteAction
from simulator.models import SimRemoteAction

IMMOBILIZE = {"immobilization": {"activate": True}, "reason": "rental overdue, customer unreachable"}


@pytest.fixture
def four_eyes(organisation):
    organisation.approval_required_for = ["immobilization", "stolen"]
    organisation.save()
    return organisation


@pytest.fixture
def vin(stack, four_eyes, make_vehicle, make_callback):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    return vehicle.vin


@pytest.fixture
def people(make_member):
    return {"rita": make_member("rita", Role.APPROVER), "arno": make_member("arno", Role.APPROVER)}


@pytest.fixture
def rita_key(people, make_token):
    return make_token(people["rita"], [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND])


@pytest.fixture
def rita(api, rita_key):
    return api(rita_key)


@pytest.fixture
def arno(api, people, make_token):
    return api(make_token(people["arno"], [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND]))


def request_immobilization(s, vin, body=IMMOBILIZE):
    return s.post(f"{s.base_url}/api/v1/vehicles/{vin}/remotes/", json=body, timeout=10)


def decide(s, action_id, verb, body=None):
    return s.post(f"{s.base_url}/api/v1/remotes/{action_id}/{verb}/", json=body if body is not None else {}, timeout=10)


def submit_tasks():
    return [q for q in OrmQ.objects.all() if q.func() == services.SUBMIT_TASK]


def seen_by_simulator(action_id) -> bool:
    return any(a.label == str(action_id) for a in SimRemoteAction.objects.all())


def assert_problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["code"] == code, r.json()
    return r.json()


def test_an_immobilization_waits_and_another_approvers_token_lets_it_go(vin, rita, arno, rita_key):
    r = request_immobilization(rita, vin)

    assert r.status_code == 202, r.text
    assert r.json()["status"] == "awaiting_approval"
    action_id = r.json()["id"]
    assert submit_tasks() == []

    waiting = rita.get(r.json()["url"], timeout=10).json()
    assert waiting["reason"] == IMMOBILIZE["reason"]
    assert waiting["requested_by"] == "rita"
    assert waiting["requested_by_token"]["name"] == "token of rita"
    assert waiting["requested_by_token"]["prefix"] == f"{rita_key[:12]}…"
    assert rita_key not in r.text and rita_key not in str(waiting)
    assert waiting["approval"]["decision"] is None and waiting["approval"]["decided_by"] is None
    assert timezone.now() < dt.datetime.fromisoformat(waiting["approval"]["expires_at"])

    body = assert_problem(decide(rita, action_id, "approve", {"comment": "me, myself"}), 403, "self_approval")
    assert "another approver" in body["detail"]
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.AWAITING_APPROVAL

    r = decide(arno, action_id, "approve", {"comment": "called the customer"})

    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "queued"
    assert approved["approval"]["decision"] == "approved"
    assert approved["approval"]["decided_by"] == "arno" and approved["approval"]["comment"] == "called the customer"
    assert approved["approval"]["decided_by_token"]["name"] == "token of arno"
    assert [t["status"] for t in approved["timeline"]] == ["awaiting_approval", "queued"]
    assert len(submit_tasks()) == 1  # the usual path from here
    assert_problem(decide(arno, action_id, "approve"), 409, "not_awaiting_approval")  # once is enough
    assert len(submit_tasks()) == 1


def test_another_token_of_the_requester_cannot_approve_either(vin, rita, api, people, make_token):
    action_id = request_immobilization(rita, vin).json()["id"]
    other_key_of_rita = make_token(people["rita"], [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND])

    assert_problem(decide(api(other_key_of_rita), action_id, "approve"), 403, "self_approval")
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.AWAITING_APPROVAL


def test_a_rejection_ends_it_and_nothing_is_sent(vin, rita, arno):
    action_id = request_immobilization(rita, vin).json()["id"]

    r = decide(arno, action_id, "reject", {"comment": "customer paid this morning"})

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["approval"]["decision"] == "rejected"
    assert r.json()["approval"]["comment"] == "customer paid this morning" and "arno" in r.json()["error"]
    assert r.json()["finished_at"]
    assert_problem(decide(arno, action_id, "approve"), 409, "not_awaiting_approval")
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.REJECTED
    assert submit_tasks() == [] and not seen_by_simulator(action_id)


def test_the_requester_may_cancel_while_it_waits(vin, rita):
    action_id = request_immobilization(rita, vin).json()["id"]

    r = decide(rita, action_id, "cancel", {"comment": "wrong car"})

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["approval"]["decision"] == "cancelled"
    assert r.json()["approval"]["decided_by"] == "rita"
    assert submit_tasks() == []


def test_a_viewer_token_cannot_approve(vin, rita, api, make_member, make_token):
    action_id = request_immobilization(rita, vin).json()["id"]
    viewer = api(make_token(make_member("vic", Role.VIEWER)))

    body = assert_problem(decide(viewer, action_id, "approve"), 403, "permission_denied")
    assert "may not approve" in body["detail"]
    assert_problem(decide(viewer, action_id, "reject"), 403, "permission_denied")
    assert_problem(decide(viewer, action_id, "cancel"), 403, "permission_denied")
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.AWAITING_APPROVAL


def test_approving_needs_a_token_with_the_dangerous_command_scope_even_for_an_approver(vin, rita, api, people, make_token):
    action_id = request_immobilization(rita, vin).json()["id"]
    tame = api(make_token(people["arno"], [Scope.READ, Scope.COMMAND]))

    assert_problem(decide(tame, action_id, "approve"), 403, "permission_denied")
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.AWAITING_APPROVAL
    assert submit_tasks() == []


def test_another_organisations_action_is_not_found(vin, rita, api, make_organisation, make_member, make_token):
    action_id = request_immobilization(rita, vin).json()["id"]
    org_b = make_organisation("Org B")
    stranger = api(make_token(make_member("bob", Role.ADMIN, org=org_b), org=org_b))

    for verb in ("approve", "reject", "cancel"):
        body = assert_problem(decide(stranger, action_id, verb), 404, "not_found")
        assert body["detail"] == "No such remote action."
    assert_problem(stranger.get(f"{stranger.base_url}/api/v1/remotes/{action_id}/", timeout=10), 404, "not_found")
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.AWAITING_APPROVAL


def test_a_dangerous_command_without_a_reason_is_400_naming_it(vin, rita):
    for body in ({"immobilization": {"activate": True}}, {"immobilization": {"activate": True}, "reason": "   "}):
        r = request_immobilization(rita, vin, body)
        assert_problem(r, 400, "invalid_command")
        assert "reason" in r.json()["errors"]
    r = request_immobilization(rita, vin, {"immobilization": {"activate": True}, "reason": 42})
    assert_problem(r, 400, "invalid")
    assert set(r.json()["errors"]) == {"reason"}
    r = request_immobilization(rita, vin, {"immobilization": {"activate": True}, "reason": "x" * 501})
    assert_problem(r, 400, "invalid")
    assert "reason" in r.json()["errors"]
    assert RemoteAction.objects.count() == 0


def test_a_comment_must_be_a_short_string(vin, rita, arno):
    action_id = request_immobilization(rita, vin).json()["id"]

    for comment in (42, True, ["ok"], {"text": "ok"}, "x" * 501):
        r = decide(arno, action_id, "approve", {"comment": comment})
        assert_problem(r, 400, "invalid")
        assert set(r.json()["errors"]) == {"comment"}, comment
    assert_problem(decide(arno, action_id, "approve", [1, 2]), 400, "invalid")
    assert RemoteAction.objects.get(pk=action_id).status == ActionStatus.AWAITING_APPROVAL

    r = arno.post(f"{arno.base_url}/api/v1/remotes/{action_id}/approve/", timeout=10)  # no body at all: no comment
    assert r.status_code == 200 and r.json()["approval"]["comment"] == ""


def test_approving_an_expired_one_is_409_and_it_stays_expired_unsent(vin, rita, arno):
    action_id = request_immobilization(rita, vin).json()["id"]
    RemoteAction.objects.filter(pk=action_id).update(approval_expires_at=timezone.now() - dt.timedelta(seconds=1))

    body = assert_problem(decide(arno, action_id, "approve", {"comment": "sorry, late"}), 409, "not_awaiting_approval")

    assert "expired" in body["detail"].lower()
    detail = arno.get(f"{arno.base_url}/api/v1/remotes/{action_id}/", timeout=10).json()
    assert detail["status"] == "expired" and detail["approval"]["decision"] == "expired"
    assert detail["approval"]["decided_by"] is None
    assert submit_tasks() == []


def test_an_ordinary_command_has_no_approval_and_cannot_be_approved(vin, rita, arno):
    r = rita.post(f"{rita.base_url}/api/v1/vehicles/{vin}/remotes/", json={"horn": {"state": "Activated"}}, timeout=10)
    assert r.json()["status"] == "queued"
    detail = rita.get(r.json()["url"], timeout=10).json()
    assert detail["approval"] is None and detail["reason"] == "" and detail["requested_by"] == "rita"

    assert_problem(decide(arno, r.json()["id"], "approve"), 409, "not_awaiting_approval")
