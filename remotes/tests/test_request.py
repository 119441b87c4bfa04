"""Requesting a remote: validation, permission, callback choice, one task after commit."""

import pytest
from django_q.models import OrmQ

from accounts.models import Role
from remotes import services
from remotes.models import ActionStatus, RemoteAction, Source
from stellantis.vocabulary import CallbackStatus, RemoteType

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_queues_the_action_and_enqueues_one_submit_task_after_commit(make_vehicle, make_callback, operator):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)

    action = services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=operator, source=Source.WEB)

    action.refresh_from_db()
    assert action.status == ActionStatus.QUEUED
    assert action.callback == callback
    assert action.remote_type == RemoteType.HORN
    assert action.requested_by == operator and action.source == Source.WEB
    assert [s.status for s in action.steps.all()] == [ActionStatus.QUEUED]
    assert OrmQ.objects.count() == 1  # exactly one submit task, enqueued once the row was committed


def test_it_enqueues_nothing_when_the_transaction_rolls_back(make_vehicle, make_callback, operator):
    from django.db import transaction

    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=operator)
        raise RuntimeError("boom")
    assert RemoteAction.objects.count() == 0
    assert OrmQ.objects.count() == 0


def test_it_names_the_missing_remote_type_when_no_callback_serves_it(make_vehicle, make_callback, operator):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet, remote_types=[RemoteType.HORN])
    make_callback(vehicle.fleet, remote_types=[RemoteType.DOORS], status=CallbackStatus.PAUSED)

    with pytest.raises(services.NoCallbackForType) as exc:
        services.request_remote(vehicle=vehicle, command={"door": {"state": "Locked"}}, by=operator)

    assert exc.value.remote_type == RemoteType.DOORS
    assert "Doors" in exc.value.message
    assert RemoteAction.objects.count() == 0


def test_it_refuses_an_unlock_to_an_operator(make_vehicle, make_callback, make_member):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    user = make_member("careful", Role.OPERATOR)

    services.request_remote(vehicle=vehicle, command={"door": {"state": "Locked"}}, by=user)  # allowed
    with pytest.raises(services.NotAllowed):
        services.request_remote(vehicle=vehicle, command={"door": {"state": "Unlocked"}}, by=user)
    assert RemoteAction.objects.count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "non_field_errors"),
        ({"horn": {"state": "Activated"}, "door": {"state": "Locked"}}, "non_field_errors"),
        ({"horn": {"state": "Loud"}}, "horn.state"),
        ({"door": {}}, "door.state"),
        ({"trumpet": {}}, "trumpet"),
    ],
)
def test_it_rejects_a_bad_command_naming_the_field(make_vehicle, make_callback, operator, body, field):
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    with pytest.raises(services.InvalidCommand) as exc:
        services.request_remote(vehicle=vehicle, command=body, by=operator)
    assert field in exc.value.errors
    assert RemoteAction.objects.count() == 0
