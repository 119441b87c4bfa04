"""The admin lets a demo flip a vehicle's state and nudge the dispatcher."""

import pytest
from django.urls import reverse

from simulator import pump, vendor
from simulator.models import SimNotification, SimVehicle

pytestmark = [pytest.mark.django_db, pytest.mark.urls("simulator.tests.urls")]


@pytest.mark.parametrize(
    "model", ["simfleet", "simvehicle", "simcallback", "simremoteaction", "simnotification", "simpumplease"]
)
def test_every_changelist_opens(admin_client, fleet, model):
    response = admin_client.get(reverse(f"admin:simulator_{model}_changelist"))

    assert response.status_code == 200


def test_a_vehicle_change_form_shows_every_trait(admin_client, fleet, awake_vehicle):
    response = admin_client.get(reverse("admin:simulator_simvehicle_change", args=[awake_vehicle.pk]))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert {"remote_subscribed", "door_open", "in_use", "stolen", "wake_ups_used", "preconditioning_programs"} <= set(
        form.fields
    )


def test_a_door_can_be_opened_from_the_list(admin_client, fleet, awake_vehicle):
    url = reverse("admin:simulator_simvehicle_changelist")
    page = admin_client.get(url, {"q": awake_vehicle.vin})
    formset = page.context["cl"].formset
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    form = formset.forms[0]
    for name in form.fields:
        value = form[name].value()
        if value is True:
            data[form.add_prefix(name)] = "on"
        elif value is not False and value is not None:  # unchecked boxes are not posted
            data[form.add_prefix(name)] = value
    data["form-0-door_open"] = "on"

    response = admin_client.post(f"{url}?q={awake_vehicle.vin}", data)

    assert response.status_code == 302, response.context["cl"].formset.errors
    vehicle = SimVehicle.objects.get(pk=awake_vehicle.pk)
    assert vehicle.door_open and vehicle.online and vehicle.doors_locked


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
    callback = vendor.create_callback(
        fleet_id=fleet.id,
        subscribe={"callback": {"webhook": {"target": receiver.url, "name": "h"}}, "remoteTypes": ["Horn"]},
    )
    vendor.send_remote(
        fleet_id=fleet.id, vehicle_id=awake_vehicle.id, callback_id=callback.id, body={"horn": {"state": "Activated"}}
    )
    receiver.respond = lambda r: 500
    pump.pump(max_seconds=10, follow_up=False)
    assert set(SimNotification.objects.values_list("state", flat=True)) == {"dead"}
    receiver.respond = None

    with django_capture_on_commit_callbacks():
        admin_client.post(
            reverse("admin:simulator_simnotification_changelist"),
            {"action": "retry_now", "_selected_action": list(SimNotification.objects.values_list("pk", flat=True))},
        )
    pump.run_due()

    assert set(SimNotification.objects.values_list("state", flat=True)) == {"delivered"}
