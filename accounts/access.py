"""The one place that answers "may this person, or this token, see or do that here?".

A person's rights come from their memberships (a role per organisation, maybe limited to
some fleets); a token's from its scopes and fleet list, never more than its member may do
today. Superusers see and do everything. Everything else asks here:
- `access_of(user).fleet_q()` filters fleets; each model's `visible_to(user)` builds on it,
  and views, admin and API list things only through `visible_to`;
- `access_of(user).may(ability, fleet)` / `why_not(...)` decide a command, a callback
  change, a member or token change, and the reason shown beside a disabled button.
An object outside a person's fleets is not found (404), never forbidden: a 403 would say it exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from .models import Membership, Role, Scope

READ = "read"
COMMAND = "command"
DANGEROUS = "dangerous_command"
APPROVE = "approve"
CALLBACKS = "callbacks"
MANAGE = "manage"  # members and tokens of the organisation

ROLE_ABILITIES: dict[str, frozenset[str]] = {
    Role.VIEWER: frozenset({READ}),
    Role.OPERATOR: frozenset({READ, COMMAND}),
    Role.APPROVER: frozenset({READ, COMMAND, DANGEROUS, APPROVE}),
    Role.ADMIN: frozenset({READ, COMMAND, DANGEROUS, APPROVE, CALLBACKS, MANAGE}),
}
EVERY_ABILITY = ROLE_ABILITIES[Role.ADMIN]

# What a missing ability means, in words for the person who lacks it.
_NEEDS = {
    READ: "You cannot see this fleet.",
    COMMAND: "Sending commands needs the operator role.",
    DANGEROUS: "Unlock, immobilization and stolen need the approver role.",
    APPROVE: "Approving needs the approver role.",
    CALLBACKS: "Managing callbacks needs the organisation admin role.",
    MANAGE: "Managing members and tokens needs the organisation admin role.",
}
_TOKEN_NEEDS = {
    READ: "This token cannot see this fleet.",
    COMMAND: "This token lacks the 'command' scope.",
    DANGEROUS: "This token lacks the 'dangerous_command' scope.",
    APPROVE: "This token's member may not approve.",
    CALLBACKS: "This token lacks the 'callbacks' scope.",
    MANAGE: "Tokens cannot manage members or tokens.",
}


@dataclass(frozen=True)
class Grant:
    """What someone may do in one organisation, and in which of its fleets (None: all)."""

    abilities: frozenset[str]
    fleet_ids: frozenset[int] | None = None

    def covers(self, fleet_id) -> bool:
        return self.fleet_ids is None or fleet_id in self.fleet_ids


@dataclass(frozen=True)
class Access:
    everything: bool = False
    grants: dict[int, Grant] = field(default_factory=dict)  # organisation id → grant
    by_token: bool = False

    def fleet_q(self) -> Q:
        """A filter on Fleet rows: the fleets this access sees."""
        if self.everything:
            return Q()
        whole = [org for org, g in self.grants.items() if g.fleet_ids is None]
        some = [fid for g in self.grants.values() if g.fleet_ids is not None for fid in g.fleet_ids]
        q = Q(pk__in=[])
        if whole:
            q |= Q(organisation_id__in=whole)
        if some:
            q |= Q(pk__in=some)
        return q

    def organisation_ids(self, ability: str = READ) -> list[int] | None:
        """Organisations where this access holds `ability` (None: every one)."""
        if self.everything:
            return None
        return [org for org, g in self.grants.items() if ability in g.abilities]

    def grant_for(self, fleet) -> Grant | None:
        grant = self.grants.get(fleet.organisation_id)
        return grant if grant is not None and grant.covers(fleet.pk) else None

    def may(self, ability: str, fleet) -> bool:
        if self.everything:
            return True
        grant = self.grant_for(fleet)
        return grant is not None and ability in grant.abilities

    def may_in(self, ability: str, organisation_id) -> bool:
        """`ability` over the organisation itself (members, tokens), not one fleet of it."""
        if self.everything:
            return True
        grant = self.grants.get(organisation_id)
        return grant is not None and grant.fleet_ids is None and ability in grant.abilities

    def why_not(self, ability: str, fleet) -> str:
        """Empty when allowed; else the reason, for a disabled button or a 403."""
        if self.may(ability, fleet):
            return ""
        return (_TOKEN_NEEDS if self.by_token else _NEEDS)[ability]


NO_ACCESS = Access()
ALL_ACCESS = Access(everything=True)


def _memberships_access(user, organisation_id=None) -> Access:
    grants = {}
    memberships = Membership.objects.filter(user=user)
    if organisation_id is not None:
        memberships = memberships.filter(organisation_id=organisation_id)
    for m in memberships.prefetch_related("fleets"):
        fleet_ids = frozenset(f.pk for f in m.fleets.all()) or None
        grants[m.organisation_id] = Grant(ROLE_ABILITIES[m.role], fleet_ids)
    return Access(grants=grants)


def token_abilities(scopes) -> frozenset[str]:
    abilities = {s for s in scopes if s in Scope.values}
    if abilities:
        abilities.add(READ)  # every scope reads what it acts on
    if DANGEROUS in abilities:
        abilities.add(APPROVE)  # still only when its member is an approver (token_access)
    return frozenset(abilities)


def token_access(token) -> Access:
    """A token's rights: its scopes and fleets, within what its member may do in its organisation today."""
    owner = token.user
    if not owner.is_active:
        return Access(by_token=True)
    owner_access = ALL_ACCESS if owner.is_superuser else _memberships_access(owner, organisation_id=token.organisation_id)
    if owner_access.everything:
        owner_grant = Grant(EVERY_ABILITY)
    else:
        owner_grant = owner_access.grants.get(token.organisation_id)
        if owner_grant is None:
            return Access(by_token=True)
    abilities = token_abilities(token.scopes) & owner_grant.abilities
    token_fleets = frozenset(f.pk for f in token.fleets.all()) or None
    if token_fleets is None:
        fleet_ids = owner_grant.fleet_ids
    elif owner_grant.fleet_ids is None:
        fleet_ids = token_fleets
    else:
        fleet_ids = token_fleets & owner_grant.fleet_ids
    return Access(grants={token.organisation_id: Grant(abilities, fleet_ids)}, by_token=True)


def access_of(user) -> Access:
    """The rights of a request's user: a person, a token's stand-in (TokenUser) or nobody.

    Computed once per user object (a request's), from its memberships."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", True):
        return NO_ACCESS
    cached = getattr(user, "_fleetportal_access", None)
    if cached is not None:
        return cached
    access = ALL_ACCESS if user.is_superuser else _memberships_access(user)
    try:
        user._fleetportal_access = access
    except AttributeError:  # pragma: no cover - a user object that refuses attributes
        pass
    return access


class TokenUser:
    """`request.user` of a request authenticated by a partner token.

    Not a person: no permissions of Django's own, no pk. What it may do is `access`; who
    issued the token is `token.user`.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False
    pk = None
    id = None

    def __init__(self, token, access: Access):
        self.token = token
        self._fleetportal_access = access
        self.username = f"token:{token.name}"

    def __str__(self):
        return f"token {self.token}"

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label) -> bool:
        return False


def require(user, ability: str, fleet) -> None:
    """Raise PermissionDenied (403, with the reason) unless `user` may do `ability` in `fleet`.

    Only for an object the user can see (found through `visible_to`); one they cannot see
    was a 404 before this."""
    reason = access_of(user).why_not(ability, fleet)
    if reason:
        raise PermissionDenied(reason)
