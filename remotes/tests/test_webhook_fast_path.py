"""The webhook skips the middleware that serves people (remotes.middleware.WebhookFastPath), and loses nothing it needs."""

import json
import logging

import pytest
from django.conf import settings

from remotes.models import ActionStatus, RemoteAction, RemoteEvent, WebhookDelivery

pytestmark = pytest.mark.django_db
URL = "/webhooks/stellantis/remote/"


@pytest.fixture
def delivery(make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="fast01", expires_at="2030-01-01T00:00:00Z",
    )
    body = json.dumps({"callbackId": callback.external_id, "events": [{
        "remoteActionId": "fast01", "vin": vehicle.vin, "eventDate": "2026-11-25T10:00:00Z", "remoteType": "Horn",
        "eventStatus": {"type": "Pending", "status": "Accepted"},
    }]})

    def post(client, secret=None, **extra):
        return client.post(URL, body, content_type="application/json",
                           headers={settings.WEBHOOK_SECRET_HEADER: secret or callback.secret_header_value}, **extra)

    return post


def test_a_delivery_is_stored_and_answered_without_the_pages_middleware(client, delivery):
    r = delivery(client)

    assert r.status_code == 200 and r.json()["new"] == 1
    assert RemoteEvent.objects.filter(remote_action_id="fast01", status="Accepted").exists()
    assert r.headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still runs first
    # Nothing of the pages' middleware: no cookie, no framing or CSP header.
    assert "Set-Cookie" not in r.headers and "X-Frame-Options" not in r.headers and "Content-Security-Policy" not in r.headers


def test_a_host_not_allowed_is_refused_before_anything_is_stored(client, delivery, settings):
    settings.ALLOWED_HOSTS = ["portal.example"]
    r = delivery(client, HTTP_HOST="evil.example")

    assert r.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_a_refused_delivery_still_gets_its_request_log_line(client, delivery, caplog):
    with caplog.at_level(logging.INFO, logger="fleetportal.request"):
        r = delivery(client, secret="0123456789abcdef.not-the-secret")

    assert r.status_code == 401 and not WebhookDelivery.objects.exists()
    lines = [rec for rec in caplog.records if rec.name == "fleetportal.request"]
    assert [(rec.path, rec.status, rec.view) for rec in lines] == [(URL, 401, "stellantis-webhook")]


def test_a_stored_delivery_writes_no_request_line_unless_it_was_slow(client, delivery, caplog, monkeypatch):
    from fleetportal import logs

    with caplog.at_level(logging.INFO, logger="fleetportal.request"):
        assert delivery(client).status_code == 200
        assert not [rec for rec in caplog.records if rec.name == "fleetportal.request"]
        monkeypatch.setattr(logs, "QUIET_UNLESS_SLOWER_MS", 0.0)
        assert delivery(client).status_code == 200
    assert [rec.status for rec in caplog.records if rec.name == "fleetportal.request"] == [200]


def test_other_methods_on_the_webhooks_address_go_through_the_whole_chain(client, delivery):
    r = client.get(URL)
    assert r.status_code == 405 and r.headers["X-Frame-Options"] == "DENY"
