"""What was commanded and what Stellantis said is kept: nobody deletes or forges it in the admin."""

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from remotes.models import RemoteAction, RemoteEvent, WebhookDelivery


@pytest.fixture
def records(make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
        expires_at=timezone.now(), remote_action_id="r1",
    )
    delivery = WebhookDelivery.objects.create(callback=callback, body="{}")
    event = RemoteEvent.objects.create(
        action=action, remote_action_id="r1", event_type="Done", status="Success", event_date=timezone.now(), delivery=delivery
    )
    return {"remoteaction": action, "remoteevent": event, "webhookdelivery": delivery}


@pytest.mark.parametrize("model", ["remoteaction", "remoteevent", "webhookdelivery"])
def test_not_even_a_superuser_deletes_changes_or_adds_one(records, client, model):
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-12345"))
    obj = records[model]
    base = f"/admin/remotes/{model}/"

    assert client.get(f"{base}{obj.pk}/change/").status_code == 200  # readable
    assert client.post(f"{base}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{base}add/").status_code == 403
    r = client.post(base, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert r.status_code in (200, 302)
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert b"delete_selected" not in client.get(base).content
