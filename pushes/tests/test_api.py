"""The push API: register (the secret shown once), read, change, delete, the log and replay;
another organisation's endpoints are not found; refusals in the one problem shape."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role, Scope
from pushes.models import PushDelivery, WebhookEndpoint

URL = "/api/v1/webhook-endpoints/"


@pytest.fixture
def client_of(make_member, make_token):
    def make(username="admin", role=Role.ADMIN, scopes=tuple(Scope.values), org=None):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(make_member(username, role, org=org), scopes, org=org)}")
        return client

    return make


def register(client, url="http://127.0.0.1:8999/hook", events=("remote.status_changed",)):
    return client.post(URL, {"url": url, "events": list(events), "description": "ERP"}, format="json")


def test_a_partner_registers_an_endpoint_and_sees_its_secret_once(client_of):
    partner = client_of()
    r = register(partner)

    assert r.status_code == 201, r.content
    body = r.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["remote.status_changed"] and body["enabled"] is True
    assert r["Location"] == body["href"]
    assert WebhookEndpoint.objects.get().secret == body["secret"]
    again = partner.get(f"{URL}{body['id']}/").json()
    assert "secret" not in again and again["url"] == "http://127.0.0.1:8999/hook"
    assert all("secret" not in e for e in partner.get(URL).json())


def test_production_refuses_a_private_url_naming_the_field(client_of, settings):
    settings.PUSH_ALLOW_PRIVATE_TARGETS = False
    r = register(client_of(), url="https://10.0.0.7/hook")

    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["code"] == "invalid_endpoint"
    assert "public address" in r.json()["errors"]["url"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("events", [[], ["remote.exploded"]])
def test_unknown_or_no_event_types_are_refused_naming_events(client_of, events):
    r = register(client_of(), events=events)
    assert r.status_code == 400 and "events" in r.json()["errors"]


def test_a_token_without_the_callbacks_scope_may_not_register(client_of):
    r = register(client_of(scopes=(Scope.READ, Scope.COMMAND)))
    assert r.status_code == 403 and "callbacks" in r.json()["detail"]


def test_an_operator_may_not_register_even_with_every_scope(client_of):
    r = register(client_of("op", Role.OPERATOR))
    assert r.status_code == 403


def test_another_organisations_endpoints_are_not_found(client_of, make_organisation):
    endpoint_id = register(client_of()).json()["id"]
    other = client_of("b-admin", org=make_organisation("Org B"))

    assert other.get(URL).json() == []
    for method in ("get", "patch", "delete"):
        r = getattr(other, method)(f"{URL}{endpoint_id}/", {}, format="json")
        assert r.status_code == 404, method
        assert r.json()["code"] == "not_found"
    assert other.get(f"{URL}{endpoint_id}/deliveries/").status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint_id).exists()


def test_a_partner_disables_and_deletes_its_endpoint(client_of):
    partner = client_of()
    endpoint_id = register(partner).json()["id"]

    r = partner.patch(f"{URL}{endpoint_id}/", {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["disabled_reason"]
    assert partner.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_the_log_lists_deliveries_and_one_is_replayed(client_of, make_vehicle, make_callback, monkeypatch):
    from pushes import services
    from remotes.models import ActionStatus, RemoteAction

    monkeypatch.setattr(services, "async_task", lambda *a, **kw: None)
    partner = client_of()
    endpoint_id = register(partner).json()["id"]
    vehicle = make_vehicle()
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=make_callback(vehicle.fleet), remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUCCESS, expires_at="2030-01-01T00:00:00Z",
    )
    services.emit(action_ids=[action.pk])
    PushDelivery.objects.update(state=PushDelivery.State.FAILED, attempts=8, next_attempt_at=None)

    log = partner.get(f"{URL}{endpoint_id}/deliveries/").json()
    assert [(d["action"], d["state"], d["payload"]["data"]["status"]) for d in log] == [(str(action.pk), "failed", "success")]
    r = partner.post(f"{URL}{endpoint_id}/deliveries/{log[0]['id']}/replay/")
    assert r.status_code == 202 and r.json()["state"] == "pending" and r.json()["attempts"] == 0
    assert r.json()["event_id"] == log[0]["event_id"]  # the same webhook-id: receivers deduplicate
    assert partner.get(f"{URL}{endpoint_id}/deliveries/?state=failed").json() == []
