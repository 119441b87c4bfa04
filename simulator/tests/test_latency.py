"""SIMULATOR_LATENCY_MS: each answer takes that long, and the wait holds no transaction."""

import time

import pytest
from django.db import connection

from simulator import views

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("simulator.tests.urls")]


@pytest.fixture
def sleeps(monkeypatch):
    """Records each sleep of the views, and whether a transaction was open meanwhile."""
    seen = []
    real = time.sleep

    def sleep(seconds):
        seen.append((seconds, connection.in_atomic_block))
        real(seconds)

    monkeypatch.setattr(views.time, "sleep", sleep)
    return seen


def test_every_answer_takes_the_latency_without_holding_a_transaction(api, fleet, awake_vehicle, receiver, settings, sleeps):
    settings.SIMULATOR_LATENCY_MS = 200
    callback_id = api.create_callback(fleet.id, receiver.url)

    started = time.monotonic()
    response = api.send(awake_vehicle, callback_id, {"horn": {"state": "Activated"}})

    assert response.status_code == 202
    assert time.monotonic() - started >= 0.2
    # Half before the work, half after; a refusal waits as long.
    assert sleeps[-2:] == [(0.1, False), (0.1, False)]
    assert api.get("fleets/nope").status_code == 404
    assert sleeps[-1] == (0.1, False)


def test_the_jitter_spreads_answers_around_the_latency(settings):
    settings.SIMULATOR_LATENCY_MS, settings.SIMULATOR_LATENCY_JITTER_MS = 300, 100

    delays = [views._latency() for _ in range(200)]

    assert 0.2 <= min(delays) < max(delays) <= 0.4


def test_no_latency_by_default(api, fleet, sleeps):
    assert api.get(f"fleets/{fleet.id}").status_code == 200
    assert sleeps == []
