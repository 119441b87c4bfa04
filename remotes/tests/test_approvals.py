"""Four-eyes approval of dangerous commands, through the services: nothing leaves before a
second person approves; requester and requesting token never decide; unapproved expires."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import OrmQ

from accounts.access import TokenUser, token_access
from accounts.models import PartnerToken, Role, Scope
from audit.models import AuditEntry
from remotes import approvals, services
from remotes.models import ActionStatus, RemoteAction, Source
from remotes.tests.conftest import IMMOBILIZE

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture
def vehicle(four_eyes_vehicle):
    return four_eyes_vehicle


@pytest.fixture
def people(make_member):
    return {
        "requester": make_member("rita", Role.APPROVER, email="rita@example.com"),
        "approver": make_member("arno", Role.APPROVER, email="arno@example.com"),
        "admin": make_member("ada", Role.ADMIN, email="ada@example.com"),
        "operator": make_member("otto", Role.OPERATOR, email="otto@example.com"),
    }


def _tasks(func):
    return [q for q in OrmQ.objects.all() if q.func() == func]


def _as_token(user, org):
    token, _ = PartnerToken.issue(organisation=org, user=user, name=f"{user} token", scopes=[Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND])
    token = PartnerToken.objects.select_related("user").get(pk=token.pk)
    return TokenUser(token, token_access(token))


def test_an_immobilization_waits_unsent_and_the_approvers_are_told(vehicle, people):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], source=Source.WEB, reason="not returned")

    action.refresh_from_db()
    assert action.status == ActionStatus.AWAITING_APPROVAL and action.reason == "not returned"
    assert 14 * 60 < (action.approval_expires_at - timezone.now()).total_seconds() <= 15 * 60
    assert _tasks(services.SUBMIT_TASK) == []  # nothing will be sent
    assert len(_tasks(services.NOTIFY_TASK)) == 1
    step = action.steps.get()
    assert step.status == ActionStatus.AWAITING_APPROVAL and "rita" in step.detail and "not returned" in step.detail

    # The requester is never told to approve their own command; approver and admin are.
    assert approvals.notify_approvers(action.pk) == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "arno@example.com"]
    assert str(action.pk) in mail.outbox[0].body and "not returned" in mail.outbox[0].body


def test_a_dangerous_command_needs_a_reason_and_an_unlock_does_not_wait_by_default(vehicle, people):
    with pytest.raises(services.InvalidCommand) as refused:
        services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="  ")
    assert "reason" in refused.value.errors
    unlock = services.request_remote(vehicle=vehicle, command={"door": {"state": "Unlocked"}}, by=people["requester"], reason="keys inside")
    assert RemoteAction.objects.get(pk=unlock.pk).status == ActionStatus.QUEUED  # four-eyes for unlock is optional, off here


def test_the_requester_and_the_requesting_token_cannot_approve_nor_can_an_operator(vehicle, people, four_eyes):
    token = _as_token(people["requester"], four_eyes)
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=token, source=Source.API, reason="overdue rental")
    action = RemoteAction.objects.get(pk=action.pk)
    assert action.requested_by == people["requester"] and action.requested_by_token == token.token

    for who in (token, people["requester"]):
        with pytest.raises(approvals.SelfApproval):
            approvals.approve(action, by=who)
    with pytest.raises(approvals.SelfApproval):  # another token of the same person is the same person
        approvals.approve(action, by=_as_token(people["requester"], four_eyes))
    with pytest.raises(services.NotAllowed, match="approver role"):
        approvals.approve(action, by=people["operator"])
    assert RemoteAction.objects.get(pk=action.pk).status == ActionStatus.AWAITING_APPROVAL
    assert _tasks(services.SUBMIT_TASK) == []


def test_an_approval_queues_it_with_a_fresh_time_to_live_and_the_timeline_says_who(vehicle, people, settings):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    RemoteAction.objects.filter(pk=action.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=5))

    approved = approvals.approve(RemoteAction.objects.get(pk=action.pk), by=people["approver"], comment="called the customer")

    assert approved.status == ActionStatus.QUEUED and approved.decided_by == people["approver"]
    assert approved.expires_at > timezone.now() + dt.timedelta(seconds=settings.REMOTE_ACTION_TTL - 5)
    assert len(_tasks(services.SUBMIT_TASK)) == 1
    steps = [(s.status, s.detail) for s in approved.steps.all()]
    assert steps[-1] == (ActionStatus.QUEUED, "Approved by arno: called the customer")
    with pytest.raises(approvals.NotAwaitingApproval):  # a second approver, a moment too late
        approvals.approve(RemoteAction.objects.get(pk=action.pk), by=people["admin"])


def test_a_rejection_ends_it_and_nothing_is_sent(vehicle, people):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    rejected = approvals.reject(RemoteAction.objects.get(pk=action.pk), by=people["approver"], comment="customer paid")
    assert rejected.status == ActionStatus.REJECTED and rejected.is_final and "arno" in rejected.error
    assert _tasks(services.SUBMIT_TASK) == []


def test_the_requester_may_cancel_while_it_waits(vehicle, people):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    with pytest.raises(services.NotAllowed):
        approvals.cancel(RemoteAction.objects.get(pk=action.pk), by=people["operator"])
    cancelled = approvals.cancel(RemoteAction.objects.get(pk=action.pk), by=people["requester"], comment="wrong car")
    assert cancelled.status == ActionStatus.CANCELLED and _tasks(services.SUBMIT_TASK) == []


def test_an_unapproved_command_expires_and_can_no_longer_be_approved(vehicle, people):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    RemoteAction.objects.filter(pk=action.pk).update(approval_expires_at=timezone.now() - dt.timedelta(seconds=1))

    with pytest.raises(approvals.NotAwaitingApproval, match="expired"):
        approvals.approve(RemoteAction.objects.get(pk=action.pk), by=people["approver"])
    action = RemoteAction.objects.get(pk=action.pk)
    assert action.status == ActionStatus.EXPIRED and "never sent" in action.steps.last().detail
    assert _tasks(services.SUBMIT_TASK) == []


def test_the_sweep_expires_what_waited_too_long(vehicle, people):
    from remotes import tasks

    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    assert tasks.sweep()["expired_unapproved"] == 0
    RemoteAction.objects.filter(pk=action.pk).update(approval_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.sweep()["expired_unapproved"] == 1
    assert RemoteAction.objects.get(pk=action.pk).status == ActionStatus.EXPIRED


def test_the_approver_sees_what_changed_since_the_request(vehicle, people):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    assert approvals.changes_since_request(action) == []
    stolen = services.request_remote(vehicle=vehicle, command={"stolen": {"stolen": True}}, by=people["admin"], reason="police report")
    RemoteAction.objects.filter(pk=stolen.pk).update(status=ActionStatus.SUCCESS, finished_at=timezone.now())

    notes = approvals.changes_since_request(RemoteAction.objects.get(pk=action.pk))
    assert notes[0] == "The vehicle was reported stolen since this command was asked for."


def test_waiting_for_lists_only_what_this_person_may_approve(vehicle, people, make_member, make_organisation, make_fleet):
    action = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="overdue rental")
    assert list(approvals.waiting_for(people["approver"])) == [RemoteAction.objects.get(pk=action.pk)]
    assert list(approvals.waiting_for(people["requester"])) == []  # their own
    assert list(approvals.waiting_for(people["operator"])) == []  # not an approver
    outsider = make_member("bea", Role.APPROVER, org=make_organisation("Org B"))
    assert list(approvals.waiting_for(outsider)) == []


def test_each_decision_is_in_the_audit_log(vehicle, people):
    first = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="r1")
    approvals.approve(RemoteAction.objects.get(pk=first.pk), by=people["approver"], comment="ok")
    second = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="r2")
    approvals.reject(RemoteAction.objects.get(pk=second.pk), by=people["approver"], comment="no")
    third = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="r3")
    approvals.cancel(RemoteAction.objects.get(pk=third.pk), by=people["requester"])
    fourth = services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=people["requester"], reason="r4")
    RemoteAction.objects.filter(pk=fourth.pk).update(approval_expires_at=timezone.now())
    approvals.expire_unapproved()

    entries = [(e.action, e.actor, e.object_id, e.reason) for e in AuditEntry.objects.order_by("pk")]
    assert entries == [
        ("remote.requested", "rita", str(first.pk), "r1"),
        ("remote.approved", "arno", str(first.pk), "ok"),
        ("remote.requested", "rita", str(second.pk), "r2"),
        ("remote.rejected", "arno", str(second.pk), "no"),
        ("remote.requested", "rita", str(third.pk), "r3"),
        ("remote.cancelled", "rita", str(third.pk), ""),
        ("remote.requested", "rita", str(fourth.pk), "r4"),
        ("remote.expired", "system", str(fourth.pk), ""),
    ]
    assert {e.organisation_id for e in AuditEntry.objects.all()} == {vehicle.fleet.organisation_id}
