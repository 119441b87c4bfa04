"""The vendor's rate limits: what its answers say, and the pacer that makes every process obey.

Stellantis limits calls per day and per one-second burst. Every answer reports both windows
(`X-RateLimit-Limit-1` / `X-RateLimit-Remaining-1` for the day, `-2` for the burst); once one
is spent it answers only 429, with `Retry-After` and `X-RateLimit-Reset` in seconds.

The client reads those headers (`read_limits`), turns them into a hold-off (`hold_for`:
how long nobody should call, and why) and tells its pacer. Before each call it asks the
pacer how long to wait. The pacer is where the budget is shared: `LocalPacer` keeps it in
this process's memory (the default of a bare `FleetClient`); the portal's settings name one
that keeps it in the database or in Redis (`core.ratelimit`), shared by every worker.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# A window reported spent without saying when it resets: wait this long, then one call
# finds out (its 429 carries Retry-After). The burst window never lasts longer than this.
UNKNOWN_RESET_SECONDS = 1.0
BURST_WINDOW_SECONDS = 1.0
# A reset this large is a Unix time, not a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000


@runtime_checkable
class Pacer(Protocol):
    """A budget of calls to the vendor, shared by whoever holds the same pacer store."""

    def delay(self) -> float:
        """Seconds to wait before calling the vendor now; 0 (or less) means go."""

    def hold(self, seconds: float, *, reason: str) -> None:
        """The vendor said a window is spent: nobody calls it for `seconds` (a longer hold stands)."""

    def clear(self) -> None:
        """An answer came back with budget left. Cheap: only lifts a hold this caller was probing."""


class NoPacer:
    """Paces nothing: every call goes, 429s are only reported."""

    def delay(self) -> float:
        return 0.0

    def hold(self, seconds: float, *, reason: str) -> None:
        pass

    def clear(self) -> None:
        pass


class LocalPacer:
    """The hold-off in this process's memory: shared by the threads of one process only."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._until = 0.0
        self.reason = ""
        self._lock = threading.Lock()

    def delay(self) -> float:
        return max(0.0, self._until - self._clock())

    def hold(self, seconds: float, *, reason: str) -> None:
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            if until > self._until:
                self._until, self.reason = until, reason

    def clear(self) -> None:
        pass


@dataclass(frozen=True)
class Limits:
    """What one answer said about the vendor's windows (None: not said)."""

    day_limit: int | None = None
    day_remaining: int | None = None
    burst_limit: int | None = None
    burst_remaining: int | None = None
    retry_after: float | None = None  # seconds
    reset: float | None = None  # seconds until the spent window resets


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _seconds(value: str | None, now: float) -> float | None:
    """A number of seconds, a Unix time or an HTTP date, as seconds from now (never negative)."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - now)
    if not math.isfinite(number):
        return None
    if number >= _EPOCH_THRESHOLD:
        number -= now
    return max(0.0, number)


def read_limits(headers: Mapping[str, str], *, now: float | None = None) -> Limits:
    now = time.time() if now is None else now
    return Limits(
        day_limit=_int(headers.get("X-RateLimit-Limit-1")),
        day_remaining=_int(headers.get("X-RateLimit-Remaining-1")),
        burst_limit=_int(headers.get("X-RateLimit-Limit-2")),
        burst_remaining=_int(headers.get("X-RateLimit-Remaining-2")),
        retry_after=_seconds(headers.get("Retry-After"), now),
        reset=_seconds(headers.get("X-RateLimit-Reset"), now),
    )


@dataclass(frozen=True)
class Hold:
    seconds: float
    reason: str


def hold_for(limits: Limits, status: int) -> Hold | None:
    """How long nobody should call the vendor after this answer, and why; None: carry on."""
    spent = []
    if limits.day_remaining is not None and limits.day_remaining <= 0:
        spent.append(f"daily limit{f' of {limits.day_limit}' if limits.day_limit else ''} reached")
    if limits.burst_remaining is not None and limits.burst_remaining <= 0:
        spent.append(f"per-second limit{f' of {limits.burst_limit}' if limits.burst_limit else ''} reached")
    if status == 429:
        told = [s for s in (limits.retry_after, limits.reset) if s is not None]
        seconds = max(told) if told else UNKNOWN_RESET_SECONDS
        return Hold(seconds, "429 Too Many Requests" + (f" ({', '.join(spent)})" if spent else ""))
    if not spent:
        return None
    day_spent = limits.day_remaining is not None and limits.day_remaining <= 0
    if day_spent:
        seconds = limits.reset if limits.reset is not None else UNKNOWN_RESET_SECONDS
    else:  # only the burst: it resets within the second
        seconds = min(limits.reset, BURST_WINDOW_SECONDS) if limits.reset is not None else BURST_WINDOW_SECONDS
    return Hold(seconds, ", ".join(spent))
