"""Bulk requests: create (one short request), expand, dispatch, cancel, retry, settle, tell.

- `create_bulk` validates the command and the requester's rights, stores the selection and
  enqueues `bulk.tasks.run` after commit. `forecast` is the dry run: the same checks, nothing
  written.
- `run` (a q2 task) holds the bulk's lease for one bounded slice of work: it expands the
  selection into items, chunk by chunk, refusing with a cause what a single command would
  refuse (`Checker`), then dispatches the waiting items chunk by chunk: each gets its
  `RemoteAction` only now, and the chunk is submitted through
  `remotes.services.submit_remote_action` by a few threads sharing one client (every safety
  rule of a single command: claim before POST, after commit, ambiguous → look up by label,
  TTL at send time). It re-arms itself while work remains; `sweep` re-arms a bulk whose
  worker went silent.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail, send_mass_mail
from django.db import connection, transaction
from django.db.models import Count, Q
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from accounts import access
from accounts.access import TokenUser, token_access
from audit import services as audit
from callbacks.models import Callback
from core.errors import ServiceError
from core.sql import insert_all, update_each
from remotes import services as remotes
from remotes.approvals import approvers_to_tell
from remotes.capabilities import availability
from remotes.models import FINAL_STATUSES, ActionStatus, ActionStep, RemoteAction, Source
from remotes.reachability import month_start
from remotes.signals import status_changed_on_commit
from stellantis import behaviour
from stellantis.client import FleetClient
from stellantis.remotes import Command, describe, is_dangerous
from stellantis.vocabulary import FailureCause
from vehicles.filters import with_stolen
from vehicles.listing import matching
from vehicles.models import Fleet, Vehicle

from .models import OPEN_STATUSES, BulkItem, BulkLane, BulkRequest, BulkStatus, ItemState, Selection

log = logging.getLogger(__name__)

RUN_TASK = "bulk.tasks.run"
LANE_TASK = "bulk.tasks.run_lane"
NOTIFY_TASK = "bulk.tasks.notify_finished"
APPROVERS_TASK = "bulk.tasks.notify_approvers"

# Why a vehicle of the selection gets nothing, in the words people read (dry run, progress page, API).
CAUSES = {
    "not_allowed": "You may not send this command to this vehicle's fleet.",
    "not_capable": "The vehicle cannot do this (motorization, subscription or capabilities).",
    "no_callback": "No running callback of its fleet serves this command: its outcome could never reach us.",
    "stolen": "Reported stolen: Stellantis takes only stolen and immobilization commands from it.",
    "no_wake_ups": "Asleep with no wake-ups left this month (a command failed with \"Too many wake-ups\" this month).",
    "rate_limit": "Beyond today's call budget at Stellantis (its daily rate limit).",
    "window_closed": "The sending window closed before its turn came.",
}
# What retry-failed sends again: outcomes where nothing was done and sending again is safe to try.
RETRYABLE = (ActionStatus.FAILED, ActionStatus.EXPIRED, ActionStatus.ERROR, ActionStatus.REJECTED)
OPEN_ACTION = [s for s in ActionStatus.values if s not in FINAL_STATUSES]


class BulkError(ServiceError):
    pass


class NotFoundInSelection(BulkError):
    status, code = 400, "unknown_vins"


class NothingToRetry(BulkError):
    status, code = 409, "nothing_to_retry"


class NotOpen(BulkError):
    status, code = 409, "not_cancellable"


# --- who asked ------------------------------------------------------------------------------


def requester_of(bulk: BulkRequest):
    """The person, or the token's stand-in with its rights of today, a bulk acts for."""
    token = bulk.requested_by_token
    if token is not None:
        return TokenUser(token, token_access(token) if token.is_usable else access.Access(by_token=True))
    return bulk.requested_by


# --- the per-vehicle checks ---------------------------------------------------------------


def day_limit() -> int:
    return settings.BULK_VENDOR_DAY_LIMIT


def day_budget_left(*, exclude_bulk=None) -> int | None:
    """Calls left today under the vendor's daily limit (None: no limit known): commands created in
    the last 24 h and those waiting in other bulk requests count against it."""
    limit = day_limit()
    if not limit:
        return None
    since = timezone.now() - dt.timedelta(days=1)
    used = RemoteAction.objects.filter(created_at__gte=since).count()
    waiting = BulkItem.objects.filter(state=ItemState.WAITING, bulk__status__in=OPEN_STATUSES)
    if exclude_bulk is not None:
        waiting = waiting.exclude(bulk_id=exclude_bulk)
    return max(0, limit - used - waiting.count())


@dataclass
class Verdict:
    vehicle: Vehicle
    callback: Callback | None = None
    cause: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.cause)


class Checker:
    """The checks of a single command (`remotes.services.request_remote`), for many vehicles at
    once: per fleet once (permission, callback), per chunk one query (stolen, wake-ups spent)."""

    def __init__(self, *, command: Command, by, budget: int | None = None):
        self.command = command
        self.by = by
        self.rights = access.access_of(by) if by is not None else access.ALL_ACCESS
        self.ability = remotes.command_ability(command)
        self.budget = budget
        self._fleets: dict[int, tuple[bool, Callback | None]] = {}

    def _fleet(self, fleet: Fleet):
        if fleet.pk not in self._fleets:
            allowed = self.by is None or self.rights.may(self.ability, fleet)
            callbacks = Callback.objects.serving(fleet, self.command.remote_type)
            self._fleets[fleet.pk] = (allowed, callbacks[0] if callbacks else None)
        return self._fleets[fleet.pk]

    def check(self, vehicles: list[Vehicle]) -> list[Verdict]:
        ids = [v.pk for v in vehicles]
        member = self.command.member
        stolen = set()
        if member not in behaviour.ALLOWED_WHILE_STOLEN:
            stolen = set(with_stolen(Vehicle.objects.filter(pk__in=ids)).filter(stolen=True).values_list("pk", flat=True))
        spent = set(
            RemoteAction.objects.filter(
                vehicle_id__in=ids, failure_cause=FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH, created_at__gte=month_start(timezone.now())
            ).values_list("vehicle_id", flat=True)
        )
        out = []
        for vehicle in vehicles:
            allowed, callback = self._fleet(vehicle.fleet)
            verdict = Verdict(vehicle, callback)
            if not allowed:
                verdict.cause = "not_allowed"
            elif not availability(vehicle, member).available:
                verdict.cause = "not_capable"
            elif callback is None:
                verdict.cause = "no_callback"
            elif vehicle.pk in stolen:
                verdict.cause = "stolen"
            elif vehicle.pk in spent:
                verdict.cause = "no_wake_ups"
            elif self.budget is not None:
                if self.budget <= 0:
                    verdict.cause = "rate_limit"
                else:
                    self.budget -= 1
            out.append(verdict)
        return out


# --- selection ------------------------------------------------------------------------------


def _by_vins(by, vins) -> tuple:
    clean = [str(v).strip().upper() for v in vins if str(v).strip()]
    unique = list(dict.fromkeys(clean))
    found = Vehicle.objects.visible_to(by).filter(vin__in=unique)
    count = found.count()
    if count != len(unique):
        known = set(found.values_list("vin", flat=True))
        # By position, not by value: an answer never repeats a VIN (the leak walk's rule).
        missing = [f"vins[{i}]" for i, v in enumerate(clean) if v not in known]
        shown = ", ".join(missing[:10]) + ("…" if len(missing) > 10 else "")
        raise NotFoundInSelection(
            f"{len(missing)} VIN(s) unknown (or not in your fleets): {shown}", errors={"vins": f"Unknown VIN(s) at {shown}"}
        )
    return unique, found


def selected(bulk: BulkRequest, by=None):
    """The vehicles a bulk's selection names, as its requester may see them today."""
    by = by if by is not None else requester_of(bulk)
    if bulk.selection == Selection.VINS:
        qs = Vehicle.objects.visible_to(by).filter(vin__in=bulk.vins)
    elif bulk.selection == Selection.FLEET:
        qs = Vehicle.objects.visible_to(by).filter(fleet_id=bulk.fleet_id)
    else:
        qs = matching(by, QueryDict(bulk.filter_query))
    return qs


# --- the dry run ----------------------------------------------------------------------------


@dataclass
class Forecast:
    total: int
    to_send: int
    awaiting_approval: int
    refused: dict[str, int] = field(default_factory=dict)
    concurrency: int = 1
    seconds: float = 0.0

    @property
    def refusals(self) -> list[dict]:
        return [{"cause": c, "count": n, "reason": CAUSES[c]} for c, n in sorted(self.refused.items(), key=lambda kv: -kv[1])]

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def duration_words(self) -> str:
        return duration_words(self.seconds)

    def as_dict(self) -> dict:
        return {
            "dry_run": True, "total": self.total, "to_send": self.to_send, "awaiting_approval": self.awaiting_approval,
            "refused": sum(self.refused.values()), "refusals": self.refusals, "concurrency": self.concurrency,
            "estimated_seconds": round(self.seconds, 1), "estimated_duration": self.duration_words,
        }


def duration_words(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def concurrency() -> int:
    """Submissions in flight at once per dispatcher (lane): BULK_CONCURRENCY, and all the lanes of
    a bulk together never above the vendor's burst limit."""
    limit = settings.BULK_CONCURRENCY
    burst = settings.BULK_VENDOR_BURST_LIMIT
    return max(1, min(limit, burst // max(settings.BULK_LANES, 1)) if burst else limit)


def estimated_seconds(count: int) -> float:
    """How long `count` POSTs take at the vendor's pace: `concurrency()` in flight, each taking
    BULK_EXPECTED_LATENCY_MS, and never more per second than the burst limit."""
    if count <= 0:
        return 0.0
    latency = max(settings.BULK_EXPECTED_LATENCY_MS, 1) / 1000
    rate = concurrency() / latency
    if settings.BULK_VENDOR_BURST_LIMIT:
        rate = min(rate, settings.BULK_VENDOR_BURST_LIMIT)
    return count / rate


def _would_wait_for_approval(command: Command, organisation) -> bool:
    return is_dangerous(command) and organisation is not None and organisation.needs_approval(command.member)


def forecast(*, command: Command, by, vehicles, organisation) -> Forecast:
    checker = Checker(command=command, by=by, budget=day_budget_left())
    total, refused, ok = 0, Counter(), 0
    qs = vehicles.select_related("fleet").order_by("pk")
    last = 0
    while True:
        chunk = list(qs.filter(pk__gt=last)[: settings.BULK_CHUNK])
        if not chunk:
            break
        last = chunk[-1].pk
        for verdict in checker.check(chunk):
            total += 1
            if verdict.refused:
                refused[verdict.cause] += 1
            else:
                ok += 1
    awaiting = ok if _would_wait_for_approval(command, organisation) else 0
    return Forecast(
        total=total, to_send=ok - awaiting, awaiting_approval=awaiting, refused=dict(refused),
        concurrency=concurrency(), seconds=estimated_seconds(ok - awaiting),
    )


# --- creating -------------------------------------------------------------------------------


@dataclass
class Draft:
    """A validated bulk request not yet stored: what `create_bulk` stores, what a dry run checks."""

    command: Command
    reason: str
    selection: str
    vehicles: object  # queryset
    organisation: object
    fleet: Fleet | None
    vins: list = field(default_factory=list)
    filter_query: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None


def draft(
    *, by, command, selection: str, vins=None, filter_query: str = "", fleet: Fleet | None = None, reason: str = "",
    not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
) -> Draft:
    """Validate a bulk request: the command (the same rules as a single one), the reason, the
    window, the selection; refuse one its requester may not send to any of its fleets."""
    command = remotes.to_command(command)
    reason = remotes.check_reason(command, reason)
    now = timezone.now()
    not_before = not_before or now
    not_after = not_after or max(not_before, now) + dt.timedelta(seconds=settings.REMOTE_ACTION_TTL)
    if not_after <= not_before or not_after <= now:
        raise BulkError("The sending window ends before it starts, or is already over.", errors={"not_after": "Must be after not_before and in the future."})
    if selection == Selection.VINS:
        vins, vehicles = _by_vins(by, vins or [])
        if not vins:
            raise BulkError("Choose at least one vehicle.", errors={"vins": "At least one VIN is required."})
    elif selection == Selection.FLEET:
        if fleet is None:
            raise BulkError("Which fleet?", errors={"fleet": "Unknown fleet."})
        vehicles = Vehicle.objects.visible_to(by).filter(fleet=fleet)
    elif selection == Selection.FILTER:
        vehicles = matching(by, QueryDict(filter_query))
    else:
        raise BulkError("Choose the vehicles: VINs, a filter or a fleet.", errors={"selection": "One of vins, filter, fleet."})
    fleet_ids = list(vehicles.order_by().values_list("fleet_id", flat=True).distinct()[:1000])
    if not fleet_ids:
        raise BulkError("The selection names no vehicle.", errors={"vins" if selection == Selection.VINS else "selection": "No vehicle selected."})
    fleets = list(Fleet.objects.filter(pk__in=fleet_ids).select_related("organisation"))
    organisations = {f.organisation_id for f in fleets}
    if len(organisations) != 1 or None in organisations:
        raise BulkError("A bulk request covers the fleets of one organisation.", errors={"selection": "Vehicles of several organisations."})
    ability = remotes.command_ability(command)
    rights = access.access_of(by)
    if by is not None and not any(rights.may(ability, f) for f in fleets):
        raise remotes.NotAllowed(f"{command.remote_type.label}: {rights.why_not(ability, fleets[0])}")
    return Draft(
        command=command, reason=reason, selection=selection, vehicles=vehicles, organisation=fleets[0].organisation,
        fleet=fleets[0] if len(fleets) == 1 else None, vins=vins or [], filter_query=filter_query,
        not_before=not_before, not_after=not_after,
    )


def create_bulk(*, by, draft: Draft, source: str = Source.SYSTEM, retry_of: BulkRequest | None = None) -> BulkRequest:
    """Store a validated bulk request and start it after commit. Short whatever its size: the
    selection is kept as it was given and expanded in the background."""
    with transaction.atomic():
        bulk = BulkRequest.objects.create(
            organisation=draft.organisation, fleet=draft.fleet, command=draft.command.as_dict(), remote_type=draft.command.remote_type,
            selection=draft.selection, vins=draft.vins, filter_query=draft.filter_query[:2000],
            requested_by=remotes.person_of(by), requested_by_token=getattr(by, "token", None), source=source, reason=draft.reason,
            not_before=draft.not_before, not_after=draft.not_after, retry_of=retry_of,
            total=len(draft.vins) if draft.selection == Selection.VINS else draft.vehicles.count(),
        )
        audit.record("bulk.requested", actor=by, organisation=draft.organisation, obj=bulk, reason=draft.reason)
        transaction.on_commit(lambda: arm(bulk.pk))
    return bulk


def arm(bulk_id, *, at: dt.datetime | None = None) -> None:
    if at is None or at <= timezone.now():
        async_task(RUN_TASK, str(bulk_id), task_name=f"bulk-{bulk_id}-{time.monotonic_ns()}")
        return
    Schedule.objects.create(
        name=f"bulk-{bulk_id}-{at.timestamp():.0f}", func=RUN_TASK, args=repr(str(bulk_id)),
        schedule_type=Schedule.ONCE, repeats=1, next_run=at,
    )


# --- the background work --------------------------------------------------------------------


def _claim(bulk_id, seconds: float) -> bool:
    now = timezone.now()
    return (
        BulkRequest.objects.filter(pk=bulk_id, status__in=OPEN_STATUSES)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + dt.timedelta(seconds=seconds + 60), worked_at=now)
        == 1
    )


_settled = threading.Lock()  # held for good once this process's long-lived objects are set aside


def _set_aside_long_lived_objects() -> None:
    """Once per process: collect, then freeze what survives (Django's models, URLs, templates…) out
    of the cyclic garbage collector's reach. A full collection stops every thread of the process, and
    a dispatcher creates enough objects for one every second or so: it walked all of those for
    30-50 ms each time, during which no command left (docs/benchmarks.md, "Bulk dispatch"). Frozen
    objects are still freed when no longer referenced; only a cycle among them would stay."""
    if _settled.acquire(blocking=False):
        gc.collect()
        gc.freeze()


def run(bulk_id, *, slice_seconds: float | None = None, client: FleetClient | None = None) -> str:
    """One bounded slice of a bulk's work (expansion, then dispatch), under its lease; re-armed
    while work remains. A second worker handed the same bulk walks away."""
    slice_seconds = settings.BULK_SLICE_SECONDS if slice_seconds is None else slice_seconds
    if not _claim(bulk_id, slice_seconds):
        return "not claimed"
    _set_aside_long_lived_objects()
    deadline = time.monotonic() + slice_seconds
    again, at = False, None
    try:
        bulk = BulkRequest.objects.select_related("requested_by", "requested_by_token__user").get(pk=bulk_id)
        if bulk.status == BulkStatus.EXPANDING and timezone.now() < bulk.not_before:
            # To start later: every vehicle is checked now (the page shows what will be refused).
            again = not expand(bulk, deadline=deadline)
            bulk.refresh_from_db()
            if bulk.status == BulkStatus.DISPATCHING:
                open_lanes(bulk.pk, at=bulk.not_before)
        if bulk.status in (BulkStatus.EXPANDING, BulkStatus.DISPATCHING) and not again:
            # To start now: dispatch expands chunk by chunk as it goes (`dispatch`), so the first
            # commands leave after one chunk is checked, not after the whole selection.
            if timezone.now() < bulk.not_before:
                at = bulk.not_before
            else:
                again = not dispatch(bulk, deadline=deadline, client=client)
    finally:
        BulkRequest.objects.filter(pk=bulk_id).update(lease_until=None, worked_at=timezone.now())
    if again or at:
        arm(bulk_id, at=at)
        return "re-armed"
    settle(bulk_id)
    return "done"


def expand(bulk: BulkRequest, *, deadline: float, chunks: int | None = None, first: int | None = None) -> bool:
    """Insert the selection's items chunk by chunk (at most `chunks`), each checked; True once all are in.
    `first`: the size of the first chunk when none is checked yet (the dispatcher's, so that the
    first commands leave after a few vehicles are checked, not BULK_CHUNK)."""
    by = requester_of(bulk)
    command = Command.from_dict(bulk.command)
    checker = Checker(command=command, by=by if bulk.requested_by_id or bulk.requested_by_token_id else None)
    if day_limit():
        # Commands already created count in `day_budget_left`; this bulk's waiting items will be.
        checker.budget = max(0, day_budget_left(exclude_bulk=bulk.pk) - bulk.items.filter(state=ItemState.WAITING).count())
    qs = selected(bulk, by).select_related("fleet").order_by("pk")
    last = bulk.items.order_by("-vehicle_id").values_list("vehicle_id", flat=True).first() or 0
    done = 0
    while time.monotonic() < deadline and (chunks is None or done < chunks):
        done += 1
        if BulkRequest.objects.filter(pk=bulk.pk, status=BulkStatus.EXPANDING).count() == 0:
            return True  # cancelled meanwhile
        size = min(first, settings.BULK_CHUNK) if first and not last else settings.BULK_CHUNK
        chunk = list(qs.filter(pk__gt=last)[:size])
        if chunk:
            last = chunk[-1].pk
            items = [
                BulkItem(
                    bulk=bulk, vehicle=v.vehicle, callback=v.callback,
                    state=ItemState.REFUSED if v.refused else ItemState.WAITING, cause=v.cause, reason=CAUSES.get(v.cause, ""),
                )
                for v in checker.check(chunk)
            ]
            insert_all(items, ignore_conflicts=True)  # ignore: a second run of an interrupted chunk
        if len(chunk) < size:
            total = bulk.items.count()
            BulkRequest.objects.filter(pk=bulk.pk, status=BulkStatus.EXPANDING).update(
                status=BulkStatus.DISPATCHING, total=total, expanded=total
            )
            return True
        BulkRequest.objects.filter(pk=bulk.pk).update(expanded=bulk.items.count(), worked_at=timezone.now())
    return False


class Submitter:
    """`workers` threads POSTing actions as they are handed over, through one shared client,
    while the dispatcher creates the next ones: the vendor's latency hides the portal's own work.

    The statements go by the batch: the dispatcher creates each batch of actions already claimed
    for sending (`remotes.services.create_remote_actions(claimed=True)`), each thread POSTs one
    action at a time (`send_claimed`), and a thread of its own writes the accepted ones
    `record_every` at a time (`record_submitted`; what has gathered at least every RECORD_WITHIN
    seconds, and the rest at `close`), so no POSTing thread stops to write. The
    dispatcher creates the next batch only when the hand-over queue is short (`wait_for_room`), so
    a claimed action waits for a thread seconds, never the claim time-out. Each thread closes its
    own database connection when it is done.
    """

    RECORD_WITHIN = 0.5  # the longest an accepted action waits to be written
    WANTED_EVERY = 0.5  # how often the threads ask whether the bulk request still wants its actions sent
    claims = True  # its actions are created claimed: it sends them (bulk.testing.Holding does not)

    def __init__(self, client: FleetClient, workers: int, *, still_wanted=None):
        self.client = client
        self.workers = workers
        self.still_wanted = still_wanted  # () -> bool, one query: False once the bulk request is cancelled
        self._wanted, self._asked = True, 0.0
        self.todo: queue.Queue = queue.Queue()
        self.outcomes: Counter = Counter()
        self.record_every = max(workers, settings.BULK_CREATE_BATCH)
        self._lock = threading.Lock()
        self._room = threading.Condition()
        self._accepted: list = []  # (action, its id at Stellantis): POSTed, not written yet
        self._due = threading.Condition(self._lock)  # a batch to write, or the end
        self._closing = False
        self.threads = [threading.Thread(target=self._work, name=f"bulk-submit-{n}", daemon=True) for n in range(workers)]
        self.recorder = threading.Thread(target=self._write, name="bulk-record", daemon=True)
        for t in [*self.threads, self.recorder]:
            t.start()

    def wait_for_room(self) -> None:
        """Until at most a batch's worth waits (or one per thread, if more): then the next batch may be
        created (claimed). Enough stays queued to keep every thread busy while the next one is made."""
        low = max(self.workers, settings.BULK_CREATE_BATCH)
        with self._room:
            self._room.wait_for(lambda: self.todo.qsize() <= low)

    def put(self, actions: list[RemoteAction]) -> None:
        """Hand over a committed batch of actions created claimed."""
        for action in actions:
            self.todo.put(action)

    def _work(self) -> None:
        try:
            while (item := self.todo.get()) is not None:
                with self._room:
                    self._room.notify_all()
                self._send(item)
        finally:
            with self._room:
                self._room.notify_all()
            connection.close()

    def _write(self) -> None:
        """The recorder: writes what the vendor accepted, a batch at a time, until closed and empty."""
        try:
            while True:
                with self._due:
                    self._due.wait_for(
                        lambda: self._closing or len(self._accepted) >= self.record_every, timeout=self.RECORD_WITHIN
                    )
                    accepted, self._accepted = self._accepted, []
                    done = self._closing
                if accepted:
                    try:
                        remotes.record_submitted(accepted)
                    except Exception:  # still submitting with maybe_sent_at: the sweep finds them at Stellantis by label
                        log.exception("bulk: recording %d accepted actions failed", len(accepted))
                if done:
                    with self._lock:
                        if not self._accepted:
                            return
        finally:
            connection.close()

    def _wanted_now(self) -> bool:
        if self.still_wanted is None:
            return True
        with self._lock:
            if not self._wanted or time.monotonic() - self._asked < self.WANTED_EVERY:
                return self._wanted
            self._asked = time.monotonic()
        wanted = self.still_wanted()
        with self._lock:
            self._wanted = self._wanted and wanted
            return self._wanted

    def _send(self, action: RemoteAction) -> None:
        try:
            if not self._wanted_now():
                # Cancelled while it waited for a thread: claimed by us and never POSTed, so it ends here.
                outcome, remote_action_id = remotes.cancel_claimed(action, detail="Cancelled with its bulk request before it was sent"), None
            else:
                outcome, remote_action_id = remotes.send_claimed(action, self.client)
            if remote_action_id:
                with self._due:
                    self._accepted.append((action, remote_action_id))
                    if len(self._accepted) >= self.record_every:
                        self._due.notify()
        except Exception:  # one action's failure must not stop the others; the sweep looks it up later
            log.exception("bulk: submitting action %s failed", action.pk)
            outcome = "crashed"
        with self._lock:
            self.outcomes[outcome] += 1

    def close(self) -> Counter:
        for _ in self.threads:
            self.todo.put(None)
        for t in self.threads:
            t.join()
        with self._due:
            self._closing = True
            self._due.notify()
        self.recorder.join()
        return self.outcomes


def _client(workers: int) -> FleetClient:
    import requests

    client = FleetClient.from_settings()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(workers, 10))
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)
    return client


def _create_batch(bulk: BulkRequest, limit: int, *, command: Command, by, claim: bool = True) -> tuple[int, list[RemoteAction]]:
    """Claim up to `limit` waiting items and create their actions in one transaction: (items claimed,
    the actions to send, created claimed for sending; those awaiting approval are not among them).
    `claim=False`: created queued, for someone else to send (tests that send nothing)."""
    with transaction.atomic():
        # The claim. FOR UPDATE SKIP LOCKED (PostgreSQL): several dispatchers of one bulk (its
        # lanes) each take other items instead of queueing behind each other's locks; a cancel
        # that got there first keeps its items, one that comes later waits for this commit and
        # finds them dispatched. (SQLite has one writer at a time and ignores the clause.) The
        # items come with what their actions need, and are written once: dispatched, with their action.
        items = list(
            bulk.items.select_for_update(skip_locked=True, of=("self",))
            .filter(state=ItemState.WAITING, action__isnull=True)
            .select_related("vehicle__fleet__organisation", "callback")
            .only(*ITEM_FIELDS)
            .order_by("pk")[:limit]
        )
        if not items:
            return 0, []
        sendable = []
        for item in items:
            item.state = ItemState.DISPATCHED
            if item.callback is None or item.callback.deleted_at is not None:
                item.state, item.cause, item.reason = ItemState.REFUSED, "no_callback", CAUSES["no_callback"]
            else:
                sendable.append(item)
        actions = remotes.create_remote_actions(
            targets=[(i.vehicle, i.callback) for i in sendable], command=command, by=by, source=bulk.source,
            reason=bulk.reason, expires_at=bulk.not_after, enqueue=False, notify_approvers=False, claimed=claim,
        ) if sendable else []
        if any(a.status == ActionStatus.AWAITING_APPROVAL for a in actions) and BulkRequest.objects.filter(
            pk=bulk.pk, approvers_notified_at__isnull=True
        ).update(approvers_notified_at=timezone.now()):
            # One e-mail per approver for the whole bulk request, not one per vehicle.
            transaction.on_commit(lambda: async_task(APPROVERS_TASK, str(bulk.pk), task_name=f"bulk-approvers-{bulk.pk}"))
        for item, action in zip(sendable, actions, strict=True):
            item.action = action
        update_each(BulkItem, {i.pk: i.action_id for i in sendable}, field="action", same={"state": ItemState.DISPATCHED})
        refused = [i for i in items if i.state == ItemState.REFUSED]
        if refused:
            BulkItem.objects.filter(pk__in=[i.pk for i in refused]).update(
                state=ItemState.REFUSED, cause="no_callback", reason=CAUSES["no_callback"]
            )
    return len(items), [a for a in actions if a.status == (ActionStatus.SUBMITTING if claim else ActionStatus.QUEUED)]


# What creating and sending an item's action reads of it, and no more (the batch is read with FOR UPDATE).
ITEM_FIELDS = (
    "bulk_id", "state", "cause", "reason", "action_id",
    "vehicle__id", "vehicle__fleet_id", "vehicle__external_id", "vehicle__vin",
    "vehicle__fleet__id", "vehicle__fleet__external_id", "vehicle__fleet__organisation_id",
    "vehicle__fleet__organisation__id", "vehicle__fleet__organisation__approval_required_for", "vehicle__fleet__organisation__approval_ttl_minutes",
    "callback__id", "callback__external_id", "callback__deleted_at",
)


def dispatch(
    bulk: BulkRequest, *, deadline: float, client: FleetClient | None = None, chunks: int | None = None, expands: bool = True,
) -> bool:
    """Create and submit the waiting items' actions, chunk by chunk (at most `chunks`); True once none waits.

    Actions are created in small transactions and handed to the submitting threads as each
    commits, so creating the next ones overlaps the vendor's answers to the previous ones.
    Several dispatchers (lanes) may run this for one bulk at once: each claims other items. While
    the bulk is still being checked, the bulk's own run (`expands`) checks the next chunk of the
    selection whenever nothing waits, and opens the lanes after the first; a lane waits for it."""
    by = requester_of(bulk) if (bulk.requested_by_id or bulk.requested_by_token_id) else None
    command = Command.from_dict(bulk.command)
    workers = concurrency()
    client = client or _client(workers)
    submitter = None
    done = 0
    lanes_opened = bulk.lanes.exists()
    try:
        while time.monotonic() < deadline and (chunks is None or done < chunks):
            done += 1
            now = timezone.now()
            current = BulkRequest.objects.filter(pk=bulk.pk).values_list("status", flat=True).first()
            if current not in (BulkStatus.EXPANDING, BulkStatus.DISPATCHING):
                return True
            if now >= bulk.not_after:
                bulk.items.filter(state=ItemState.WAITING).update(state=ItemState.REFUSED, cause="window_closed", reason=CAUSES["window_closed"])
            taken = 0
            while taken < settings.BULK_DISPATCH_CHUNK:
                if submitter is None:
                    submitter = Submitter(client, workers, still_wanted=lambda: BulkRequest.objects.filter(
                        pk=bulk.pk, status__in=(BulkStatus.EXPANDING, BulkStatus.DISPATCHING, BulkStatus.SENT)).exists())
                submitter.wait_for_room()
                claimed, to_send = _create_batch(
                    bulk, min(settings.BULK_CREATE_BATCH, settings.BULK_DISPATCH_CHUNK - taken), command=command, by=by,
                    claim=submitter.claims,
                )
                if not claimed:
                    break
                taken += claimed
                submitter.put(to_send)
            if not taken:
                if current == BulkStatus.EXPANDING:
                    if not expands:
                        time.sleep(0.05)  # a lane: the bulk's own run is checking the next chunk
                        continue
                    # The next chunk of the selection, checked while the threads send the last one's;
                    # after the first, more dispatchers (lanes) may help send.
                    expand(bulk, deadline=deadline, chunks=1, first=2 * settings.BULK_CREATE_BATCH)
                    if not lanes_opened:
                        open_lanes(bulk.pk)
                        lanes_opened = True
                    continue
                if bulk.items.filter(state=ItemState.WAITING).exists():
                    time.sleep(0.05)  # another lane holds the last ones: they are about to be dispatched
                    continue
                if submitter is not None:
                    submitter.close()  # every hand-over answered before the bulk says "sent"
                    submitter = None
                if BulkRequest.objects.filter(pk=bulk.pk, status=BulkStatus.DISPATCHING).update(status=BulkStatus.SENT, sent_at=now):
                    log.info("bulk %s: every command handed over", bulk.pk)
                return True
            BulkRequest.objects.filter(pk=bulk.pk).update(worked_at=timezone.now())
    finally:
        if submitter is not None:
            submitter.close()
    return False


# --- lanes: more dispatchers for one bulk when more workers are there ---------------------------


def open_lanes(bulk_id, *, at: dt.datetime | None = None) -> None:
    """Give a bulk that starts dispatching BULK_LANES - 1 more dispatchers beside its own run.

    Each lane is a q2 task under its own lease (a `BulkLane` row), so it runs on whichever
    worker is free — another q2 cluster's included: that is what makes a second cluster add
    throughput to one bulk. A lane that dies only costs speed: the bulk's own run (and the
    sweep behind it) dispatches everything anyway."""
    numbers = range(1, settings.BULK_LANES)
    if not numbers:
        return
    BulkLane.objects.bulk_create([BulkLane(bulk_id=bulk_id, number=n) for n in numbers], ignore_conflicts=True)
    for n in numbers:
        arm_lane(bulk_id, n, at=at)


def arm_lane(bulk_id, number: int, *, at: dt.datetime | None = None) -> None:
    if at is None or at <= timezone.now():
        async_task(LANE_TASK, str(bulk_id), number, task_name=f"bulk-{bulk_id}-lane{number}-{time.monotonic_ns()}")
        return
    Schedule.objects.create(
        name=f"bulk-{bulk_id}-lane{number}-{at.timestamp():.0f}", func=LANE_TASK, args=f"{str(bulk_id)!r}, {number}",
        schedule_type=Schedule.ONCE, repeats=1, next_run=at,
    )


def run_lane(bulk_id, number: int, *, slice_seconds: float | None = None, client: FleetClient | None = None) -> str:
    """One bounded slice of dispatch by lane `number` of a bulk, under the lane's lease; re-armed while items wait."""
    slice_seconds = settings.BULK_SLICE_SECONDS if slice_seconds is None else slice_seconds
    now = timezone.now()
    lease = BulkLane.objects.filter(bulk_id=bulk_id, number=number).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
    if not lease.update(lease_until=now + dt.timedelta(seconds=slice_seconds + 60)):
        return "not claimed"
    _set_aside_long_lived_objects()
    again, at = False, None
    try:
        bulk = BulkRequest.objects.select_related("requested_by", "requested_by_token__user").get(pk=bulk_id)
        if bulk.status not in (BulkStatus.EXPANDING, BulkStatus.DISPATCHING):
            return "nothing to dispatch"
        if timezone.now() < bulk.not_before:
            at = bulk.not_before
        else:
            again = not dispatch(bulk, deadline=time.monotonic() + slice_seconds, client=client, expands=False)
    finally:
        BulkLane.objects.filter(bulk_id=bulk_id, number=number).update(lease_until=None)
    if again or at:
        arm_lane(bulk_id, number, at=at)
        return "re-armed"
    return "done"


def settle(bulk_id) -> bool:
    """A bulk whose every command has its final word is finished; tell its requester (once)."""
    now = timezone.now()
    open_items = BulkItem.objects.filter(bulk_id=bulk_id).filter(Q(state=ItemState.WAITING) | Q(action__status__in=OPEN_ACTION))
    if open_items.exists():
        return False
    with transaction.atomic():
        moved = BulkRequest.objects.filter(pk=bulk_id, status=BulkStatus.SENT).update(status=BulkStatus.FINISHED, finished_at=now)
        if moved:
            transaction.on_commit(lambda: async_task(NOTIFY_TASK, str(bulk_id), task_name=f"bulk-notify-{bulk_id}"))
    return bool(moved)


def sweep() -> dict:
    """Re-arm bulks whose worker went silent (or never started); finish those whose outcomes are in."""
    now = timezone.now()
    quiet = now - dt.timedelta(seconds=30)
    stalled = list(
        BulkRequest.objects.filter(status__in=OPEN_STATUSES, not_before__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(worked_at__isnull=True, created_at__lt=quiet) | Q(worked_at__lt=quiet))
        .values_list("pk", flat=True)[:100]
    )
    for pk in stalled:
        arm(pk)
    finished = sum(settle(pk) for pk in BulkRequest.objects.filter(status=BulkStatus.SENT).values_list("pk", flat=True)[:200])
    return {"rearmed": len(stalled), "finished": finished}


# --- cancel, retry ---------------------------------------------------------------------------


def may_act_on(bulk: BulkRequest, by) -> str:
    """Empty when `by` may cancel or retry `bulk`: its requester, or anyone who may command its fleets."""
    person = remotes.person_of(by)
    if person is not None and person.pk == bulk.requested_by_id and getattr(by, "token", None) is None:
        return ""
    rights = access.access_of(by)
    fleets = [bulk.fleet] if bulk.fleet else list(Fleet.objects.filter(organisation=bulk.organisation))
    ability = remotes.command_ability(Command.from_dict(bulk.command))
    if any(rights.may(ability, f) for f in fleets):
        return ""
    return rights.why_not(ability, fleets[0]) if fleets else "You may not act on this bulk request."


def cancel(bulk: BulkRequest, *, by) -> dict:
    """Stop what has not been sent: waiting items, and actions queued but not yet claimed (or
    waiting for approval). What is already at Stellantis goes on, and so do the few the
    dispatcher has created (claimed) and is sending at this moment."""
    why = may_act_on(bulk, by)
    if why:
        raise remotes.NotAllowed(why)
    now = timezone.now()
    words = f"Cancelled with its bulk request by {audit.actor_name(by)}"
    with transaction.atomic():
        BulkRequest.objects.filter(pk=bulk.pk, status__in=(*OPEN_STATUSES, BulkStatus.SENT)).update(
            status=BulkStatus.CANCELLED, finished_at=now
        )
        items = bulk.items.filter(state=ItemState.WAITING).update(state=ItemState.CANCELLED)
        candidates = list(
            RemoteAction.objects.filter(bulk_item__bulk=bulk)
            .filter(Q(status=ActionStatus.QUEUED, claimed_at__isnull=True) | Q(status=ActionStatus.AWAITING_APPROVAL))
            .values_list("pk", "status")
        )
        actions = 0
        for pk, status in candidates:
            # Conditional, like remotes.approvals: a worker that claimed it first keeps it.
            moved = RemoteAction.objects.filter(pk=pk, status=status, claimed_at__isnull=True).update(
                status=ActionStatus.CANCELLED, finished_at=now, error=words[:500],
                **({"decision": "cancelled"} if status == ActionStatus.AWAITING_APPROVAL else {}),
            )
            if moved:
                actions += 1
                ActionStep.objects.create(action_id=pk, status=ActionStatus.CANCELLED, at=now, detail=words[:500])
                status_changed_on_commit(pk, ActionStatus.CANCELLED)
        audit.record("bulk.cancelled", actor=by, organisation=bulk.organisation_id, obj=bulk)
        transaction.on_commit(lambda: async_task(NOTIFY_TASK, str(bulk.pk), task_name=f"bulk-notify-{bulk.pk}"))
    return {"items": items, "actions": actions}


def retry_failed(bulk: BulkRequest, *, by, source: str = Source.SYSTEM) -> BulkRequest:
    """A new bulk request of just the vehicles whose command failed, expired, errored or was rejected."""
    why = may_act_on(bulk, by)
    if why:
        raise remotes.NotAllowed(why)
    vins = list(bulk.items.filter(action__status__in=RETRYABLE).order_by("pk").values_list("vehicle__vin", flat=True))
    if not vins:
        raise NothingToRetry("No command of this bulk request failed: nothing to retry.")
    new = draft(by=by, command=bulk.command, selection=Selection.VINS, vins=vins, reason=bulk.reason)
    return create_bulk(by=by, draft=new, source=source, retry_of=bulk)


# --- reading ---------------------------------------------------------------------------------

# counts: the API's keys (keep stable). "queued" holds items not dispatched yet too; "success"
# holds "already done" (also shown on its own); "submitted" is at Stellantis without a final word.
COUNT_KEYS = (
    "queued", "awaiting_approval", "submitted", "success", "already_done", "failed", "rejected", "expired", "error",
    "unknown", "cancelled", "refused",
)
COUNT_LABELS = {
    "queued": "Queued", "awaiting_approval": "Waiting for approval", "submitted": "At Stellantis", "success": "Success",
    "already_done": "of which already done", "failed": "Failed", "rejected": "Rejected", "expired": "Expired",
    "error": "Error", "unknown": "Outcome unknown", "cancelled": "Cancelled", "refused": "Refused",
}
_BY_ACTION = {
    ActionStatus.QUEUED: "queued", ActionStatus.SUBMITTING: "queued", ActionStatus.AWAITING_APPROVAL: "awaiting_approval",
    ActionStatus.SUBMITTED: "submitted", ActionStatus.PENDING: "submitted", ActionStatus.SUCCESS: "success",
    ActionStatus.ALREADY_DONE: "already_done", ActionStatus.FAILED: "failed", ActionStatus.REJECTED: "rejected",
    ActionStatus.EXPIRED: "expired", ActionStatus.ERROR: "error", ActionStatus.UNKNOWN: "unknown", ActionStatus.CANCELLED: "cancelled",
}


def counts(bulk: BulkRequest) -> dict:
    out = dict.fromkeys(COUNT_KEYS, 0)
    items = 0
    for row in bulk.items.order_by().values("state", "action__status").annotate(n=Count("pk")):
        state, status, n = row["state"], row["action__status"], row["n"]
        items += n
        if state == ItemState.WAITING or (state == ItemState.DISPATCHED and status is None):
            out["queued"] += n
        elif state == ItemState.REFUSED:
            out["refused"] += n
        elif state == ItemState.CANCELLED:
            out["cancelled"] += n
        else:
            out[_BY_ACTION[status]] += n
    out["success"] += out["already_done"]
    if bulk.status == BulkStatus.EXPANDING:  # not expanded yet: queued too
        out["queued"] += max(0, bulk.total - items)
    return out


def progress(bulk: BulkRequest, numbers: dict | None = None) -> int:
    """Percent of the selection with its final word (sent and answered, refused or cancelled)."""
    numbers = numbers or counts(bulk)
    if bulk.status in (BulkStatus.FINISHED, BulkStatus.CANCELLED):
        return 100
    total = bulk.total or 0
    if not total:
        return 0
    done = sum(numbers[k] for k in ("success", "failed", "rejected", "expired", "error", "unknown", "cancelled", "refused")) - numbers["already_done"]
    return max(0, min(100, int(done * 100 / total)))


def refusals(bulk: BulkRequest) -> list[dict]:
    rows = bulk.items.filter(state=ItemState.REFUSED).order_by().values("cause").annotate(n=Count("pk")).order_by("-n")
    return [{"cause": r["cause"], "count": r["n"], "reason": CAUSES.get(r["cause"], r["cause"])} for r in rows]


# --- telling the requester ---------------------------------------------------------------------


def notify_finished(bulk_id) -> int:
    """E-mail the requester that their bulk request finished (or was cancelled), once."""
    bulk = BulkRequest.objects.select_related("requested_by", "requested_by_token__user").get(pk=bulk_id)
    if bulk.status not in (BulkStatus.FINISHED, BulkStatus.CANCELLED):
        return 0
    if not BulkRequest.objects.filter(pk=bulk_id, notified_at__isnull=True).update(notified_at=timezone.now()):
        return 0  # told already
    person = bulk.requested_by or (bulk.requested_by_token.user if bulk.requested_by_token else None)
    if person is None or not person.email:
        return 0
    numbers = counts(bulk)
    url = settings.PORTAL_PUBLIC_URL.rstrip("/") + reverse("bulk-detail", args=[bulk.pk])
    title = summary_title(bulk)
    verb = "was cancelled" if bulk.status == BulkStatus.CANCELLED else "has finished"
    body = (
        f"Your bulk request \"{title}\" for {bulk.total} vehicle(s) {verb}.\n\n"
        f"Success: {numbers['success']}, failed: {numbers['failed']}, refused before sending: {numbers['refused']}, "
        f"expired: {numbers['expired']}, rejected: {numbers['rejected']}, cancelled: {numbers['cancelled']}.\n\n"
        f"Details, and a button to retry the failed ones:\n{url}\n"
    )
    return send_mail(f"Bulk request {verb}: {title}", body, None, [person.email], fail_silently=False)


def notify_approvers(bulk_id) -> int:
    """One e-mail per approver: this bulk request's commands wait for a second person (four-eyes)."""
    bulk = BulkRequest.objects.select_related("requested_by").get(pk=bulk_id)
    waiting = RemoteAction.objects.filter(bulk_item__bulk=bulk, status=ActionStatus.AWAITING_APPROVAL)
    first = waiting.select_related("vehicle__fleet").first()
    if first is None:
        return 0
    recipients = approvers_to_tell(first)
    url = settings.PORTAL_PUBLIC_URL.rstrip("/") + reverse("actions-awaiting")
    who = bulk.requested_by.get_username() if bulk.requested_by else "a partner token"
    subject = f"Approval needed: {summary_title(bulk)} for {bulk.total} vehicle(s)"
    body = (
        f"{who} asks for {summary_title(bulk)} on {bulk.total} vehicle(s) (one bulk request).\nReason: {bulk.reason}\n\n"
        f"Each command waits for another approver and expires unsent if nobody decides in time:\n{url}\n"
    )
    return send_mass_mail([(subject, body, None, [r]) for r in recipients], fail_silently=False)


def summary_title(bulk: BulkRequest) -> str:
    return describe(bulk.remote_type, bulk.command, timezone.get_current_timezone())


def unseen_notices(user):
    """Finished bulk requests of `user` they have not opened since: the portal's notice."""
    if user is None or not getattr(user, "pk", None):
        return BulkRequest.objects.none()
    return BulkRequest.objects.filter(
        requested_by=user, status__in=(BulkStatus.FINISHED, BulkStatus.CANCELLED), seen_at__isnull=True
    )
