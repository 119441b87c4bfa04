"""Parser of the `RemoteEvents` body Stellantis POSTs to our webhook (the wire stays here)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from .dates import parse_instant
from .vocabulary import DoneStatus, EventType, PendingStatus

# RemoteAction.remote_action_id and RemoteEvent.remote_action_id are this long.
MAX_REMOTE_ACTION_ID = 64


class WebhookPayloadError(ValueError):
    """The body cannot be read as RemoteEvents; it is stored and flagged, never lost."""


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
    events: list[ParsedEvent]


def _event_date(value) -> dt.datetime:
    """eventDate as an aware date-time (no offset: UTC)."""
    if not isinstance(value, str):
        raise WebhookPayloadError("eventDate must be a date-time string")
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise WebhookPayloadError(f"eventDate {value!r} is not a date-time") from exc


def parse_remote_events(body: bytes | str) -> ParsedDelivery:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise WebhookPayloadError("body is not RemoteEvents: it needs an events list")
    events = []
    for i, raw in enumerate(data["events"]):
        try:
            events.append(_event(raw))
        except WebhookPayloadError as exc:
            raise WebhookPayloadError(f"events[{i}]: {exc}") from exc
    return ParsedDelivery(events=events)


def _event(raw) -> ParsedEvent:
    if not isinstance(raw, dict):
        raise WebhookPayloadError("event is not an object")
    status = raw.get("eventStatus")
    if not isinstance(status, dict):
        raise WebhookPayloadError("eventStatus is missing")
    event_type = status.get("type")
    value = status.get("status")
    if event_type == EventType.PENDING:
        allowed = PendingStatus.values
    elif event_type == EventType.DONE:
        allowed = DoneStatus.values
    else:
        raise WebhookPayloadError(f"eventStatus.type {event_type!r} is neither Pending nor Done")
    if value not in allowed:
        raise WebhookPayloadError(f"eventStatus.status {value!r} is not a {event_type} status")
    rid = raw.get("remoteActionId")
    if not isinstance(rid, str) or not rid:
        raise WebhookPayloadError("remoteActionId is missing")
    if len(rid) > MAX_REMOTE_ACTION_ID:
        # We store (and compare with) at most this many characters: no action of ours has it.
        raise WebhookPayloadError(f"remoteActionId is longer than {MAX_REMOTE_ACTION_ID} characters")
    if any("\x00" in str(v) for v in (rid, raw.get("vin"), raw.get("remoteType"), status.get("failureCause"), status.get("feedbackDetail"))):
        raise WebhookPayloadError("a text field holds a NUL character")  # PostgreSQL text cannot store it
    # failureCause and feedbackDetail are kept as the vendor sent them, even when newer than
    # our lists (FailureCause, FeedbackDetail): the timeline shows an unknown cause verbatim.
    cause = status.get("failureCause") or ""
    detail = status.get("feedbackDetail") or ""
    return ParsedEvent(
        remote_action_id=rid,
        vin=str(raw.get("vin") or "")[:17],
        event_date=_event_date(raw.get("eventDate")),
        remote_type=str(raw.get("remoteType") or "")[:40],
        event_type=event_type,
        status=value,
        failure_cause=str(cause)[:64],
        feedback_detail=str(detail)[:64],
    )
