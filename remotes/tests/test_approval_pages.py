"""Four-eyes approval in the portal's pages: the action page's decision, the waiting list and
the header's count; who may decide, who is refused (403) and who is not even told it exists (404)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from remotes import services
from remotes.models import ActionStatus, RemoteAction, Source
from remotes.tests.conftest import IMMOBILIZE

pytestmark = pytest.mark.django_db

@pytest.fixture
def vehicle(four_eyes_vehicle):
    return four_eyes_vehicle


@pytest.fixture
def rita(make_member):
    return make_member("rita", Role.APPROVER)


@pytest.fixture
def arno(make_member):
    return make_member("arno", Role.APPROVER)


@pytest.fixture
def waiting(vehicle, rita):
    return services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=rita, source=Source.WEB, reason="not returned after rental")


def page_of(client, action):
    r = client.get(f"/actions/{action.pk}/")
    assert r.status_code == 200
    return r.content.decode()


def test_the_requester_sees_their_reason_no_approve_button_and_may_not_approve_anyway(client, waiting, rita):
    client.force_login(rita)
    html = page_of(client, waiting)
    assert "not returned after rental" in html and 'id="reason"' in html
    assert "Waiting for another approver" in html and "You asked for this command: another approver must decide on it." in html
    assert 'id="decide-form"' not in html and 'id="cancel-form"' in html

    r = client.post(f"/actions/{waiting.pk}/approve/", {"comment": "me, myself"})

    assert r.status_code == 403 and "another approver must decide on it" in r.content.decode()
    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.AWAITING_APPROVAL


def test_another_approver_approves_with_a_comment_and_the_page_says_who_and_why(client, waiting, arno):
    client.force_login(arno)
    html = page_of(client, waiting)
    assert 'id="decide-form"' in html and "until" in html and 'id="cancel-form"' not in html

    r = client.post(f"/actions/{waiting.pk}/approve/", {"comment": "checked with the rental desk"})

    assert r.status_code == 302 and r["Location"] == f"/actions/{waiting.pk}/"
    action = RemoteAction.objects.get(pk=waiting.pk)
    assert action.status == ActionStatus.QUEUED and action.decided_by == arno and action.decision_comment == "checked with the rental desk"
    html = client.get(r["Location"]).content.decode()
    assert "Approved by arno: checked with the rental desk" in html  # the timeline step
    assert 'id="decision"' in html and 'id="decide-form"' not in html


def test_another_approver_rejects_and_nothing_will_be_sent(client, waiting, arno):
    client.force_login(arno)

    r = client.post(f"/actions/{waiting.pk}/reject/", {"comment": "the car is back"}, follow=True)

    action = RemoteAction.objects.get(pk=waiting.pk)
    assert action.status == ActionStatus.REJECTED and action.decided_by == arno
    html = r.content.decode()
    assert "Rejected by arno: the car is back" in html and "Rejected: the command will not be sent." in html


def test_the_requester_cancels_their_own_command(client, waiting, rita):
    client.force_login(rita)

    r = client.post(f"/actions/{waiting.pk}/cancel/", follow=True)

    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.CANCELLED
    assert "Cancelled: the command will not be sent." in r.content.decode()


def test_a_decision_on_a_command_no_longer_waiting_says_so(client, waiting, arno, make_member):
    client.force_login(arno)
    client.post(f"/actions/{waiting.pk}/reject/")
    client.force_login(make_member("ada", Role.ADMIN))

    r = client.post(f"/actions/{waiting.pk}/approve/", follow=True)

    assert "no longer waiting for approval: it is rejected" in r.content.decode()
    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.REJECTED


def test_an_operator_may_not_decide(client, waiting, make_member):
    client.force_login(make_member("otto", Role.OPERATOR))
    assert "Approving needs the approver role." in page_of(client, waiting)
    assert client.post(f"/actions/{waiting.pk}/approve/").status_code == 403
    assert client.post(f"/actions/{waiting.pk}/cancel/").status_code == 403
    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.AWAITING_APPROVAL


def test_another_organisation_finds_nothing_to_see_or_decide(client, waiting, make_member, make_organisation):
    client.force_login(make_member("bob", Role.ADMIN, org=make_organisation("Org B")))
    assert client.get(f"/actions/{waiting.pk}/").status_code == 404
    for verb in ("approve", "reject", "cancel"):
        assert client.post(f"/actions/{waiting.pk}/{verb}/").status_code == 404
    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.AWAITING_APPROVAL
    assert str(waiting.pk) not in client.get("/actions/awaiting/").content.decode()


def test_decisions_are_posts_only(client, waiting, arno):
    client.force_login(arno)
    assert client.get(f"/actions/{waiting.pk}/approve/").status_code == 405
    assert RemoteAction.objects.get(pk=waiting.pk).status == ActionStatus.AWAITING_APPROVAL


def test_the_header_counts_what_waits_for_an_approver_and_shows_nothing_to_an_operator(client, waiting, arno, rita, make_member):
    client.force_login(arno)
    html = client.get("/vehicles/").content.decode()
    assert 'id="approvals-link"' in html and 'Approvals (<span id="approvals-count">1</span>)' in html and "has-waiting" in html

    client.force_login(rita)  # an approver too, but it is her own command
    assert 'Approvals (<span id="approvals-count">0</span>)' in client.get("/vehicles/").content.decode()

    client.force_login(make_member("otto", Role.OPERATOR))
    assert 'id="approvals-link"' not in client.get("/vehicles/").content.decode()


def test_an_operator_pays_no_count_query(client, waiting, make_member):
    client.force_login(make_member("otto", Role.OPERATOR))
    with CaptureQueriesContext(connection) as ctx:
        client.get("/org/")  # a page that counts no action of its own: only the header could
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"] and "remotes_remoteaction" in q["sql"]]


def test_the_waiting_list_shows_only_what_the_person_may_approve(client, waiting, vehicle, arno, rita, make_member, make_vehicle, make_callback):
    other_fleet_vehicle = make_vehicle()
    make_callback(other_fleet_vehicle.fleet)
    elsewhere = services.request_remote(vehicle=other_fleet_vehicle, command=IMMOBILIZE, by=arno, source=Source.WEB, reason="elsewhere")
    services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=rita, source=Source.WEB)  # never waits

    client.force_login(arno)
    html = client.get("/actions/awaiting/").content.decode()
    assert f"/actions/{waiting.pk}/" in html and "not returned after rental" in html and "rita" in html
    assert f"/actions/{elsewhere.pk}/" not in html  # his own
    assert html.count("data-action=") == 1

    client.force_login(make_member("fiona", Role.APPROVER, fleets=[vehicle.fleet]))
    html = client.get("/actions/awaiting/").content.decode()
    assert f"/actions/{waiting.pk}/" in html and f"/actions/{elsewhere.pk}/" not in html  # not her fleet

    client.force_login(make_member("otto", Role.OPERATOR))
    assert "Nothing waits for your approval." in client.get("/actions/awaiting/").content.decode()


def test_the_approver_sees_that_the_vehicle_was_reported_stolen_since(client, waiting, vehicle, arno):
    client.force_login(arno)
    assert 'id="changes-since-request"' not in page_of(client, waiting)
    RemoteAction.objects.create(
        vehicle=vehicle, callback=waiting.callback, remote_type="Stolen", command={"stolen": {"stolen": True}}, source=Source.API,
        status=ActionStatus.SUCCESS, expires_at=timezone.now(), finished_at=timezone.now(),
    )

    html = page_of(client, waiting)

    assert 'id="changes-since-request"' in html and "The vehicle was reported stolen since this command was asked for." in html
    assert html.index("changes-since-request") < html.index('id="approve-button"')  # read before the click


def test_the_waiting_list_costs_the_same_for_1_or_10_waiting_commands(client, waiting, vehicle, rita, arno):
    client.force_login(arno)

    def cost():
        with CaptureQueriesContext(connection) as ctx:
            r = client.get("/actions/awaiting/")
        assert r.status_code == 200
        return len(ctx.captured_queries), r.content.decode().count("data-action=")

    one = cost()
    for i in range(9):
        services.request_remote(vehicle=vehicle, command=IMMOBILIZE, by=rita, source=Source.WEB, reason=f"reason {i}")
    ten = cost()
    assert one[1] == 1 and ten[1] == 10
    assert ten[0] == one[0] <= 8


def test_the_action_page_of_a_waiting_command_costs_the_same_for_the_approver_whatever_came_after(client, waiting, vehicle, rita, arno):
    client.force_login(arno)

    def cost():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/actions/{waiting.pk}/").status_code == 200
        return len(ctx.captured_queries)

    before = cost()
    for _ in range(5):
        services.request_remote(vehicle=vehicle, command={"horn": {"state": "Activated"}}, by=rita, source=Source.WEB)
    assert cost() == before <= 12


def test_the_form_says_the_reason_is_required_and_the_message_says_it_waits(client, vehicle, rita):
    client.force_login(rita)
    html = client.get(f"/vehicles/{vehicle.vin}/remote/immobilization/").content.decode()
    assert 'id="reason-required"' in html and 'id="four-eyes"' in html

    r = client.post(f"/vehicles/{vehicle.vin}/remote/immobilization/", {"activate": "1", "confirm": "on"})
    assert r.status_code == 200 and "Say why: a reason is required" in r.content.decode()

    r = client.post(f"/vehicles/{vehicle.vin}/remote/immobilization/", {"activate": "1", "confirm": "on", "reason": "late"}, follow=True)
    action = RemoteAction.objects.get()
    until = timezone.localtime(action.approval_expires_at)
    assert f"it waits for another approver&#x27;s approval (until {until.day} {until:%b %H:%M %Z})" in r.content.decode()
    assert "queued" not in [str(m) for m in r.context["messages"]][0]


def test_an_approved_command_stellantis_rejects_later_still_reads_approved(client, waiting, arno):
    client.force_login(arno)
    client.post(f"/actions/{waiting.pk}/approve/", {"comment": "ok"})
    RemoteAction.objects.filter(pk=waiting.pk).update(status=ActionStatus.REJECTED, finished_at=timezone.now(), error="Refused by the vendor")

    html = page_of(client, waiting)

    assert "Approved by arno" in html and "Rejected by arno" not in html


def test_an_admin_bulk_immobilization_under_four_eyes_says_it_waits(client, vehicle, make_member):
    boss = make_member("bulk-boss", Role.ADMIN, is_staff=True)
    client.force_login(boss)
    form = {"activate": "1", "confirm": "on", "reason": "overdue rentals", "apply": "1"}
    r = client.post(
        "/admin/vehicles/vehicle/", {"action": "remote_immobilization_form", "_selected_action": [vehicle.pk], **form}, follow=True
    )
    from bulk.testing import run_now

    bulk = run_now(send=False)[0]
    assert b"one bulk request for 1 vehicle(s)" in r.content
    assert RemoteAction.objects.get().status == ActionStatus.AWAITING_APPROVAL
    assert b"Waiting for approval" in client.get(f"/bulk/{bulk.pk}/").content  # counted as such on its page
