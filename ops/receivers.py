"""ops listens to what the apps below it say (remotes' signals, the Stellantis client's observer) and counts it.

Each receiver only touches prometheus-client metrics: no SQL, nothing that can fail the sender.
"""

from __future__ import annotations

from django.dispatch import receiver

from remotes.signals import action_status_changed, delivery_received

from . import metrics


@receiver(delivery_received, dispatch_uid="ops-metrics-delivery")
def count_delivery(*, outcome, event_dates=(), received_at=None, **_):
    metrics.observe_delivery(outcome=outcome, event_dates=event_dates, received_at=received_at)


@receiver(action_status_changed, dispatch_uid="ops-metrics-transition")
def count_transition(*, action_ids, status, **_):
    metrics.ACTION_TRANSITIONS.labels(status=status).inc(len(action_ids))


def vendor_call(method: str, status, limits) -> None:
    """The Stellantis client's call observer (set in OpsConfig.ready)."""
    metrics.observe_vendor_call(method=method, status=status, limits=limits)
