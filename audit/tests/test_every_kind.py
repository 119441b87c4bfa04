"""One audit entry for each kind of change the issue lists: callbacks, members, tokens, replays.

(Commands and their decisions: remotes/tests/test_approvals.py; logins: test_audit_log.py.)
"""

from django.contrib.auth.models import User

from accounts import services as accounts
from accounts.models import Membership, Role, Scope
from audit.models import AuditEntry
from callbacks import services as callbacks
from remotes import inbox
from remotes.models import WebhookDelivery
from stellantis.vocabulary import CallbackStatus


def _entries(prefix, **about):
    return [(e.action, e.actor, e.changes) for e in AuditEntry.objects.filter(action__startswith=prefix, **about).order_by("pk")]


def test_each_callback_change_is_recorded_with_before_and_after_and_never_a_secret(demo_fleet, make_member):
    boss = make_member("boss", Role.ADMIN)
    callback = callbacks.create_callback(
        fleet=demo_fleet, label="ops", remote_types=["Horn"], by=boss,
        attributes=[{"type": "Header", "key": "Authorization", "value": "Bearer partner-own-secret"}],
    )
    callbacks.update_callback(callback=callback, changes={"label": "ops 2", "retry_number": 5}, by=boss)
    callbacks.set_callback_status(callback=callback, status=CallbackStatus.PAUSED, by=boss)
    callbacks.set_callback_status(callback=callback, status=CallbackStatus.RUNNING, by=boss)
    callbacks.rotate_secret(callback=callback, by=boss)
    callbacks.delete_callback(callback=callback, by=boss)

    entries = _entries("callback.", object_id=str(callback.pk))
    assert [(a, who) for a, who, _ in entries] == [
        ("callback.created", "boss"), ("callback.changed", "boss"), ("callback.paused", "boss"),
        ("callback.resumed", "boss"), ("callback.secret_rotated", "boss"), ("callback.deleted", "boss"),
    ]
    assert entries[0][2]["label"] == [None, "ops"]
    assert entries[1][2] == {"label": ["ops", "ops 2"], "retry_number": [3, 5]}
    assert entries[2][2] == {"status": ["Running", "Paused"]}
    rows = "".join(str(e.changes) + e.object_repr + e.reason for e in AuditEntry.objects.all())
    callback.refresh_from_db()
    assert callback.secret not in rows and callback.previous_secret not in rows and "partner-own-secret" not in rows
    assert {e.organisation_id for e in AuditEntry.objects.filter(action__startswith="callback.")} == {demo_fleet.organisation_id}


def test_member_and_token_changes_are_recorded(db, organisation, make_member, make_fleet):
    admin = make_member("ada", Role.ADMIN)
    fleet = make_fleet()
    membership = accounts.invite_member(org=organisation, email="new@example.com", username="newbie", role=Role.VIEWER, by=admin)
    accounts.change_member(membership=membership, role=Role.OPERATOR, fleets=[fleet], by=admin)
    accounts.remove_member(membership=Membership.objects.get(pk=membership.pk), by=admin)
    token, key = accounts.issue_token(org=organisation, name="partner", scopes=[Scope.READ], by=admin)
    accounts.revoke_token(token=token, by=admin)

    entries = _entries("member.") + _entries("token.")
    assert [(a, who) for a, who, _ in entries] == [
        ("member.invited", "ada"), ("member.changed", "ada"), ("member.removed", "ada"), ("token.issued", "ada"), ("token.revoked", "ada"),
    ]
    assert entries[1][2] == {"role": ["viewer", "operator"], "fleets": [[], [str(fleet)]]}
    assert key not in "".join(str(e.changes) + e.object_repr for e in AuditEntry.objects.all())
    assert User.objects.filter(username="newbie").exists()


def test_a_replay_from_the_admin_is_recorded_with_who_and_where(db, client, make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    delivery = WebhookDelivery.objects.create(callback=callback, body='{"remoteEvents": []}')
    client.force_login(User.objects.create_superuser("root", password="pw-root-12345"))

    client.post("/admin/remotes/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]}, REMOTE_ADDR="10.9.8.7")

    entry = AuditEntry.objects.get(action="delivery.replayed")
    assert (entry.actor, entry.source, entry.ip_address, entry.object_id) == ("root", "admin", "10.9.8.7", str(delivery.pk))
    assert entry.organisation_id == vehicle.fleet.organisation_id
    inbox.replay_delivery(delivery=delivery)  # from code: the system
    assert AuditEntry.objects.filter(action="delivery.replayed").order_by("pk").last().actor == "system"


def test_who_and_from_where_on_each_surface(demo_fleet, make_member, make_token, client, stack):
    """A page, the admin and the API record the person (or the token and its member) and the source."""
    import requests

    boss = make_member("boss", Role.ADMIN, is_staff=True)
    callback = demo_fleet.callbacks.get()
    client.force_login(boss)
    client.post(f"/callbacks/{callback.pk}/status/", {"status": "Paused"}, REMOTE_ADDR="10.0.0.1", HTTP_USER_AGENT="browser")
    client.post("/admin/callbacks/callback/", {"action": "resume", "_selected_action": [callback.pk]}, REMOTE_ADDR="10.0.0.2")
    key = make_token(boss, [Scope.READ, Scope.CALLBACKS])
    r = requests.put(f"{stack.url}/api/v1/callbacks/{callback.pk}/status/", json={"status": "Paused"}, headers={"Authorization": f"Token {key}"}, timeout=10)
    assert r.status_code == 200, r.text

    page, admin, partner = AuditEntry.objects.filter(object_id=str(callback.pk), action__in=["callback.paused", "callback.resumed"]).order_by("pk")
    assert (page.action, page.actor, page.source, page.ip_address, page.user_agent) == ("callback.paused", "boss", "page", "10.0.0.1", "browser")
    assert (admin.action, admin.actor, admin.source, admin.ip_address) == ("callback.resumed", "boss", "admin", "10.0.0.2")
    assert partner.source == "api" and partner.token_id is not None and partner.user_id == boss.pk
    assert partner.actor.startswith("token ") and partner.actor.endswith("of boss") and key not in partner.actor
