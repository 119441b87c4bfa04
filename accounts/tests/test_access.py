"""accounts.access: what roles, fleet limits and token scopes let someone see and do."""

import datetime as dt

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from accounts import access
from accounts.access import TokenUser, access_of, token_access
from accounts.models import Membership, PartnerToken, Role, Scope
from callbacks.models import Callback
from remotes.models import RemoteAction
from vehicles.models import Fleet, Vehicle


@pytest.fixture
def two_orgs(make_organisation, make_fleet, make_vehicle, make_callback, organisation):
    a1, a2 = make_fleet(), make_fleet()
    b = make_organisation("Org B")
    b1 = make_fleet(organisation=b)
    vehicles = {f.pk: make_vehicle(fleet=f) for f in (a1, a2, b1)}
    for f in (a1, a2, b1):
        make_callback(f)
    return {"a": organisation, "b": b, "a1": a1, "a2": a2, "b1": b1, "vehicles": vehicles}


def _token(user, org, scopes, fleets=()):
    token, key = PartnerToken.issue(organisation=org, user=user, name="t", scopes=scopes, fleets=fleets)
    return TokenUser(token, token_access(PartnerToken.objects.select_related("user").get(pk=token.pk)))


@pytest.mark.parametrize(
    "role, can",
    [
        (Role.VIEWER, {access.READ}),
        (Role.OPERATOR, {access.READ, access.COMMAND}),
        (Role.APPROVER, {access.READ, access.COMMAND, access.DANGEROUS, access.APPROVE}),
        (Role.ADMIN, access.EVERY_ABILITY),
    ],
)
def test_each_role_can_what_the_ones_before_it_can_and_its_own(two_orgs, make_member, role, can):
    user = make_member("someone", role)
    rights = access_of(user)
    assert {a for a in access.EVERY_ABILITY if rights.may(a, two_orgs["a1"])} == can
    assert not any(rights.may(a, two_orgs["b1"]) for a in access.EVERY_ABILITY)  # another organisation: nothing


def test_a_member_sees_only_their_organisations_fleets_and_what_hangs_off_them(two_orgs, make_member):
    user = make_member("someone", Role.VIEWER)
    a, b1 = two_orgs["a"], two_orgs["b1"]
    assert set(Fleet.objects.visible_to(user)) == {two_orgs["a1"], two_orgs["a2"]}
    assert not Vehicle.objects.visible_to(user).filter(fleet=b1).exists()
    assert Vehicle.objects.visible_to(user).count() == 2
    assert set(Callback.objects.visible_to(user).values_list("fleet__organisation", flat=True)) == {a.pk}


def test_a_fleet_limited_membership_sees_and_acts_on_those_fleets_only(two_orgs, make_member):
    user = make_member("limited", Role.ADMIN, fleets=[two_orgs["a2"]])
    rights = access_of(user)
    assert list(Fleet.objects.visible_to(user)) == [two_orgs["a2"]]
    assert rights.may(access.DANGEROUS, two_orgs["a2"]) and not rights.may(access.READ, two_orgs["a1"])
    # Managing members and tokens is over the whole organisation: a fleet-limited admin does not.
    assert not rights.may_in(access.MANAGE, two_orgs["a"].pk)


def test_superusers_see_everything_and_strangers_nothing(two_orgs):
    boss = User.objects.create_superuser("boss", password="pw-boss-12345")
    stranger = User.objects.create_user("stranger", password="pw-stranger-1")
    assert Fleet.objects.visible_to(boss).count() == 3
    assert Fleet.objects.visible_to(stranger).count() == 0
    assert Fleet.objects.visible_to(AnonymousUser()).count() == 0
    assert Fleet.objects.visible_to(None).count() == 0


def test_a_deactivated_person_sees_nothing(two_orgs, make_member):
    user = make_member("gone", Role.ADMIN)
    user.is_active = False
    user.save()
    assert Fleet.objects.visible_to(User.objects.get(pk=user.pk)).count() == 0


def test_a_token_does_its_scopes_within_what_its_member_may_do_today(two_orgs, make_member):
    admin = make_member("admin-a", Role.ADMIN)
    token = _token(admin, two_orgs["a"], [Scope.READ, Scope.COMMAND])
    rights = access_of(token)
    assert rights.may(access.COMMAND, two_orgs["a1"]) and not rights.may(access.DANGEROUS, two_orgs["a1"])
    assert not rights.may(access.CALLBACKS, two_orgs["a1"]) and not rights.may_in(access.MANAGE, two_orgs["a"].pk)
    assert rights.why_not(access.DANGEROUS, two_orgs["a1"]) == "This token lacks the 'dangerous_command' scope."

    # The member is demoted to viewer: every token of theirs can only read from now on.
    Membership.objects.filter(user=admin).update(role=Role.VIEWER)
    demoted = _token(admin, two_orgs["a"], [Scope.READ, Scope.COMMAND, Scope.DANGEROUS_COMMAND])
    assert access_of(demoted).may(access.READ, two_orgs["a1"])
    assert not access_of(demoted).may(access.COMMAND, two_orgs["a1"])

    # Removed from the organisation: the token sees nothing.
    Membership.objects.filter(user=admin).delete()
    assert Fleet.objects.visible_to(_token(admin, two_orgs["a"], [Scope.READ])).count() == 0


def test_a_token_of_a_fleet_limited_member_cannot_widen_the_limit(two_orgs, make_member):
    member = make_member("limited", Role.OPERATOR, fleets=[two_orgs["a2"]])
    token = _token(member, two_orgs["a"], [Scope.READ], fleets=[two_orgs["a1"], two_orgs["a2"]])
    assert list(Fleet.objects.visible_to(token)) == [two_orgs["a2"]]


def test_a_token_sees_only_its_own_organisation_even_when_its_member_has_two(two_orgs, make_member):
    member = make_member("both", Role.ADMIN)
    Membership.objects.create(user=member, organisation=two_orgs["b"], role=Role.ADMIN)
    token = _token(member, two_orgs["b"], [Scope.READ])
    assert list(Fleet.objects.visible_to(token)) == [two_orgs["b1"]]


def test_only_a_hash_of_the_key_is_stored_and_the_key_is_checked_in_full(two_orgs, make_member):
    token, key = PartnerToken.issue(organisation=two_orgs["a"], user=make_member("a", Role.ADMIN), name="t", scopes=[Scope.READ])
    row = PartnerToken.objects.get(pk=token.pk)
    assert key.startswith("fpt_") and key not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
    assert row.matches(key) and not row.matches(key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert PartnerToken.objects.usable().filter(pk=token.pk).exists()
    PartnerToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert not PartnerToken.objects.usable().filter(pk=token.pk).exists()


def test_actions_of_another_organisation_are_not_visible(two_orgs, make_member):
    user = make_member("someone", Role.VIEWER)
    for vehicle in two_orgs["vehicles"].values():
        RemoteAction.objects.create(
            vehicle=vehicle, callback=vehicle.fleet.callbacks.get(), remote_type="Horn", command={"horn": {"state": "Activated"}},
            source="api", expires_at=timezone.now(),
        )
    assert {a.vehicle.fleet.organisation_id for a in RemoteAction.objects.visible_to(user)} == {two_orgs["a"].pk}
    assert RemoteAction.objects.visible_to(user).count() == 2
