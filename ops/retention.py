"""Retention: what the portal forgets, and when (docs/operations.md, "Retention and personal data").

Each kind has a limit in days from settings (`RETENTION_*_DAYS`, 0 = kept forever):
- raw webhook deliveries (30): except flagged ones (partial, unparseable, failed) nobody has
  marked reviewed yet (`WebhookDelivery.reviewed_at`, the admin's "Mark reviewed");
- q2 task results (30): django-q2 already keeps at most `save_limit` successes; failures pile up;
- vehicle positions (90): `VehicleStatus` is one row per vehicle, the latest status read, so
  the row stays (it is the latest per vehicle) and only a position older than the limit is
  cleared from it (its fields and the raw body's `lastPosition`);
- finished actions (730) with their events, steps and push log; events never matched to an
  action go after the same time;
- the audit log: never (it is append-only; PostgreSQL refuses a DELETE on it anyway).

Why batches. The delivery table is written by every webhook delivery. One DELETE of a month
of deliveries would run for minutes, hold its row locks (and, on SQLite, the whole database's
write lock) all along, and bloat the WAL in one go. Here every batch is its own short
transaction of at most `batch_size` rows picked by primary key (keyset: `id > last`, so the
rows kept — flagged ones — are never scanned twice), with a pause between batches so the
webhook's writes interleave, and a time budget per run: the q2 task stays well under its
60 s timeout and the hourly schedule carries on where it stopped. On PostgreSQL a DELETE locks
only the rows it deletes, which no delivery in flight touches; what a batch can delay is a
re-delivery of an event of a deleted delivery (it waits for the batch's commit, milliseconds).
Each batch's transaction time is measured and reported (`KindReport.longest_batch`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Task

import audit.services as audit
from remotes.models import FINAL_STATUSES, FLAGGED_OUTCOMES, RemoteAction, RemoteEvent, WebhookDelivery
from vehicles.models import VehicleStatus

BATCH_SIZE = 2000  # deliveries and task rows per transaction: tens of milliseconds each, well under a second on a busy machine
ACTION_BATCH_SIZE = 500  # actions carry events, steps and pushes: fewer per transaction
PAUSE_SECONDS = 0.05  # between batches: the webhook's writes go first
# The q2 task's timeout is 60 s (Q_CLUSTER): stop well before, the next run continues.
TIME_BUDGET_SECONDS = 45.0

FLAGGED = FLAGGED_OUTCOMES
ERASED_POSITION_KEY = "lastPosition"  # the Status body's position (stellantis.status.parse_status)


@dataclass
class KindReport:
    kind: str
    days: int  # 0: kept forever
    due: int = 0  # what the limit says should go (dry run: what would go)
    done: int = 0  # what went (rows deleted, or positions cleared)
    kept: str = ""  # what is kept on purpose, in words
    batches: list[float] = field(default_factory=list)  # seconds each batch's transaction took
    unfinished: bool = False  # the time budget ran out: the next run carries on

    @property
    def longest_batch(self) -> float:
        return max(self.batches, default=0.0)

    def line(self, *, dry_run: bool) -> str:
        """One line of `prune` output."""
        if self.days == 0:
            return f"{self.kind}: kept forever" + (f" ({self.kept})" if self.kept else "")
        verb = "would go" if dry_run else "pruned"
        count = self.due if dry_run else self.done
        text = f"{self.kind}: {count} {verb} (older than {self.days} days)"
        if self.kept:
            text += f"; {self.kept}"
        if not dry_run and self.batches:
            text += f"; {len(self.batches)} batch(es), longest {self.longest_batch * 1000:.0f} ms"
        if self.unfinished:
            text += "; time budget spent, the next run continues"
        return text


class _Clock:
    """The run's time budget and the pause between batches."""

    def __init__(self, budget: float | None, pause: float):
        self.deadline = None if budget is None else time.monotonic() + budget
        self.pause = pause

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def rest(self) -> None:
        if self.pause:
            time.sleep(self.pause)


def _timed_batch(report: KindReport, work: Callable[[], int]) -> int:
    """Run `work` in one transaction; record how long the transaction (and its locks) lasted."""
    started = time.monotonic()
    with transaction.atomic():
        count = work()
    report.batches.append(time.monotonic() - started)
    return count


def _in(ids) -> str:
    return ", ".join(["%s"] * len(ids))


def _delete_ids(model, ids) -> int:
    """DELETE by primary key, nothing else: for tables no other row points at through the ORM."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE {model._meta.pk.column} IN ({_in(ids)})", ids)  # noqa: S608 (our names)
        return cursor.rowcount


# --- raw deliveries ----------------------------------------------------------------------------


def _deliveries_due(cutoff):
    # NOT (flagged AND not reviewed): processed ones, and flagged ones someone has reviewed.
    return WebhookDelivery.objects.filter(received_at__lt=cutoff).exclude(outcome__in=FLAGGED, reviewed_at__isnull=True)


def _prune_deliveries(report: KindReport, cutoff, clock: _Clock, batch_size: int, dry_run: bool) -> None:
    due = _deliveries_due(cutoff)
    kept = WebhookDelivery.objects.filter(received_at__lt=cutoff, outcome__in=FLAGGED, reviewed_at__isnull=True).count()
    report.kept = f"{kept} flagged kept until reviewed"
    report.due = due.count()
    if dry_run or not report.due:
        return
    # The newest delivery past the limit bounds the key range (received_at's index, backwards):
    # no batch scans the recent part of the table, whatever its size.
    upper = WebhookDelivery.objects.filter(received_at__lt=cutoff).order_by("-received_at", "-pk").values_list("pk", flat=True).first()
    events = RemoteEvent._meta.db_table
    last = 0
    while not clock.spent():
        ids = list(due.filter(pk__gt=last, pk__lte=upper).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return

        def work(ids=ids):
            # RemoteEvent.delivery is SET_NULL without a database constraint (remotes.models):
            # the pointer is cleared here, as the ORM would, in the same transaction. (The ORM's
            # own delete would first load every row, bodies included.)
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {events} SET delivery_id = NULL WHERE delivery_id IN ({_in(ids)})", ids)  # noqa: S608 (our names)
            return _delete_ids(WebhookDelivery, ids)

        report.done += _timed_batch(report, work)
        last = ids[-1]
        clock.rest()
    report.unfinished = True


# --- q2 task results ---------------------------------------------------------------------------


def _prune_tasks(report: KindReport, cutoff, clock: _Clock, batch_size: int, dry_run: bool) -> None:
    due = Task.objects.filter(stopped__lt=cutoff)
    limit = Conf.SAVE_LIMIT  # django-q2 deletes the oldest success past it as it saves a new one
    report.kept = f"django-q2 keeps at most {limit} successes besides (save_limit)" if limit > 0 else ""
    report.due = due.count()
    if dry_run:
        return
    while not clock.spent():
        ids = list(due.order_by("stopped").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        report.done += _timed_batch(report, lambda ids=ids: _delete_ids(Task, ids))
        clock.rest()
    report.unfinished = True


# --- positions in status snapshots -------------------------------------------------------------


def has_position() -> Q:
    return Q(latitude__isnull=False) | Q(longitude__isnull=False) | Q(position_at__isnull=False) | Q(raw__has_key=ERASED_POSITION_KEY)


def without_position(status: VehicleStatus) -> list[str]:
    """Clear `status`'s position (fields and raw body); the names of the fields to save."""
    status.latitude = status.longitude = status.position_at = None
    if isinstance(status.raw, dict):
        status.raw = {k: v for k, v in status.raw.items() if k != ERASED_POSITION_KEY}
    return ["latitude", "longitude", "position_at", "raw"]


def _prune_positions(report: KindReport, cutoff, clock: _Clock, batch_size: int, dry_run: bool) -> None:
    # A position is as old as the vehicle's report of it; without one, as our read of it.
    old = Q(position_at__lt=cutoff) | Q(position_at__isnull=True, fetched_at__lt=cutoff)
    due = VehicleStatus.objects.filter(old & has_position())
    report.kept = "the snapshot (latest status per vehicle) stays, only its position is cleared"
    report.due = due.count()
    if dry_run:
        return
    while not clock.spent():
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return

        def work(ids=ids):
            # Locked and filtered again: a State refresh that wrote a fresh position since the
            # ids were read keeps it (the row no longer matches).
            rows = list(due.filter(pk__in=ids).select_for_update())
            fields = []
            for status in rows:
                fields = without_position(status)
            if rows:
                VehicleStatus.objects.bulk_update(rows, fields)
            return len(rows)

        report.done += _timed_batch(report, work)
        clock.rest()
    report.unfinished = True


# --- finished actions ----------------------------------------------------------------------------


def _prune_actions(report: KindReport, cutoff, clock: _Clock, batch_size: int, dry_run: bool) -> None:
    due = RemoteAction.objects.filter(created_at__lt=cutoff, status__in=FINAL_STATUSES)
    # Early arrivals never matched to an action: nobody's, and as old.
    orphans = RemoteEvent.objects.filter(action__isnull=True, received_at__lt=cutoff)
    report.due = due.count()
    orphan_count = orphans.count()
    report.kept = "with their events, steps and push log" + (f"; {orphan_count} unmatched event(s) too" if orphan_count else "")
    if dry_run:
        return
    size = min(batch_size, ACTION_BATCH_SIZE)
    while not clock.spent():
        ids = list(due.order_by("created_at").values_list("pk", flat=True)[:size])
        if not ids:
            break
        # The ORM's cascade: events, steps and pushes.PushDelivery rows go with their action.
        report.done += _timed_batch(report, lambda ids=ids: due.filter(pk__in=ids).delete()[1].get(RemoteAction._meta.label, 0))
        clock.rest()
    else:
        report.unfinished = True
        return
    while not clock.spent():
        ids = list(orphans.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        _timed_batch(report, lambda ids=ids: _delete_ids(RemoteEvent, ids))
        clock.rest()
    report.unfinished = True


# --- the run -------------------------------------------------------------------------------------

KINDS: list[tuple[str, str, Callable]] = [
    # (name in the output, setting, pruner) — deliveries first: they grow fastest.
    ("raw webhook deliveries", "RETENTION_DELIVERIES_DAYS", _prune_deliveries),
    ("q2 task results", "RETENTION_TASKS_DAYS", _prune_tasks),
    ("vehicle positions", "RETENTION_SNAPSHOTS_DAYS", _prune_positions),
    ("finished actions", "RETENTION_ACTIONS_DAYS", _prune_actions),
]
AUDIT_KIND = "audit log"


def prune(
    *, dry_run: bool = False, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, pause: float = PAUSE_SECONDS,
    budget: float | None = TIME_BUDGET_SECONDS,
) -> list[KindReport]:
    """Apply every kind's retention limit in short batches; with `dry_run`, only count.

    A report per kind, the audit log's last (never pruned). `budget`: seconds for the whole
    run (None: until done); what is left goes on the next run.
    """
    now = now or timezone.now()
    clock = _Clock(budget, pause)
    reports = []
    for kind, setting, pruner in KINDS:
        days = getattr(settings, setting)
        report = KindReport(kind=kind, days=days)
        if days == 0:
            report.kept = f"{setting}=0"
        else:
            pruner(report, now - dt.timedelta(days=days), clock, batch_size, dry_run)
        reports.append(report)
    reports.append(KindReport(kind=AUDIT_KIND, days=0, kept="never pruned: append-only"))
    if not dry_run and any(r.done for r in reports):
        # The clean-up itself is on the record: how many of what, by which limits. One entry per
        # run, after its batches (each committed on its own, so not in their transactions).
        audit.record(
            "retention.pruned", actor=None,
            changes={r.kind: [None, r.done] for r in reports if r.done},
            reason="; ".join(r.line(dry_run=False) for r in reports if r.done),
        )
    return reports


def summary(reports: list[KindReport]) -> dict:
    """What a q2 task returns (kept in its result): counts and the longest batch per kind."""
    return {
        r.kind: {"pruned": r.done, "longest_batch_ms": round(r.longest_batch * 1000), "unfinished": r.unfinished}
        for r in reports
        if r.days
    }
