"""How to read a vehicle's `onboardCapabilities` (stored as the vendor gave it).

`remote` lists the remote features the vehicle supports when the remote-control service is
subscribed; its absence in a document that exists means no subscription. A document we
never read says nothing: the vendor then has the last word (`MissingRights`).
"""

from __future__ import annotations

from enum import Enum


class RemoteSupport(Enum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"  # the vendor says this feature is not supported
    NOT_SUBSCRIBED = "not_subscribed"  # no remote-control service at all
    UNKNOWN = "unknown"  # capabilities never read: assume it works


def remote_support(onboard: dict | None, capability: str) -> RemoteSupport:
    """What `onboardCapabilities` says of one remote capability (`horn`, `door`, `wakeup`, …)."""
    if not onboard:
        return RemoteSupport.UNKNOWN
    remote = onboard.get("remote")
    if remote is None:
        return RemoteSupport.NOT_SUBSCRIBED
    entry = remote.get(capability) if isinstance(remote, dict) else None
    if isinstance(entry, dict) and entry.get("supported") is False:
        return RemoteSupport.UNSUPPORTED
    return RemoteSupport.SUPPORTED
