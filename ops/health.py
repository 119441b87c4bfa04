"""Readiness: can this process serve, and is someone working the queue? (`/healthz/ready`)

`/healthz` (fleetportal.urls) stays a liveness check that touches nothing. Readiness checks:
- `database`: a `SELECT 1` on the default connection;
- `broker`: the q2 broker answers (Redis: PING; the ORM broker: a read of its table);
- `cluster`: a q2 cluster showed a heartbeat in the last `Q2_HEARTBEAT_MAX_AGE` seconds.

Where the heartbeat comes from. A q2 cluster's sentinel saves its stats every guard cycle. With
the Redis broker they go to Redis and every process reads them (`Stat.get_all`). With the ORM
broker they go to q2's cache, which is each process's memory (a database cache would take two
writes every half second): `HeartbeatCache` is that memory cache, and when a sentinel saves
its stats it also writes, at most every `Q2_HEARTBEAT_SECONDS`, the time into the shared
cache, where every web process reads it. A sentinel that dies or hangs stops writing.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.db import close_old_connections, connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.status import Stat

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "ops:q2-heartbeat"
_last_beat = 0.0


class HeartbeatCache(LocMemCache):
    """q2's stats cache (`Q_CLUSTER["cache"]`): this process's memory, plus a throttled heartbeat in the shared cache."""

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        super().set(key, value, timeout, version)
        if isinstance(key, str) and key.startswith(Conf.Q_STAT + ":"):
            beat(cluster=key.rsplit(":", 1)[-1])


def beat(*, cluster: str) -> None:
    """Record that `cluster` is alive, at most every Q2_HEARTBEAT_SECONDS per process; never raises (q2's guard calls it)."""
    global _last_beat
    now = time.time()
    if now - _last_beat < settings.Q2_HEARTBEAT_SECONDS:
        return
    _last_beat = now
    try:
        close_old_connections()  # the sentinel's connection may have died with a database restart
        shared = caches["shared"]
        # One key for every cluster: the entries of clusters silent for 5 minutes are dropped.
        # Two clusters writing at once may drop each other's beat once; each writes again soon.
        beats = {k: t for k, t in (shared.get(HEARTBEAT_KEY) or {}).items() if now - t < 300}
        beats[cluster] = now
        shared.set(HEARTBEAT_KEY, beats, 600)
    except Exception:
        log.warning("the q2 heartbeat could not be written", exc_info=True)


def _last_heartbeat() -> float | None:
    broker = get_broker()
    if isinstance(broker, ORM):
        beats = caches["shared"].get(HEARTBEAT_KEY) or {}
        return max(beats.values(), default=None)
    stats = Stat.get_all(broker=broker) or []
    return max((s.timestamp.timestamp() for s in stats if getattr(s, "timestamp", None)), default=None)


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def check_broker() -> dict:
    broker = get_broker()
    if isinstance(broker, ORM):
        list(OrmQ.objects.using(Conf.ORM).order_by().values_list("id", flat=True)[:1])
        return {"ok": True, "broker": "orm"}
    broker.ping()  # raises when Redis does not answer
    return {"ok": True, "broker": "redis"}


def check_cluster() -> dict:
    limit = settings.Q2_HEARTBEAT_MAX_AGE
    last = _last_heartbeat()
    if last is None:
        return {"ok": False, "error": f"no q2 cluster heartbeat in the last {limit} s"}
    age = max(0.0, time.time() - last)
    if age > limit:
        return {"ok": False, "error": f"no q2 cluster heartbeat in the last {limit} s (the last one {age:.0f} s ago)", "age": round(age, 1)}
    return {"ok": True, "age": round(age, 1)}


CHECKS = {"database": check_database, "broker": check_broker, "cluster": check_cluster}


def readiness() -> tuple[bool, dict]:
    """Every check's answer by name; an exception is that check's failure (named by its class; the detail goes to the log)."""
    answers = {}
    for name, check in CHECKS.items():
        try:
            answers[name] = check()
        except Exception as exc:
            log.warning("readiness: %s failed", name, exc_info=True)
            answers[name] = {"ok": False, "error": f"{exc.__class__.__name__} (details in the log)"}
    failed = [name for name, answer in answers.items() if not answer["ok"]]
    return not failed, {"ok": not failed, "failed": failed, **answers, "checked_at": timezone.now().isoformat()}
