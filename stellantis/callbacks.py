"""A remote callback in our words, and its `RemoteCallbackSubscribe` body on the wire.

The portal's `Callback` model and the client exchange `Subscription`s; only this module
knows that the retry policy travels as `retryPolicy.retryNumber` or the batch policy as
`batchNotify.timeWindow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .vocabulary import CallbackStatus, RetryPolicy

# The vendor's default batch window when a size is given without one (seconds).
DEFAULT_BATCH_TIME_WINDOW = 60


@dataclass(frozen=True)
class Subscription:
    """What Stellantis holds for one callback: where to post, how to retry and batch, which types."""

    target: str
    remote_types: list[str]
    label: str = ""
    name: str = ""
    # [{type, key, value}]: Header / Query / Body attributes, our secret header among them.
    attributes: list[dict] = field(default_factory=list)
    retry_policy: str = RetryPolicy.NONE
    retry_number: int | None = None
    retry_delay: int | None = None
    batch_size: int | None = None
    batch_time_window: int | None = None

    def to_wire(self) -> dict:
        body = {
            "label": self.label,
            "callback": {"webhook": {"target": self.target, "name": self.name, "attributes": [dict(a) for a in self.attributes]}},
            "retryPolicy": {"policy": self.retry_policy},
            "remoteTypes": list(self.remote_types),
        }
        if self.retry_policy == RetryPolicy.BOUNDED:
            body["retryPolicy"].update(retryNumber=self.retry_number, retryDelay=self.retry_delay)
        if self.batch_size:
            body["batchNotify"] = {"size": self.batch_size, "timeWindow": self.batch_time_window or DEFAULT_BATCH_TIME_WINDOW}
        return body

    @classmethod
    def from_wire(cls, subscribe: dict | None) -> Subscription:
        subscribe = subscribe or {}
        webhook = (subscribe.get("callback") or {}).get("webhook") or {}
        retry = subscribe.get("retryPolicy") or {}
        batch = subscribe.get("batchNotify") or {}
        return cls(
            target=webhook.get("target") or "",
            name=webhook.get("name") or "",
            label=subscribe.get("label") or "",
            attributes=[a for a in webhook.get("attributes") or [] if isinstance(a, dict)],
            retry_policy=retry.get("policy") or RetryPolicy.NONE,
            retry_number=retry.get("retryNumber"),
            retry_delay=retry.get("retryDelay"),
            batch_size=batch.get("size"),
            batch_time_window=batch.get("timeWindow") if batch.get("size") else None,
            remote_types=list(subscribe.get("remoteTypes") or []),
        )

    def attribute(self, key: str) -> str:
        """The value of the attribute named `key` ("" when absent)."""
        return next((str(a.get("value") or "") for a in self.attributes if a.get("key") == key), "")


@dataclass(frozen=True)
class RemoteCallback:
    """A callback as Stellantis holds it (`RemoteCallback`), or as it answered a POST (`CallbackRef`)."""

    id: str
    status: str = CallbackStatus.RUNNING
    subscription: Subscription | None = None

    @classmethod
    def from_wire(cls, body: dict | None, *, id_key: str = "id") -> RemoteCallback:
        body = body or {}
        subscribe = body.get("subscribe")
        return cls(
            id=str(body.get(id_key) or ""),
            status=body.get("status") or CallbackStatus.RUNNING,
            subscription=Subscription.from_wire(subscribe) if subscribe is not None else None,
        )
