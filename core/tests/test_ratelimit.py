"""The shared rate-limit budget: a hold recorded by one pacer stops every other one, in any
process, until it ends; then one caller probes while the others wait for its answer.

The same tests run on the database store and, when a Redis server answers, on Redis."""

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from conftest import _database_url_for_subprocess
from core.models import VendorBudget
from core.ratelimit import PROBE_SECONDS, DatabasePacer, RedisPacer
from stellantis.pacing import LocalPacer, NoPacer, Pacer

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["database", "redis"])
def make_pacer(request):
    """Pacers that share one store (as every worker process does), under a name of this test's own."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    if request.param == "redis":
        if not _redis_available():
            pytest.skip(f"no Redis server at {REDIS_URL}")
        yield lambda: RedisPacer(REDIS_URL, name=name)
        redis.Redis.from_url(REDIS_URL).delete(f"fleetportal:ratelimit:{name}:hold", f"fleetportal:ratelimit:{name}:ended")
    else:
        yield lambda: DatabasePacer(name=name)


def test_every_pacer_is_a_pacer(make_pacer):
    for pacer in (make_pacer(), LocalPacer(), NoPacer()):
        assert isinstance(pacer, Pacer)


def test_nothing_held_means_go(make_pacer):
    pacer = make_pacer()
    assert pacer.delay() == 0
    pacer.clear()  # nothing to clear: harmless
    assert pacer.delay() == 0


def test_a_hold_recorded_by_one_pacer_holds_off_another(make_pacer):
    one, other = make_pacer(), make_pacer()

    one.hold(30, reason="429 Too Many Requests")

    assert 29 < other.delay() <= 30
    assert 29 < one.delay() <= 30


def test_a_hold_is_extended_never_shortened(make_pacer):
    one, other = make_pacer(), make_pacer()
    one.hold(60, reason="daily limit reached")

    other.hold(1, reason="per-second limit reached")
    assert other.delay() > 55

    other.hold(120, reason="429")
    assert one.delay() > 115


def test_when_a_hold_ends_one_caller_probes_and_the_others_wait_for_its_answer(make_pacer):
    prober, waiter = make_pacer(), make_pacer()
    prober.hold(0.05, reason="per-second limit reached")
    time.sleep(0.1)

    assert prober.delay() == 0  # claims the next call
    assert 0 < waiter.delay() <= PROBE_SECONDS
    prober.clear()  # its answer had budget left
    assert waiter.delay() == 0


def test_a_hold_recorded_while_probing_stands(make_pacer):
    prober, other = make_pacer(), make_pacer()
    prober.hold(0.05, reason="per-second limit reached")
    time.sleep(0.1)
    assert prober.delay() == 0

    other.hold(30, reason="429 Too Many Requests")
    prober.clear()

    assert other.delay() > 25


def test_only_one_of_many_threads_probes_after_a_hold(make_pacer):
    pacers = [make_pacer() for _ in range(6)]
    pacers[0].hold(0.05, reason="429")
    time.sleep(0.1)
    gate = threading.Barrier(len(pacers))
    delays: list[float] = []

    def ask(pacer):
        gate.wait()
        delays.append(pacer.delay())

    threads = [threading.Thread(target=ask, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(d == 0 for d in delays) == [False] * 5 + [True]


def test_the_database_budget_is_one_row_that_says_why():
    DatabasePacer().hold(45, reason="429 Too Many Requests (daily limit of 1000 reached)")

    row = VendorBudget.objects.get(name="stellantis")
    assert row.reason.startswith("429") and row.hold_until is not None
    assert "held until" in str(row)


def test_a_hold_reaches_another_process():
    """Not per process: a worker started separately sees the hold this one recorded."""
    DatabasePacer().hold(40, reason="429 Too Many Requests")
    code = "from core.ratelimit import DatabasePacer; print(round(DatabasePacer().delay()))"
    env = {**os.environ, "DATABASE_URL": _database_url_for_subprocess(), "DJANGO_SETTINGS_MODULE": "fleetportal.settings"}

    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=True,
    )

    assert 30 <= int(out.stdout.strip().splitlines()[-1]) <= 40


def test_a_broken_store_lets_calls_through(caplog):
    pacer = RedisPacer("redis://127.0.0.1:9/0", name="nowhere")  # nothing listens on port 9

    assert pacer.delay() == 0
    pacer.hold(10, reason="429")  # logged, not raised
    assert "not recorded" in caplog.text
