"""What notifications do to an action: store events (a duplicate is a no-op) and derive the
action's status from all of them, by the vendor's ordering rules.

Called by the webhook inbox (SQLite, replays), the submit step (events that beat the POST's
answer) and reconciliation (the vendor's status read back). On PostgreSQL the webhook's hot
path applies the same rules in one SQL statement: see `pg_ingest` (the TWIN of `_derive`).
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django_q.tasks import async_task

from stellantis.vocabulary import DoneStatus, EventType, RemoteType
from stellantis.webhook import ParsedEvent, distinct_events

from .models import CORRECTABLE_FINAL_STATUSES, FINAL_STATUSES, ActionStatus, RemoteAction, RemoteEvent


@dataclass
class ApplyResult:
    new_events: int = 0
    orphan_action_ids: list[str] = field(default_factory=list)
    changed_actions: int = 0


_DONE_TO_STATUS = {
    DoneStatus.SUCCESS: ActionStatus.SUCCESS,
    DoneStatus.ALREADY_DONE: ActionStatus.ALREADY_DONE,
    DoneStatus.FAILED: ActionStatus.FAILED,
}
# Only what the derivation needs: loading whole rows (the JSON command, …) costs on every delivery.
_ACTION_FIELDS = ("id", "remote_action_id", "status", "pending_status", "pending_at", "failure_cause", "feedback_detail", "finished_at", "error", "remote_type", "vehicle_id")
_DERIVED_FIELDS = ("status", "pending_status", "pending_at", "failure_cause", "feedback_detail", "finished_at", "error")
EventRow = namedtuple("EventRow", "pk action_id remote_action_id event_type status event_date failure_cause feedback_detail delivery_id")


def _event_rows(**filters) -> list[EventRow]:
    return [EventRow(*row) for row in RemoteEvent.objects.filter(**filters).order_by("event_date", "pk").values_list(*EventRow._fields)]


def apply_events(events: list[ParsedEvent], *, delivery=None) -> ApplyResult:
    """Store events (a duplicate is a no-op) and recompute their actions' status.

    A constant number of queries whatever the batch size: lock the actions, insert the
    events, read back every event of those actions, write the actions that changed.
    Must run inside a transaction: the row locks keep two deliveries for one action from
    interleaving their recomputations (the later one sees both sets of events).
    `new_events` counts this delivery's events that were stored (not duplicates).
    """
    result = ApplyResult()
    if not events:
        return result
    rids = sorted({e.remote_action_id for e in events})
    actions = {
        a.remote_action_id: a
        for a in RemoteAction.objects.select_for_update().only(*_ACTION_FIELDS).filter(remote_action_id__in=rids).order_by("pk")
    }
    # ON CONFLICT DO NOTHING on the unique key: a re-delivered event, or one a concurrent
    # delivery of the same batch inserted a moment ago, is a no-op rather than an error.
    # Inserted in key order: two deliveries racing over the same events (orphans have no
    # action row to serialise them) then wait for each other instead of deadlocking.
    fresh = [
        RemoteEvent(
            action_id=actions[e.remote_action_id].pk if e.remote_action_id in actions else None,
            remote_action_id=e.remote_action_id,
            vin=e.vin,
            remote_type=e.remote_type,
            event_type=e.event_type,
            status=e.status,
            failure_cause=e.failure_cause,
            feedback_detail=e.feedback_detail,
            event_date=e.event_date,
            delivery=delivery,
        )
        for e in sorted(distinct_events(events), key=lambda e: e.key)
    ]
    RemoteEvent.objects.bulk_create(fresh, ignore_conflicts=True)
    rows = _event_rows(remote_action_id__in=rids)
    if delivery is not None:
        result.new_events = sum(1 for r in rows if r.delivery_id == delivery.pk)
    result.orphan_action_ids = [rid for rid in rids if rid not in actions]
    if actions:
        unattached = {r.remote_action_id for r in rows if r.action_id is None and r.remote_action_id in actions}
        if unattached:  # stored before their action's id was known: attach them now
            RemoteEvent.objects.filter(action__isnull=True, remote_action_id__in=unattached).update(
                action_id=Subquery(RemoteAction.objects.filter(remote_action_id=OuterRef("remote_action_id")).values("pk")[:1])
            )
            rows = [r._replace(action_id=actions[r.remote_action_id].pk) if r.remote_action_id in unattached else r for r in rows]
        result.changed_actions = _recompute(list(actions.values()), rows)
    return result


def _recompute(actions: list[RemoteAction], rows: list[EventRow] | None = None) -> int:
    """Derive each action's status from all its events; write only the ones that changed."""
    by_action: dict = {a.pk: [] for a in actions}
    if rows is None:
        rows = _event_rows(action_id__in=list(by_action))
    for row in rows:
        if row.action_id in by_action:
            by_action[row.action_id].append(row)
    changed, refreshed = [], []
    for action in actions:
        before = action.status
        if _derive(action, by_action[action.pk]):
            changed.append(action)
            if action.remote_type == RemoteType.WAKE_UP and action.status == ActionStatus.SUCCESS != before:
                refreshed.append(action.vehicle_id)
    if changed:
        RemoteAction.objects.bulk_update(changed, list(_DERIVED_FIELDS))
    for vehicle_id in refreshed:
        # A finished State refresh: the vehicle has just reported, read what it said.
        transaction.on_commit(lambda vid=vehicle_id: enqueue_status_refresh(vid))
    return len(changed)


def enqueue_status_refresh(vehicle_id: int) -> None:
    async_task("vehicles.tasks.refresh_status", vehicle_id, task_name=f"status-{vehicle_id}")


def _derive(action: RemoteAction, events: list[RemoteEvent]) -> bool:
    """Apply the ordering rules to one action in memory; True when something changed.

    A Done event is final whatever arrives after it; among Pending events the latest
    eventDate wins; a final status never regresses.

    TWIN: `remotes.pg_ingest.STATEMENT` states these same rules in SQL for the webhook's
    hot path on PostgreSQL. Change one, change the other: `remotes/tests/test_pg_ingest.py`
    (a property test, run on PostgreSQL in CI) fails when they disagree.
    """
    before = (action.status, action.pending_status, action.pending_at, action.failure_cause, action.feedback_detail)
    if action.status in FINAL_STATUSES and action.status not in CORRECTABLE_FINAL_STATUSES:
        return False
    done = [e for e in events if e.event_type == EventType.DONE]
    pending = [e for e in events if e.event_type == EventType.PENDING]
    if pending:
        latest = max(pending, key=lambda e: (e.event_date, e.pk or 0))
        action.pending_status, action.pending_at = latest.status, latest.event_date
    if done:
        first = done[0]  # events are ordered by eventDate: the first Done is the one that counts
        action.status = _DONE_TO_STATUS.get(first.status, ActionStatus.FAILED)
        action.failure_cause = first.failure_cause
        action.feedback_detail = first.feedback_detail
        action.finished_at = first.event_date
        action.error = ""
    elif pending and action.status in (ActionStatus.SUBMITTED, ActionStatus.PENDING):
        action.status = ActionStatus.PENDING
    after = (action.status, action.pending_status, action.pending_at, action.failure_cause, action.feedback_detail)
    return before != after


def adopt_orphan_events(*, remote_action_ids: list[str] | None = None) -> int:
    """Attach events that arrived before their action's id was known; recompute those actions."""
    orphans = RemoteEvent.objects.filter(action__isnull=True)
    if remote_action_ids is not None:
        orphans = orphans.filter(remote_action_id__in=remote_action_ids)
    with transaction.atomic():
        rids = list(
            orphans.filter(remote_action_id__in=RemoteAction.objects.filter(remote_action_id__isnull=False).values("remote_action_id"))
            .values_list("remote_action_id", flat=True)
            .distinct()
        )
        if not rids:
            return 0
        actions = list(RemoteAction.objects.select_for_update().filter(remote_action_id__in=rids).order_by("pk"))
        adopted = RemoteEvent.objects.filter(action__isnull=True, remote_action_id__in=rids).update(
            action_id=Subquery(RemoteAction.objects.filter(remote_action_id=OuterRef("remote_action_id")).values("pk")[:1])
        )
        _recompute(actions)
    return adopted
