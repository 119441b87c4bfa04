"""The console's reads: the overview's numbers, the portal's action list, the map's positions.

Everything starts from a `visible_to(user)` queryset and is aggregated in the database with
conditional counts (`Count(filter=Q(...))`), a constant number of queries whatever the fleet's
size. Windows over history are bounded (today, the last 24 h) so that the index on
`RemoteAction.created_at` applies at any history size; open actions are found through the
open-actions partial index (`remote_action_open`).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from callbacks.models import Callback
from remotes import health, reachability
from remotes.models import FINAL_STATUSES, ActionStatus, RemoteAction
from stellantis.behaviour import Connectivity, connectivity
from stellantis.vocabulary import FAILURE_ADVICE, FailureCause, RemoteType, label_of
from vehicles.filters import immobilized_vehicle_ids, stolen_vehicle_ids
from vehicles.listing import CHARGING_IN_PROGRESS, LOW_BATTERY_PERCENT
from vehicles.models import Fleet, Vehicle

DONE_OK = (ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE)
FAILURE_STATUSES = (ActionStatus.FAILED, ActionStatus.REJECTED, ActionStatus.ERROR, ActionStatus.EXPIRED, ActionStatus.UNKNOWN)
WITH_VEHICLE = (ActionStatus.QUEUED, ActionStatus.SUBMITTING, ActionStatus.SUBMITTED, ActionStatus.PENDING)
OPEN_STATUSES = tuple(s for s in ActionStatus if s not in FINAL_STATUSES)

# The overview's outcome groups, in the order they are shown and stacked in the chart.
OUTCOMES = (
    ("succeeded", "Succeeded", DONE_OK),
    ("failed", "Failed", FAILURE_STATUSES),
    ("in_progress", "In progress", WITH_VEHICLE),
    ("awaiting_approval", "Waiting for approval", (ActionStatus.AWAITING_APPROVAL,)),
    ("cancelled", "Cancelled", (ActionStatus.CANCELLED,)),
)
OUTCOME_OF = {str(s): key for key, _, statuses in OUTCOMES for s in statuses}


def start_of_today(now: dt.datetime) -> dt.datetime:
    """Midnight today in the person's time zone (activated by middleware)."""
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def vehicle_counts(user, now: dt.datetime) -> dict:
    """Vehicles by state, as the vehicle list's `state` filter counts them (a constant few queries)."""
    vehicles = Vehicle.objects.visible_to(user)
    # The list's own definitions (vehicles.listing / vehicles.filters), so a number and the list
    # its link opens always agree. Stolen / immobilized: the latest successful command that said
    # either way, found among the few such commands rather than per vehicle.
    counts = vehicles.aggregate(
        charging=Count("pk", filter=Q(status_snapshot__charging_status=CHARGING_IN_PROGRESS)),
        plugged=Count("pk", filter=Q(status_snapshot__plugged=True)),
        low_battery=Count("pk", filter=Q(status_snapshot__energy_level__lt=LOW_BATTERY_PERCENT)),
        stolen=Count("pk", filter=Q(pk__in=stolen_vehicle_ids())),
        immobilized=Count("pk", filter=Q(pk__in=immobilized_vehicle_ids())),
    )
    # Online / asleep / offline / never seen as reachability says them (stellantis.behaviour over
    # the snapshot's captured_at), with how many have no wake-up left this month.
    reach = reachability.summarise(vehicles, now)
    counts.update(
        total=reach.total, online=reach.online, asleep=reach.asleep, offline=reach.offline, unknown=reach.unknown,
        no_wakeups_left=reach.no_wakeups_left, reachability=reach.sentence,
    )
    return counts


@dataclass(frozen=True)
class Failure:
    key: str  # a failure cause, or the status when there is none (rejected, error, …)
    label: str
    advice: str
    count: int
    query: str  # the action list's query string for these


def failures(actions, since: dt.datetime) -> list[Failure]:
    """Failed commands since `since` grouped by cause, in plain words, the most frequent first."""
    rows = (
        actions.filter(created_at__gte=since, status__in=FAILURE_STATUSES)
        .values("status", "failure_cause")
        .annotate(n=Count("pk"))
    )
    grouped: dict[tuple[str, str], int] = {}
    for row in rows:
        cause = row["failure_cause"] if row["status"] == ActionStatus.FAILED else ""
        key = (row["status"], cause)
        grouped[key] = grouped.get(key, 0) + row["n"]
    out = []
    for (status, cause), n in grouped.items():
        if status == ActionStatus.FAILED and cause:
            label, advice, query = label_of(FailureCause, cause), FAILURE_ADVICE.get(cause, ""), f"status=failed&cause={cause}&since=24h"
        else:
            label = {
                ActionStatus.FAILED: "Failed, no cause given",
                ActionStatus.REJECTED: "Refused (by Stellantis or an approver)",
                ActionStatus.ERROR: "The portal gave up",
                ActionStatus.EXPIRED: "Expired before it could be sent",
                ActionStatus.UNKNOWN: "Outcome unknown: maybe sent",
            }[status]
            advice = {
                ActionStatus.ERROR: "Open one to read why; the vendor may have been unreachable.",
                ActionStatus.EXPIRED: "The command waited too long (approval, queue or vehicle asleep) and was not sent.",
                ActionStatus.UNKNOWN: "Check the vehicle before sending it again.",
            }.get(status, "")
            query = f"status={status}&since=24h"
        out.append(Failure(key=cause or status, label=label, advice=advice, count=n, query=query))
    out.sort(key=lambda f: (-f.count, f.label))
    return out


def commands_today(actions, today: dt.datetime) -> dict[str, int]:
    rows = actions.filter(created_at__gte=today).values("status").annotate(n=Count("pk"))
    counts = {key: 0 for key, _, _ in OUTCOMES}
    for row in rows:
        counts[OUTCOME_OF[row["status"]]] += row["n"]
    counts["total"] = sum(counts.values())
    return counts


def per_hour(actions, now: dt.datetime) -> dict:
    """Commands created in each of the last 24 hours (the current one included) by outcome."""
    first = (now - dt.timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    zone = timezone.get_current_timezone()
    hours = [timezone.localtime(first + dt.timedelta(hours=i)) for i in range(24)]
    index = {h.astimezone(dt.UTC): i for i, h in enumerate(hours)}
    series = {key: [0] * 24 for key, _, _ in OUTCOMES}
    rows = (
        actions.filter(created_at__gte=first)
        .annotate(hour=TruncHour("created_at", tzinfo=dt.UTC))
        .values("hour", "status")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        i = index.get(row["hour"].astimezone(dt.UTC))
        if i is not None:
            series[OUTCOME_OF[row["status"]]][i] += row["n"]
    labels = [h.astimezone(zone).strftime("%H:%M") for h in hours]
    return {
        "labels": labels,
        "series": [{"key": key, "label": label, "data": series[key]} for key, label, _ in OUTCOMES],
        "rows": [
            {"hour": labels[i], **{key: series[key][i] for key, _, _ in OUTCOMES}, "total": sum(series[key][i] for key, _, _ in OUTCOMES)}
            for i in range(24)
        ],
    }


def waiting(actions) -> dict[str, int]:
    """Open actions: for a second person's approval, and for the vehicle (the open-actions index)."""
    return actions.filter(status__in=OPEN_STATUSES).aggregate(
        approval=Count("pk", filter=Q(status=ActionStatus.AWAITING_APPROVAL)),
        vehicle=Count("pk", filter=Q(status__in=WITH_VEHICLE)),
    )


def overview(user, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    actions = RemoteAction.objects.visible_to(user)
    callbacks = Callback.objects.visible_to(user).live()
    callback_health = health.for_callbacks(callbacks.select_related("fleet"), now=now)
    return {
        "now": now,
        "vehicles": vehicle_counts(user, now),
        "today": commands_today(actions, start_of_today(now)),
        "failures": failures(actions, now - dt.timedelta(hours=24)),
        "per_hour": per_hour(actions, now),
        "waiting": waiting(actions),
        "health": health.summary(callback_health),
        "quiet_callbacks": [h.callback for h in callback_health.values() if h.quiet],
    }


# --- the portal's action list ------------------------------------------------------------------

PAGE_SIZE = 50
VERIFICATIONS = ("verified", "not_confirmed")  # RemoteAction.verification once the outcome was read back


class BadFilter(ValueError):
    pass


def parse_since(value: str, now: dt.datetime) -> dt.datetime | None:
    if not value:
        return None
    if value == "today":
        return start_of_today(now)
    if value == "24h":
        return now - dt.timedelta(hours=24)
    parsed = parse_datetime(value)
    if parsed is None:
        raise BadFilter(f"since: “{value}” is not a date and time (use today, 24h or e.g. 2026-11-27T08:00).")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def filter_actions(user, params, now: dt.datetime | None = None):
    """The actions `user` may see that the action list's filters in `params` select (unordered)."""
    now = now or timezone.now()
    actions = RemoteAction.objects.visible_to(user)
    statuses = [s for s in params.getlist("status") if s]
    unknown = [s for s in statuses if s not in ActionStatus.values]
    if unknown:
        raise BadFilter(f"status: “{unknown[0]}” is not a status.")
    if statuses:
        actions = actions.filter(status__in=statuses)
    remote_type = params.get("remote_type")
    if remote_type:
        if remote_type not in RemoteType.values:
            raise BadFilter(f"remote_type: “{remote_type}” is not a command type.")
        actions = actions.filter(remote_type=remote_type)
    cause = params.get("cause")
    if cause:
        actions = actions.filter(failure_cause=cause)
    since = parse_since(params.get("since") or "", now)
    if since:
        actions = actions.filter(created_at__gte=since)
    fleet = params.get("fleet")
    if fleet:
        actions = actions.filter(vehicle__fleet__in=Fleet.objects.visible_to(user).filter(external_id=fleet))
    vin = (params.get("vin") or "").strip()
    if vin:
        actions = actions.filter(vehicle__vin=vin.upper())
    verification = params.get("verification")
    if verification:
        if verification not in VERIFICATIONS:
            raise BadFilter(f"verification: “{verification}” is not one of {', '.join(VERIFICATIONS)}.")
        actions = actions.filter(verification=verification)
    return actions


def encode_cursor(action: RemoteAction) -> str:
    raw = f"{action.created_at.astimezone(dt.UTC).isoformat()}|{action.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, pk = raw.split("|", 1)
        parsed = dt.datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadFilter("cursor: not a page of this list (start again from the first page).") from exc
    return parsed, pk


def action_page(actions, cursor: str = "", size: int = PAGE_SIZE) -> tuple[list[RemoteAction], str]:
    """One keyset page, newest first: (actions, cursor of the next page or "")."""
    ordered = actions.select_related("vehicle__fleet").order_by("-created_at", "-pk")
    if cursor:
        at, pk = decode_cursor(cursor)
        ordered = ordered.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    rows = list(ordered[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, encode_cursor(rows[-1]) if more else ""


# --- the map ---------------------------------------------------------------------------------


def positions(user, now: dt.datetime | None = None, fleet: str = "", states=()) -> list[list]:
    """[vin, lat, lon, label, state] of every visible vehicle with a known position (one query),
    only those in `states` (connectivity values) when given."""
    now = now or timezone.now()
    vehicles = Vehicle.objects.visible_to(user).filter(status_snapshot__latitude__isnull=False, status_snapshot__longitude__isnull=False)
    if fleet:
        vehicles = vehicles.filter(fleet__in=Fleet.objects.visible_to(user).filter(external_id=fleet))
    has_label = any(f.name == "label" for f in Vehicle._meta.get_fields())
    fields = ["vin", "status_snapshot__latitude", "status_snapshot__longitude", "status_snapshot__captured_at", "brand"]
    if has_label:
        fields.append("label")
    out = []
    for row in vehicles.order_by("vin").values_list(*fields):
        vin, lat, lon, captured, brand = row[:5]
        label = (row[5] if has_label else "") or brand
        state = str(connectivity(captured, now))
        if states and state not in states:
            continue
        out.append([vin, round(lat, 6), round(lon, 6), label, state])
    return out


STATE_WORDS = {c.value: c.label for c in Connectivity}
