"""What remotes tells the apps above it, without importing them (pushes listens; see docs/architecture.md).

Both are sent only after the change committed (`transaction.on_commit`), robustly: a listener
that fails is logged by Django and never undoes nor breaks the change that was made.

- `action_status_changed(action_ids, status)`: the portal moved these actions (requested, approved,
  submitted, expired, …), all to `status`. One signal for a batch: a bulk request moves its
  actions twenty at a time, and a listener does one query for them, not one each.
- `events_applied(callback_id, remote_action_ids, succeeded)`: vendor events were stored for these actions
  (a webhook delivery, a read-back, an adoption) and may have moved them. On PostgreSQL the
  webhook's one statement (`pg_ingest`) does not say which actions moved nor to what, and asking
  would cost the hot path; a listener reads the actions again if it cares. Sent once per delivery.
  `succeeded` maps those whose events include a Done · Success/AlreadyDone to their remote type
  (None: not known).

One more is sent AT ONCE, not after commit, because it reports an answer, not a change:
- `delivery_received(outcome, event_dates, received_at)`: the webhook answered one delivery
  (`outcome`: the stored delivery's outcome, or `unauthorized` for a 401, `error` for a 500
  when the database failed); `event_dates` are its readable events' eventDates, `received_at`
  a Unix time. The metrics (ops) count it; a listener must cost no SQL: it runs in the
  webhook's request.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

action_status_changed = Signal()
events_applied = Signal()
delivery_received = Signal()


def status_changed_on_commit(action_id, status: str) -> None:
    statuses_changed_on_commit([action_id], status)


def statuses_changed_on_commit(action_ids, status: str) -> None:
    ids = list(action_ids)
    if ids:
        transaction.on_commit(
            lambda: action_status_changed.send_robust(sender=None, action_ids=ids, status=str(status)), robust=True
        )


def events_applied_on_commit(*, callback_id, remote_action_ids, succeeded=None) -> None:
    """`succeeded`: {remote action id: remote type} of those that got a Done · Success or
    AlreadyDone in these events (the webhook knows it from the events it parsed, at no SQL
    cost), or None when the caller does not know; outcome verification reads only those."""
    rids = sorted(set(remote_action_ids))
    done = None if succeeded is None else dict(succeeded)
    if rids and events_applied.has_listeners():
        transaction.on_commit(
            lambda: events_applied.send_robust(sender=None, callback_id=callback_id, remote_action_ids=rids, succeeded=done), robust=True
        )


def succeeded_ids(events) -> dict[str, str]:
    """{remote action id: remote type} of parsed events that say Done · Success or AlreadyDone (a pure filter)."""
    return {e.remote_action_id: e.remote_type for e in events if e.event_type == "Done" and e.status in ("Success", "AlreadyDone")}


def delivery_received_now(*, outcome: str, event_dates=(), received_at: float | None = None) -> None:
    if delivery_received.has_listeners():
        delivery_received.send_robust(sender=None, outcome=str(outcome), event_dates=event_dates, received_at=received_at)
