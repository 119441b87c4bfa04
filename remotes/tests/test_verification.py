"""Outcome verified: after a Success, the vehicle's status is read back and compared with the command."""

import datetime as dt

import pytest
from django.utils import timezone

from fleetportal.testing import wait_for
from remotes import verification
from remotes.models import ActionStatus, RemoteAction, Source
from stellantis.errors import VendorUnavailable


def _status_body(*, locked=True, charging="Stopped", preconditioning="Disabled", ignition="Stop", moving=False):
    return {
        "updatedAt": timezone.now().isoformat(),
        "energies": [{"type": "Electric", "level": 70, "extension": {"electric": {"charging": {"status": charging, "plugged": True}}}}],
        "doorsState": {"lockedStates": ["Locked" if locked else "Unlocked"]},
        "preconditioning": {"airConditioning": {"status": preconditioning}},
        "ignition": {"type": ignition},
        "kinetic": {"moving": moving},
    }


class FakeClient:
    def __init__(self, *bodies):
        self.bodies = list(bodies)

    def vehicle_status(self, fleet_id, vehicle_id):
        body = self.bodies.pop(0)
        if isinstance(body, Exception):
            raise body
        return body


@pytest.fixture
def succeeded(make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)

    def make(command, status=ActionStatus.SUCCESS):
        return RemoteAction.objects.create(
            vehicle=vehicle, callback=callback, remote_type=verification.expectation_type(command), command=command, source=Source.API,
            status=status, expires_at=timezone.now() + dt.timedelta(hours=1), finished_at=timezone.now(),
        )

    return make


def _steps(action):
    return [(s.status, s.detail) for s in action.steps.all()]


@pytest.mark.django_db
@pytest.mark.parametrize(("command", "body", "verdict", "detail"), [
    ({"door": {"state": "Locked"}}, _status_body(locked=True), "verified", "Verified: the doors report Locked."),
    ({"door": {"state": "Locked"}}, _status_body(locked=False), "not_confirmed", "Not confirmed: the doors still report Unlocked, not Locked."),
    ({"door": {"state": "Unlocked"}}, _status_body(locked=False), "verified", "Verified: the doors report Unlocked."),
    ({"charging": {"immediate": True}}, _status_body(charging="InProgress"), "verified", "Verified: the vehicle reports charging in progress."),
    ({"charging": {"immediate": True}}, _status_body(charging="Stopped"), "not_confirmed", "Not confirmed: the vehicle reports charging stopped, not charging in progress."),
    ({"charging": {"immediate": False}}, _status_body(charging="Stopped"), "verified", "Verified: the vehicle reports charging stopped."),
    ({"preconditioning": {"airConditioning": {"immediate": True}}}, _status_body(preconditioning="Enabled"), "verified", "Verified: the vehicle reports preconditioning on."),
    ({"preconditioning": {"airConditioning": {"immediate": False}}}, _status_body(preconditioning="Enabled"), "not_confirmed", "Not confirmed: the vehicle reports preconditioning on, not preconditioning off."),
    ({"immobilization": {"activate": True}}, _status_body(ignition="Stop"), "verified", "Verified: the vehicle reports stopped (ignition off, not moving)."),
    ({"stolen": {"immobilization": {"activate": True}}}, _status_body(ignition="Start", moving=True), "not_confirmed",
     "Not confirmed: the vehicle reports running (ignition on or moving), not stopped."),
])
def test_the_status_read_back_decides_the_verdict(succeeded, command, body, verdict, detail):
    action = succeeded(command)
    assert verification.verify(action_id=action.pk, client=FakeClient(body)) == verdict
    action.refresh_from_db()
    assert action.verification == verdict and action.verified_at is not None
    assert _steps(action) == [(verdict, detail)]
    # The snapshot the pages show was refreshed by the same read.
    assert action.vehicle.status_snapshot.doors_locked == (body["doorsState"]["lockedStates"] == ["Locked"])
    # A second trigger changes nothing.
    assert verification.verify(action_id=action.pk, client=FakeClient(body)) == "nothing to do"


@pytest.mark.django_db
def test_what_the_status_cannot_tell_is_not_checked(succeeded):
    for command in ({"horn": {"state": "Activated"}}, {"charging": {"preferences": {"level": "Level3"}}}, {"immobilization": {"activate": False}}):
        action = succeeded(command)
        assert verification.verify(action_id=action.pk, client=FakeClient()) == "not verifiable"
        assert RemoteAction.objects.get(pk=action.pk).verification == ""


@pytest.mark.django_db
def test_a_failed_status_read_is_retried_then_left_unverified_with_a_step(succeeded, monkeypatch):
    retried = []
    monkeypatch.setattr(verification, "enqueue", lambda ids, **kw: retried.append(kw["attempt"]))
    action = succeeded({"door": {"state": "Locked"}})
    down = VendorUnavailable("Stellantis answered 503")
    assert verification.verify(action_id=action.pk, attempt=1, client=FakeClient(down)).startswith("status read failed")
    assert verification.verify(action_id=action.pk, attempt=2, client=FakeClient(down)).startswith("status read failed")
    assert retried == [2, 3]
    assert verification.verify(action_id=action.pk, attempt=3, client=FakeClient(down)) == "gave up"
    action.refresh_from_db()
    assert action.verification == "" and action.verified_at is not None
    [(kind, detail)] = _steps(action)
    assert kind == "unverified" and detail.startswith("Could not read the vehicle's status after 3 tries")


@pytest.mark.django_db
def test_the_webhooks_trigger_costs_no_query_unless_a_verifiable_command_succeeded(succeeded, monkeypatch, django_assert_num_queries):
    enqueued = []
    monkeypatch.setattr(verification, "enqueue", lambda ids, **kw: enqueued.extend(ids))
    lock = succeeded({"door": {"state": "Locked"}})
    RemoteAction.objects.filter(pk=lock.pk).update(remote_action_id="rid-lock")
    with django_assert_num_queries(0):
        verification.on_events_applied(None, remote_action_ids=["rid-horn"], succeeded={})  # Pending steps only
        verification.on_events_applied(None, remote_action_ids=["rid-horn"], succeeded={"rid-horn": "Horn"})
    with django_assert_num_queries(1):
        verification.on_events_applied(None, remote_action_ids=["rid-lock", "rid-horn"], succeeded={"rid-lock": "Doors", "rid-horn": "Horn"})
    assert enqueued == [lock.pk]


# --- over the real stack: portal, q2 worker, simulator, webhook --------------------------------------


def _sim(vin):
    from simulator.models import SimVehicle

    return SimVehicle.objects.get(vin=vin)


def _lock(vehicle):
    from remotes import services

    return services.request_remote(vehicle=vehicle, command={"door": {"state": "Locked"}}, source=Source.SYSTEM)


def _verdict(action):
    return wait_for(
        lambda: (a := RemoteAction.objects.get(pk=action.pk)).verification and a,
        timeout=60, message="the outcome to be checked",
    )


@pytest.mark.e2e
def test_a_lock_that_took_is_verified(demo_fleet, q2_cluster, api, operator, make_token):
    from simulator import demo

    vehicle = demo_fleet.vehicles.order_by("vin").first()
    demo.set_vehicles_state(vehicle_ids=[_sim(vehicle.vin).pk], doors_locked=False, asleep=False, awake_until=timezone.now() + dt.timedelta(hours=1))
    action = _verdict(_lock(vehicle))
    assert action.status == ActionStatus.SUCCESS and action.verification == "verified"
    assert action.steps.filter(status="verified", detail="Verified: the doors report Locked.").exists()
    detail = api(make_token(operator)).get(f"{api().base_url}/api/v1/remotes/{action.pk}/", timeout=10).json()
    assert detail["verification"] == "verified" and detail["verified_at"]
    assert detail["timeline"][-1]["title"] == "Verified"


@pytest.mark.e2e
def test_doors_that_stay_unlocked_after_a_success_are_not_confirmed(demo_fleet, q2_cluster):
    from simulator import demo
    from simulator.models import SimEvent

    vehicle = demo_fleet.vehicles.order_by("vin").first()
    # Asleep: the vendor spends a few seconds waking it, time to make its Success change nothing.
    demo.set_vehicles_state(vehicle_ids=[_sim(vehicle.vin).pk], doors_locked=False, asleep=True, awake_until=None, wake_ups_used=0)
    action = _lock(vehicle)
    done = wait_for(
        lambda: SimEvent.objects.filter(action__remote__label=str(action.pk), status="Success", raised_at__isnull=True).first(),
        timeout=30, message="the simulator to plan the lock",
    )
    # The vehicle says Success, but its doors do not lock (what a faulty actuator would do).
    assert SimEvent.objects.filter(pk=done.pk, raised_at__isnull=True).update(effects={}) == 1
    action = _verdict(action)
    assert action.status == ActionStatus.SUCCESS and action.verification == "not_confirmed"
    step = action.steps.get(status="not_confirmed")
    assert step.detail == "Not confirmed: the doors still report Unlocked, not Locked."
    assert _sim(vehicle.vin).doors_locked is False
