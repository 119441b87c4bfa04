"""The admin shows a member their organisations' rows only; another organisation's object is not found."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.models import Role
from remotes.models import ActionStatus, ActionStep, RemoteAction, RemoteEvent, Source, WebhookDelivery

pytestmark = pytest.mark.django_db

# What of organisation A's would betray it on a page of B's (names, VIN, label, vendor ids).
A_MARKS = ["Alpha fleet", "alpha-fid", "VF3ALPHA000000001", "alpha-hook", "alpha-rid-01"]


def _world(org, make_fleet, make_vehicle, make_callback, tag):
    fleet = make_fleet(name=f"{tag.title()} fleet", external_id=f"{tag}-fid", organisation=org)
    vehicle = make_vehicle(fleet=fleet, vin=f"VF3{tag.upper()}000000001"[:17])
    callback = make_callback(fleet, label=f"{tag}-hook")
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source=Source.WEB,
        status=ActionStatus.SUBMITTED, remote_action_id=f"{tag}-rid-01", expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    ActionStep.objects.create(action=action, status=ActionStatus.SUBMITTED, at=timezone.now(), detail=f"{tag} step")
    delivery = WebhookDelivery.objects.create(callback=callback, body="{}", event_count=1)
    event = RemoteEvent.objects.create(
        action=action, remote_action_id=f"{tag}-rid-01", event_type="Done", status="Success", event_date=timezone.now(), delivery=delivery,
    )
    return {"fleet": fleet, "vehicle": vehicle, "callback": callback, "remoteaction": action, "remoteevent": event, "webhookdelivery": delivery}


@pytest.fixture
def org_b(make_organisation):
    return make_organisation("Org B")


@pytest.fixture
def a(organisation, make_fleet, make_vehicle, make_callback):
    return _world(organisation, make_fleet, make_vehicle, make_callback, "alpha")


@pytest.fixture
def b(org_b, make_fleet, make_vehicle, make_callback):
    return _world(org_b, make_fleet, make_vehicle, make_callback, "bravo")


@pytest.fixture
def login(client):
    def as_(user):
        client.force_login(user)
        return client

    return as_


@pytest.fixture
def b_admin(make_member, org_b, a, b):
    return make_member("b-admin", Role.ADMIN, org=org_b, is_staff=True)


URLS = {
    "fleet": "vehicles/fleet",
    "vehicle": "vehicles/vehicle",
    "callback": "callbacks/callback",
    "remoteaction": "remotes/remoteaction",
    "remoteevent": "remotes/remoteevent",
    "webhookdelivery": "remotes/webhookdelivery",
}


@pytest.mark.parametrize("model", URLS)
def test_a_changelist_shows_none_of_another_organisations_rows_nor_their_names_in_filters(login, b_admin, a, b, model):
    r = login(b_admin).get(f"/admin/{URLS[model]}/")

    assert r.status_code == 200
    assert {o.pk for o in r.context["cl"].result_list} == {b[model].pk}
    html = r.content.decode()
    for mark in A_MARKS:
        assert mark not in html


def test_the_filter_sidebars_list_the_members_fleets_and_callbacks_only(login, b_admin, a, b):
    client = login(b_admin)

    callbacks = client.get("/admin/callbacks/callback/").content.decode()
    deliveries = client.get("/admin/remotes/webhookdelivery/").content.decode()

    assert "Bravo fleet" in callbacks and "Alpha fleet" not in callbacks
    assert "bravo-hook" in deliveries and "alpha-hook" not in deliveries


def test_filtering_on_another_organisations_fleet_by_hand_shows_nothing(login, b_admin, a, b):
    r = login(b_admin).get(f"/admin/callbacks/callback/?fleet__id__exact={a['fleet'].pk}")

    assert a["callback"] not in r.context["cl"].result_list


@pytest.mark.parametrize("model", URLS)
@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_another_organisations_object_is_not_found_not_redirected(login, b_admin, a, b, model, view):
    client = login(b_admin)

    theirs = client.get(f"/admin/{URLS[model]}/{a[model].pk}/{view}/")
    mine = client.get(f"/admin/{URLS[model]}/{b[model].pk}/{view}/")

    assert theirs.status_code == 404
    assert mine.status_code in (200, 403)  # delete: only if their role allows it, but it is found


@pytest.mark.parametrize(
    "source, field",
    [("vehicles.vehicle", "fleet"), ("remotes.remoteaction", "vehicle"), ("remotes.remoteaction", "callback"), ("remotes.remoteevent", "action")],
)
def test_autocomplete_answers_the_members_objects_only(login, b_admin, a, b, source, field):
    app_label, model_name = source.split(".")
    r = login(b_admin).get("/admin/autocomplete/", {"app_label": app_label, "model_name": model_name, "field_name": field, "term": ""})

    assert r.status_code == 200
    related = {"fleet": "fleet", "vehicle": "vehicle", "callback": "callback", "action": "remoteaction"}[field]
    assert [row["id"] for row in r.json()["results"]] == [str(b[related].pk)]


def test_the_simulator_and_the_vendor_budget_are_for_superusers_only(login, b_admin, a, b):
    client = login(b_admin)

    index = client.get("/admin/")
    assert index.status_code == 200
    assert "/admin/simulator/" not in index.content.decode() and "/admin/core/" not in index.content.decode()
    assert "/admin/vehicles/vehicle/" in index.content.decode()  # their own models are there
    assert client.get("/admin/simulator/").status_code in (403, 404)
    assert client.get("/admin/simulator/simvehicle/").status_code == 403
    assert client.get("/admin/core/vendorbudget/").status_code == 403


def test_a_staff_person_of_no_organisation_sees_nothing(login, make_member, a, b):
    nobody = User.objects.create_user("nobody", password="pw-nobody-1", is_staff=True)

    client = login(nobody)

    assert client.get("/admin/vehicles/vehicle/").status_code == 403
    assert "/admin/vehicles/" not in client.get("/admin/").content.decode()


def _actions(response) -> set[str]:
    form = response.context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


def test_a_viewer_sees_their_rows_but_no_bulk_commands_nor_imports(login, make_member, a, b):
    viewer = make_member("a-viewer", Role.VIEWER, is_staff=True)
    client = login(viewer)

    vehicles = client.get("/admin/vehicles/vehicle/")
    fleets = client.get("/admin/vehicles/fleet/")
    callbacks = client.get("/admin/callbacks/callback/")
    deliveries = client.get("/admin/remotes/webhookdelivery/")

    assert "VF3ALPHA000000001" in vehicles.content.decode() and "VF3BRAVO000000001" not in vehicles.content.decode()
    assert not {n for n in _actions(vehicles) if n.startswith("remote_")}
    assert "import_vehicles" not in _actions(fleets)
    assert not _actions(callbacks) - {"check_with_stellantis"}  # reads only
    assert "replay" not in _actions(deliveries)
    assert client.get(f"/admin/vehicles/vehicle/{a['vehicle'].pk}/change/").context["has_change_permission"] is False
    assert client.get("/admin/callbacks/callback/add/").status_code == 403


def test_an_operator_sees_ordinary_commands_but_no_dangerous_ones(login, make_member, a, b):
    operator = make_member("a-operator", Role.OPERATOR, is_staff=True)

    names = _actions(login(operator).get("/admin/vehicles/vehicle/"))

    assert {"remote_horn", "remote_door_locked", "remote_wakeup", "remote_lights_form"} <= {n.lower() for n in names}
    assert not {"remote_door_unlocked", "remote_immobilization_form", "remote_stolen_form"} & names


def test_an_approver_sees_the_dangerous_commands(login, make_member, a, b):
    approver = make_member("a-approver", Role.APPROVER, is_staff=True)

    names = _actions(login(approver).get("/admin/vehicles/vehicle/"))

    assert {"remote_door_unlocked", "remote_immobilization_form", "remote_stolen_form"} <= names


def test_a_bulk_command_is_refused_where_the_role_only_reads_and_never_reaches_an_unseen_vehicle(login, make_member, org_b, a, b, make_vehicle):
    mixed = make_member("mixed", Role.OPERATOR, is_staff=True)  # operator in A
    make_member("mixed", Role.VIEWER, org=org_b)  # viewer in B
    outsider = make_vehicle(fleet=_third_fleet(make_vehicle))
    client = login(mixed)

    r = client.post(
        "/admin/vehicles/vehicle/",
        {"action": "remote_horn", "_selected_action": [a["vehicle"].pk, b["vehicle"].pk, outsider.pk]},
        follow=True,
    )

    messages = [str(m) for m in r.context["messages"]]
    assert any("one bulk request for 1 vehicle(s)" in m for m in messages)  # A's (bulk app, issue 14)
    assert any("Horn" in m and "operator role" in m for m in messages)  # B's, refused as a whole
    assert not any(outsider.vin in m for m in messages)
    from bulk.testing import run_now

    run_now(send=False)
    sent = RemoteAction.objects.filter(source=Source.ADMIN)
    assert [s.vehicle_id for s in sent] == [a["vehicle"].pk]


def _third_fleet(make_vehicle):
    from accounts.models import Organisation
    from vehicles.models import Fleet

    org = Organisation.objects.create(name="Org C", slug="org-c")
    return Fleet.objects.create(name="Charlie fleet", external_id="charlie-fid", organisation=org)


def test_a_callback_is_added_only_to_a_fleet_where_the_member_manages_callbacks(login, make_member, org_b, a, b):
    both = make_member("both", Role.ADMIN, org=org_b, is_staff=True)  # admin in B
    make_member("both", Role.VIEWER)  # viewer in A
    client = login(both)

    add = client.get("/admin/callbacks/callback/add/")
    mine = client.get(f"/admin/callbacks/callback/{b['callback'].pk}/change/")
    theirs = client.get(f"/admin/callbacks/callback/{a['callback'].pk}/change/")

    assert add.status_code == 200
    assert list(add.context["adminform"].form.fields["fleet"].queryset) == [b["fleet"]]
    assert mine.context["has_change_permission"] is True
    assert theirs.status_code == 200 and theirs.context["has_change_permission"] is False  # A's: read only


def test_a_callback_action_on_a_read_only_callback_is_refused_per_callback(login, make_member, org_b, a, b):
    both = make_member("both", Role.ADMIN, org=org_b, is_staff=True)
    make_member("both", Role.VIEWER)
    client = login(both)

    r = client.post("/admin/callbacks/callback/", {"action": "delete_at_stellantis", "_selected_action": [a["callback"].pk]}, follow=True)

    assert any("alpha-hook" in str(m) and "organisation admin role" in str(m) for m in r.context["messages"])
    a["callback"].refresh_from_db()
    assert a["callback"].deleted_at is None


def test_another_organisations_delivery_cannot_be_replayed(login, b_admin, a, b):
    r = login(b_admin).post(
        "/admin/remotes/webhookdelivery/", {"action": "replay", "_selected_action": [a["webhookdelivery"].pk]}, follow=True
    )

    assert not any("Delivery" in str(m) for m in r.context["messages"])  # nothing replayed: not even selected


def test_a_superuser_sees_both_organisations_and_can_give_a_fleet_to_one(login, a, b, org_b):
    boss = User.objects.create_superuser("boss", password="pw-boss-12345")
    client = login(boss)

    for model, path in URLS.items():
        r = client.get(f"/admin/{path}/")
        assert {o.pk for o in r.context["cl"].result_list} == {a[model].pk, b[model].pk}, model
    fleets = client.get("/admin/vehicles/fleet/")
    assert "Org B" in fleets.content.decode()  # organisation column and filter
    form = client.get(f"/admin/vehicles/fleet/{a['fleet'].pk}/change/").context["adminform"].form
    assert "organisation" in form.fields
    names = _actions(client.get("/admin/vehicles/vehicle/"))
    assert {"remote_horn", "remote_door_unlocked", "remote_stolen_form"} <= names
