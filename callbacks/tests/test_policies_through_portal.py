"""A callback's policies as the portal's own webhook experiences them (simulator over HTTP)."""

import datetime as dt

from django.utils import timezone

from callbacks.services import create_callback
from remotes import services
from remotes.models import RemoteEvent, WebhookDelivery
from simulator.pump import run_due
from simulator.seeding import seed_world
from vehicles.services import import_fleet


def test_a_batch_of_ten_reaches_our_webhook_in_one_request_and_the_rest_after_its_window(stack, operator, organisation):
    fleet = import_fleet(fleet_id=seed_world(fleet_name="Batching", vehicle_count=6, seed=21).id, organisation=organisation).fleet
    create_callback(fleet=fleet, label="batched", batch_size=10, batch_time_window=30)
    for vehicle in fleet.vehicles.order_by("vin")[:4]:
        action = services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=operator)
        services.submit_remote_action(action_id=action.pk)

    now = timezone.now()
    run_due(now=now + dt.timedelta(minutes=5))  # every event raised: full batches go at once
    first = list(WebhookDelivery.objects.order_by("pk"))
    run_due(now=now + dt.timedelta(minutes=5, seconds=31))  # the rest once its window elapsed

    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert first and all(d.event_count == 10 for d in first)
    assert deliveries[-1].event_count <= 10
    assert sum(d.event_count for d in deliveries) == RemoteEvent.objects.count() >= 12  # nothing lost, nothing doubled
    assert all(d.outcome == WebhookDelivery.Outcome.PROCESSED for d in deliveries)
