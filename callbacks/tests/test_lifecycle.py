"""Callbacks from the portal to Stellantis (the simulator, over HTTP) and back."""

import pytest
from django.contrib.auth.models import User

from callbacks import services
from callbacks.models import Callback
from remotes import inbox
from remotes import services as remote_services
from simulator.models import SimCallback
from stellantis import spec
from stellantis.callbacks import Subscription
from stellantis.client import FleetClient
from stellantis.vocabulary import CallbackStatus, RemoteType


@pytest.fixture
def fleet(stack, organisation):
    from simulator.seeding import seed_world
    from vehicles.services import import_fleet

    return import_fleet(fleet_id=seed_world(fleet_name="Callbacks", vehicle_count=2, seed=11).id, organisation=organisation).fleet


@pytest.fixture
def boss(db):
    return User.objects.create_superuser("boss", password="pw-boss-12345")


@pytest.fixture
def web(client, boss):
    client.force_login(boss)
    return client


@pytest.fixture
def partner(api, boss, make_token):
    return api(make_token(boss))


FORM = {
    "label": "Ops", "target": "https://hooks.example.com/stellantis", "name": "ops", "remote_types": ["Horn", "Doors"],
    "retry_policy": "Bounded", "retry_number": "4", "retry_delay": "30", "batch_size": "10", "batch_time_window": "",
    "attributes": "Header X-Vehicle: $vin\nBody source: fleetportal",
}


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"retry_policy": "None", "batch_size": 10, "batch_time_window": 5},
        {"retry_policy": "Bounded", "retry_number": 1, "retry_delay": 1, "remote_types": ["Navigation"], "attributes": [{"type": "Query", "key": "v", "value": "$vin"}]},
    ],
)
def test_every_callback_body_the_portal_sends_validates_against_the_spec(fleet, fields, reference_dir):
    callback = Callback(fleet=fleet, target="https://x.example/hook", **{"remote_types": list(RemoteType.values), **fields})
    assert spec.schema_errors(spec.API_FILE, "RemoteCallbackSubscribe", callback.subscription().to_wire()) == []


def test_creating_from_the_web_page_registers_it_at_stellantis(web, fleet):
    r = web.post(f"/callbacks/new/?fleet={fleet.external_id}", {**FORM, "fleet": fleet.external_id})

    assert r.status_code == 302
    callback = Callback.objects.get()
    vendor = SimCallback.objects.get(id=callback.external_id)
    assert vendor.subscribe["retryPolicy"] == {"policy": "Bounded", "retryNumber": 4, "retryDelay": 30}
    assert vendor.subscribe["batchNotify"] == {"size": 10, "timeWindow": 60}
    assert {"type": "Body", "key": "source", "value": "fleetportal"} in vendor.subscribe["callback"]["webhook"]["attributes"]
    assert callback.status == CallbackStatus.RUNNING


def test_bad_fields_are_named_and_nothing_is_sent(web, fleet):
    r = web.post(f"/callbacks/new/?fleet={fleet.external_id}", {**FORM, "fleet": fleet.external_id, "remote_types": [], "batch_time_window": "2", "attributes": "Header X-Fleetportal-Secret: x"})
    assert r.status_code == 200
    form = r.context["form"]
    assert set(form.errors) >= {"remote_types", "batch_time_window", "attributes"}
    assert SimCallback.objects.count() == 0 and Callback.objects.count() == 0


def test_vin_as_query_attribute_with_batching_is_warned_about(web, fleet):
    r = web.post(f"/callbacks/new/?fleet={fleet.external_id}", {**FORM, "fleet": fleet.external_id, "attributes": "Query vin: $vin"}, follow=True)
    assert b"one event per request" in r.content


def test_edit_puts_the_whole_object_and_a_refusal_changes_nothing(fleet):
    callback = services.create_callback(fleet=fleet, label="before", remote_types=["Horn"])
    services.update_callback(callback=callback, changes={"label": "after", "remote_types": ["Horn", "Lights"]})
    assert SimCallback.objects.get(id=callback.external_id).subscribe["remoteTypes"] == ["Horn", "Lights"]

    SimCallback.objects.filter(id=callback.external_id).delete()  # gone at the vendor
    with pytest.raises(services.CallbackSyncError, match="Nothing was changed"):
        services.update_callback(callback=Callback.objects.get(), changes={"label": "never"})
    assert Callback.objects.get().label == "after"


def test_pause_and_resume_reach_stellantis_and_a_paused_callback_is_not_used(fleet, operator):
    callback = services.create_callback(fleet=fleet, label="only one")
    services.set_callback_status(callback=callback, status=CallbackStatus.PAUSED)
    assert SimCallback.objects.get(id=callback.external_id).status == "Paused"

    with pytest.raises(remote_services.NoCallbackForType):
        remote_services.request_remote(vehicle=fleet.vehicles.first(), command={"horn": {"state": "Activated"}}, by=operator)

    services.set_callback_status(callback=callback, status=CallbackStatus.RUNNING)
    assert SimCallback.objects.get(id=callback.external_id).status == "Running"


@pytest.fixture
def busy_callback(fleet, operator):
    """A callback with an action still waiting for its Done event."""
    callback = services.create_callback(fleet=fleet, label="busy")
    action = remote_services.request_remote(vehicle=fleet.vehicles.first(), command={"horn": {"state": "Activated"}}, by=operator)
    remote_services.submit_remote_action(action_id=action.pk)
    return callback


def test_deleting_with_a_pending_action_is_refused_on_the_web_page(web, busy_callback):
    r = web.post(f"/callbacks/{busy_callback.pk}/delete/", follow=True)
    assert b"still pending" in r.content
    assert SimCallback.objects.filter(id=busy_callback.external_id).exists()
    assert Callback.objects.get().deleted_at is None


def test_deleting_with_a_pending_action_is_refused_in_the_admin(web, busy_callback):
    r = web.post("/admin/callbacks/callback/", {"action": "delete_at_stellantis", "_selected_action": [busy_callback.pk]}, follow=True)
    assert b"still pending" in r.content
    assert SimCallback.objects.filter(id=busy_callback.external_id).exists()


def test_deleting_with_a_pending_action_is_refused_by_the_api(partner, busy_callback, stack):
    r = partner.delete(f"{stack.url}/api/v1/callbacks/{busy_callback.pk}/", timeout=10)
    assert r.status_code == 409 and "still pending" in r.json()["detail"]
    assert SimCallback.objects.filter(id=busy_callback.external_id).exists()


def test_deleting_an_idle_callback_removes_it_at_stellantis_and_keeps_history(partner, fleet, stack):
    callback = services.create_callback(fleet=fleet, label="idle")
    r = partner.delete(f"{stack.url}/api/v1/callbacks/{callback.pk}/", timeout=10)
    assert r.status_code == 204
    assert not SimCallback.objects.filter(id=callback.external_id).exists()
    assert Callback.objects.get().deleted_at is not None


def test_the_api_creates_edits_and_pauses_with_field_errors_named(partner, fleet, stack):
    base = f"{stack.url}/api/v1/callbacks/"
    r = partner.post(base, json={"fleet": fleet.external_id, "remote_types": ["Horn"], "retry_policy": "Bounded", "retry_number": 0}, timeout=10)
    assert r.status_code == 400 and "at least 1" in r.json()["errors"]["retry_number"]
    r = partner.post(base, json={"fleet": fleet.external_id, "remote_types": ["Horn"], "batch_size": 5}, timeout=10)
    assert r.status_code == 201
    created = r.json()
    assert created["batch_time_window"] == 60 and created["target"].endswith("/webhooks/stellantis/remote/")

    r = partner.put(created["url"], json={"remote_types": ["Horn", "Doors"], "label": "renamed"}, timeout=10)
    assert r.status_code == 200 and r.json()["label"] == "renamed"
    assert SimCallback.objects.get(id=created["external_id"]).subscribe["remoteTypes"] == ["Horn", "Doors"]

    r = partner.put(created["url"] + "status/", json={"status": "Paused"}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "Paused"


def test_import_brings_every_vendor_callback_and_flags_missing_secrets(fleet, settings):
    client = FleetClient.from_settings()
    foreign = {"callback": {"webhook": {"target": "https://other.example/hook", "name": "legacy", "attributes": []}}, "remoteTypes": ["Horn"], "retryPolicy": {"policy": "None"}}
    for _ in range(3):
        client.create_callback(fleet.external_id, Subscription.from_wire(foreign))
    ours = services.create_callback(fleet=fleet, label="ours")

    result = services.import_callbacks(fleet=fleet)

    assert (result.created, result.updated, result.without_secret) == (3, 1, 3)
    assert Callback.objects.filter(secret_at_vendor=False, target="https://other.example/hook").count() == 3
    assert Callback.objects.get(pk=ours.pk).secret_at_vendor


def test_check_shows_what_differs_at_stellantis(fleet):
    callback = services.create_callback(fleet=fleet, label="checked", remote_types=["Horn"])
    assert services.compare_with_vendor(callback=callback) == []

    sim = SimCallback.objects.get(id=callback.external_id)
    sim.subscribe = {**sim.subscribe, "remoteTypes": ["Horn", "Stolen"]}
    sim.save()
    diffs = services.compare_with_vendor(callback=callback)
    assert [(d.field, d.ours, d.theirs) for d in diffs] == [("remote_types", ["Horn"], ["Horn", "Stolen"])]


def test_rotation_keeps_the_old_secret_valid_until_the_horizon(fleet):
    callback = services.create_callback(fleet=fleet, label="rotating")
    old = callback.secret_header_value
    rotated = services.rotate_secret(callback=callback)

    vendor_header = [a for a in SimCallback.objects.get(id=callback.external_id).subscribe["callback"]["webhook"]["attributes"] if a["key"] == "X-Fleetportal-Secret"]
    assert vendor_header == [
        {"type": "Header", "key": "X-Fleetportal-Secret", "value": rotated.secret_header_value},
        {"type": "Body", "key": "X-Fleetportal-Secret", "value": rotated.secret_header_value},
    ]
    assert inbox.authenticate(old) == callback.pk
    assert inbox.authenticate(rotated.secret_header_value) == callback.pk
    Callback.objects.filter(pk=callback.pk).update(previous_secret_until="2000-01-01T00:00:00Z")
    inbox._SECRETS.clear()  # a minute later, in any process: the cached secrets have expired
    with pytest.raises(inbox.WebhookUnauthorized):
        inbox.authenticate(old)
