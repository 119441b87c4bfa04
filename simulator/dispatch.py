"""How the simulator notifies a callback's webhook, as the vendor does: RemoteEvents over HTTP.

Reads the callback's `subscribe` body (attributes, retry policy, batch policy) and turns
raised events into requests. No database writes here; `pump` owns the outbox rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import requests
from django.conf import settings

from stellantis.callbacks import DEFAULT_BATCH_TIME_WINDOW
from stellantis.vocabulary import ATTRIBUTE_VARIABLES, AttributeType, RetryPolicy

log = logging.getLogger(__name__)

# Spec defaults (CallbackSubscribe): Bounded retries 3 times, 10 s apart; batch window in stellantis.callbacks.
DEFAULT_RETRY_NUMBER = 3
DEFAULT_RETRY_DELAY = 10
# Scaled delays never go below this, so a very fast simulator does not hammer a failing webhook.
MIN_DELAY = 0.05


def speed() -> float:
    return max(float(settings.SIMULATOR_SPEED), 0.001)


def scaled(seconds: float, *, floor: float = 0.0) -> dt.timedelta:
    return dt.timedelta(seconds=max(seconds / speed(), floor))


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- policies ---------------------------------------------------------------------------


def max_attempts(subscribe: dict) -> int:
    """Every POST allowed for one notification: the first one plus the policy's retries."""
    policy = (subscribe.get("retryPolicy") or {}).get("policy", RetryPolicy.NONE)
    if policy == RetryPolicy.BOUNDED:
        return 1 + int(subscribe["retryPolicy"].get("retryNumber", DEFAULT_RETRY_NUMBER))
    return 2  # None: the vendor documents one single retry


def retry_delay(subscribe: dict) -> dt.timedelta:
    retry = subscribe.get("retryPolicy") or {}
    seconds = (
        retry.get("retryDelay", DEFAULT_RETRY_DELAY)
        if retry.get("policy") == RetryPolicy.BOUNDED
        else DEFAULT_RETRY_DELAY
    )
    return scaled(float(seconds), floor=MIN_DELAY)


def batch_policy(subscribe: dict) -> tuple[int, dt.timedelta] | None:
    """(size, window) when events are batched; None when each event goes alone."""
    batch = subscribe.get("batchNotify")
    if not batch:
        return None
    # The vendor: "$vin" as a Query attribute makes batching impossible (one URL per vehicle).
    for attribute in _attributes(subscribe):
        if attribute.get("type") == AttributeType.QUERY and attribute.get("value") == "$vin":
            return None
    return int(batch["size"]), scaled(float(batch.get("timeWindow", DEFAULT_BATCH_TIME_WINDOW)), floor=MIN_DELAY)


def plan_batches(subscribe: dict, rows: list, now: dt.datetime) -> list[list]:
    """Group a callback's pending notification rows (oldest first) into the requests due at `now`."""
    policy = batch_policy(subscribe)
    if policy is None:
        return [[row] for row in rows if row.next_attempt_at <= now]
    size, _window = policy
    retries = [row for row in rows if row.attempts > 0 and row.next_attempt_at <= now]
    batches = _chunks(retries, size)
    # Fresh rows wait (next_attempt_at = end of their window) until `size` are there or a
    # window is over, then they go together. "Any" rather than "the oldest": after a PUT
    # changed the window, a younger row may be due first, and it must not be left behind.
    fresh = [row for row in rows if row.attempts == 0]
    for chunk in _chunks(fresh, size):
        if len(chunk) == size or any(row.next_attempt_at <= now for row in chunk):
            batches.append(chunk)
    return batches


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _attributes(subscribe: dict) -> list[dict]:
    return list((((subscribe.get("callback") or {}).get("webhook") or {}).get("attributes")) or [])


# --- the request ------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One raised event as the webhook sees it."""

    remote_action_id: str
    vin: str
    event_date: dt.datetime
    remote_type: str
    event_type: str
    status: str
    failure_cause: str = ""
    feedback_detail: str = ""

    def as_wire(self) -> dict:
        status = {"type": self.event_type, "status": self.status}
        if self.failure_cause:
            status["failureCause"] = self.failure_cause
        if self.feedback_detail:
            status["feedbackDetail"] = self.feedback_detail
        return {
            "remoteActionId": self.remote_action_id,
            "vin": self.vin,
            "eventDate": rfc3339(self.event_date),
            "remoteType": self.remote_type,
            "eventStatus": status,
        }


@dataclass(frozen=True)
class Delivery:
    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    body: dict


def build_delivery(*, callback_id: str, fleet_id: str, subscribe: dict, notices: list[Notice]) -> Delivery:
    """The request for these notices; `$` variables take the first notice's values (one per request unless batched)."""
    first = notices[0]
    variables = {
        "$vin": first.vin,
        "$callbackID": callback_id,
        "$remoteType": first.remote_type,
        "$fleetID": fleet_id,
    }

    def fill(value) -> str:
        value = "" if value is None else str(value)
        return variables[value] if value in ATTRIBUTE_VARIABLES else value

    params, headers, body_attributes = [], {}, []
    for attribute in _attributes(subscribe):
        key, value = str(attribute["key"]), fill(attribute.get("value"))
        if attribute["type"] == AttributeType.HEADER:
            headers[key] = value
        elif attribute["type"] == AttributeType.QUERY:
            params.append((key, value))
        else:
            body_attributes.append({"key": key, "value": value})
    headers.setdefault("Content-Type", "application/json")
    headers.setdefault("User-Agent", "fleetportal-stellantis-simulator")
    body = {"callbackId": callback_id, "attributes": body_attributes, "events": [n.as_wire() for n in notices]}
    return Delivery(url=subscribe["callback"]["webhook"]["target"], params=params, headers=headers, body=body)


def post(delivery: Delivery, *, session: requests.Session) -> str:
    """POST the delivery; "" when the webhook answered 2xx, else what went wrong."""
    try:
        response = session.post(
            delivery.url,
            params=delivery.params,
            headers=delivery.headers,
            data=json.dumps(delivery.body).encode(),
            timeout=settings.SIMULATOR_WEBHOOK_TIMEOUT,
            # A redirect would turn the POST into a GET; the vendor wants a 2xx from the target.
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        log.info("simulator webhook %s failed: %s", delivery.url, exc)
        return f"{exc.__class__.__name__}: {exc}"[:1000]
    if 200 <= response.status_code < 300:
        return ""
    log.info("simulator webhook %s answered %s", delivery.url, response.status_code)
    return f"HTTP {response.status_code}: {response.text[:300]}"
