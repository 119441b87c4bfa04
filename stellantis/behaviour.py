"""How a connected vehicle behaves towards the Fleet Owner API, as far as the portal can tell.

The vendor's docs describe it in words (reference/stellantis/README.md): a vehicle dozes off a
few minutes after its last message, a sleeping one must be woken first (slower), wake-ups are
limited per month to spare the 12 V battery, and a vehicle parked for long enough no longer
wakes at all. These numbers are the one place the portal (reachability, the vehicle list's
state filter) and the simulator agree on them.
"""

from __future__ import annotations

import datetime as dt
import enum

# A vehicle that has just talked to the vendor stays awake this long.
AWAKE_FOR = dt.timedelta(minutes=3)
# Parked and silent this long, it is in deep sleep: a wake-up will most likely time out.
DEEP_SLEEP_AFTER = dt.timedelta(days=14)
# Wake-ups allowed per calendar month (UTC); the vendor refuses more (TooManyWakeUpsOverMonth).
WAKE_UP_BUDGET_PER_MONTH = 20
# How long waking a sleeping vehicle usually takes before the command reaches it.
WAKE_UP_TAKES = dt.timedelta(minutes=2)
# Members the vendor still takes from a vehicle reported stolen; any other fails with
# NotPossibleDueToVehicleStolenState (the pages, the bulk checks and the simulator all read this).
ALLOWED_WHILE_STOLEN = frozenset({"stolen", "immobilization"})


class Connectivity(enum.StrEnum):
    ONLINE = "online"  # talked to the vendor within AWAKE_FOR
    ASLEEP = "asleep"  # silent for longer: a command wakes it first (slower, spends a wake-up)
    OFFLINE = "offline"  # silent for DEEP_SLEEP_AFTER: a command will most likely time out
    UNKNOWN = "unknown"  # never heard of

    @property
    def label(self) -> str:
        return {"online": "Online", "asleep": "Asleep", "offline": "Offline", "unknown": "Never seen"}[self.value]


def connectivity(last_contact: dt.datetime | None, now: dt.datetime) -> Connectivity:
    """What the last contact says about the vehicle now."""
    if last_contact is None:
        return Connectivity.UNKNOWN
    silent = now - last_contact
    if silent <= AWAKE_FOR:
        return Connectivity.ONLINE
    if silent < DEEP_SLEEP_AFTER:
        return Connectivity.ASLEEP
    return Connectivity.OFFLINE


def contact_range(state: Connectivity, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The last-contact interval [after, before) that gives `state` at `now`, for an indexed filter.

    UNKNOWN (no contact at all) has no interval: filter on a missing last contact instead."""
    if state == Connectivity.ONLINE:
        return now - AWAKE_FOR, None
    if state == Connectivity.ASLEEP:
        return now - DEEP_SLEEP_AFTER, now - AWAKE_FOR
    if state == Connectivity.OFFLINE:
        return None, now - DEEP_SLEEP_AFTER
    raise ValueError("UNKNOWN has no contact interval")
