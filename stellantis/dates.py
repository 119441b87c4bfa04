"""The vendor's date-times (RFC 3339, such as 2026-12-01T06:30:00Z): one reader for every body."""

from __future__ import annotations

import datetime as dt


def parse_instant(value, *, default_tz: dt.tzinfo | None = dt.UTC) -> dt.datetime:
    """The date-time a string spells; ValueError when it is not a string or not a date-time.

    A value without an offset is read in `default_tz` (UTC); pass None to get it back naive,
    for a caller that refuses such values. Callers decide what a bad value means to them.
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date-time string")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None and default_tz is not None:
        parsed = parsed.replace(tzinfo=default_tz)
    return parsed
