"""Helpers for tests that drive the simulator's rate limits."""

import time


def a_day_starting_now(settings, *, limit: int, seconds: int) -> None:
    """A simulated "day" of `seconds` with `limit` calls that turned a moment ago.

    The simulator's windows are fixed, as the vendor's are, so a test using a whole hour as its
    day would see it turn mid-test once an hour (and a Retry-After of a few seconds). Starting
    the day now gives the test the whole window, whatever the time of the run."""
    settings.SIMULATOR_RATE_LIMIT_PER_DAY = limit
    settings.SIMULATOR_RATE_LIMIT_DAY_SECONDS = seconds
    settings.SIMULATOR_RATE_LIMIT_DAY_STARTS_AT = int(time.time() - 1) % seconds
