"""Every change to organisations, their members and their partner tokens.

Pages, admin and commands call these and nothing else writes those rows: the audit log
(issue 12) hooks in here. Each takes `by`, the person acting, and refuses (PermissionDenied,
with the reason) unless they may manage the organisation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit

from . import access
from .models import Membership, Organisation, PartnerToken, Role, Scope

MANAGE_NEEDED = "Managing members and tokens needs the organisation admin role."
LAST_ADMIN = "{user} is the last organisation admin of {org}: make someone else an admin (with every fleet) first."


def _require_manage(org: Organisation, by) -> None:
    if not access.access_of(by).may_in(access.MANAGE, org.pk):
        raise PermissionDenied(MANAGE_NEEDED)


def _own_fleets(org: Organisation, fleets: Iterable) -> list:
    """The fleets, if each belongs to `org`; else a ValidationError on the `fleets` field."""
    fleets = list(fleets or ())
    foreign = [str(f) for f in fleets if f.organisation_id != org.pk]
    if foreign:
        raise ValidationError({"fleets": f"Not fleets of {org}: {', '.join(foreign)}."})
    return fleets


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}: one of {', '.join(Role.values)}."})


# --- organisations ------------------------------------------------------------------------


def create_organisation(*, name: str, slug: str, by) -> Organisation:
    """A new organisation (superusers only), with its creator as its first admin."""
    if not getattr(by, "is_superuser", False):
        raise PermissionDenied("Only a superuser creates organisations.")
    with transaction.atomic():
        org = Organisation.objects.create(name=name, slug=slug)
        audit.record("organisation.created", actor=by, organisation=org, obj=org, changes={"name": [None, name], "slug": [None, slug]})
        membership = Membership.objects.create(organisation=org, user=by, role=Role.ADMIN)
        _record_member("member.added", membership, by, {"role": [None, Role.ADMIN]})
    return org


def _member_state(membership: Membership, fleets=None) -> dict:
    fleets = membership.fleets.all() if fleets is None else fleets
    return {"role": membership.role, "fleets": sorted(str(f) for f in fleets)}


def _record_member(action: str, membership: Membership, by, changes: dict) -> None:
    audit.record(action, actor=by, organisation=membership.organisation_id, obj=membership, object_repr=str(membership), changes=changes)


def set_approval_policy(*, org: Organisation, required_for: Iterable[str], ttl_minutes: int, by) -> Organisation:
    """Which dangerous commands wait for a second person here, and for how long at most."""
    _require_manage(org, by)
    allowed = {member for member, _ in Organisation.APPROVABLE}
    required_for = sorted(set(required_for or ()))
    if set(required_for) - allowed:
        raise ValidationError({"required_for": f"Choose among {', '.join(sorted(allowed))}."})
    if not 1 <= int(ttl_minutes) <= 24 * 60:
        raise ValidationError({"ttl_minutes": "Between 1 minute and 24 hours."})
    with transaction.atomic():
        org = Organisation.objects.select_for_update().get(pk=org.pk)
        before = {"approval_required_for": sorted(org.approval_required_for), "approval_ttl_minutes": org.approval_ttl_minutes}
        org.approval_required_for, org.approval_ttl_minutes = required_for, int(ttl_minutes)
        org.save(update_fields=["approval_required_for", "approval_ttl_minutes"])
        after = {"approval_required_for": required_for, "approval_ttl_minutes": org.approval_ttl_minutes}
        changes = audit.diff(before, after)
        if changes:
            audit.record("organisation.approval_policy_changed", actor=by, organisation=org, obj=org, changes=changes)
    return org


# --- members ------------------------------------------------------------------------------


class _InvitationForm(PasswordResetForm):
    """Django's password-reset mail, sent to one chosen user even before they have a password.

    The stock form skips users whose password is unusable, which is every invited one."""

    def __init__(self, user):
        super().__init__({"email": user.email})
        self.user = user

    def get_users(self, email):
        return [self.user]


def send_invitation(*, user, org: Organisation, by) -> None:
    """E-mail `user` a link to set their password, once the transaction commits."""
    public = urlsplit(settings.PORTAL_PUBLIC_URL)
    form = _InvitationForm(user)
    form.is_valid()
    context = {"organisation": org.name, "invited_by": by.get_full_name() or by.get_username()}
    transaction.on_commit(
        lambda: form.save(
            domain_override=public.netloc, use_https=public.scheme == "https", extra_email_context=context,
            subject_template_name="registration/invitation_subject.txt", email_template_name="registration/invitation_email.txt",
        )
    )


def invite_member(*, org: Organisation, email: str, username: str, role: str, fleets: Iterable = (), by) -> Membership:
    """Make a person a member: the user with that username or e-mail, else a new user without a
    password who is mailed a link to set one."""
    _require_manage(org, by)
    _check_role(role)
    fleets = _own_fleets(org, fleets)
    User = get_user_model()
    same = Q(username=username) | Q(email__iexact=email) if email else Q(username=username)
    matches = list(User.objects.filter(same)[:2])
    if len(matches) > 1:
        raise ValidationError({"username": f"The username {username!r} and the e-mail {email!r} belong to two different people."})
    with transaction.atomic():
        user = matches[0] if matches else None
        if user is None:
            if not email:
                raise ValidationError({"email": "A new person needs an e-mail address: the invitation is sent there."})
            user = User.objects.create_user(username=username, email=email, password=None)  # unusable until they set one
        try:
            with transaction.atomic():  # the unique constraint decides "already a member", not a lookup before
                membership = Membership.objects.create(organisation=org, user=user, role=role)
        except IntegrityError:
            raise ValidationError({"username": f"{user.get_username()} is already a member of {org}."}) from None
        membership.fleets.set(fleets)
        invited = not user.has_usable_password() and bool(user.email)
        _record_member("member.invited" if invited else "member.added", membership, by, audit.diff({}, _member_state(membership, fleets)))
        if invited:
            send_invitation(user=user, org=org, by=by)
    return membership


def _is_manager(membership: Membership, role: str | None = None, fleets=None) -> bool:
    role = membership.role if role is None else role
    has_fleets = membership.fleets.exists() if fleets is None else bool(fleets)
    return role == Role.ADMIN and not has_fleets


def _refuse_losing_last_admin(membership: Membership) -> None:
    # The organisation row is locked first: two admins demoting each other at the same time
    # would otherwise each see the other one still an admin, and leave none.
    Organisation.objects.select_for_update().filter(pk=membership.organisation_id).first()
    if not _is_manager(membership):
        return
    others = Membership.objects.filter(organisation_id=membership.organisation_id, role=Role.ADMIN, fleets__isnull=True).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError(LAST_ADMIN.format(user=membership.user, org=membership.organisation))


def change_member(*, membership: Membership, role: str, fleets: Iterable = (), by) -> Membership:
    """A member's new role and fleet limit (no fleets: every fleet)."""
    org = membership.organisation
    _require_manage(org, by)
    _check_role(role)
    fleets = _own_fleets(org, fleets)
    with transaction.atomic():
        if not _is_manager(membership, role, fleets):
            _refuse_losing_last_admin(membership)
        before = _member_state(membership)
        membership.role = role
        membership.save(update_fields=["role"])
        membership.fleets.set(fleets)
        changes = audit.diff(before, _member_state(membership, fleets))
        if changes:
            _record_member("member.changed", membership, by, changes)
    return membership


def remove_member(*, membership: Membership, by) -> None:
    """End a membership; the person's tokens of that organisation stop working with it (access.token_access)."""
    _require_manage(membership.organisation, by)
    with transaction.atomic():
        _refuse_losing_last_admin(membership)
        _record_member("member.removed", membership, by, audit.diff(_member_state(membership), {}))
        membership.delete()


# --- partner tokens -----------------------------------------------------------------------


def issue_token(*, org: Organisation, name: str, scopes: Iterable[str], fleets: Iterable = (), expires_at: dt.datetime | None = None, by) -> tuple[PartnerToken, str]:
    """A new token acting for `by`, and its key: shown once to the caller, stored nowhere."""
    _require_manage(org, by)
    scopes = list(scopes or ())
    if not name.strip():
        raise ValidationError({"name": "Name the token after what uses it, e.g. the partner."})
    if not scopes or set(scopes) - set(Scope.values):
        raise ValidationError({"scopes": f"Choose one or more of {', '.join(Scope.values)}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    fleets = _own_fleets(org, fleets)
    with transaction.atomic():
        token, key = PartnerToken.issue(organisation=org, user=by, name=name.strip(), scopes=scopes, fleets=fleets, expires_at=expires_at)
        # The key never: its public prefix names the token.
        state = {"scopes": token.scopes, "fleets": sorted(str(f) for f in fleets), "expires_at": expires_at.isoformat() if expires_at else None}
        audit.record("token.issued", actor=by, organisation=org, obj=token, changes=audit.diff({}, state))
    return token, key


def revoke_token(*, token: PartnerToken, by) -> bool:
    """Refuse the token from now on. True if this call revoked it, False if it already was.

    Its own issuer may always revoke it (taking rights away needs no right); anyone else
    needs to manage the organisation."""
    if token.user_id != getattr(by, "pk", None):
        _require_manage(token.organisation, by)
    now = timezone.now()
    with transaction.atomic():
        # Conditional: a second revoke (a double click, two admins) keeps the first time.
        done = PartnerToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now) == 1
        if done:
            audit.record("token.revoked", actor=by, organisation=token.organisation_id, obj=token)
    token.refresh_from_db(fields=["revoked_at"])
    return done
