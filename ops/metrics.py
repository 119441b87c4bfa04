"""The portal's Prometheus metrics, all named `fleetportal_…` (docs/operations.md, "Metrics and health").

Two kinds, chosen by what each costs:
- **Counted as it happens** (webhook deliveries by outcome, the eventDate → receipt lag,
  vendor calls by status, the vendor's rate-limit budget): prometheus-client metrics. Under
  gunicorn's workers and the q2 processes they are in its multiprocess mode
  (`PROMETHEUS_MULTIPROC_DIR`, a fresh directory per start, set by bin/run): each process
  writes its values to mmap files there — no SQL, no lock shared with another process — and a
  scrape, whichever worker answers it, adds up every process's files. Without the variable
  each process counts for itself (tests, `runserver`).
- **Read at scrape time from the database** (`DatabaseCollector`): what the rows already say —
  actions by type and final status and their request → Done time, open actions, the q2
  queue, callbacks by status. Nothing is counted twice and nothing is lost when a process
  dies, and the webhook's one statement is not touched.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta

from django.core.cache import caches
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from callbacks.models import Callback
from remotes.models import FINAL_STATUSES, RemoteAction

log = logging.getLogger(__name__)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# --- counted as it happens ---------------------------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "fleetportal_webhook_deliveries",
    "Stellantis webhook deliveries by what we answered: processed, partial, unparseable, failed (200), unauthorized (401), error (500).",
    ["outcome"],
)
# Every outcome from zero, so a first delivery is a rise Prometheus sees, not a new series.
for _outcome in ("processed", "partial", "unparseable", "failed", "unauthorized", "error"):
    WEBHOOK_DELIVERIES.labels(outcome=_outcome)
EVENT_LAG = Histogram(
    "fleetportal_webhook_event_lag_seconds",
    "Time from a vendor event's eventDate to our receipt of the delivery carrying it (negative lags count as 0).",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 21600, 86400),
)
VENDOR_CALLS = Counter(
    "fleetportal_vendor_calls",
    "Calls to the Stellantis API by HTTP method and answer: the status code, or `unreachable` / `no_answer`.",
    ["method", "status"],
)
VENDOR_BUDGET = Gauge(
    "fleetportal_vendor_rate_limit_remaining",
    "Calls left in the vendor's rate-limit window (day, burst), as its latest answer in any process said.",
    ["window"],
    multiprocess_mode="mostrecent",
)
VENDOR_BUDGET_LIMIT = Gauge(
    "fleetportal_vendor_rate_limit",
    "The vendor's rate limit per window (day, burst), as its latest answer said.",
    ["window"],
    multiprocess_mode="mostrecent",
)
ACTION_TRANSITIONS = Counter(
    "fleetportal_remote_action_transitions",
    "Moves of an action made by the portal itself (requested, approved, submitted, expired…), by the status reached.",
    ["status"],
)


def observe_delivery(*, outcome: str, event_dates=(), received_at: float | None = None) -> None:
    WEBHOOK_DELIVERIES.labels(outcome=str(outcome)).inc()
    if event_dates:
        now = received_at if received_at is not None else time.time()
        for date in event_dates:
            EVENT_LAG.observe(max(0.0, now - date.timestamp()))


def observe_vendor_call(*, method: str, status, limits=None) -> None:
    VENDOR_CALLS.labels(method=method.upper(), status=str(status)).inc()
    if limits is None:
        return
    for window, limit, remaining in (("day", limits.day_limit, limits.day_remaining), ("burst", limits.burst_limit, limits.burst_remaining)):
        if remaining is not None:
            VENDOR_BUDGET.labels(window=window).set(remaining)
        if limit is not None:
            VENDOR_BUDGET_LIMIT.labels(window=window).set(limit)


# --- read at scrape time -------------------------------------------------------------------

# Request → Done: the statuses an action reaches through the vendor's Done event.
DONE_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)
# Actions created before this long ago are taken as settled (the vendor's horizon is 3 days;
# reconcile ends what is still open then): they are counted once into a base kept in the shared
# cache, so a scrape counts only the last days' rows (the `created_at` index), not the whole table.
SETTLED_AFTER = timedelta(days=4)
# The base is rebuilt from scratch once a day: it then also sees the rare late correction of
# an old `error` / `unknown` action.
BASE_TTL = 24 * 3600
BASE_KEY = "ops:metrics:actions-base:v1"


def _action_rows(queryset) -> dict[tuple[str, str], list]:
    """(remote_type, status) → [count, per-bucket counts…, sum of request→Done seconds] for final actions."""

    duration = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
    aggregates = {"n": Count("pk"), "total": Sum("duration")}
    for i, bound in enumerate(DONE_BUCKETS):
        aggregates[f"le{i}"] = Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
    rows = (
        queryset.filter(status__in=[str(s) for s in FINAL_STATUSES])
        .annotate(duration=duration)
        .values("remote_type", "status")
        .annotate(**aggregates)
        .order_by()
    )
    out = {}
    for row in rows:
        total = row["total"]
        seconds = total.total_seconds() if isinstance(total, timedelta) else (total or 0) / 1e6
        out[(row["remote_type"], row["status"])] = [row["n"], *(row[f"le{i}"] for i in range(len(DONE_BUCKETS))), seconds]
    return out


def _add(into: dict, rows: dict) -> dict:
    for key, values in rows.items():
        into[key] = [a + b for a, b in zip(into[key], values, strict=True)] if key in into else list(values)
    return into


def _settled_base(until: datetime) -> dict:
    """The counts of actions created before `until`, kept in the shared cache and moved forward an hour slice at a time."""

    cache = caches["shared"]
    base = cache.get(BASE_KEY)
    if base is None or base["until"] > until:
        base = {"until": until, "rows": _action_rows(RemoteAction.objects.filter(created_at__lt=until)), "built": time.time()}
    elif base["until"] < until:
        # Only the slice that settled since: an index range on created_at. Two processes doing
        # this at once compute and store the same thing.
        slice_ = RemoteAction.objects.filter(created_at__gte=base["until"], created_at__lt=until)
        base = {**base, "until": until, "rows": _add(dict(base["rows"]), _action_rows(slice_))}
    else:
        return base
    left = max(60, int(BASE_TTL - (time.time() - base["built"])))
    cache.set(BASE_KEY, base, left)
    return base


class DatabaseCollector(Collector):
    """What the database already knows, read when Prometheus scrapes (a handful of indexed queries)."""

    def collect(self):
        # A part that fails (the database or the broker down) is left out and logged: the
        # counters of this scrape still go out, and `fleetportal_metrics_source_up` says what is missing.
        up = GaugeMetricFamily("fleetportal_metrics_source_up", "1 when this scrape could read the source, 0 when it failed.", labels=["source"])
        for source, part in (("actions", self._actions), ("queue", self._queue), ("callbacks", self._callbacks)):
            try:
                families = list(part())
            except Exception:
                log.warning("metrics: %s could not be read", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _actions(self):

        now = timezone.now()
        # On the hour, so the base moves (and its slice is counted) at most once an hour.
        until = (now - SETTLED_AFTER).replace(minute=0, second=0, microsecond=0)
        rows = _add(dict(_settled_base(until)["rows"]), _action_rows(RemoteAction.objects.filter(created_at__gte=until)))

        total = CounterMetricFamily(
            "fleetportal_remote_actions", "Remote actions that reached a final status, by remote type and that status.",
            labels=["remote_type", "status"],
        )
        done = HistogramMetricFamily(
            "fleetportal_remote_action_done_seconds",
            "Time from the request of an action to its final status, by remote type and that status.",
            labels=["remote_type", "status"],
        )
        for (remote_type, status), values in sorted(rows.items()):
            total.add_metric([remote_type, status], values[0])
            buckets = [(str(float(b)), values[1 + i]) for i, b in enumerate(DONE_BUCKETS)] + [("+Inf", values[0])]
            done.add_metric([remote_type, status], buckets, sum_value=values[-1])
        yield total
        yield done

        # Open actions: the partial index `remote_action_open` holds exactly these rows.
        open_ = GaugeMetricFamily(
            "fleetportal_remote_actions_open", "Actions not final yet, by remote type and status.", labels=["remote_type", "status"]
        )
        for row in (
            RemoteAction.objects.exclude(status__in=[str(s) for s in FINAL_STATUSES])
            .values("remote_type", "status").annotate(n=Count("pk")).order_by()
        ):
            open_.add_metric([row["remote_type"], row["status"]], row["n"])
        yield open_

    def _queue(self):
        depth = GaugeMetricFamily("fleetportal_queue_depth", "q2 tasks waiting in the broker for a worker.")
        in_flight = GaugeMetricFamily("fleetportal_queue_in_flight", "q2 tasks a worker took and has not acknowledged (ORM broker only).")
        oldest = GaugeMetricFamily("fleetportal_queue_oldest_task_age_seconds", "Age of the oldest q2 task waiting (0: none waits).")
        size, taken, started = queue_state()
        depth.add_metric([], size)
        if taken is not None:
            in_flight.add_metric([], taken)
        oldest.add_metric([], max(0.0, (timezone.now() - started).total_seconds()) if started else 0.0)
        yield depth
        if taken is not None:
            yield in_flight
        yield oldest

    def _callbacks(self):

        family = GaugeMetricFamily("fleetportal_callbacks", "Live (not deleted) callbacks by their status at Stellantis.", labels=["status"])
        for row in Callback.objects.filter(deleted_at__isnull=True).values("status").annotate(n=Count("pk")).order_by():
            family.add_metric([row["status"]], row["n"])
        yield family


def queue_state() -> tuple[int, int | None, datetime | None]:
    """(waiting, taken by a worker or None when the broker cannot say, enqueue time of the oldest waiting)."""

    broker = get_broker()
    taken, oldest_payload = None, None
    if isinstance(broker, ORM):
        # The table directly: the broker's own accessor closes "old" connections, which is
        # right for its polling loop but not in the middle of a request.
        now = timezone.now()
        rows = OrmQ.objects.using(Conf.ORM).filter(key=broker.list_key)
        size = rows.filter(lock__lte=now).count()
        taken = rows.filter(lock__gt=now).count()
        first = rows.filter(lock__lte=now).order_by("id").values_list("payload", flat=True).first()
        oldest_payload = first
    else:  # Redis: tasks are RPUSHed and BLPOPped, so the head of the list is the oldest
        size = broker.queue_size() or 0
        oldest_payload = broker.connection.lindex(broker.list_key, 0)
    started = None
    if oldest_payload:
        try:
            started = SignedPackage.loads(oldest_payload).get("started")
        except Exception:  # noqa: BLE001 — a payload we cannot read (another SECRET_KEY): no age rather than no scrape
            log.warning("the oldest q2 task could not be read for its age", exc_info=True)
        if isinstance(started, datetime) and timezone.is_naive(started):
            started = started.replace(tzinfo=UTC)
    return size, taken, started


def scrape() -> bytes:
    """The text Prometheus reads: every process's counters (multiprocess mode) and the database's numbers."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return generate_latest(registry)


class _ThisProcess(Collector):
    """The default registry (this process's counters, and its process/platform metrics) inside a per-scrape registry."""

    def collect(self):
        yield from REGISTRY.collect()
