"""Retry and batch policies read from a callback's subscription (pure functions, no HTTP)."""

import datetime as dt
from types import SimpleNamespace

import pytest

from simulator import dispatch

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def row(*, attempts=0, due_in=0.0):
    return SimpleNamespace(attempts=attempts, next_attempt_at=NOW + dt.timedelta(seconds=due_in))


@pytest.mark.parametrize(
    ("retry", "attempts"),
    [
        (None, 2),
        ({"policy": "None"}, 2),
        ({"policy": "Bounded"}, 4),
        ({"policy": "Bounded", "retryNumber": 1}, 2),
        ({"policy": "Bounded", "retryNumber": 5}, 6),
    ],
)
def test_max_attempts_is_the_first_post_plus_the_retries(retry, attempts):
    subscribe = {"retryPolicy": retry} if retry else {}

    assert dispatch.max_attempts(subscribe) == attempts


def test_retry_delay_is_scaled_but_never_below_the_floor(settings):
    settings.SIMULATOR_SPEED = 10.0
    bounded = {"retryPolicy": {"policy": "Bounded", "retryDelay": 30}}

    assert dispatch.retry_delay(bounded) == dt.timedelta(seconds=3)
    settings.SIMULATOR_SPEED = 1_000_000.0
    assert dispatch.retry_delay(bounded) == dt.timedelta(seconds=dispatch.MIN_DELAY)


def test_without_batch_notify_each_due_row_goes_alone():
    rows = [row(), row(due_in=5), row(attempts=1, due_in=-1)]

    assert dispatch.plan_batches({}, rows, NOW) == [[rows[0]], [rows[2]]]


def test_full_batches_go_and_the_rest_waits_for_its_window():
    subscribe = {"batchNotify": {"size": 2, "timeWindow": 60}}
    rows = [row(due_in=30), row(due_in=31), row(due_in=32)]

    assert dispatch.plan_batches(subscribe, rows, NOW) == [rows[:2]]
    assert dispatch.plan_batches(subscribe, rows, NOW + dt.timedelta(seconds=33)) == [rows[:2], rows[2:]]


def test_a_row_due_first_after_a_window_change_is_not_left_behind():
    subscribe = {"batchNotify": {"size": 5}}
    rows = [row(due_in=30), row(due_in=-1)]

    assert dispatch.plan_batches(subscribe, rows, NOW) == [rows]


def test_failed_batch_rows_are_retried_together():
    subscribe = {"batchNotify": {"size": 3}}
    rows = [row(attempts=1, due_in=-1), row(attempts=1, due_in=-1), row(due_in=50)]

    assert dispatch.plan_batches(subscribe, rows, NOW) == [rows[:2]]


def test_vin_in_the_query_turns_batching_off():
    subscribe = {
        "batchNotify": {"size": 3},
        "callback": {"webhook": {"attributes": [{"type": "Query", "key": "v", "value": "$vin"}]}},
    }

    assert dispatch.batch_policy(subscribe) is None
    assert dispatch.batch_policy({**subscribe, "callback": {"webhook": {"attributes": []}}})[0] == 3
