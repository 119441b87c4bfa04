"""Four-eyes over real sockets: partner API → (waits) → a second approver's token → q2 worker →
simulator → webhook → Done. Rejected and expired commands never reach the simulator."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from accounts.models import Role, Scope
from fleetportal.testing import wait_for
from remotes import tasks
from remotes.capabilities import availability
from remotes.models import ActionStatus, RemoteAction
from simulator.models import SimRemoteAction, SimVehicle

pytestmark = pytest.mark.e2e

DANGEROUS = [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND]


def seen_by_simulator(*action_ids) -> list[str]:
    labels = {a.label for a in SimRemoteAction.objects.all()}
    return [i for i in action_ids if i in labels]


@pytest.fixture
def parked_vin(demo_fleet, organisation):
    """A vehicle an immobilization succeeds on: parked, locked, reachable, nothing forced to fail."""
    organisation.approval_required_for = ["immobilization", "stolen"]
    organisation.save()
    vehicle = next(v for v in demo_fleet.vehicles.order_by("vin") if availability(v, "immobilization").available)
    SimVehicle.objects.filter(vin=vehicle.vin).update(
        in_use=False, doors_locked=True, door_open=False, online=True, remote_subscribed=True, stolen=False,
        immobilized=False, asleep=False, next_failure="",
    )
    return vehicle.vin


def test_an_immobilization_waits_unseen_until_another_approver_lets_it_go(parked_vin, q2_cluster, api, make_member, make_token):
    rita = api(make_token(make_member("rita", Role.APPROVER), DANGEROUS))
    arno = api(make_token(make_member("arno", Role.APPROVER), DANGEROUS))
    remotes = f"{rita.base_url}/api/v1/vehicles/{parked_vin}/remotes/"

    def immobilize(reason):
        r = rita.post(remotes, json={"immobilization": {"activate": True}, "reason": reason}, timeout=10)
        assert r.status_code == 202 and r.json()["status"] == "awaiting_approval", r.text
        return r.json()["id"]

    approved, rejected, expired = immobilize("rental overdue"), immobilize("wrong car?"), immobilize("nobody will look")

    r = arno.post(f"{arno.base_url}/api/v1/remotes/{rejected}/reject/", json={"comment": "customer paid"}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    RemoteAction.objects.filter(pk=expired).update(approval_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.sweep()["expired_unapproved"] == 1  # what the cluster's schedule runs every minute

    time.sleep(3)  # the cluster is running: whatever it would send, it would have sent by now
    assert seen_by_simulator(approved, rejected, expired) == []
    statuses = {str(pk): status for pk, status in RemoteAction.objects.values_list("pk", "status")}
    assert [statuses[pk] for pk in (approved, rejected, expired)] == [
        ActionStatus.AWAITING_APPROVAL, ActionStatus.REJECTED, ActionStatus.EXPIRED,
    ]

    r = arno.post(f"{arno.base_url}/api/v1/remotes/{approved}/approve/", json={"comment": "called the customer"}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text

    url = r.json()["url"]
    final = wait_for(
        lambda: (d := rita.get(url, timeout=10).json())["status"] in ("success", "already_done", "failed", "error", "rejected", "unknown") and d,
        timeout=40,
        message="the approved immobilization to finish",
    )
    assert final["status"] == "success", final
    assert final["approval"]["decision"] == "approved" and final["approval"]["decided_by"] == "arno"
    # The outcome check (remotes.verification) may add its own step after the Success: not this test's subject.
    portal = [t["status"] for t in final["timeline"] if t["origin"] == "portal" and t["status"] not in ("verified", "not_confirmed", "unverified")]
    assert portal == ["awaiting_approval", "queued", "submitted"]
    assert [t["status"] for t in final["timeline"] if t["origin"] == "stellantis"][-1] == "Success"
    assert SimVehicle.objects.get(vin=parked_vin).immobilized
    assert seen_by_simulator(approved, rejected, expired) == [approved]
