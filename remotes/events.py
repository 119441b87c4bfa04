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
from django.db.models import OuterRef, Q, Subquery
from django_q.tasks import async_task

from stellantis.vocabulary import DoneStatus, EventType, RemoteType
from stellantis.webhook import ParsedEvent

from .models import CORRECTABLE_FINAL_STATUSES, FINAL_STATUSES, ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery

# Why an event of a delivery is refused when its action was sent through another callback:
# a callback's secret vouches only for the actions sent through that callback.
FOREIGN_ACTION = "action sent through another callback"


@dataclass
class ApplyResult:
    new_events: int = 0
    orphan_action_ids: list[str] = field(default_factory=list)
    changed_actions: int = 0
    # Events of the delivery refused here ([{index, error, event}], as WebhookDelivery.bad_events).
    refused: list[dict] = field(default_factory=list)


_DONE_TO_STATUS = {
    DoneStatus.SUCCESS: ActionStatus.SUCCESS,
    DoneStatus.ALREADY_DONE: ActionStatus.ALREADY_DONE,
    DoneStatus.FAILED: ActionStatus.FAILED,
}
# Only what the derivation needs: loading whole rows (the JSON command, …) costs on every delivery.
_ACTION_FIELDS = ("id", "callback", "remote_action_id", "status", "pending_status", "pending_at", "failure_cause", "feedback_detail", "finished_at", "error", "remote_type", "vehicle_id")
_DERIVED_FIELDS = ("status", "pending_status", "pending_at", "failure_cause", "feedback_detail", "finished_at", "error")
EventRow = namedtuple("EventRow", "pk action_id remote_action_id event_type status event_date failure_cause feedback_detail delivery_id")


def _event_rows(**filters) -> list[EventRow]:
    return [EventRow(*row) for row in RemoteEvent.objects.filter(**filters).order_by("event_date", "pk").values_list(*EventRow._fields)]


def numbered(events: list[ParsedEvent], positions: list[int] | None = None) -> list[tuple[int, ParsedEvent]]:
    """Each event with its index in the delivery's `events` (`positions`, default 0, 1, …), each key once.

    Like `distinct_events` (an insert's ON CONFLICT cannot see its own rows), keeping the index
    a refusal names. Both twins (here and `pg_ingest`) number events this way.
    """
    seen, out = set(), []
    for index, e in zip(range(len(events)) if positions is None else positions, events, strict=True):
        if e.key not in seen:
            seen.add(e.key)
            out.append((index, e))
    return out


def refusal(index: int, e: ParsedEvent) -> dict:
    """A delivery's event refused for its action's callback, as kept in `bad_events` (TWIN: `pg_ingest`, `refused`)."""
    return {
        "index": index,
        "error": FOREIGN_ACTION,
        "event": {
            "remote_action_id": e.remote_action_id, "vin": e.vin, "remote_type": e.remote_type,
            "event_type": e.event_type, "status": e.status, "event_date": e.event_date.isoformat(),
        },
    }


def apply_events(events: list[ParsedEvent], *, delivery=None, positions: list[int] | None = None) -> ApplyResult:
    """Store events (a duplicate is a no-op) and recompute their actions' status.

    A constant number of queries whatever the batch size: lock the actions, insert the
    events, read back every event of those actions, write the actions that changed.
    Must run inside a transaction: the row locks keep two deliveries for one action from
    interleaving their recomputations (the later one sees both sets of events).
    `new_events` counts this delivery's events that were stored (not duplicates).

    With a `delivery`, its callback's secret vouched for it and for nothing else: an event
    whose action was sent through another callback is not stored and moves nothing; it is
    returned in `refused` (its index: from `positions`, the events' places in the body).
    Without one (reconciliation reads the vendor back itself) every event applies.
    """
    result = ApplyResult()
    if not events:
        return result
    events_numbered = numbered(events, positions)
    rids = sorted({e.remote_action_id for _, e in events_numbered})
    found = {
        a.remote_action_id: a
        for a in RemoteAction.objects.select_for_update().only(*_ACTION_FIELDS).filter(remote_action_id__in=rids).order_by("pk")
    }
    if delivery is None:
        actions = found
    else:
        actions = {rid: a for rid, a in found.items() if a.callback_id == delivery.callback_id}
        result.refused = [refusal(i, e) for i, e in events_numbered if e.remote_action_id in found and e.remote_action_id not in actions]
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
        for e in sorted((e for _, e in events_numbered), key=lambda e: e.key)
        if e.remote_action_id in actions or e.remote_action_id not in found
    ]
    RemoteEvent.objects.bulk_create(fresh, ignore_conflicts=True)
    rids = [rid for rid in rids if rid in actions or rid not in found]
    rows = _event_rows(remote_action_id__in=rids)
    if delivery is not None:
        result.new_events = sum(1 for r in rows if r.delivery_id == delivery.pk)
    result.orphan_action_ids = [rid for rid in rids if rid not in found]
    if actions:
        unattached = [r for r in rows if r.action_id is None and r.remote_action_id in actions]
        if unattached:  # stored before their action's id was known: attach the ones its callback vouched for
            adoptable = _adoptable(unattached, {rid: a.callback_id for rid, a in actions.items()})
            if adoptable:
                RemoteEvent.objects.filter(pk__in=[r.pk for r in adoptable], action__isnull=True).update(
                    action_id=Subquery(RemoteAction.objects.filter(remote_action_id=OuterRef("remote_action_id")).values("pk")[:1])
                )
            adopted = {r.pk for r in adoptable}
            rows = [r._replace(action_id=actions[r.remote_action_id].pk) if r.pk in adopted else r for r in rows]
        result.changed_actions = _recompute(list(actions.values()), rows)
    return result


def _adoptable(rows: list[EventRow], callback_of: dict[str, int]) -> list[EventRow]:
    """The early events an action may take: brought by a delivery of the action's own callback, or by none (read back)."""
    deliveries = {r.delivery_id for r in rows if r.delivery_id is not None}
    sent_by = dict(WebhookDelivery.objects.filter(pk__in=deliveries).values_list("pk", "callback_id")) if deliveries else {}
    return [r for r in rows if r.delivery_id is None or sent_by.get(r.delivery_id, -1) == callback_of[r.remote_action_id]]


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
    """Attach events that arrived before their action's id was known; recompute those actions.

    Only the events a delivery of the action's own callback brought (or none: read back from
    Stellantis); another callback's secret vouches for nothing about this action. A delivery
    row that is gone (its pointer dangles) vouches for nothing either.
    """
    same_callback = RemoteAction.objects.filter(remote_action_id=OuterRef("remote_action_id")).values("callback_id")[:1]
    orphans = RemoteEvent.objects.filter(action__isnull=True).filter(
        Q(delivery__isnull=True) | Q(delivery__callback_id=Subquery(same_callback))
    )
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
        adopted = orphans.filter(remote_action_id__in=rids).update(
            action_id=Subquery(RemoteAction.objects.filter(remote_action_id=OuterRef("remote_action_id")).values("pk")[:1])
        )
        _recompute(actions)
    return adopted
