"""Parser of the `RemoteEvents` body Stellantis POSTs to our webhook (the wire stays here).

Event by event: one event we cannot read is refused on its own (kept, with the reason, for
the delivery's `bad_events`) and the others are applied. Only a body that is not RemoteEvents
at all (not UTF-8 JSON, not an object, no `events` list) is refused whole. Nothing a sender
writes makes this raise: every value it returns can be stored by SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

from .dates import parse_instant
from .vocabulary import DoneStatus, EventType, FailureCause, PendingStatus

# RemoteAction.remote_action_id and RemoteEvent.remote_action_id are this long.
MAX_REMOTE_ACTION_ID = 64
# A refused event is kept as sent when it is this small and this shallow, else as its JSON text, cut.
_KEPT_CHARS = 2000
_KEPT_BRACKETS = 64

_PENDING = frozenset(PendingStatus.values)
_DONE = frozenset(DoneStatus.values)
_CAUSES = frozenset(FailureCause.values)
# The docs' prose: "the callback server will receive notifications type: Done or type: Failed";
# the template's RemoteEventType knows only Pending and Done. See _event for what we make of it.
_TYPE_FAILED = "Failed"

# What json.loads can turn into a NUL or a lone surrogate: PostgreSQL text and jsonb hold
# neither (SQLite's driver cannot encode a surrogate). A body without any of these needs no
# per-event check, which keeps the hot path as fast as it was.
_MAYBE_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ATTRIBUTES = re.compile(rb'"attributes"\s*:\s*(?=\[)')


class WebhookPayloadError(ValueError):
    """An event (or the whole body) cannot be read as RemoteEvents; it is stored and flagged, never lost."""


@dataclass(frozen=True)
class ParsedEvent:
    remote_action_id: str
    vin: str
    event_date: dt.datetime
    remote_type: str
    event_type: str
    status: str
    failure_cause: str = ""
    feedback_detail: str = ""

    @property
    def key(self) -> tuple:
        """What makes an event the same event when it is delivered again (RemoteEvent's unique key)."""
        return (self.remote_action_id, self.event_type, self.status, self.event_date)


def distinct_events(events: list[ParsedEvent]) -> list[ParsedEvent]:
    """The events in order, each key once: an insert's ON CONFLICT cannot see its own rows."""
    seen, distinct = set(), []
    for e in events:
        if e.key not in seen:
            seen.add(e.key)
            distinct.append(e)
    return distinct


@dataclass(frozen=True)
class ParsedDelivery:
    """What a body says: the events we read, the ones we refused, its Body attributes.

    `error` is set when the body is not RemoteEvents at all (then there are no events).
    """

    events: list[ParsedEvent]
    # [{index, error, event}]: the position in `events`, why, and the event as sent (its
    # JSON text when it is too big, too deep or holds what a database cannot store).
    bad_events: list[dict] = field(default_factory=list)
    # The Body attributes of the callback, [(key, value)], strings only.
    attributes: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""

    @property
    def event_count(self) -> int:
        return len(self.events) + len(self.bad_events)

    def summary(self) -> str:
        """One line on what was refused ("" when nothing was)."""
        if self.error or not self.bad_events:
            return self.error
        first = self.bad_events[0]
        return f"{len(self.bad_events)} of {self.event_count} events refused; the first, events[{first['index']}]: {first['error']}"


def parse_remote_events(body: bytes | str) -> ParsedDelivery:
    """Read a RemoteEvents body, event by event. Never raises for what the body holds."""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")  # a lone surrogate then fails below, as in bytes
    try:
        # Strict: no lone surrogate gets through (json.loads of bytes would let one in).
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParsedDelivery(events=[], attributes=attributes_of_broken_body(body), error=f"body is not UTF-8 text: {exc}")
    try:
        data = json.loads(text)
    except RecursionError:
        return ParsedDelivery(events=[], error="body is not JSON we can read: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, and an integer of more than 4,300 digits
        return ParsedDelivery(events=[], attributes=attributes_of_broken_body(body), error=f"body is not JSON: {exc}")
    if not isinstance(data, dict):
        return ParsedDelivery(events=[], error="body is not RemoteEvents: it is not a JSON object")
    attributes = _attributes(data.get("attributes"))
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        return ParsedDelivery(events=[], attributes=attributes, error="body is not RemoteEvents: it needs an events list")
    check_text = "\\u" in text and _MAYBE_UNSTORABLE.search(text) is not None
    events, bad = [], []
    for i, raw in enumerate(raw_events):
        try:
            events.append(_event(raw, check_text))
        except WebhookPayloadError as exc:
            bad.append({"index": i, "error": str(exc), "event": _kept(raw)})
    return ParsedDelivery(events=events, bad_events=bad, attributes=attributes)


def attributes_of_broken_body(body: bytes) -> list[tuple[str, str]]:
    """The Body attributes of a body we cannot read whole (cut at the size limit, say), when we can find them.

    The secret may travel as a Body attribute only: without this, an over-size delivery
    could not be authenticated, and would be refused rather than kept.
    """
    match = _ATTRIBUTES.search(body)
    if match is None:
        return []
    fragment = body[match.end() : match.end() + 65536].decode("utf-8", "replace")
    try:
        value, _ = json.JSONDecoder().raw_decode(fragment)
    except (ValueError, RecursionError):
        return []
    return _attributes(value)


def _attributes(value) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return []
    return [
        (a["key"], a["value"])
        for a in value[:100]
        if isinstance(a, dict) and isinstance(a.get("key"), str) and isinstance(a.get("value"), str)
    ]


def _show(value) -> str:
    """A sender's value in a message: its repr (which escapes NUL and surrogates), cut short."""
    try:
        text = repr(value)
    except RecursionError:
        return "(a value nested too deeply to show)"
    return text if len(text) <= 60 else text[:57] + "..."


def _kept(raw):
    """A refused event as we keep it: itself when any database holds it as it is, else its escaped JSON text, cut."""
    try:
        # ASCII only: NUL and surrogates become \u escapes. allow_nan=False: json.loads reads
        # 1e999, Infinity and NaN, which no JSON column takes back (SQLite's check refuses them).
        text = json.dumps(raw, allow_nan=False)
    except RecursionError:
        return "(nested too deeply to keep here; see the body)"
    except ValueError:
        text = json.dumps(raw)
    else:
        if len(text) <= _KEPT_CHARS and text.count("[") + text.count("{") <= _KEPT_BRACKETS and not _MAYBE_UNSTORABLE.search(text):
            return raw
    return text if len(text) <= _KEPT_CHARS else text[: _KEPT_CHARS - 3] + "..."


def _text(holder: dict, name: str, limit: int, check: bool) -> str:
    """An optional text field: "" when absent or null; refused when not a string or not storable."""
    value = holder.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookPayloadError(f"{name} must be a string, not {_show(value)}")
    if check and _UNSTORABLE.search(value):
        raise WebhookPayloadError(f"{name} holds a NUL or a lone surrogate, which we cannot store")
    return value[:limit]


def _event_date(value) -> dt.datetime:
    """eventDate as an aware date-time (no offset: UTC)."""
    if value is None:
        raise WebhookPayloadError("eventDate is missing")
    if not isinstance(value, str):
        raise WebhookPayloadError(f"eventDate must be a date-time string, not {_show(value)}")
    try:
        parsed = parse_instant(value)
        if parsed.year in (1, 9999):
            parsed.astimezone(dt.UTC)  # in range once in UTC, as every database stores it?
    except (ValueError, OverflowError) as exc:
        raise WebhookPayloadError(f"eventDate {_show(value)} is not a date-time we can store") from exc
    return parsed


def _event(raw, check: bool) -> ParsedEvent:
    if not isinstance(raw, dict):
        raise WebhookPayloadError(f"event is not an object: {_show(raw)}")
    status = raw.get("eventStatus")
    if not isinstance(status, dict):
        raise WebhookPayloadError("eventStatus is missing or not an object")
    event_type, value = status.get("type"), status.get("status")
    cause = _text(status, "failureCause", 64, check)
    if not isinstance(value, str | None):
        raise WebhookPayloadError(f"eventStatus.status must be a string, not {_show(value)}")
    if event_type == EventType.PENDING:
        if value not in _PENDING:
            raise WebhookPayloadError(f"eventStatus.status {_show(value)} is not a Pending status")
    elif event_type == EventType.DONE:
        if value not in _DONE:
            raise WebhookPayloadError(f"eventStatus.status {_show(value)} is not a Done status")
    elif event_type == _TYPE_FAILED:
        # The docs' prose speaks of "type: Failed" beside Pending and Done, and their own
        # workflow diagram draws that notification as type Done, status Failed, with a
        # failureCause: the action is over and failed. We read it so — stored as Done ·
        # Failed, so that it is final on both paths (events._derive, pg_ingest) and a
        # redelivery is the same event — when nothing in it says otherwise: its status is
        # absent, "Failed", or a failure cause (then that is the cause). Any other status
        # (a "Failed" that says Success, or Accepted) contradicts itself: refused, kept.
        if value is None or value == DoneStatus.FAILED:
            pass
        elif value in _CAUSES:
            cause = cause or value
        else:
            raise WebhookPayloadError(f"eventStatus.type 'Failed' with status {_show(value)} contradicts itself")
        event_type, value = EventType.DONE, DoneStatus.FAILED
    else:
        raise WebhookPayloadError(f"eventStatus.type {_show(event_type)} is neither Pending nor Done")
    rid = raw.get("remoteActionId")
    if not isinstance(rid, str) or not rid:
        raise WebhookPayloadError("remoteActionId is missing" if rid is None else f"remoteActionId must be a non-empty string, not {_show(rid)}")
    if len(rid) > MAX_REMOTE_ACTION_ID:
        # We store (and compare with) at most this many characters: no action of ours has it.
        raise WebhookPayloadError(f"remoteActionId is longer than {MAX_REMOTE_ACTION_ID} characters")
    if check and _UNSTORABLE.search(rid):
        raise WebhookPayloadError("remoteActionId holds a NUL or a lone surrogate, which we cannot store")
    # failureCause and feedbackDetail are kept as the vendor sent them, even when newer than
    # our lists (FailureCause, FeedbackDetail): the timeline shows an unknown cause verbatim.
    return ParsedEvent(
        remote_action_id=rid,
        vin=_text(raw, "vin", 17, check),
        event_date=_event_date(raw.get("eventDate")),
        remote_type=_text(raw, "remoteType", 40, check),
        event_type=event_type,
        status=value,
        failure_cause=cause,
        feedback_detail=_text(status, "feedbackDetail", 64, check),
    )
