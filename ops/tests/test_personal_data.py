"""A vehicle's personal data: exported whole, erased on request, each time on the audit log."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Role
from audit.models import AuditEntry
from ops import personal_data
from remotes.models import ActionStatus, ActionStep, RemoteAction, RemoteEvent, WebhookDelivery
from vehicles.models import VehicleStatus

ROUTE = {"navigation": {"positions": [{"type": "Point", "coordinates": [2.2945, 48.8584]}, {"type": "Point", "coordinates": [4.8357, 45.764]}]}}


@pytest.fixture
def driven(make_vehicle, make_callback):
    """A vehicle with a position, a finished and an open navigation command, a horn, and a delivery naming its VIN."""
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    VehicleStatus.objects.create(
        vehicle=vehicle, fetched_at=timezone.now(), position_at=timezone.now(), latitude=48.8584, longitude=2.2945,
        raw={"lastPosition": {"geometry": {"coordinates": [2.2945, 48.8584]}}},
    )

    def action(command, status, rid):
        return RemoteAction.objects.create(
            vehicle=vehicle, callback=callback, remote_type="Navigation",
            command=command, source="web", status=status, remote_action_id=rid, expires_at=timezone.now(), reason="delivery run",
        )

    done = action(ROUTE, ActionStatus.SUCCESS, "nav-done")
    ActionStep.objects.create(action=done, status=ActionStatus.QUEUED, at=timezone.now())
    delivery = WebhookDelivery.objects.create(callback=callback, body=json.dumps({"events": [{"vin": vehicle.vin, "remoteActionId": "nav-done"}]}))
    RemoteEvent.objects.create(
        action=done, remote_action_id="nav-done", vin=vehicle.vin, remote_type="Navigation", event_type="Done", status="Success",
        event_date=timezone.now(), delivery=delivery,
    )
    open_ = action(ROUTE, ActionStatus.SUBMITTED, "nav-open")
    horn = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="web",
        status=ActionStatus.SUCCESS, expires_at=timezone.now(),
    )
    WebhookDelivery.objects.create(body=json.dumps({"events": [{"vin": "SOMEONEELSE000001"}]}))  # not this vehicle's
    vehicle.done, vehicle.open, vehicle.horn, vehicle.delivery = done, open_, horn, delivery
    return vehicle


@pytest.fixture
def org_admin(make_member, client):
    user = make_member("org-admin", Role.ADMIN, is_staff=True)
    client.force_login(user)
    return user


def test_export_holds_the_vehicles_actions_destinations_deliveries_and_leaves_an_audit_entry(driven, org_admin):
    data = personal_data.export_vehicle(vehicle=driven, by=org_admin, reason="request 42")

    assert data["vehicle"]["vin"] == driven.vin
    assert data["status_snapshot"]["latitude"] == 48.8584
    actions = {a["id"]: a for a in data["actions"]}
    assert set(actions) == {str(driven.done.pk), str(driven.open.pk), str(driven.horn.pk)}
    done = actions[str(driven.done.pk)]
    assert done["command"]["navigation"]["positions"][-1]["coordinates"] == [4.8357, 45.764]  # the destination
    assert done["reason"] == "delivery run"
    assert [t["kind"] for t in done["timeline"]] == ["queued", "Done"] and done["events"][0]["status"] == "Success"
    assert [d["id"] for d in data["deliveries"]] == [driven.delivery.pk]
    json.dumps(data)  # JSON as it stands
    entry = AuditEntry.objects.get(action="vehicle.personal_data_exported")
    assert (entry.object_id, entry.actor, entry.reason) == (str(driven.pk), "org-admin", "request 42")
    assert entry.organisation_id == driven.fleet.organisation_id


def test_erase_removes_positions_and_finished_destinations_and_leaves_an_audit_entry(driven, org_admin):
    result = personal_data.erase_vehicle(vehicle=driven, by=org_admin, reason="request 43")

    assert result == {"snapshots": 1, "destinations": 1, "open_navigation_left": 1}
    assert not VehicleStatus.objects.filter(vehicle=driven).exists()
    driven.done.refresh_from_db()
    assert driven.done.command == {"navigation": {"positions": "(erased)"}}
    assert "48.8584" not in json.dumps(driven.done.command)
    driven.open.refresh_from_db()
    assert driven.open.command == ROUTE  # still on its way: sending "(erased)" would be worse
    driven.horn.refresh_from_db()
    assert driven.horn.command == {"horn": {"state": "Activated"}}
    entry = AuditEntry.objects.get(action="vehicle.personal_data_erased")
    assert (entry.object_id, entry.actor, entry.reason) == (str(driven.pk), "org-admin", "request 43")
    assert entry.changes["destinations"] == [None, 1]
    # What is left to export says so.
    data = personal_data.export_vehicle(vehicle=driven, by=org_admin)
    assert data["status_snapshot"] is None
    assert [e["action"] for e in data["audit"]] == ["vehicle.personal_data_erased"]


def test_the_command_exports_json_and_erases_with_a_name(driven, org_admin):
    out = io.StringIO()
    call_command("personal_data", "export", driven.vin, stdout=out)
    assert json.loads(out.getvalue())["vehicle"]["vin"] == driven.vin
    assert AuditEntry.objects.get(action="vehicle.personal_data_exported").actor == "system"

    with pytest.raises(CommandError, match="--by"):
        call_command("personal_data", "erase", driven.vin)
    with pytest.raises(CommandError, match="No vehicle"):
        call_command("personal_data", "export", "NOSUCHVIN")

    out = io.StringIO()
    call_command("personal_data", "erase", driven.vin, "--by", "org-admin", stdout=out)
    assert "1 navigation destination(s) erased" in out.getvalue() and "still in progress" in out.getvalue()
    assert AuditEntry.objects.get(action="vehicle.personal_data_erased").actor == "org-admin"


def test_an_organisation_admin_exports_from_the_admin(client, driven, org_admin):
    r = client.post("/admin/vehicles/vehicle/", {"action": "export_personal_data", "_selected_action": [driven.pk]})

    assert r.status_code == 200 and r["Content-Type"] == "application/json"
    assert f'personal-data-{driven.vin}.json' in r["Content-Disposition"]
    assert json.loads(r.content)["vehicle"]["vin"] == driven.vin
    assert AuditEntry.objects.filter(action="vehicle.personal_data_exported", actor="org-admin").count() == 1


def test_the_admin_asks_before_erasing(client, driven, org_admin):
    r = client.post("/admin/vehicles/vehicle/", {"action": "erase_personal_data", "_selected_action": [driven.pk]})
    assert r.status_code == 200 and b"cannot be undone" in r.content
    assert VehicleStatus.objects.filter(vehicle=driven).exists()

    r = client.post(
        "/admin/vehicles/vehicle/",
        {"action": "erase_personal_data", "_selected_action": [driven.pk], "confirm": "1", "reason": "ticket 7"},
        follow=True,
    )
    assert b"1 navigation destination(s) erased" in r.content
    assert not VehicleStatus.objects.filter(vehicle=driven).exists()
    assert AuditEntry.objects.get(action="vehicle.personal_data_erased").reason == "ticket 7"


def test_an_operator_gets_neither_action(client, driven, make_member):
    client.force_login(make_member("op", Role.APPROVER, is_staff=True))

    page = client.get("/admin/vehicles/vehicle/")
    assert page.status_code == 200 and b"export_personal_data" not in page.content
    r = client.post("/admin/vehicles/vehicle/", {"action": "erase_personal_data", "_selected_action": [driven.pk], "confirm": "1"})

    assert VehicleStatus.objects.filter(vehicle=driven).exists()
    assert not AuditEntry.objects.filter(action__startswith="vehicle.personal_data").exists()
    assert r.status_code in (200, 302)


def test_another_organisations_admin_cannot_export_this_vehicle(client, driven, make_member, make_organisation):
    client.force_login(make_member("b-admin", Role.ADMIN, org=make_organisation("Org B"), is_staff=True))

    r = client.post("/admin/vehicles/vehicle/", {"action": "export_personal_data", "_selected_action": [driven.pk]})

    assert r["Content-Type"] != "application/json"
    assert not AuditEntry.objects.filter(action="vehicle.personal_data_exported").exists()
