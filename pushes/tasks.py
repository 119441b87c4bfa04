"""q2 entry points of the push: they take ids and call one service."""

from . import services


def deliver(delivery_id) -> str:
    """One attempt at one push delivery (retries are scheduled by the service)."""
    return services.deliver(delivery_id=delivery_id)


def fan_out(remote_action_ids) -> int:
    """After a webhook delivery of a callback whose organisation has endpoints: push what its actions are now."""
    return services.emit_for_vendor_events(remote_action_ids=remote_action_ids)


def sweep() -> dict:
    return services.sweep()
