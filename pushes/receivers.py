"""Listeners of `remotes.signals`: how remotes' status changes reach partners without remotes importing us.

Both run after the change committed, through `send_robust`: an error here is logged, the
change stands, and the webhook answers as it would have.
"""

from __future__ import annotations

from django.dispatch import receiver
from django_q.tasks import async_task

from remotes import signals

from . import services


@receiver(signals.action_status_changed, dispatch_uid="pushes.status_changed")
def on_status_changed(sender, *, action_ids, status, **kwargs):
    # The portal moved actions (a request, an approval, a submit, a bulk's batch…): not the
    # webhook's hot path, so the endpoints are looked up at once (one query for the batch where no
    # organisation of theirs has one, two otherwise) and the deliveries enqueued.
    services.emit(action_ids=action_ids, status=status)


@receiver(signals.events_applied, dispatch_uid="pushes.events_applied")
def on_events_applied(sender, *, callback_id, remote_action_ids, **kwargs):
    # The webhook's hot path: a dict lookup (one query per callback and process every few
    # seconds) and, only for an organisation with an enabled endpoint, one q2 task per delivery.
    if services.callback_has_endpoints(callback_id):
        async_task(services.FAN_OUT_TASK, list(remote_action_ids))
