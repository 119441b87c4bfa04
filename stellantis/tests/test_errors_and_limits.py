"""The client against a fake vendor: 429 and the rate-limit headers, 403, support references."""

import email.utils

import pytest

from stellantis.errors import (
    AuthenticationFailed,
    NoAccess,
    NotFound,
    RateLimited,
    StellantisError,
    VendorRejected,
    VendorUnavailable,
)
from stellantis.pacing import Limits, LocalPacer, hold_for, read_limits

from .fakes import fake_client

XERROR = {"code": 42900, "uuid": "494f61d1-472a-4696-ac3c-2961496c3aaf", "message": "Too many requests", "timestamp": "2020-01-01T00:00:00.000Z"}
FLEET = {"id": "f", "name": "Fleet"}


def answers(*replies):
    """A vendor that gives these answers in turn (the last one again and again)."""
    queue = list(replies)

    def answer(request):
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


def test_a_429_is_rate_limited_with_its_retry_time_and_support_ref():
    client, fake = fake_client(answers((429, XERROR, {"Retry-After": "3600", "X-RateLimit-Remaining-1": "0"})))

    with pytest.raises(RateLimited) as exc:
        client.fleet("f")

    error = exc.value
    assert isinstance(error, VendorUnavailable) and not error.ambiguous and not error.permanent
    assert isinstance(error.retry_after, float) and error.retry_after == 3600
    assert (error.status, error.code, error.uuid, error.timestamp) == (429, 42900, XERROR["uuid"], XERROR["timestamp"])
    assert "support ref 494f61d1-472a-4696-ac3c-2961496c3aaf at 2020-01-01T00:00:00.000Z" in str(error)
    assert "retry in 3600 s" in str(error)
    assert len(fake.seen) == 1


def test_after_a_long_429_the_client_does_not_call_again_until_the_reset():
    client, fake = fake_client(answers((429, XERROR, {"Retry-After": "120"}), (200, FLEET, {})))
    with pytest.raises(RateLimited):
        client.fleet("f")

    for _ in range(5):
        with pytest.raises(RateLimited) as exc:
            client.fleet("f")
        assert 100 < exc.value.retry_after <= 120
        assert exc.value.status is None  # not an answer: the vendor was not called

    assert len(fake.seen) == 1


def test_a_short_429_is_waited_out_and_the_call_made_again_even_a_post():
    client, fake = fake_client(answers((429, XERROR, {"Retry-After": "1"}), (202, {"remoteActionId": "r1", "type": "Horn"}, {})))
    slept = client.clock.slept

    assert client.send_remote("f", "v", "c", {"label": "x", "horn": {"state": "Activated"}}) == "r1"
    assert len(fake.seen) == 2
    assert sum(slept) == pytest.approx(1.0)


def test_a_429_that_keeps_coming_is_raised_after_a_few_attempts():
    client, fake = fake_client(answers((429, XERROR, {"Retry-After": "1"})))

    with pytest.raises(RateLimited) as exc:
        client.fleet("f")

    assert exc.value.retry_after == 1
    assert len(fake.seen) == 3


def test_a_429_without_a_time_holds_off_briefly():
    client, fake = fake_client(answers((429, {"code": 42900, "message": "slow down"}, {}), (200, FLEET, {})))

    assert client.fleet("f").name == "Fleet"  # waited a second (faked), then answered
    assert len(fake.seen) == 2


def test_a_spent_burst_window_is_waited_out_before_the_next_call():
    spent = {"X-RateLimit-Limit-2": "10", "X-RateLimit-Remaining-2": "0", "X-RateLimit-Limit-1": "1000", "X-RateLimit-Remaining-1": "500"}
    client, fake = fake_client(answers((200, FLEET, spent), (200, FLEET, {})))
    slept = client.clock.slept

    client.fleet("f")
    assert slept == []
    client.fleet("f")

    assert sum(slept) == pytest.approx(1.0)
    assert len(fake.seen) == 2


def test_a_spent_day_with_a_reset_raises_at_once_without_calling():
    client, fake = fake_client(answers((200, FLEET, {"X-RateLimit-Remaining-1": "0", "X-RateLimit-Reset": "7200"})))

    client.fleet("f")  # this one was answered
    with pytest.raises(RateLimited) as exc:
        client.fleet("f")

    assert 7000 < exc.value.retry_after <= 7200
    assert len(fake.seen) == 1


def test_the_pacer_given_is_the_one_used():
    pacer = LocalPacer()  # real clock: a minute is a minute
    pacer.hold(60, reason="another worker saw a 429")
    client, fake = fake_client(answers((200, FLEET, {})), pacer=pacer)

    with pytest.raises(RateLimited):
        client.fleet("f")
    assert fake.seen == []


def test_the_rate_limit_headers_are_read_in_every_form_the_vendor_may_use():
    now = 1_700_000_000.0
    http_date = email.utils.formatdate(now + 90, usegmt=True)

    limits = read_limits(
        {"X-RateLimit-Limit-1": "1000", "X-RateLimit-Remaining-1": "0", "X-RateLimit-Limit-2": "10", "X-RateLimit-Remaining-2": "7",
         "Retry-After": http_date, "X-RateLimit-Reset": str(int(now + 30))},
        now=now,
    )

    assert limits == Limits(day_limit=1000, day_remaining=0, burst_limit=10, burst_remaining=7, retry_after=90, reset=30)
    assert read_limits({"Retry-After": "soon", "X-RateLimit-Remaining-1": "many"}, now=now) == Limits()
    assert hold_for(limits, 429).seconds == 90  # the longer of the two
    assert hold_for(limits, 200).seconds == 30 and "daily limit of 1000" in hold_for(limits, 200).reason
    assert hold_for(Limits(burst_remaining=0, reset=30), 200).seconds == 1.0  # a burst never lasts more than a second
    assert hold_for(Limits(day_remaining=3, burst_remaining=2), 200) is None


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [(403, NoAccess, "no access to that vehicle"), (401, AuthenticationFailed, "credentials"), (404, NotFound, "Not found")],
)
def test_refusals_are_typed_and_keep_the_support_reference(status, kind, words):
    body = {"code": status * 100, "uuid": "abc-123", "message": "Forbidden for this VIN", "timestamp": "2024-05-01T10:00:00Z"}
    client, _ = fake_client(answers((status, body, {})))

    with pytest.raises(kind) as exc:
        client.vehicle("f", "v")

    error = exc.value
    assert isinstance(error, VendorRejected) and error.permanent
    assert (error.uuid, error.timestamp, error.vendor_message) == ("abc-123", "2024-05-01T10:00:00Z", "Forbidden for this VIN")
    assert words in str(error)
    assert str(error).endswith(f"HTTP {status} · code {status * 100} · support ref abc-123 at 2024-05-01T10:00:00Z")


def test_an_error_without_a_uuid_shows_no_support_reference():
    assert str(StellantisError("boom", status=500)) == "boom · HTTP 500"
    assert StellantisError("boom").support_ref == ""


def test_rate_limited_is_what_the_remote_services_expect():
    error = RateLimited("slow down", retry_after=2)
    assert error.retry_after == 2.0 and isinstance(error.retry_after, float)
    assert isinstance(error, VendorUnavailable) and error.ambiguous is False
    assert RateLimited.__module__ == "stellantis.errors"


def test_a_wait_longer_than_the_limit_in_total_raises():
    """Holds that keep being extended while we sleep end in RateLimited, not an endless wait."""

    class Extending(LocalPacer):
        def delay(self):
            return 4.0

    client, fake = fake_client(answers((200, FLEET, {})), pacer=Extending())
    slept = client.clock.slept

    with pytest.raises(RateLimited):
        client.fleet("f")
    assert sum(slept) <= 3 * client.config.rate_limit_max_wait and fake.seen == []
