"""/healthz/ready: database, broker and a q2 cluster's heartbeat; 503 naming what failed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches

from conftest import _database_url_for_subprocess
from fleetportal.testing import wait_for
from ops import health


@pytest.fixture(autouse=True)
def _no_heartbeat_left(transactional_db):
    """The shared cache is a table no flush empties: each test starts without a previous cluster's heartbeat."""
    caches["shared"].delete(health.HEARTBEAT_KEY)
    health._last_beat = 0.0


@pytest.fixture
def fast_heartbeat(monkeypatch, settings):
    """A cluster started after this beats every half second, and readiness wants a beat of the last 2 s."""
    monkeypatch.setenv("Q2_HEARTBEAT_SECONDS", "0.5")
    settings.Q2_HEARTBEAT_MAX_AGE = 2


def ready(client):
    r = client.get("/healthz/ready")
    return r.status_code, r.json()


def test_liveness_stays_cheap(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200


def test_without_a_q2_cluster_ready_is_503_naming_the_cluster(client):
    status, body = ready(client)

    assert status == 503
    assert body["failed"] == ["cluster"]
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert "no q2 cluster heartbeat" in body["cluster"]["error"]


def test_with_a_q2_cluster_running_ready_is_200_and_503_once_it_stops(fast_heartbeat, q2_cluster, client):
    status, body = wait_for(lambda: (a := ready(client))[0] == 200 and a, timeout=20, message="a q2 heartbeat")
    assert set(body) >= {"database", "broker", "cluster"}
    assert body["failed"] == []

    os.killpg(q2_cluster.pid, signal.SIGSTOP)  # the whole cluster stops working (and beating)
    try:
        status, body = wait_for(lambda: (a := ready(client))[0] == 503 and a, timeout=10, message="the heartbeat to age")
        assert body["failed"] == ["cluster"]
    finally:
        os.killpg(q2_cluster.pid, signal.SIGCONT)
    wait_for(lambda: ready(client)[0] == 200, timeout=10, message="the heartbeat to come back")


def test_a_stale_heartbeat_is_not_a_live_cluster(client, settings):
    import time

    caches["shared"].set(health.HEARTBEAT_KEY, {"abc": time.time() - settings.Q2_HEARTBEAT_MAX_AGE - 5}, 600)
    status, body = ready(client)
    assert status == 503 and body["failed"] == ["cluster"]
    assert "the last one" in body["cluster"]["error"]

    caches["shared"].set(health.HEARTBEAT_KEY, {"abc": time.time()}, 600)
    assert ready(client)[0] == 200


def test_a_broker_that_does_not_answer_is_named(live_server):
    """A process whose Q2_BROKER points where no Redis listens: readiness names the broker, the database is fine."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "DEBUG": "1",
        "Q2_BROKER": "redis://127.0.0.1:1/0",
        "SIMULATOR_CREDENTIALS": django_settings.SIMULATOR_CREDENTIALS,
        "DJANGO_SETTINGS_MODULE": "fleetportal.settings",
        "LOG_LEVEL": "CRITICAL",
    }
    code = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz/ready'); print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=django_settings.BASE_DIR, env=env, capture_output=True, timeout=60, check=True)
    answer = json.loads(out.stdout.decode().strip().splitlines()[-1])

    assert answer["status"] == 503
    assert "broker" in answer["body"]["failed"]
    assert answer["body"]["database"] == {"ok": True}
    assert "ConnectionError" in answer["body"]["broker"]["error"]


def test_the_heartbeat_never_breaks_q2(monkeypatch, settings):
    """q2's guard calls the cache on every cycle: a shared cache that fails is logged, not raised."""

    class Broken:
        def get(self, *a, **k):
            raise RuntimeError("cache down")

    monkeypatch.setattr(health, "caches", {"shared": Broken()})
    health.beat(cluster="abc")  # no exception
