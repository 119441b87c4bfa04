"""Fixtures of the webhook tests (test_webhook, test_hostile_deliveries)."""

import json

import pytest
import requests
from django.conf import settings

from remotes.models import ActionStatus, RemoteAction


@pytest.fixture
def hook(live_server, make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at="2030-01-01T00:00:00Z",
    )
    url = live_server.url + "/webhooks/stellantis/remote/"

    def post(body, secret=None, raw=False, header=settings.WEBHOOK_SECRET_HEADER):
        """POST `body` (JSON-encoded unless `raw`) with the secret in `header` (none when `secret` is False)."""
        headers = {"Content-Type": "application/json"}
        if secret is not False:
            headers[header] = secret or callback.secret_header_value
        return requests.post(url, data=body if raw else json.dumps(body), headers=headers, timeout=30)

    post.action = action
    post.callback = callback
    post.url = url
    return post


# --- four-eyes approval (test_approvals, test_approval_pages) ----------------------------------

IMMOBILIZE = {"immobilization": {"activate": True}}


@pytest.fixture
def four_eyes(organisation):
    """Org A with four-eyes on for immobilization and stolen, 15 minutes to decide."""
    organisation.approval_required_for = ["immobilization", "stolen"]
    organisation.approval_ttl_minutes = 15
    organisation.save()
    return organisation


@pytest.fixture
def four_eyes_vehicle(make_vehicle, make_callback, four_eyes):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    return vehicle
