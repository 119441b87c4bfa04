"""A callback Stellantis turned Failed is read back, no longer chosen, shown with what to do, and resumed."""

import dataclasses
import datetime as dt
import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.utils import timezone
from django_q.models import Schedule

from callbacks import services, tasks
from callbacks.models import Callback
from fleetportal.testing import FaultyProxy
from remotes import services as remote_services
from simulator import pump
from simulator.models import SimCallback
from stellantis.client import ClientConfig, FleetClient
from stellantis.vocabulary import CallbackStatus

HORN = {"horn": {"state": "Activated"}}


@pytest.fixture
def fleet(stack, organisation):
    from simulator.seeding import seed_world
    from vehicles.services import import_fleet

    return import_fleet(fleet_id=seed_world(fleet_name="Failing", vehicle_count=2, seed=13).id, organisation=organisation).fleet


@pytest.fixture
def web(client, db):
    client.force_login(User.objects.create_superuser("boss", password="pw-boss-12345"))
    return client


def fail_at_vendor(callback: Callback) -> None:
    SimCallback.objects.filter(pk=callback.external_id).update(status=CallbackStatus.FAILED)


def client_at(base_url: str) -> FleetClient:
    return FleetClient(dataclasses.replace(ClientConfig.from_settings(), base_url=base_url))


def test_a_webhook_that_keeps_refusing_ends_with_no_callback_for_new_commands(fleet, operator, settings):
    """The whole path: the simulator gives up on our webhook, the portal reads it back, stops choosing it."""
    settings.SIMULATOR_CALLBACK_FAIL_AFTER = 3
    callback = services.create_callback(
        fleet=fleet, label="unreachable", target="http://127.0.0.1:9/nothing-listens-here", retry_policy="Bounded",
        retry_number=1, retry_delay=1,
    )
    action = remote_services.request_remote(vehicle=fleet.vehicles.first(), command=HORN, by=operator)
    remote_services.submit_remote_action(action_id=action.pk)
    for _ in range(20):
        if SimCallback.objects.get(pk=callback.external_id).status == CallbackStatus.FAILED:
            break
        pump.run_due(now=timezone.now() + dt.timedelta(seconds=900))
    assert SimCallback.objects.get(pk=callback.external_id).status == CallbackStatus.FAILED
    assert Callback.objects.get(pk=callback.pk).status == CallbackStatus.RUNNING  # not known here yet

    result = services.refresh_callback_statuses()

    assert result.failed == 1 and result.changed == [f"{callback}: Running → Failed"]
    callback.refresh_from_db()
    assert callback.status == CallbackStatus.FAILED
    assert Callback.objects.serving(fleet, "Horn") == []
    with pytest.raises(remote_services.NoCallbackForType):
        remote_services.request_remote(vehicle=fleet.vehicles.first(), command=HORN, by=operator)


def test_only_a_failed_callback_serving_the_type_means_no_callback_for_it(fleet, operator):
    callback = services.create_callback(fleet=fleet, label="only one")
    fail_at_vendor(callback)
    services.refresh_callback_statuses()

    with pytest.raises(remote_services.NoCallbackForType) as refused:
        remote_services.request_remote(vehicle=fleet.vehicles.first(), command=HORN, by=operator)
    assert refused.value.remote_type == "Horn"

    # Resumed (from Failed) at Stellantis: chosen again.
    services.set_callback_status(callback=callback, status=CallbackStatus.RUNNING)
    assert SimCallback.objects.get(pk=callback.external_id).status == CallbackStatus.RUNNING
    action = remote_services.request_remote(vehicle=fleet.vehicles.first(), command=HORN, by=operator)
    assert action.callback_id == callback.pk


def test_each_pass_records_when_it_checked_and_follows_the_vendor_back(fleet):
    callback = services.create_callback(fleet=fleet, label="watched")
    Callback.objects.filter(pk=callback.pk).update(last_synced_at=None)

    result = services.refresh_callback_statuses()

    assert (result.checked, result.changed, result.errors, result.gone) == (1, [], [], [])
    callback.refresh_from_db()
    assert callback.status == CallbackStatus.RUNNING
    assert timezone.now() - callback.last_synced_at < dt.timedelta(seconds=30)
    # Paused at Stellantis by someone else: followed too.
    SimCallback.objects.filter(pk=callback.external_id).update(status=CallbackStatus.PAUSED)
    assert services.refresh_callback_statuses().changed == [f"{callback}: Running → Paused"]


def test_one_vendor_error_does_not_stop_the_pass_for_the_others(fleet, stack, settings):
    first = services.create_callback(fleet=fleet, label="first")
    second = services.create_callback(fleet=fleet, label="second")
    fail_at_vendor(first)
    fail_at_vendor(second)
    Callback.objects.update(last_synced_at=None)

    with FaultyProxy(stack.url) as proxy:
        proxy.fail("GET", "fail_before")  # the first GET (the first callback's) answers 503
        result = services.refresh_callback_statuses(client=client_at(f"{proxy.url}/{settings.SIMULATOR_PATH}"))

    assert result.checked == 2 and len(result.errors) == 1 and "first" in result.errors[0]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.last_synced_at) == (CallbackStatus.RUNNING, None)  # read next time
    assert second.status == CallbackStatus.FAILED and second.last_synced_at is not None


def test_a_callback_stellantis_no_longer_has_is_marked_deleted(fleet, operator, web):
    gone = services.create_callback(fleet=fleet, label="gone")
    kept = services.create_callback(fleet=fleet, label="kept")
    SimCallback.objects.filter(pk=gone.external_id).delete()  # removed at the vendor, not by us

    result = services.refresh_callback_statuses()

    assert result.gone == ["gone"] and result.errors == []
    gone.refresh_from_db()
    assert gone.deleted_at is not None  # the row stays, for the history of actions sent through it
    assert Callback.objects.get(pk=kept.pk).deleted_at is None
    action = remote_services.request_remote(vehicle=fleet.vehicles.first(), command=HORN, by=operator)
    assert action.callback_id == kept.pk
    assert b"gone" not in web.get("/callbacks/").content
    # Already marked: not checked again.
    assert services.refresh_callback_statuses().checked == 1


def test_a_404_for_everything_deletes_nothing(fleet, stack):
    """A wrong base URL (or a vanished fleet) answers 404 too: only a fleet listing that succeeds confirms a loss."""
    callback = services.create_callback(fleet=fleet, label="still there")

    result = services.refresh_callback_statuses(client=client_at(f"{stack.url}/no-such-api/v3"))

    assert result.gone == [] and len(result.errors) == 1
    assert Callback.objects.get(pk=callback.pk).deleted_at is None


def test_the_callbacks_page_says_what_to_do_and_resumes_a_failed_callback(fleet, web):
    callback = services.create_callback(fleet=fleet, label="webhook down")
    fail_at_vendor(callback)
    services.refresh_callback_statuses()

    page = web.get("/callbacks/").content.decode()

    assert 'id="failed-callbacks"' in page and "webhook down" in page
    assert "Stellantis stopped posting to this webhook after it kept failing" in page
    assert "then resume it" in page and "synced with Stellantis" in page
    resume = f'action="/callbacks/{callback.pk}/status/"'
    assert resume in page and 'name="status" value="Running"><button>Resume</button>' in page

    r = web.post(f"/callbacks/{callback.pk}/status/", {"status": "Running"}, follow=True)

    assert r.status_code == 200
    assert Callback.objects.get(pk=callback.pk).status == CallbackStatus.RUNNING
    assert SimCallback.objects.get(pk=callback.external_id).status == CallbackStatus.RUNNING
    assert 'id="failed-callbacks"' not in r.content.decode()


def test_the_admin_reads_statuses_back_and_resumes(fleet, web):
    callback = services.create_callback(fleet=fleet, label="admin")
    fail_at_vendor(callback)

    r = web.post("/admin/callbacks/callback/", {"action": "refresh_status", "_selected_action": [callback.pk]}, follow=True)
    assert b"Running \xe2\x86\x92 Failed" in r.content
    assert Callback.objects.get(pk=callback.pk).status == CallbackStatus.FAILED

    web.post("/admin/callbacks/callback/", {"action": "resume", "_selected_action": [callback.pk]}, follow=True)
    assert Callback.objects.get(pk=callback.pk).status == CallbackStatus.RUNNING
    assert SimCallback.objects.get(pk=callback.external_id).status == CallbackStatus.RUNNING


def test_the_q2_task_runs_the_service(fleet):
    callback = services.create_callback(fleet=fleet, label="scheduled")
    fail_at_vendor(callback)

    assert tasks.refresh_statuses() == {"checked": 1, "changed": [f"{callback}: Running → Failed"], "failed": 1, "gone": [], "errors": []}


@pytest.mark.django_db
def test_the_migration_schedules_the_task_every_five_minutes():
    migration = importlib.import_module("callbacks.migrations.0004_callback_status_schedule")
    Schedule.objects.filter(name="callbacks-refresh-status").delete()  # a transactional test may have flushed it

    migration.create_schedule(apps, None)
    migration.create_schedule(apps, None)  # idempotent

    schedule = Schedule.objects.get(name="callbacks-refresh-status")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "callbacks.tasks.refresh_statuses", Schedule.MINUTES, 5, -1,
    )
    module, name = schedule.func.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    migration.drop_schedule(apps, None)
    assert not Schedule.objects.filter(name="callbacks-refresh-status").exists()
