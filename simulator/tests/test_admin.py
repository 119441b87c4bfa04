"""The admin lets a demo flip a vehicle's state and nudge the dispatcher."""

import pytest
from django.urls import reverse

from simulator import services
from simulator.models import SimNotification, SimVehicle

pytestmark = [pytest.mark.django_db, pytest.mark.urls("simulator.tests.urls")]


@pytest.mark.parametrize(
    "model", ["simfleet", "simvehicle", "simcallback", "simremoteaction", "simnotification", "simpumplease"]
)
def test_every_changelist_opens(admin_client, fleet, model):
    response = admin_client.get(reverse(f"admin:simulator_{model}_changelist"))

    assert response.status_code == 200


def test_a_vehicle_can_be_put_to_sleep_and_taken_offline(admin_client, fleet, awake_vehicle):
    url = reverse("admin:simulator_simvehicle_changelist")

    admin_client.post(url, {"action": "set_asleep_true_awake_until_none", "_selected_action": [awake_vehicle.pk]})
    admin_client.post(url, {"action": "set_online_false", "_selected_action": [awake_vehicle.pk]})

    vehicle = SimVehicle.objects.get(pk=awake_vehicle.pk)
    assert vehicle.asleep and vehicle.is_asleep()
    assert not vehicle.online


def test_a_dead_notification_can_be_sent_again(
    admin_client, fleet, awake_vehicle, receiver, django_capture_on_commit_callbacks
):
    callback = services.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": ["Horn"]},
    )
    services.send_remote(
        fleet_id=fleet.id, vehicle_id=awake_vehicle.id, callback_id=callback.id, body={"horn": {"state": "Activated"}}
    )
    receiver.respond = lambda r: 500
    services.pump(max_seconds=10, follow_up=False)
    assert set(SimNotification.objects.values_list("state", flat=True)) == {"dead"}
    receiver.respond = None

    with django_capture_on_commit_callbacks():
        admin_client.post(
            reverse("admin:simulator_simnotification_changelist"),
            {"action": "retry_now", "_selected_action": list(SimNotification.objects.values_list("pk", flat=True))},
        )
    services.run_due()

    assert set(SimNotification.objects.values_list("state", flat=True)) == {"delivered"}
