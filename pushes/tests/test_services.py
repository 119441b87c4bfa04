"""Emission (one event per endpoint and status, after commit, cheap on the webhook) and delivery
(signed, retried with backoff, given up, never following a redirect)."""

import datetime as dt
import json

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.models import Organisation
from pushes import receivers, services
from pushes.models import PushDelivery, WebhookEndpoint, new_secret
from pushes.tests.receiver import Receiver
from remotes import inbox
from remotes import services as remote_services
from remotes.models import ActionStatus, RemoteAction


@pytest.fixture
def action(make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    return RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at="2030-01-01T00:00:00Z",
    )


@pytest.fixture
def endpoint(organisation):
    return WebhookEndpoint.objects.create(organisation=organisation, url="http://127.0.0.1:9/hook", events=["remote.status_changed"])


@pytest.fixture
def no_enqueue(monkeypatch):
    sent = []
    monkeypatch.setattr(services, "async_task", lambda *a, **kw: sent.append(a))
    return sent


def test_signed_headers_verify_with_the_standardwebhooks_library():
    secret = new_secret()
    assert secret.startswith("whsec_")
    body = json.dumps({"type": "remote.status_changed", "data": {"id": "x", "status": "success"}})
    headers = services.signed_headers(secret, "msg_1", body, timezone.now())

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(body, headers)["data"]["status"] == "success"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("success", "failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_status_change_is_owed_to_each_enabled_endpoint_of_the_actions_organisation(action, endpoint, organisation, no_enqueue):
    WebhookEndpoint.objects.create(organisation=organisation, url="http://127.0.0.1:9/off", events=["remote.status_changed"], enabled=False)
    other = Organisation.objects.create(name="Org B", slug="org-b")
    WebhookEndpoint.objects.create(organisation=other, url="http://127.0.0.1:9/b", events=["remote.status_changed"])

    assert services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED) == 1

    delivery = PushDelivery.objects.get()
    assert delivery.endpoint == endpoint and delivery.event_id.startswith("msg_")
    data = delivery.payload["data"]
    assert delivery.payload["type"] == "remote.status_changed"
    assert data["id"] == str(action.pk) and data["status"] == "submitted" and data["vin"] == action.vehicle.vin
    assert data["remote_type"] == "Horn" and data["failure"] is None
    assert data["url"] == f"{settings.PORTAL_PUBLIC_URL}/api/v1/remotes/{action.pk}/"


def test_the_same_status_is_pushed_once(action, endpoint, no_enqueue):
    assert services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED) == 1
    assert services.emit(action_ids=[action.pk]) == 0  # read back: still submitted
    assert PushDelivery.objects.count() == 1


def test_a_change_by_the_portal_is_emitted_only_once_committed(action, endpoint, no_enqueue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        remote_services._finish_open(action.pk, "gave up")
        assert not PushDelivery.objects.exists()  # not before the commit
    delivery = PushDelivery.objects.get()
    assert delivery.payload["data"]["status"] == "error" and delivery.payload["data"]["error"] == "gave up"
    assert len(no_enqueue) == 1  # its delivery task


def _webhook_body():
    return json.dumps({
        "callbackId": "cb0001", "attributes": [],
        "events": [{"remoteActionId": "cafe01", "vin": "VF3TEST0000000001", "eventDate": "2026-11-25T10:00:05Z",
                    "remoteType": "Horn", "eventStatus": {"type": "Done", "status": "Success"}}],
    }).encode()


def _receive(action):
    return inbox.receive_delivery(body=_webhook_body(), headers={settings.WEBHOOK_SECRET_HEADER: action.callback.secret_header_value})


@pytest.mark.django_db(transaction=True)
def test_the_webhook_enqueues_one_fan_out_per_delivery_for_an_organisation_with_endpoints(action, endpoint, monkeypatch):
    tasks = []
    monkeypatch.setattr(receivers, "async_task", lambda *a, **kw: tasks.append(a))
    services.refresh_cache()  # as registering the endpoint does in its process

    _receive(action)

    assert tasks == [(services.FAN_OUT_TASK, ["cafe01"])]
    monkeypatch.setattr(services, "async_task", lambda *a, **kw: None)
    assert services.emit_for_vendor_events(remote_action_ids=["cafe01"]) == 1
    assert PushDelivery.objects.get().payload["data"]["status"] == "success"


@pytest.mark.django_db(transaction=True)
def test_the_webhook_of_an_organisation_without_endpoints_does_no_push_work(action, monkeypatch):
    tasks = []
    monkeypatch.setattr(receivers, "async_task", lambda *a, **kw: tasks.append(a))

    for warm in (False, True):  # cold (just started): the set is read in the background, never waited for
        with CaptureQueriesContext(connection) as queries:
            _receive(action)
        assert tasks == []
        assert not [q for q in queries.captured_queries if "pushes_" in q["sql"]], warm
        services.refresh_cache()


def test_an_endpoint_registered_in_this_process_is_known_to_the_webhook_at_once(
    action, organisation, make_member, django_capture_on_commit_callbacks
):
    assert not services.callback_has_endpoints(action.callback_id)  # cold
    with django_capture_on_commit_callbacks(execute=True):
        services.create_endpoint(organisation=organisation, url="http://127.0.0.1:9/hook", events=["remote.status_changed"], by=make_member("boss", "admin"))
    assert services.callback_has_endpoints(action.callback_id)


def _due(delivery):
    PushDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def test_a_receiver_answering_500_twice_gets_the_event_on_the_third_attempt(action, organisation, no_enqueue):
    with Receiver(statuses=[500, 500]) as receiver:
        endpoint = WebhookEndpoint.objects.create(organisation=organisation, url=receiver.url, events=["remote.status_changed"])
        services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED)
        delivery = PushDelivery.objects.get()

        assert services.deliver(delivery_id=delivery.pk).startswith("retry in")
        assert Schedule.objects.filter(func="pushes.tasks.deliver", schedule_type=Schedule.ONCE).count() == 1
        _due(delivery)
        assert services.deliver(delivery_id=delivery.pk).startswith("retry in")
        _due(delivery)
        assert services.deliver(delivery_id=delivery.pk) == "delivered"

    delivery.refresh_from_db()
    assert delivery.state == PushDelivery.State.DELIVERED and delivery.attempts == 3 and delivery.last_status_code == 200
    assert [h["webhook-id"] for h, _ in receiver.requests] == [delivery.event_id] * 3
    for headers, body in receiver.requests:
        assert Webhook(endpoint.secret).verify(body, headers)["data"]["id"] == str(action.pk)


def test_a_retry_is_not_sent_before_its_time(action, endpoint, no_enqueue):
    services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED)
    delivery = PushDelivery.objects.get()
    PushDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + dt.timedelta(minutes=1))
    assert services.deliver(delivery_id=delivery.pk).startswith("not claimed")


def test_it_gives_up_after_the_last_attempt(action, organisation, no_enqueue):
    with Receiver(statuses=[503] * services.MAX_ATTEMPTS) as receiver:
        WebhookEndpoint.objects.create(organisation=organisation, url=receiver.url, events=["remote.status_changed"])
        services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED)
        delivery = PushDelivery.objects.get()
        for _ in range(services.MAX_ATTEMPTS - 1):
            assert services.deliver(delivery_id=delivery.pk).startswith("retry in")
            _due(delivery)
        assert services.deliver(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.state == PushDelivery.State.FAILED and delivery.last_status_code == 503 and delivery.next_attempt_at is None


def test_the_backoff_grows_from_the_base(settings):
    settings.PUSH_RETRY_BASE_SECONDS = 5
    assert [services.retry_delay(n) for n in range(1, 6)] == [5, 30, 120, 600, 3600]


def test_a_redirect_is_not_followed(action, organisation, no_enqueue):
    with Receiver(redirect_to="http://169.254.169.254/latest/meta-data") as receiver:
        WebhookEndpoint.objects.create(organisation=organisation, url=receiver.url, events=["remote.status_changed"])
        services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED)
        delivery = PushDelivery.objects.get()
        services.deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == PushDelivery.State.PENDING and "redirects are not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_a_target_that_became_private_is_not_called(action, endpoint, no_enqueue, settings):
    settings.PUSH_ALLOW_PRIVATE_TARGETS = False
    services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED)
    delivery = PushDelivery.objects.get()
    services.deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.last_error == "not sent: the URL must be https" and delivery.last_status_code is None


def test_the_sweep_hands_on_a_lost_delivery_and_owes_a_final_status_nobody_emitted(action, endpoint, no_enqueue):
    WebhookEndpoint.objects.update(created_at=timezone.now() - dt.timedelta(minutes=10))
    services.emit(action_ids=[action.pk], status=ActionStatus.SUBMITTED)
    PushDelivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    RemoteAction.objects.filter(pk=action.pk).update(status=ActionStatus.SUCCESS, finished_at=timezone.now() - dt.timedelta(minutes=2))

    assert services.sweep() == {"requeued": 1, "emitted_late": 1}
    assert PushDelivery.objects.filter(action_state="success").exists()
    assert services.sweep()["emitted_late"] == 0


def test_an_unapproved_command_that_expires_is_pushed_as_expired(action, endpoint, no_enqueue, django_capture_on_commit_callbacks):
    from remotes import approvals

    RemoteAction.objects.filter(pk=action.pk).update(
        status=ActionStatus.AWAITING_APPROVAL, approval_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert approvals.expire_unapproved() == 1

    assert PushDelivery.objects.get().payload["data"]["status"] == "expired"
