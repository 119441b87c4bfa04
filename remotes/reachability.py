"""Can a command reach the vehicle now? Said before the click, from what the portal knows.

Last contact is the latest status snapshot's `captured_at` (when the vehicle itself reported;
the vehicle list's state filter and sorts read the same column, so the page and the list agree).
The vendor's behaviour (awake for minutes, deep sleep after days, a monthly wake-up budget)
is in `stellantis.behaviour`. Wake-ups spent this month (UTC) are this vehicle's actions
created since the 1st whose events include a Pending `WakingUpVehicle`; a
`TooManyWakeUpsOverMonth` from the vendor this month means none left, whatever we counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from stellantis.behaviour import (
    DEEP_SLEEP_AFTER,
    WAKE_UP_BUDGET_PER_MONTH,
    WAKE_UP_TAKES,
    Connectivity,
    connectivity,
    contact_range,
)
from stellantis.vocabulary import FailureCause, PendingStatus

from .models import RemoteAction, RemoteEvent

TOO_MANY_WAKE_UPS = FailureCause.TOO_MANY_WAKE_UPS_OVER_MONTH  # same string as the Pending one


def month_start(now: dt.datetime) -> dt.datetime:
    now = now.astimezone(dt.UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def duration_words(delta: dt.timedelta) -> str:
    """"3 days", "5 h", "12 min": a silence, roughly."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        hours = seconds // 3600
        return f"{hours} h"
    minutes = max(1, seconds // 60)
    return f"{minutes} min"


def _minutes(delta: dt.timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True)
class Reachability:
    connectivity: Connectivity
    last_contact: dt.datetime | None
    silent_for: dt.timedelta | None
    wakeups_used: int
    wakeups_left: int
    budget: int = WAKE_UP_BUDGET_PER_MONTH

    @property
    def needs_wake_up(self) -> bool:
        """A command will first have to wake it (slower, spends one of the month's wake-ups)."""
        return self.connectivity != Connectivity.ONLINE

    @property
    def tone(self) -> str:
        if self.connectivity == Connectivity.ONLINE:
            return "good"
        if self.connectivity == Connectivity.OFFLINE or (self.needs_wake_up and self.wakeups_left == 0):
            return "bad"
        return "warn"

    @property
    def budget_words(self) -> str:
        if self.wakeups_left == 0:
            return "no wake-ups left this month"
        return f"{self.wakeups_left} of {self.budget} wake-ups left this month"

    @property
    def sentence(self) -> str:
        """What to expect, before sending: "Asleep for 3 days: waking it may take 2 minutes or fail; …"."""
        budget = self.budget_words
        if self.connectivity == Connectivity.ONLINE:
            return f"Online (last contact {duration_words(self.silent_for)} ago): a command goes straight to it; {budget}"
        if self.wakeups_left == 0:
            outcome = "a command needs a wake-up and Stellantis will refuse it (too many wake-ups this month) until it is in use"
        elif self.connectivity == Connectivity.OFFLINE:
            outcome = "in deep sleep, a wake-up will most likely time out"
        elif self.connectivity == Connectivity.ASLEEP:
            outcome = f"waking it may take {_minutes(WAKE_UP_TAKES)} or fail"
        else:
            outcome = f"no status read yet, a command may have to wake it (about {_minutes(WAKE_UP_TAKES)}) or fail"
        if self.connectivity == Connectivity.UNKNOWN:
            head = "Never seen"
        else:
            head = f"{self.connectivity.label} for {duration_words(self.silent_for)}"
        return f"{head}: {outcome}; {budget}"

    def __str__(self):
        return self.sentence


def _last_contact(vehicle) -> dt.datetime | None:
    try:
        snapshot = vehicle.status_snapshot
    except Exception:  # RelatedObjectDoesNotExist: never read
        return None
    return snapshot.captured_at


def _month_actions(vehicle_ids, now):
    return RemoteAction.objects.filter(vehicle__in=vehicle_ids, created_at__gte=month_start(now))


def wakeups_this_month(vehicle, now: dt.datetime | None = None) -> tuple[int, bool]:
    """(wake-ups counted, whether the vendor said the budget is spent) for this month."""
    now = now or timezone.now()
    events = RemoteEvent.objects.filter(
        action__vehicle=vehicle, action__created_at__gte=month_start(now), status__in=(PendingStatus.WAKING_UP_VEHICLE, TOO_MANY_WAKE_UPS),
    )
    used = events.filter(status=PendingStatus.WAKING_UP_VEHICLE).order_by().values("action").distinct().count()
    spent = events.filter(status=TOO_MANY_WAKE_UPS).exists() or _month_actions([vehicle.pk], now).filter(failure_cause=TOO_MANY_WAKE_UPS).exists()
    return used, spent


def estimate(vehicle, now: dt.datetime | None = None) -> Reachability:
    """What a command sent now is likely to meet: awake, asleep or gone, and the wake-ups left."""
    now = now or timezone.now()
    last = _last_contact(vehicle)
    used, spent = wakeups_this_month(vehicle, now)
    left = 0 if spent else max(0, WAKE_UP_BUDGET_PER_MONTH - used)
    return Reachability(
        connectivity=connectivity(last, now),
        last_contact=last,
        silent_for=(now - last) if last else None,
        wakeups_used=used,
        wakeups_left=left,
    )


@dataclass(frozen=True)
class Summary:
    total: int
    online: int
    asleep: int
    offline: int
    unknown: int
    no_wakeups_left: int  # vehicles whose month's budget is spent (a sleeping one will not wake)

    @property
    def need_wake_up(self) -> int:
        return self.asleep + self.offline + self.unknown

    @property
    def sentence(self) -> str:
        parts = [f"{self.online} online", f"{self.asleep} asleep (a command wakes them first)"]
        if self.offline:
            parts.append(f"{self.offline} offline for {DEEP_SLEEP_AFTER.days}+ days (likely to time out)")
        if self.unknown:
            parts.append(f"{self.unknown} never seen")
        if self.no_wakeups_left:
            parts.append(f"{self.no_wakeups_left} with no wake-ups left this month")
        return f"Of {self.total} vehicles: " + ", ".join(parts) + "."


def summarise(vehicles, now: dt.datetime | None = None) -> Summary:
    """Counts by reachability for a queryset of vehicles, in two queries (bulk requests, the overview)."""
    now = now or timezone.now()

    def contact(state):
        after, before = contact_range(state, now)
        q = Q()
        if after is not None:
            q &= Q(status_snapshot__captured_at__gte=after)
        if before is not None:
            q &= Q(status_snapshot__captured_at__lt=before)
        return Count("pk", filter=q)

    counts = vehicles.order_by().aggregate(
        total=Count("pk"),
        online=contact(Connectivity.ONLINE),
        asleep=contact(Connectivity.ASLEEP),
        offline=contact(Connectivity.OFFLINE),
        unknown=Count("pk", filter=Q(status_snapshot__captured_at__isnull=True)),
    )
    ids = vehicles.order_by().values("pk")
    events = RemoteEvent.objects.filter(action__vehicle__in=ids, action__created_at__gte=month_start(now))
    spent = set(events.filter(status=TOO_MANY_WAKE_UPS).order_by().values_list("action__vehicle", flat=True).distinct())
    spent |= set(_month_actions(ids, now).filter(failure_cause=TOO_MANY_WAKE_UPS).order_by().values_list("vehicle", flat=True).distinct())
    spent |= set(
        events.filter(status=PendingStatus.WAKING_UP_VEHICLE)
        .values("action__vehicle")
        .annotate(n=Count("action", distinct=True))
        .filter(n__gte=WAKE_UP_BUDGET_PER_MONTH)
        .values_list("action__vehicle", flat=True)
    )
    return Summary(no_wakeups_left=len(spent), **counts)
