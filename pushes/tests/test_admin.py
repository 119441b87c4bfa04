"""The admin lists an organisation's endpoints and log to its members only, never shows a
secret, and replays a delivery."""

import pytest
from django.contrib.auth.models import User

from accounts.models import Role
from pushes import services
from pushes.models import PushDelivery, WebhookEndpoint
from remotes.models import ActionStatus, RemoteAction


@pytest.fixture
def delivered(organisation, make_vehicle, make_callback, monkeypatch):
    monkeypatch.setattr(services, "async_task", lambda *a, **kw: None)
    WebhookEndpoint.objects.create(organisation=organisation, url="http://127.0.0.1:9/hook", events=["remote.status_changed"])
    vehicle = make_vehicle()
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=make_callback(vehicle.fleet), remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUCCESS, expires_at="2030-01-01T00:00:00Z",
    )
    services.emit(action_ids=[action.pk])
    PushDelivery.objects.update(state=PushDelivery.State.DELIVERED, attempts=1)
    return PushDelivery.objects.get()


def test_an_organisation_admin_sees_its_log_and_replays_a_delivery(client, make_member, delivered):
    client.force_login(make_member("boss", Role.ADMIN, is_staff=True))
    page = client.get("/admin/pushes/pushdelivery/")
    assert page.status_code == 200 and delivered.event_id in page.content.decode()

    r = client.post("/admin/pushes/pushdelivery/", {"action": "replay", "_selected_action": [delivered.pk]})
    assert r.status_code == 302
    delivered.refresh_from_db()
    assert delivered.state == PushDelivery.State.PENDING and delivered.attempts == 0


def test_another_organisations_member_sees_nothing(client, make_member, make_organisation, delivered):
    client.force_login(make_member("stranger", Role.ADMIN, org=make_organisation("Org B"), is_staff=True))
    assert delivered.event_id not in client.get("/admin/pushes/pushdelivery/").content.decode()
    assert client.get(f"/admin/pushes/pushdelivery/{delivered.pk}/change/").status_code == 404
    assert client.get(f"/admin/pushes/webhookendpoint/{delivered.endpoint_id}/change/").status_code == 404


def test_the_secret_is_not_on_the_endpoint_page(client, delivered):
    client.force_login(User.objects.create_superuser("root", password="pw-root-123456"))
    page = client.get(f"/admin/pushes/webhookendpoint/{delivered.endpoint_id}/change/")
    assert page.status_code == 200 and delivered.endpoint.secret not in page.content.decode()
