"""Push end to end over real sockets: a partner registers a receiver through the API, a horn goes
to the simulator through a q2 cluster, and signed events arrive up to the final status; a
receiver that fails twice gets the event on the third attempt."""

import json

import pytest
from django_q.brokers import get_broker
from django_q.scheduler import scheduler
from standardwebhooks.webhooks import Webhook

from accounts.models import Role
from fleetportal.testing import wait_for
from pushes.models import PushDelivery
from pushes.tests.receiver import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def push_cluster(monkeypatch, settings, request):
    """The q2 cluster with a fast retry schedule (its subprocess reads the environment)."""
    monkeypatch.setenv("PUSH_RETRY_BASE_SECONDS", "0.2")
    settings.PUSH_RETRY_BASE_SECONDS = 0.2
    return request.getfixturevalue("q2_cluster")


def ticking(predicate):
    """q2 runs its scheduler about every 30 s; tick it here so retries (ONCE schedules) go when due."""

    def check():
        scheduler(broker=get_broker())
        return predicate()

    return check


def register(partner, url):
    r = partner.post(f"{partner.base_url}/api/v1/webhook-endpoints/", json={"url": url, "events": ["remote.status_changed"]}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_partner_receives_signed_status_changes_of_a_horn_up_to_success(demo_fleet, push_cluster, api, make_member, make_token):
    partner = api(make_token(make_member("partner-admin", Role.ADMIN)))
    with Receiver() as receiver:
        endpoint = register(partner, receiver.url)
        vin = demo_fleet.vehicles.order_by("vin").first().vin
        r = partner.post(f"{partner.base_url}/api/v1/vehicles/{vin}/remotes/", json={"horn": {"state": "Activated"}}, timeout=10)
        assert r.status_code == 202
        action_id = r.json()["id"]

        def statuses():
            return [json.loads(body)["data"]["status"] for _, body in receiver.requests]

        wait_for(ticking(lambda: "success" in statuses()), timeout=90, message="the success event")

    events = []
    for headers, body in receiver.requests:
        events.append(Webhook(endpoint["secret"]).verify(body, headers))  # raises unless signed with the secret shown once
        assert headers["webhook-id"].startswith("msg_") and headers["content-type"] == "application/json"
    assert {e["data"]["id"] for e in events} == {action_id}
    ordered = [e["data"]["status"] for e in sorted(events, key=lambda e: e["timestamp"])]
    assert ordered[0] == "queued" and "submitted" in ordered and ordered[-1] == "success"
    assert len(set(h["webhook-id"] for h, _ in receiver.requests)) == len(receiver.requests)  # each event once
    last = sorted(events, key=lambda e: e["timestamp"])[-1]["data"]
    assert last["vin"] == vin and last["remote_type"] == "Horn" and last["failure"] is None
    assert last["url"].endswith(f"/api/v1/remotes/{action_id}/")

    log = partner.get(endpoint["deliveries"], timeout=10).json()
    assert {d["state"] for d in log} == {"delivered"} and len(log) == len(events)


def test_a_receiver_answering_500_twice_gets_the_event_on_the_third_try(
    push_cluster, api, make_member, make_token, make_vehicle, make_callback
):
    from remotes import services as remote_services
    from remotes.models import ActionStatus, RemoteAction

    partner = api(make_token(make_member("partner-admin", Role.ADMIN)))
    with Receiver(statuses=[500, 500]) as receiver:
        endpoint = register(partner, receiver.url)
        vehicle = make_vehicle()
        action = RemoteAction.objects.create(
            vehicle=vehicle, callback=make_callback(vehicle.fleet), remote_type="Horn", command={"horn": {"state": "Activated"}},
            source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at="2030-01-01T00:00:00Z",
        )
        remote_services._finish_open(action.pk, "No final word from Stellantis.")  # → error, pushed after commit

        delivery = wait_for(
            ticking(lambda: PushDelivery.objects.filter(state=PushDelivery.State.DELIVERED).first()), timeout=120, message="the third try"
        )

    assert delivery.attempts == 3 and delivery.last_status_code == 200
    assert [h["webhook-id"] for h, _ in receiver.requests] == [delivery.event_id] * 3
    for headers, body in receiver.requests:
        assert Webhook(endpoint["secret"]).verify(body, headers)["data"]["status"] == "error"
