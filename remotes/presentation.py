"""Actions in people's words: titles, statuses, causes and times in the reader's zone.

Every page (vehicle, action, timeline, approvals, console, bulk) and the template filters in
`remotes.templatetags.remote_words` go through here, so a status reads the same everywhere.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from stellantis.remotes import describe
from stellantis.vocabulary import FAILURE_ADVICE, FailureCause, PendingStatus, label_of

from .models import ActionStatus

# A status in words is its label (ActionStatus's are already people's words; pages and tests
# rely on "Success", "Waiting for approval"); `status_words(action)` adds the why.
# The tone of a status, for the badge's colour; the words carry the meaning on their own.
STATUS_TONE = {
    ActionStatus.SUCCESS: "good",
    ActionStatus.ALREADY_DONE: "good",
    ActionStatus.FAILED: "bad",
    ActionStatus.REJECTED: "bad",
    ActionStatus.ERROR: "bad",
    ActionStatus.EXPIRED: "bad",
    ActionStatus.UNKNOWN: "warn",
    ActionStatus.AWAITING_APPROVAL: "warn",
    ActionStatus.CANCELLED: "neutral",
}

VERIFICATION_WORDS = {"verified": "Verified", "not_confirmed": "Not confirmed", "": ""}


def action_title(action, tz=None) -> str:
    """"Lock doors", "Start charging at 22:00 (Europe/Paris)": the action's command in words."""
    return describe(action.remote_type, action.command, tz)


def cause_words(cause: str) -> str:
    """A vendor failure cause in plain words ("" for none)."""
    return label_of(FailureCause, cause) if cause else ""


def cause_advice(cause: str) -> str:
    return FAILURE_ADVICE.get(cause, "") if cause else ""


def status_words(status) -> str:
    """A status in words; given an action, with its failure cause or its pending step.

    "Success", "Failed: Vehicle battery level too low", "In progress: Waking up the vehicle",
    "Success · verified".
    """
    action = status if hasattr(status, "status") else None
    value = action.status if action is not None else status
    words = label_of(ActionStatus, value) if value else ""
    if action is None:
        return words
    if action.status == ActionStatus.FAILED and action.failure_cause:
        return f"{words}: {cause_words(action.failure_cause)}"
    if action.status == ActionStatus.PENDING and action.pending_status:
        return f"{words}: {label_of(PendingStatus, action.pending_status)}"
    verification = VERIFICATION_WORDS.get(getattr(action, "verification", "") or "", "")
    if verification:
        return f"{words} · {verification.lower()}"
    return words


def status_tone(status) -> str:
    value = status.status if hasattr(status, "status") else status
    return STATUS_TONE.get(value, "neutral")


def when(value: dt.datetime | None, *, seconds: bool = False, tz=None) -> str:
    """"27 Nov 14:05 CET" in the reader's zone (the year when not this one), always with the zone."""
    if value is None:
        return ""
    tz = tz or timezone.get_current_timezone()
    local = timezone.localtime(value, tz) if timezone.is_aware(value) else value
    now = timezone.localtime(timezone.now(), tz)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    day = f"{local.day} {local:%b}" + (f" {local.year}" if local.year != now.year else "")
    return f"{day} {clock} {local.tzname() or _zone_name(tz)}"


def _zone_name(tz) -> str:
    return getattr(tz, "key", None) or str(tz)


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """"3 h ago", "just now", "in 5 min": how far from now, roughly."""
    if value is None:
        return "never"
    now = now or timezone.now()
    delta = now - value
    future = delta.total_seconds() < 0
    seconds = abs(int(delta.total_seconds()))
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        amount = f"{max(1, round(seconds / 60))} min"
    elif seconds < 48 * 3600:
        amount = f"{round(seconds / 3600)} h"
    elif seconds < 60 * 86400:
        amount = f"{round(seconds / 86400)} days"
    elif seconds < 730 * 86400:
        amount = f"{round(seconds / (30 * 86400))} months"
    else:
        amount = f"{round(seconds / (365 * 86400))} years"
    return f"in {amount}" if future else f"{amount} ago"
