"""Remote actions: request, submit, sweep and reconcile. With `events` (what notifications do
to an action), every write to an action lives here.

Web views, admin actions, the partner API and q2 tasks all call these functions.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from accounts import access
from audit import services as audit
from callbacks.models import Callback
from core.errors import ServiceError
from core.sql import insert_all, update_each
from stellantis.client import FleetClient, RemoteState
from stellantis.errors import RateLimited, StellantisError, TooLate, VendorRejected
from stellantis.remotes import Command, CommandInvalid, check_not_past, is_dangerous, parse_remote
from stellantis.vocabulary import NOTIFICATION_HORIZON_SECONDS, EventType, RemoteType, label_of
from stellantis.webhook import ParsedEvent

from .capabilities import availability
from .events import adopt_orphan_events, apply_events
from .models import FINAL_STATUSES, ActionStatus, ActionStep, RemoteAction, Source
from .signals import events_applied_on_commit, status_changed_on_commit, statuses_changed_on_commit

log = logging.getLogger(__name__)

SUBMIT_TASK = "remotes.tasks.submit_remote_action"
NOTIFY_TASK = "remotes.tasks.notify_approvers"


# --- requesting ----------------------------------------------------------------------------


class RemoteRequestError(ServiceError):
    """A request the portal refuses before anything is sent; `errors` name the fields."""


class InvalidCommand(RemoteRequestError):
    status, code = 400, "invalid_command"


class NotAllowed(RemoteRequestError):
    status, code = 403, "permission_denied"


class NotCapable(RemoteRequestError):
    """The vehicle cannot do this (motorization, subscription, vendor capabilities)."""

    status, code = 409, "not_capable"


class NoCallbackForType(RemoteRequestError):
    status, code = 409, "missing_remote_type"

    def __init__(self, fleet, remote_type: str):
        self.fleet = fleet
        self.remote_type = remote_type
        label = label_of(RemoteType, remote_type)
        super().__init__(
            f"No running callback of fleet {fleet} serves {label} ({remote_type}). "
            f"Create one that serves {remote_type}, or resume a paused one, then retry.",
            extra={"missing_remote_type": remote_type},
        )


def to_command(data: dict | Command) -> Command:
    """A valid command to send now: its shape (`parse_remote`) and no date already past."""
    try:
        return check_not_past(data if isinstance(data, Command) else parse_remote(data))
    except CommandInvalid as exc:
        raise InvalidCommand(str(exc), errors=exc.errors) from exc


def command_ability(command: Command) -> str:
    """The ability (accounts.access) a command needs: dangerous ones need more than the rest."""
    return access.DANGEROUS if is_dangerous(command) else access.COMMAND


def check_permission(user, command: Command, vehicle) -> None:
    """Refuse a command the person or token may not send to this vehicle (its role, its scopes).

    The caller found the vehicle through `visible_to(user)`: one outside their fleets is a 404
    before this is reached, so a refusal here says nothing a person could not see."""
    if user is None:  # the system itself (schedules, management commands)
        return
    reason = access.access_of(user).why_not(command_ability(command), vehicle.fleet)
    if reason:
        raise NotAllowed(f"{command.remote_type.label}: {reason}")


def check_capability(vehicle, command: Command) -> None:
    verdict = availability(vehicle, command.member)
    if not verdict.available:
        raise NotCapable(verdict.reason)


def person_of(by):
    """The person behind a request: the user, or the member a token acts for; None for the system."""
    token = getattr(by, "token", None)
    if token is not None:
        return token.user
    return by if by is not None and getattr(by, "pk", None) is not None else None


def check_reason(command: Command, reason: str) -> str:
    reason = (reason or "").strip()
    if is_dangerous(command) and not reason:
        raise InvalidCommand(
            f"{command.remote_type.label}: say why — a reason is required for unlock, immobilization and stolen.",
            errors={"reason": "A reason is required for this command."},
        )
    return reason[:500]


def request_remote(*, vehicle, command: dict | Command, by=None, source: str = Source.SYSTEM, reason: str = "") -> RemoteAction:
    """Validate, authorise and queue one command; the submit task is enqueued after commit.

    A dangerous command needs a reason; one the organisation puts under four-eyes waits,
    unsent, for another approver (`remotes.approvals`), until its approval time runs out.
    """
    command = to_command(command)
    check_permission(by, command, vehicle)
    reason = check_reason(command, reason)
    check_capability(vehicle, command)
    callbacks = Callback.objects.serving(vehicle.fleet, command.remote_type)
    if not callbacks:
        raise NoCallbackForType(vehicle.fleet, command.remote_type)
    return create_remote_action(vehicle=vehicle, command=command, callback=callbacks[0], by=by, source=source, reason=reason)


def create_remote_action(
    *, vehicle, command: Command, callback, by=None, source: str = Source.SYSTEM, reason: str = "",
    expires_at: dt.datetime | None = None, enqueue: bool = True,
) -> RemoteAction:
    """The write half of `request_remote`, for callers that ran its checks themselves. `enqueue=False`:
    the caller submits it itself, soon (the sweep re-enqueues a queued action nobody claimed
    within 30 s). `expires_at` may only shorten the time to live (a bulk request's sending window)."""
    return create_remote_actions(
        targets=[(vehicle, callback)], command=command, by=by, source=source, reason=reason, expires_at=expires_at, enqueue=enqueue
    )[0]


def create_remote_actions(
    *, targets: list, command: Command, by=None, source: str = Source.SYSTEM, reason: str = "",
    expires_at: dt.datetime | None = None, enqueue: bool = True, notify_approvers: bool = True, claimed: bool = False,
) -> list[RemoteAction]:
    """`create_remote_action` for many (vehicle, callback) pairs in one transaction: one INSERT for
    the actions and one for their first steps (a bulk request creates its actions by the batch;
    one command is a batch of one, with the same statements as ever). `notify_approvers=False`:
    the caller tells the approvers itself (a bulk request sends one e-mail, not one per vehicle).

    `claimed=True` (a bulk request's dispatcher, about to POST them itself): those that may go are
    written already claimed for sending — submitting, `maybe_sent_at` set — by the same INSERT, so
    the commit that creates them is the claim, before any POST; whoever finds one of them later
    (a crash) looks it up by label, never sends it blind. Their timeline and partners still
    see them queued first."""
    assert not (claimed and enqueue), "a claimed action is sent by its creator"
    now = timezone.now()
    ttl_end = now + dt.timedelta(seconds=settings.REMOTE_ACTION_TTL)
    who = f" by {audit.actor_name(by)}" if by is not None else ""
    detail = (f"Requested from {Source(source).label}{who}" + (f" · reason: {reason}" if reason else ""))[:500]
    actions, awaiting_ids = [], []
    body, dangerous, person, token = command.as_dict(), is_dangerous(command), person_of(by), getattr(by, "token", None)
    for vehicle, callback in targets:
        organisation = vehicle.fleet.organisation
        awaiting = dangerous and organisation is not None and organisation.needs_approval(command.member)
        actions.append(RemoteAction(
            vehicle=vehicle,
            callback=callback,
            remote_type=command.remote_type,
            command=body,
            status=ActionStatus.AWAITING_APPROVAL if awaiting else ActionStatus.QUEUED,
            requested_by=person,
            requested_by_token=token,
            source=source,
            reason=reason,
            expires_at=min(ttl_end, expires_at) if expires_at else ttl_end,
            approval_expires_at=now + dt.timedelta(minutes=organisation.approval_ttl_minutes) if awaiting else None,
        ))
        if claimed and not awaiting:
            action = actions[-1]
            action.status, action.claimed_at, action.maybe_sent_at, action.submit_attempts = ActionStatus.SUBMITTING, now, now, 1
    with transaction.atomic():
        # One INSERT per table, each column prepared once where the batch shares its value (core.sql).
        insert_all(actions)
        insert_all([ActionStep(action=a, status=_first(a.status), at=now, detail=detail) for a in actions])
        insert_all(audit.entries_for("remote.requested", actor=by, objects=[(a.vehicle.fleet.organisation, a) for a in actions], reason=reason))
        by_status: dict[str, list] = {}
        for action in actions:
            by_status.setdefault(_first(action.status), []).append(action.pk)
            if action.status == ActionStatus.AWAITING_APPROVAL:
                if notify_approvers:
                    awaiting_ids.append(action.pk)
            elif enqueue:
                transaction.on_commit(lambda pk=action.pk: enqueue_submit(pk))
        for status, ids in by_status.items():
            statuses_changed_on_commit(ids, status)  # partners' push (pushes app listens), after commit: one per batch
        for pk in awaiting_ids:
            transaction.on_commit(lambda pk=pk: async_task(NOTIFY_TASK, str(pk), task_name=f"notify-approvers-{pk}"))
    return actions


def _first(status: str) -> str:
    """The status an action is created with, as its timeline and partners see it: submitting is
    our own claim on a queued one (no step of its own, no push)."""
    return ActionStatus.QUEUED if status == ActionStatus.SUBMITTING else status


def enqueue_submit(action_id, *, delay: float = 0) -> None:
    if delay <= 0:
        async_task(SUBMIT_TASK, str(action_id), task_name=f"submit-{action_id}")
        return
    Schedule.objects.create(
        name=f"submit-{action_id}-{timezone.now().timestamp():.0f}",
        func=SUBMIT_TASK,
        args=repr(str(action_id)),
        schedule_type=Schedule.ONCE,
        repeats=1,
        next_run=timezone.now() + dt.timedelta(seconds=delay),
    )


# --- submitting ----------------------------------------------------------------------------


def _step(action_id, status: str, detail: str = "", at: dt.datetime | None = None) -> None:
    ActionStep.objects.create(action_id=action_id, status=status, at=at or timezone.now(), detail=detail[:500])


def _claim(action_id) -> bool:
    """Move queued → submitting. Also takes over a claim whose worker went silent.

    A conditional UPDATE, so of two workers handed the same task (q2 re-delivery) exactly
    one proceeds; the other walks away.
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT)
    return (
        RemoteAction.objects.filter(pk=action_id)
        .filter(Q(status=ActionStatus.QUEUED) | Q(status=ActionStatus.SUBMITTING, claimed_at__lt=stale))
        .update(status=ActionStatus.SUBMITTING, claimed_at=now, submit_attempts=F("submit_attempts") + 1)
        == 1
    )


def _transition(action_id, *, expect: tuple, status: str, detail: str, **fields) -> bool:
    """Move an action from one of `expect` to `status`, with its timeline step, or do nothing.

    The conditional UPDATE is the claim: a worker that lost its claim (or a state that moved
    on meanwhile) changes nothing and adds no step.
    """
    now = timezone.now()
    if status in FINAL_STATUSES:
        fields.setdefault("finished_at", now)
    with transaction.atomic():
        moved = RemoteAction.objects.filter(pk=action_id, status__in=expect).update(status=status, **fields) == 1
        if moved:
            _step(action_id, status, detail, at=now)
            # Partners' push (pushes app listens), after commit; a retry's "queued" again is
            # deduplicated there (one event per action and status).
            status_changed_on_commit(action_id, status)
    return moved


def _finish_from(action_id, *, status: str, detail: str = "", error: str = "") -> bool:
    """submitting → a final state, only if we still hold the claim."""
    return _transition(action_id, expect=(ActionStatus.SUBMITTING,), status=status, detail=detail or error, error=error)


def _record_submitted(action: RemoteAction, remote_action_id: str, how: str) -> bool:
    moved = _transition(
        action.pk,
        expect=(ActionStatus.SUBMITTING,),
        status=ActionStatus.SUBMITTED,
        detail=_submitted_detail(how, remote_action_id),
        remote_action_id=remote_action_id,
        submitted_at=timezone.now(),
        maybe_sent_at=None,
        error="",
    )
    if moved:
        # Notifications may have beaten the POST's answer; adopt them now that the id is
        # committed (see inbox.receive_delivery for the other half).
        if adopt_orphan_events(remote_action_ids=[remote_action_id]):
            # Those early events may have moved it past `submitted`: partners' push reads it again.
            events_applied_on_commit(callback_id=action.callback_id, remote_action_ids=[remote_action_id])
    return moved


def submit_remote_action(*, action_id, client: FleetClient | None = None) -> str:
    """Hand one queued action to Stellantis, at most once. Returns what happened, for logs.

    A re-delivered task finds the action already claimed and does nothing. A POST that
    left without a definite answer (time-out, 5xx, a worker that died mid-call) leaves
    `maybe_sent_at` set: from then on the action is looked up by its label (our id) before
    anything else, for long enough to see the vendor's lag, and only sent again when it is
    surely not there — never by itself for a command that may be dangerous.
    """
    if not _claim(action_id):
        return "not claimed: another worker has it, or it is past submission"
    action = RemoteAction.objects.select_related("vehicle__fleet", "callback").get(pk=action_id)
    client = client or FleetClient.from_settings()

    if action.maybe_sent_at:
        try:
            found = client.find_remote_by_label(*_addresses(action), action.label)
        except StellantisError as exc:
            wait = _retry_after(exc)
            return _retry_later(action, f"Could not check whether Stellantis has it: {exc}", retry_after=wait, counts=wait is None)
        if found:
            _record_submitted(action, found.remote_action_id, "Found at Stellantis by its label")
            return "found by label"
        waited = (timezone.now() - action.maybe_sent_at).total_seconds()
        window = settings.REMOTE_LOOKUP_WINDOW
        if waited < window:
            # Stellantis may act on a POST well after answering it (or not answering): a
            # label not found yet is not a command lost. Look again before any resend.
            return _retry_later(
                action, f"Not at Stellantis yet {waited:.0f} s after sending; looking again before any resend",
                retry_after=min(_next_delay(action), window - waited), counts=False,
            )
        command = Command.from_dict(action.command)
        if is_dangerous(command):
            _finish_from(action.pk, status=ActionStatus.UNKNOWN, error=_unknown_outcome(command, waited))
            return "outcome unknown"
        log.info("action %s not found at Stellantis %.0f s after an unanswered POST: sending it again", action.pk, waited)

    now = timezone.now()
    if now >= action.expires_at:
        _finish_from(action.pk, status=ActionStatus.EXPIRED, detail=_not_sent_late(action, now))
        return "expired"
    # Written before the POST leaves: a worker that dies during the call leaves it set, so
    # whoever takes the action over looks it up instead of sending it a second time.
    if not RemoteAction.objects.filter(pk=action.pk, status=ActionStatus.SUBMITTING).update(maybe_sent_at=now):
        return "claim lost before sending"
    outcome, remote_action_id = _post(action, client)
    if remote_action_id:
        _record_submitted(action, remote_action_id, ACCEPTED)
    return outcome


ACCEPTED = "Accepted by the API"


def _addresses(action: RemoteAction) -> tuple[str, str, str]:
    """Where the action goes at Stellantis: (fleet, vehicle, callback) ids."""
    return action.vehicle.fleet.external_id, action.vehicle.external_id, action.callback.external_id


def _submitted_detail(how: str, remote_action_id: str) -> str:
    return f"{how} · id at Stellantis {remote_action_id}"[:500]


def _post(action: RemoteAction, client: FleetClient) -> tuple[str, str | None]:
    """The POST of a claimed action whose `maybe_sent_at` is written, and what its failure does to it.

    Answers ("submitted", the vendor's id), which the caller records (one action at once, or a
    bulk's by the batch), or (what happened, None) with the action already moved accordingly.
    """
    command = Command.from_dict(action.command)
    try:
        remote_action_id = client.send_remote(*_addresses(action), command.as_remote(action.label), not_after=action.expires_at.timestamp())
    except TooLate as exc:  # held (rate-limit budget) past its time to live: it never left
        RemoteAction.objects.filter(pk=action.pk).update(maybe_sent_at=None)
        _finish_from(action.pk, status=ActionStatus.EXPIRED, detail=f"{exc}. A late command is worse than none.")
        return "expired", None
    except VendorRejected as exc:
        _finish_from(action.pk, status=ActionStatus.REJECTED, detail="", error=exc.for_people)
        return "rejected", None
    except StellantisError as exc:
        if not exc.ambiguous:  # refused connection, rate limit…: surely not sent
            RemoteAction.objects.filter(pk=action.pk).update(maybe_sent_at=None)
        wait = _retry_after(exc)  # a rate limit is no failed attempt: wait as asked, without counting it
        return _retry_later(action, str(exc), retry_after=wait, counts=wait is None), None
    return "submitted", remote_action_id


# --- submitting by the batch (bulk requests) ---------------------------------------------------
# The same rules as `submit_remote_action`, with the statements shared by a batch: the actions are
# created claimed (`create_remote_actions(claimed=True)`: submitting, maybe_sent_at written,
# committed before any POST), one POST each, one write for the accepted ones. Whatever is not
# plain (one past its time to live, one whose turn came too late) goes the single path.


def send_claimed(action: RemoteAction, client: FleetClient) -> tuple[str, str | None]:
    """POST one action created claimed; ("submitted", id) for `record_submitted` to write.

    The time to live is checked again just before the POST. A claim that waited too long for its
    turn (a third of the claim time-out: the sweep must never take it over while it is in flight)
    is handed back and sent the single way, claimed again."""
    now = timezone.now()
    if now >= action.expires_at:
        RemoteAction.objects.filter(pk=action.pk, status=ActionStatus.SUBMITTING).update(maybe_sent_at=None)
        _finish_from(action.pk, status=ActionStatus.EXPIRED, detail=_not_sent_late(action, now))
        return "expired", None
    if (now - action.claimed_at).total_seconds() > settings.REMOTE_SUBMIT_CLAIM_TIMEOUT / 3:
        RemoteAction.objects.filter(pk=action.pk, status=ActionStatus.SUBMITTING, claimed_at=action.claimed_at).update(
            status=ActionStatus.QUEUED, claimed_at=None, maybe_sent_at=None, submit_attempts=F("submit_attempts") - 1
        )
        return submit_remote_action(action_id=action.pk, client=client), None
    return _post(action, client)


def cancel_claimed(action: RemoteAction, *, detail: str) -> str:
    """End an action created claimed that will not be sent after all (its bulk request was
    cancelled meanwhile): it never left, so cancelled, if the claim is still this one."""
    now = timezone.now()
    with transaction.atomic():
        moved = RemoteAction.objects.filter(pk=action.pk, status=ActionStatus.SUBMITTING, claimed_at=action.claimed_at).update(
            status=ActionStatus.CANCELLED, finished_at=now, maybe_sent_at=None, error=detail[:500]
        )
        if moved:
            _step(action.pk, ActionStatus.CANCELLED, detail, at=now)
            status_changed_on_commit(action.pk, ActionStatus.CANCELLED)
    return "cancelled" if moved else "claim lost before sending"


def record_submitted(accepted: list[tuple[RemoteAction, str]], how: str = ACCEPTED) -> int:
    """Write what the vendor accepted, (action, its id at Stellantis) pairs, in one transaction:
    submitting → submitted with each one's id and a step, only where the claim still holds.
    Then adopt the notifications that beat the answers. Answers how many moved."""
    if len(accepted) == 1:
        action, remote_action_id = accepted[0]
        return int(_record_submitted(action, remote_action_id, how))
    if not accepted:
        return 0
    now = timezone.now()
    ids = {action.pk: remote_action_id for action, remote_action_id in accepted}
    with transaction.atomic():
        moved = update_each(
            RemoteAction, ids, field="remote_action_id",
            same={"status": ActionStatus.SUBMITTED, "submitted_at": now, "maybe_sent_at": None, "error": ""},
            where={"status": ActionStatus.SUBMITTING},
        )
        if moved != len(ids):  # some claim was lost (taken over): which ones moved, by this write's own time
            moved_ids = set(RemoteAction.objects.filter(pk__in=list(ids), status=ActionStatus.SUBMITTED, submitted_at=now).values_list("pk", flat=True))
            ids = {pk: rid for pk, rid in ids.items() if pk in moved_ids}
        insert_all(
            [ActionStep(action_id=pk, status=ActionStatus.SUBMITTED, at=now, detail=_submitted_detail(how, rid)) for pk, rid in ids.items()]
        )
        statuses_changed_on_commit(list(ids), ActionStatus.SUBMITTED)
    if ids and adopt_orphan_events(remote_action_ids=list(ids.values())):
        callbacks: dict = {}
        for action, remote_action_id in accepted:
            if action.pk in ids:
                callbacks.setdefault(action.callback_id, []).append(remote_action_id)
        for callback_id, rids in callbacks.items():
            events_applied_on_commit(callback_id=callback_id, remote_action_ids=rids)
    return len(ids)


def _retry_after(exc: StellantisError) -> float | None:
    """How long the vendor asked us to wait (a rate limit's Retry-After); None for any other error."""
    return exc.retry_after if isinstance(exc, RateLimited) else None


def _next_delay(action: RemoteAction) -> float:
    backoff = settings.REMOTE_SUBMIT_BACKOFF
    return backoff[min(action.submit_attempts, len(backoff)) - 1]


def _unknown_outcome(command: Command, waited: float) -> str:
    return (
        f"Stellantis may have received this {command.remote_type.label.lower()} command: our request got no clear answer, "
        f"and {waited:.0f} s later Stellantis still does not list it. It was not sent again by itself because it may be "
        "dangerous to run twice. Check the vehicle's state (its page, or a State refresh), then send it again yourself if needed."
    )


def _not_sent_late(action: RemoteAction, now: dt.datetime) -> str:
    late = (now - action.expires_at).total_seconds()
    return f"Not sent: its time to live ran out {late:.0f} s before it could leave (a late command is worse than none)."


def _retry_later(action: RemoteAction, why: str, *, retry_after: float | None = None, counts: bool = True) -> str:
    """Back to queued with a submit scheduled later; past the last backoff step, give up.

    `counts=False` for waits that are not failed attempts (looking for a command the
    vendor may still be acting on); `retry_after` when the vendor said how long to wait.
    """
    backoff = settings.REMOTE_SUBMIT_BACKOFF
    if counts and action.submit_attempts > len(backoff):
        _finish_from(action.pk, status=ActionStatus.ERROR, detail="", error=f"Gave up after {action.submit_attempts} attempts: {why}")
        return "gave up"
    delay = max(retry_after if retry_after is not None else _next_delay(action), 0.0)
    fields = {} if counts else {"submit_attempts": F("submit_attempts") - 1}
    moved = _transition(
        action.pk, expect=(ActionStatus.SUBMITTING,), status=ActionStatus.QUEUED,
        detail=f"{why} — will check and retry in {delay:.0f} s", error=why, **fields,
    )
    if moved:
        # After the commit above; dying in between leaves a queued action with an old claim,
        # which the sweep re-enqueues once overdue.
        enqueue_submit(action.pk, delay=delay)
    return "retry scheduled"


# --- housekeeping ----------------------------------------------------------------------------


def sweep() -> dict:
    """Catch what a crash could leave behind: never drop a command, never send one late.

    - queued actions whose enqueue was lost (process died between commit and on_commit)
      are enqueued again; the claim makes a duplicate task harmless;
    - actions whose submitting worker went silent are handed to a new task, which looks
      them up by label before anything else;
    - orphan events are adopted.
    """
    now = timezone.now()
    grace = now - dt.timedelta(seconds=30)
    stale = now - dt.timedelta(seconds=settings.REMOTE_SUBMIT_CLAIM_TIMEOUT)
    # A queued action with a retry scheduled was claimed before; leave it to its schedule
    # unless that is long overdue.
    overdue = now - dt.timedelta(seconds=max(settings.REMOTE_SUBMIT_BACKOFF) + 60)
    requeue = list(
        RemoteAction.objects.filter(
            Q(status=ActionStatus.QUEUED, created_at__lt=grace, claimed_at__isnull=True)
            | Q(status=ActionStatus.QUEUED, claimed_at__lt=overdue)
            | Q(status=ActionStatus.SUBMITTING, claimed_at__lt=stale)
        ).values_list("pk", flat=True)[:500]
    )
    for pk in requeue:
        enqueue_submit(pk)
    return {"requeued": len(requeue), "adopted": adopt_orphan_events()}


# --- reconciliation ----------------------------------------------------------------------------

def reconcile(*, now: dt.datetime | None = None, limit: int = 200, client: FleetClient | None = None) -> dict:
    """Read back actions that have waited too long for their Done event, and apply the answer.

    Notifications can be lost (our webhook down past the vendor's retries, a paused
    callback); `GET …/remotes/{rid}` still knows. Past the vendor's 3-day horizon an
    action that is still open ends as `error`: nobody will tell us more.
    """
    now = now or timezone.now()
    client = client or FleetClient.from_settings()
    horizon = now - dt.timedelta(seconds=NOTIFICATION_HORIZON_SECONDS)
    gave_up = 0
    for action in RemoteAction.objects.stuck(older_than=horizon).only("pk"):
        if _finish_open(action.pk, "No final word from Stellantis within its 3-day notification horizon."):
            gave_up += 1

    due = (
        RemoteAction.objects.stuck(older_than=now - dt.timedelta(seconds=settings.REMOTE_RECONCILE_AFTER))
        .filter(Q(reconciled_at__isnull=True) | Q(reconciled_at__lt=now - dt.timedelta(seconds=settings.REMOTE_RECONCILE_EVERY)))
        .select_related("vehicle__fleet", "callback")
        .order_by("submitted_at")[:limit]
    )
    read = failed = 0
    for action in due:
        try:
            remote = client.remote(*_addresses(action), action.remote_action_id)
        except StellantisError as exc:
            failed += 1
            log.info("reconcile %s: %s", action.pk, exc)
            if _retry_after(exc) is not None:
                # Rate limited: the rest of this pass would only be refused too, and would eat
                # into the budget the commands need. The next pass picks up where this one stopped.
                break
            RemoteAction.objects.filter(pk=action.pk).update(reconciled_at=now)
            continue
        read += 1
        _apply_read_back(action, remote, now)
    return {"read": read, "failed": failed, "gave_up": gave_up}


def _apply_read_back(action: RemoteAction, remote: RemoteState, now: dt.datetime) -> None:
    unknown = not remote.event_type
    if unknown or (remote.event_type == EventType.PENDING and action.pending_status == remote.status):
        RemoteAction.objects.filter(pk=action.pk).update(reconciled_at=now)  # nothing we can use, or nothing new
        return
    event = ParsedEvent(
        remote_action_id=action.remote_action_id,
        vin=action.vehicle.vin,
        event_date=now,
        remote_type=action.remote_type,
        event_type=remote.event_type,
        status=remote.status,
        failure_cause=remote.failure_cause,
        feedback_detail=remote.feedback_detail,
    )
    with transaction.atomic():
        # Stored like a notification without a delivery: the timeline shows it as read back.
        apply_events([event])
        RemoteAction.objects.filter(pk=action.pk).update(reconciled_at=now)
        events_applied_on_commit(callback_id=action.callback_id, remote_action_ids=[action.remote_action_id])  # partners' push


def _finish_open(action_id, why: str) -> bool:
    return _transition(action_id, expect=(ActionStatus.SUBMITTED, ActionStatus.PENDING), status=ActionStatus.ERROR, detail=why, error=why)
