"""Four-eyes approval of dangerous commands: approve, reject, cancel, expire; who to tell.

A command the organisation puts under four-eyes is created `awaiting_approval`
(`services.request_remote`) and nothing is sent. Another person with the approver role —
never the one who asked, nor the token that asked — approves it (→ queued, then the usual
path, with a fresh time to live) or rejects it (→ rejected, final). The requester may
cancel it. Unapproved, it expires at `approval_expires_at` and is never sent (`sweep`).
Each decision is a conditional UPDATE from `awaiting_approval`, so of two approvers
clicking at once exactly one decides; the timeline and the audit log say who and why.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import access
from accounts.models import Membership, Role
from audit import services as audit
from core.errors import ServiceError
from stellantis.vocabulary import RemoteType

from .models import ActionStatus, ActionStep, RemoteAction
from .services import NotAllowed, enqueue_submit, person_of
from .signals import status_changed_on_commit


class NotAwaitingApproval(ServiceError):
    status, code = 409, "not_awaiting_approval"


class SelfApproval(NotAllowed):
    code = "self_approval"


def _decider(action: RemoteAction, by):
    """(person, token) of someone who may decide on `action`; refuses the requester."""
    reason = access.access_of(by).why_not(access.APPROVE, action.vehicle.fleet)
    if reason:
        raise NotAllowed(reason)
    person, token = person_of(by), getattr(by, "token", None)
    if token is not None and token.pk == action.requested_by_token_id:
        raise SelfApproval("The token that asked for this command cannot decide on it: another approver must.")
    if person is not None and person.pk == action.requested_by_id:
        raise SelfApproval("You asked for this command: another approver must decide on it.")
    return person, token


def may_decide(action: RemoteAction, user) -> str:
    """Empty when `user` may approve or reject `action` now (the rules of `_decider`); else why not."""
    try:
        _decider(action, user)
    except NotAllowed as exc:
        return exc.message
    return ""


def _decide(action: RemoteAction, *, by, status: str, verb: str, comment: str, person, token, **fields) -> RemoteAction:
    now = timezone.now()
    comment = (comment or "").strip()[:500]
    if status in (ActionStatus.REJECTED, ActionStatus.CANCELLED):
        fields.update(finished_at=now, error=f"{verb.capitalize()} by {audit.actor_name(by)}" + (f": {comment}" if comment else "."))
    with transaction.atomic():
        moved = RemoteAction.objects.filter(
            pk=action.pk, status=ActionStatus.AWAITING_APPROVAL, approval_expires_at__gt=now
        ).update(status=status, decided_by=person, decided_by_token=token, decided_at=now, decision_comment=comment, decision=verb, **fields)
        if moved:
            detail = f"{verb.capitalize()} by {audit.actor_name(by)}" + (f": {comment}" if comment else "")
            ActionStep.objects.create(action_id=action.pk, status=status, at=now, detail=detail[:500])
            audit.record(f"remote.{verb}", actor=by, organisation=action.vehicle.fleet.organisation_id, obj=action, reason=comment)
            status_changed_on_commit(action.pk, status)  # partners' push (pushes app listens), after commit
            if status == ActionStatus.QUEUED:
                transaction.on_commit(lambda: enqueue_submit(action.pk))
    if not moved:
        expire_unapproved(now=now, action_ids=[action.pk])  # past its approval time: say so, for good
        action.refresh_from_db()
        raise NotAwaitingApproval(f"This command is no longer waiting for approval: it is {action.get_status_display().lower()}.")
    action.refresh_from_db()
    return action


def approve(action: RemoteAction, *, by, comment: str = "") -> RemoteAction:
    """Let it go: queued now, with its whole time to live from this moment."""
    person, token = _decider(action, by)
    return _decide(
        action, by=by, status=ActionStatus.QUEUED, verb="approved", comment=comment, person=person, token=token,
        expires_at=timezone.now() + dt.timedelta(seconds=settings.REMOTE_ACTION_TTL),
    )


def reject(action: RemoteAction, *, by, comment: str = "") -> RemoteAction:
    person, token = _decider(action, by)
    return _decide(action, by=by, status=ActionStatus.REJECTED, verb="rejected", comment=comment, person=person, token=token)


def cancel(action: RemoteAction, *, by, comment: str = "") -> RemoteAction:
    """The requester (or an approver) withdraws a command still waiting; nothing was sent."""
    person, token = person_of(by), getattr(by, "token", None)
    is_requester = person is not None and person.pk == action.requested_by_id
    if not is_requester and not access.access_of(by).may(access.APPROVE, action.vehicle.fleet):
        raise NotAllowed("Only the person who asked for it, or an approver, may cancel this command.")
    return _decide(action, by=by, status=ActionStatus.CANCELLED, verb="cancelled", comment=comment, person=person, token=token)


def expire_unapproved(*, now: dt.datetime | None = None, action_ids=None) -> int:
    """Commands nobody approved in time end `expired`, never sent. Answers how many."""
    now = now or timezone.now()
    due = RemoteAction.objects.filter(status=ActionStatus.AWAITING_APPROVAL, approval_expires_at__lte=now)
    if action_ids is not None:
        due = due.filter(pk__in=action_ids)
    expired = 0
    for action in due.select_related("vehicle__fleet__organisation")[:500]:
        with transaction.atomic():
            if not RemoteAction.objects.filter(pk=action.pk, status=ActionStatus.AWAITING_APPROVAL).update(
                status=ActionStatus.EXPIRED, finished_at=now, error="Not approved in time: never sent.", decision="expired"
            ):
                continue
            ttl = action.vehicle.fleet.organisation.approval_ttl_minutes if action.vehicle.fleet.organisation else "?"
            ActionStep.objects.create(action_id=action.pk, status=ActionStatus.EXPIRED, at=now, detail=f"Not approved within {ttl} min: never sent")
            audit.record("remote.expired", actor=None, organisation=action.vehicle.fleet.organisation_id, obj=action)
            status_changed_on_commit(action.pk, ActionStatus.EXPIRED)  # partners' push, after commit
            expired += 1
    return expired


def waiting_for(user):
    """Commands `user` may approve now: visible, awaiting, in fleets where they approve, not their own."""
    rights = access.access_of(user)
    orgs = rights.organisation_ids(access.APPROVE)
    qs = RemoteAction.objects.visible_to(user).filter(status=ActionStatus.AWAITING_APPROVAL)
    if orgs is not None:
        qs = qs.filter(vehicle__fleet__organisation_id__in=orgs)
    person = person_of(user)
    if person is not None:
        qs = qs.exclude(requested_by=person)
    return qs


def changes_since_request(action: RemoteAction) -> list[str]:
    """What happened to the vehicle since the command was asked for, for the approver to see first."""
    notes = []
    later = (
        RemoteAction.objects.filter(vehicle_id=action.vehicle_id, created_at__gt=action.created_at)
        .exclude(pk=action.pk)
        .order_by("created_at")[:10]
    )
    for other in later:
        notes.append(f"{other.summary} was asked for at {timezone.localtime(other.created_at):%H:%M:%S}: {other.get_status_display().lower()}.")
    stolen_done = action.vehicle.remote_actions.filter(
        remote_type=RemoteType.STOLEN, command__stolen__stolen=True,
        status__in=(ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE), finished_at__gt=action.created_at,
    ).exclude(pk=action.pk)
    if stolen_done.exists():
        notes.insert(0, "The vehicle was reported stolen since this command was asked for.")
    snapshot = getattr(action.vehicle, "status_snapshot", None)
    if snapshot is not None and snapshot.fetched_at > action.created_at:
        moving = {True: "moving", False: "not moving"}.get(snapshot.moving, "movement unknown")
        doors = {True: "locked", False: "unlocked"}.get(snapshot.doors_locked, "unknown")
        notes.append(
            f"New status read at {timezone.localtime(snapshot.fetched_at):%H:%M:%S}: doors {doors}, {moving}, ignition {snapshot.ignition or 'unknown'}."
        )
    return notes


def approvers_to_tell(action: RemoteAction) -> list[str]:
    """E-mail addresses of the people who may approve `action` (never the requester)."""
    fleet = action.vehicle.fleet
    members = (
        Membership.objects.filter(organisation_id=fleet.organisation_id, role__in=(Role.APPROVER, Role.ADMIN), user__is_active=True)
        .exclude(user_id=action.requested_by_id)
        .exclude(user__email="")
        .prefetch_related("fleets")
        .select_related("user")
    )
    return sorted({m.user.email for m in members if not m.fleets.all() or fleet in m.fleets.all()})


def notify_approvers(action_id) -> int:
    """One e-mail per approver of a command waiting for them (Django's mail framework)."""
    action = RemoteAction.objects.select_related("vehicle__fleet__organisation", "requested_by").get(pk=action_id)
    if action.status != ActionStatus.AWAITING_APPROVAL:
        return 0
    recipients = approvers_to_tell(action)
    url = settings.PORTAL_PUBLIC_URL.rstrip("/") + reverse("action-detail", args=[action.pk])
    until = timezone.localtime(action.approval_expires_at)
    subject = f"Approval needed: {action.summary} for {action.vehicle.vin}"
    who = action.requested_by.get_username() if action.requested_by else "a partner token"
    body = (
        f"{who} asks for {action.summary} on {action.vehicle.vin} (fleet {action.vehicle.fleet}).\n"
        f"Reason: {action.reason}\n\nApprove or reject it before {until:%H:%M} ({until:%Z}), or it expires unsent:\n{url}\n"
    )
    return send_mass_mail([(subject, body, None, [r]) for r in recipients], fail_silently=False)
