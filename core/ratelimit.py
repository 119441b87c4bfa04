"""The vendor's rate-limit budget, shared by every worker process (the pacers of `stellantis.pacing`).

When Stellantis says a window is spent (a `Remaining` header at 0, or a 429 with
`Retry-After` / `X-RateLimit-Reset`), the client records a hold-off here; before each call
it asks how long is left. Every process (web workers, q2 workers, commands) reads the same
store, so one 429 stops them all until the reset instead of each finding out by itself.

When a hold ends, one caller claims the next call (the *probe*, recorded as a short hold of
`PROBE_SECONDS`); the others wait for its answer, which either lifts the hold or extends it.
So a window that is still spent costs one call, not one per worker.

Two stores: the database (`DatabasePacer`, the zero-setup default: one row, conditional
UPDATEs, the same on SQLite and PostgreSQL) and Redis (`RedisPacer`, when
`STELLANTIS_RATE_LIMIT_STORE` is a redis:// URL). Both implement the `stellantis.pacing.Pacer`
protocol by shape: this module imports nothing of `stellantis` (see pyproject's contracts).
A store that fails is logged and lets calls through: pacing must not take the portal down.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from .models import VendorBudget

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.0
DEFAULT_NAME = "stellantis"


class DatabasePacer:
    """The hold-off in one row of `core_vendorbudget`: one read per call, a write only on a change."""

    # After reading "nothing held", this pacer says "go" without reading again for this long. A bulk
    # request's threads call hundreds of times a second, and that read was one statement per call; a
    # hold another process records reaches this one within CLEAR_FOR (the few calls meanwhile get
    # the vendor's 429, which is no failure and records the hold here too). Its own holds at once.
    CLEAR_FOR = 0.5

    def __init__(self, name: str = DEFAULT_NAME):
        self.name = name
        self._local = threading.local()  # the probe this thread claimed, if any
        self._clear_until = 0.0  # monotonic time until which "nothing held" is trusted

    def delay(self) -> float:
        if time.monotonic() < self._clear_until:
            return 0.0
        try:
            for _ in range(3):
                until = VendorBudget.objects.filter(name=self.name).values_list("hold_until", flat=True).first()
                if until is None:
                    self._clear_until = time.monotonic() + self.CLEAR_FOR
                    return 0.0
                now = timezone.now()
                if until > now:
                    return (until - now).total_seconds()
                # The hold is over: claim the next call; the others wait for its answer.
                probe = now + dt.timedelta(seconds=PROBE_SECONDS)
                claimed = VendorBudget.objects.filter(name=self.name, hold_until=until).update(
                    hold_until=probe, reason="probing after a hold", updated_at=now
                )
                if claimed:
                    self._local.probe = probe
                    return 0.0
            return PROBE_SECONDS  # the row keeps moving under us: let it settle
        except DatabaseError as exc:
            log.warning("rate-limit budget not read (%s); calling Stellantis anyway", exc)
            return 0.0

    def hold(self, seconds: float, *, reason: str) -> None:
        self._local.probe = None
        self._clear_until = 0.0
        now = timezone.now()
        until = now + dt.timedelta(seconds=max(0.0, seconds))
        # Extend, never shorten: a longer hold another worker recorded stands.
        extend = VendorBudget.objects.filter(name=self.name).filter(Q(hold_until__isnull=True) | Q(hold_until__lt=until))
        values = {"hold_until": until, "reason": reason[:200], "updated_at": now}
        try:
            if extend.update(**values):
                return
            VendorBudget.objects.bulk_create([VendorBudget(name=self.name, **values)], ignore_conflicts=True)
            extend.update(**values)  # the row existed (held longer, or created meanwhile): extend it if shorter
        except DatabaseError as exc:
            log.warning("rate-limit hold of %.1f s not recorded (%s)", seconds, exc)

    def clear(self) -> None:
        probe = getattr(self._local, "probe", None)
        if probe is None:
            return
        self._local.probe = None
        try:
            # Only the probe this thread claimed: a hold recorded since then stands.
            VendorBudget.objects.filter(name=self.name, hold_until=probe).update(
                hold_until=None, reason="", updated_at=timezone.now()
            )
        except DatabaseError as exc:
            log.warning("rate-limit probe not cleared (%s); it ends by itself in %.0f s", exc, PROBE_SECONDS)


# KEYS[1] the hold (a key whose time to live is the hold), KEYS[2] "a hold ended, nobody probed yet".
# ARGV[1] the probe's length in ms, ARGV[2] the probe's token. Answers the ms to wait, or 0 to go
# (-1: go, as the probe).
_DELAY = """
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return left end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return -1
end
return 0
"""
# ARGV[1] the hold in ms, ARGV[2] the reason; KEYS[2] lives on an hour past the hold.
_HOLD = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[1]) + 3600000)
return 1
"""
# Delete the hold only if it is still this probe's.
_CLEAR = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
"""


class RedisPacer:
    """The hold-off in two Redis keys, for deployments that run Redis (`STELLANTIS_RATE_LIMIT_STORE=redis://…`)."""

    def __init__(self, url: str | None = None, name: str = DEFAULT_NAME):
        self.name = name
        self.redis = redis.Redis.from_url(url or settings.STELLANTIS_RATE_LIMIT_STORE, socket_timeout=2, socket_connect_timeout=2)
        self.keys = [f"fleetportal:ratelimit:{name}:hold", f"fleetportal:ratelimit:{name}:ended"]
        self._delay = self.redis.register_script(_DELAY)
        self._hold = self.redis.register_script(_HOLD)
        self._clear = self.redis.register_script(_CLEAR)
        self._local = threading.local()
        self._count = 0
        self._lock = threading.Lock()

    def _token(self) -> str:
        with self._lock:
            self._count += 1
            return f"probe:{id(self)}:{threading.get_ident()}:{self._count}"

    def delay(self) -> float:
        token = self._token()
        try:
            left = int(self._delay(keys=self.keys, args=[int(PROBE_SECONDS * 1000), token]))
        except redis.RedisError as exc:
            log.warning("rate-limit budget not read from Redis (%s); calling Stellantis anyway", exc)
            return 0.0
        if left == -1:
            self._local.probe = token
            return 0.0
        return max(0.0, left / 1000)

    def hold(self, seconds: float, *, reason: str) -> None:
        self._local.probe = None
        try:
            self._hold(keys=self.keys, args=[max(1, int(seconds * 1000)), f"hold:{reason}"])
        except redis.RedisError as exc:
            log.warning("rate-limit hold of %.1f s not recorded in Redis (%s)", seconds, exc)

    def clear(self) -> None:
        token = getattr(self._local, "probe", None)
        if token is None:
            return
        self._local.probe = None
        try:
            self._clear(keys=self.keys[:1], args=[token])
        except redis.RedisError as exc:
            log.warning("rate-limit probe not cleared in Redis (%s)", exc)
