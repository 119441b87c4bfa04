"""Reads of remote actions: the timeline a person (or a partner) watches."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stellantis.vocabulary import (
    FAILURE_ADVICE,
    DoneStatus,
    EventType,
    FailureCause,
    FeedbackDetail,
    PendingStatus,
    label_of,
)

from .models import ActionStatus, RemoteAction

# Portal steps that are not statuses: the outcome read back from the vehicle (remotes.verification).
STEP_TITLES = {"verified": "Verified", "not_confirmed": "Not confirmed", "unverified": "Not verified"}


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    origin: str  # "portal" or "stellantis"
    kind: str  # queued/submitted/… for the portal, Pending/Done for Stellantis
    status: str
    title: str
    detail: str = ""

    @property
    def tone(self) -> str:
        if self.status in (DoneStatus.SUCCESS, DoneStatus.ALREADY_DONE, ActionStatus.SUBMITTED, "verified"):
            return "good"
        if self.status in (DoneStatus.FAILED, ActionStatus.REJECTED, ActionStatus.ERROR, ActionStatus.EXPIRED, ActionStatus.UNKNOWN, "not_confirmed"):
            return "bad"
        return "neutral"


def _vendor_title(event) -> tuple[str, str]:
    if event.event_type == EventType.DONE:
        title = f"Done · {label_of(DoneStatus, event.status)}"
        detail = ""
        if event.failure_cause:
            detail = f"{label_of(FailureCause, event.failure_cause)}. {FAILURE_ADVICE.get(event.failure_cause, '')}".strip()
        if event.feedback_detail:
            detail = (detail + f" {label_of(FeedbackDetail, event.feedback_detail)}.").strip()
        return title, detail
    return f"Pending · {label_of(PendingStatus, event.status)}", ""


def timeline(action: RemoteAction) -> list[TimelineEntry]:
    """Our own steps and the vendor's events, ordered by when they happened.

    Uses prefetched `steps` and `events` when the caller prefetched them.
    """
    entries = [
        TimelineEntry(at=s.at, origin="portal", kind=s.status, status=s.status, title=STEP_TITLES.get(s.status) or label_of(ActionStatus, s.status), detail=s.detail)
        for s in action.steps.all()
    ]
    for e in action.events.all():
        title, detail = _vendor_title(e)
        if e.delivery_id is None:
            detail = (detail + " Read back from Stellantis (no notification received).").strip()
        entries.append(TimelineEntry(at=e.event_date, origin="stellantis", kind=e.event_type, status=e.status, title=title, detail=detail))
    entries.sort(key=lambda t: (t.at, 0 if t.origin == "portal" else 1))
    return entries


def action_with_timeline(qs, pk) -> RemoteAction:
    return qs.select_related("vehicle", "callback", "requested_by").prefetch_related("steps", "events").get(pk=pk)
