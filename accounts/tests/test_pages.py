"""Organisation pages and admin: inviting people, roles and fleet limits, partner tokens."""

import hashlib
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Membership, Organisation, PartnerToken, Role, Scope

pytestmark = pytest.mark.django_db

KEY = re.compile(r"fpt_[0-9a-f]{8}_[A-Za-z0-9_-]+")


@pytest.fixture
def admin_user(make_member):
    return make_member("alice", Role.ADMIN, email="alice@example.com")


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def login(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def issue(client, **data):
    return client.post("/org/org-a/tokens/new/", {"name": "Partner X", "scopes": [Scope.READ, Scope.CALLBACKS], **data})


# --- inviting ------------------------------------------------------------------------------


def test_an_invited_person_sets_a_password_from_the_email_and_logs_in(as_admin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = as_admin.post("/org/org-a/members/invite/", {"username": "bob", "email": "bob@example.com", "role": Role.OPERATOR})

    assert r.status_code == 302 and r["Location"] == "/org/org-a/"
    bob = User.objects.get(username="bob")
    assert not bob.has_usable_password() and Membership.objects.get(user=bob).role == Role.OPERATOR
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["bob@example.com"]
    assert "Org A" in mail.outbox[0].subject and "alice invited you" in mail.outbox[0].body
    link = re.search(r"https?://[^/\s]+(/account/reset/\S+)", mail.outbox[0].body).group(1)

    browser = Client()
    r = browser.get(link)  # Django moves the token out of the address, into the session
    assert r.status_code == 302
    form_url = r["Location"]
    assert b"Set my password" in browser.get(form_url).content
    r = browser.post(form_url, {"new_password1": "a-long-new-password", "new_password2": "a-long-new-password"})
    assert r.status_code == 302 and r["Location"] == "/account/reset/done/"

    r = browser.post("/login/", {"username": "bob", "password": "a-long-new-password"})
    assert r.status_code == 302 and r["Location"] == "/"
    assert browser.get("/org/")["Location"] == "/org/org-a/"  # the only organisation opens directly
    assert browser.get(link).context["validlink"] is False  # the link works once


def test_inviting_someone_who_has_an_account_only_adds_the_membership(as_admin, make_organisation, make_member, django_capture_on_commit_callbacks):
    carol = make_member("carol", Role.VIEWER, org=make_organisation("Org B"), email="carol@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        r = as_admin.post("/org/org-a/members/invite/", {"username": "someone-else", "email": "CAROL@example.com", "role": Role.VIEWER})

    assert r.status_code == 302 and not mail.outbox
    assert set(Membership.objects.filter(user=carol).values_list("organisation__slug", flat=True)) == {"org-a", "org-b"}
    r = as_admin.post("/org/org-a/members/invite/", {"username": "carol", "email": "carol@example.com", "role": Role.VIEWER})
    assert r.status_code == 200 and "already a member" in r.content.decode()


def test_fleets_of_another_organisation_are_refused_by_name(admin_user, make_organisation):
    from vehicles.models import Fleet

    other = Fleet.objects.create(external_id="fb", name="Fleet of B", organisation=make_organisation("Org B"))
    with pytest.raises(ValidationError) as caught:
        services.invite_member(org=Organisation.objects.get(slug="org-a"), email="x@example.com", username="x", role=Role.VIEWER, fleets=[other], by=admin_user)
    assert "Fleet of B" in caught.value.message_dict["fleets"][0]


# --- roles and fleet limits -----------------------------------------------------------------


def test_role_and_fleet_limit_change_what_the_member_sees(as_admin, make_member, make_fleet, make_vehicle):
    f1, f2 = make_fleet(), make_fleet()
    v1, v2 = make_vehicle(fleet=f1), make_vehicle(fleet=f2)
    carol = make_member("carol", Role.VIEWER)
    membership = Membership.objects.get(user=carol)
    page = login(carol)

    assert 'id="invite"' not in page.get("/org/org-a/").content.decode()
    as_admin.post(f"/org/org-a/members/{membership.pk}/", {"role": Role.ADMIN})
    assert 'id="invite"' in login(carol).get("/org/org-a/").content.decode()
    listing = page.get("/vehicles/").content.decode()
    assert v1.vin in listing and v2.vin in listing

    r = as_admin.post(f"/org/org-a/members/{membership.pk}/", {"role": Role.OPERATOR, "fleets": [f1.pk]})

    assert r.status_code == 302
    page = login(User.objects.get(pk=carol.pk))
    listing = page.get("/vehicles/").content.decode()
    assert v1.vin in listing and v2.vin not in listing
    org_page = page.get("/org/org-a/").content.decode()
    assert 'id="invite"' not in org_page and f1.name in org_page


def test_the_last_admin_can_be_neither_removed_nor_demoted(as_admin, admin_user, make_member, make_fleet):
    mine = Membership.objects.get(user=admin_user)

    r = as_admin.post(f"/org/org-a/members/{mine.pk}/remove/", follow=True)
    assert "last organisation admin" in r.content.decode() and Membership.objects.filter(pk=mine.pk).exists()
    r = as_admin.post(f"/org/org-a/members/{mine.pk}/", {"role": Role.VIEWER})
    assert r.status_code == 200 and "last organisation admin" in r.content.decode()
    r = as_admin.post(f"/org/org-a/members/{mine.pk}/", {"role": Role.ADMIN, "fleets": [make_fleet().pk]})
    assert "last organisation admin" in r.content.decode()  # an admin limited to fleets manages nothing
    mine.refresh_from_db()
    assert mine.role == Role.ADMIN and not mine.fleets.exists()

    make_member("bob", Role.ADMIN)
    r = as_admin.post(f"/org/org-a/members/{mine.pk}/remove/")
    assert r.status_code == 302 and not Membership.objects.filter(pk=mine.pk).exists()


# --- partner tokens -------------------------------------------------------------------------


def test_an_issued_key_is_shown_once_and_only_its_hash_is_kept(as_admin):
    r = issue(as_admin, expires_in_days="30")

    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    key = KEY.search(r.content.decode()).group(0)
    assert f'curl -H "Authorization: Token {key}" http://testserver/api/v1/callbacks/' in r.content.decode()
    token = PartnerToken.objects.get()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(PartnerToken.objects.values().get()) and token.user.username == "alice"
    assert token.scopes == [Scope.CALLBACKS, Scope.READ] and token.expires_at is not None

    again = as_admin.get("/org/org-a/").content.decode()
    assert key not in again and f"fpt_{token.prefix}…" in again
    assert key not in str(dict(as_admin.session)) and key not in str(as_admin.cookies)


def test_the_key_works_on_the_api_until_it_is_revoked(as_admin):
    key = KEY.search(issue(as_admin).content.decode()).group(0)
    token = PartnerToken.objects.get()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/callbacks/").status_code == 200

    confirm = as_admin.get(f"/org/org-a/tokens/{token.pk}/revoke/")
    assert confirm.status_code == 200 and b"Yes, revoke it" in confirm.content
    token.refresh_from_db()
    assert token.revoked_at is None and token.last_used_at is not None

    r = as_admin.post(f"/org/org-a/tokens/{token.pk}/revoke/")
    assert r.status_code == 302
    assert api.get("/api/v1/callbacks/").status_code == 401
    token.refresh_from_db()
    first = token.revoked_at
    as_admin.post(f"/org/org-a/tokens/{token.pk}/revoke/")  # again: nothing changes
    token.refresh_from_db()
    assert token.state == "revoked" and token.revoked_at == first


# --- who may do what --------------------------------------------------------------------------


def test_a_viewer_reads_the_members_and_is_refused_every_change(admin_user, make_member, make_token, make_fleet):
    make_token(admin_user)
    token = PartnerToken.objects.get()
    viewer = make_member("victor", Role.VIEWER)
    page = login(viewer)
    mine = Membership.objects.get(user=admin_user)

    r = page.get("/org/org-a/")
    assert r.status_code == 200 and "alice" in r.content.decode()
    assert 'id="tokens"' not in r.content.decode() and 'id="invite"' not in r.content.decode()
    refused = [
        page.post("/org/org-a/members/invite/", {"username": "eve", "email": "eve@example.com", "role": Role.ADMIN}),
        page.post(f"/org/org-a/members/{mine.pk}/", {"role": Role.VIEWER}),
        page.post(f"/org/org-a/members/{mine.pk}/remove/"),
        issue(page),
        page.post(f"/org/org-a/tokens/{token.pk}/revoke/"),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    token.refresh_from_db()
    mine.refresh_from_db()
    assert token.revoked_at is None and mine.role == Role.ADMIN and PartnerToken.objects.count() == 1
    assert not User.objects.filter(username="eve").exists()


def test_another_organisations_member_is_told_it_does_not_exist(admin_user, make_member, make_organisation, make_token):
    make_token(admin_user)
    token = PartnerToken.objects.get()
    dave = make_member("dave", Role.ADMIN, org=make_organisation("Org B"))
    page = login(dave)

    assert page.get("/org/org-a/").status_code == 404
    assert page.post(f"/org/org-a/tokens/{token.pk}/revoke/").status_code == 404
    assert page.post("/org/org-a/members/invite/", {"username": "eve", "email": "eve@example.com", "role": Role.ADMIN}).status_code == 404
    assert page.get("/org/")["Location"] == "/org/org-b/"
    # B's own address does not reach A's token either.
    assert page.post(f"/org/org-b/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_superuser_sees_every_organisation_and_creates_one(client, admin_user, make_organisation):
    make_organisation("Org B")
    root = User.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(root)

    r = client.get("/org/")
    assert r.status_code == 200 and "Org A" in r.content.decode() and "Org B" in r.content.decode()
    r = client.post("/org/", {"name": "Org C", "slug": "org-c"})
    assert r.status_code == 302 and r["Location"] == "/org/org-c/"
    assert Membership.objects.get(organisation__slug="org-c").user == root
    assert login(admin_user).post("/org/", {"name": "Org D", "slug": "org-d"}).status_code == 403


# --- the admin --------------------------------------------------------------------------------


def test_the_admin_lists_only_the_tokens_a_staff_admin_may_see(admin_user, make_member, make_organisation, make_token):
    make_token(admin_user)
    bob = make_member("bob", Role.ADMIN, org=make_organisation("Org B"))
    make_token(bob, org=Organisation.objects.get(slug="org-b"))
    admin_user.is_staff = True
    admin_user.save()
    admin_user.user_permissions.add(*Permission.objects.filter(content_type__app_label="accounts", codename__endswith="partnertoken"))

    r = login(User.objects.get(pk=admin_user.pk)).get("/admin/accounts/partnertoken/")
    assert r.status_code == 200
    assert "token of alice" in r.content.decode() and "token of bob" not in r.content.decode()
    root = User.objects.create_superuser("root", password="pw-root-12345")
    listing = login(root).get("/admin/accounts/partnertoken/").content.decode()
    assert "token of alice" in listing and "token of bob" in listing


def test_adding_a_token_in_the_admin_issues_it_and_shows_the_key_once(admin_user):
    root = User.objects.create_superuser("root", password="pw-root-12345")
    page = login(root)
    org = Organisation.objects.get(slug="org-a")

    r = page.post("/admin/accounts/partnertoken/add/", {"organisation": org.pk, "name": "Via admin", "scopes": [Scope.READ], "expires_at_0": "", "expires_at_1": ""})

    assert r.status_code == 200, r.content.decode()[:2000]
    key = KEY.search(r.content.decode()).group(0)
    token = PartnerToken.objects.get(name="Via admin")
    assert token.matches(key) and token.user == root
    assert key not in page.get("/admin/accounts/partnertoken/").content.decode()
    assert key not in page.get(f"/admin/accounts/partnertoken/{token.pk}/change/").content.decode()

    r = page.post("/admin/accounts/partnertoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert r.status_code == 302 and token.state == "revoked"


def test_an_organisation_admin_sets_four_eyes_and_it_is_audited(client, organisation, make_member):
    from audit.models import AuditEntry

    admin = make_member("policy-admin", Role.ADMIN)
    viewer = make_member("policy-viewer", Role.VIEWER)
    url = f"/org/{organisation.slug}/approvals/"

    client.force_login(viewer)
    assert client.post(url, {"required_for": ["door"], "ttl_minutes": 5}).status_code == 403
    client.force_login(admin)
    assert b"Four-eyes approval" in client.get(f"/org/{organisation.slug}/").content
    r = client.post(url, {"required_for": ["door", "stolen"], "ttl_minutes": 0})
    assert r.status_code == 200 and b"greater than or equal to 1" in r.content  # the form again, with the error
    organisation.refresh_from_db()
    assert organisation.approval_required_for == []

    client.post(url, {"required_for": ["door", "stolen"], "ttl_minutes": 30})
    organisation.refresh_from_db()
    assert (organisation.approval_required_for, organisation.approval_ttl_minutes) == (["door", "stolen"], 30)
    entry = AuditEntry.objects.get(action="organisation.approval_policy_changed")
    assert entry.actor == "policy-admin" and entry.changes["approval_ttl_minutes"] == [15, 30]
