"""Who may see and do what: organisations, their members' roles, and partner tokens.

The rules that read these rows live in `access.py`; views, admin and API never look at a
membership themselves, they ask `access_of(user)` or a model's `visible_to(user)`.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


def _is_person(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and getattr(user, "token", None) is None


class OrganisationQuerySet(models.QuerySet):
    def visible_to(self, user):
        if user is None or not getattr(user, "is_authenticated", False):
            return self.none()
        token = getattr(user, "token", None)
        if token is not None:
            return self.filter(pk=token.organisation_id)
        return self if user.is_superuser else self.filter(memberships__user=user)


def default_approval_members() -> list[str]:
    # Four-eyes on by default for the commands that stop a car or report it stolen.
    return ["immobilization", "stolen"]


class Organisation(models.Model):
    """A customer of the portal: it owns fleets, its members and its partner tokens."""

    # Dangerous commands that may need a second person (stellantis.remotes.MAY_BE_DANGEROUS;
    # for "door", only an unlock is dangerous).
    APPROVABLE = (("door", "Unlock"), ("immobilization", "Immobilization (on or off)"), ("stolen", "Stolen vehicle"))

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=60, unique=True, help_text="Short name used in the organisation's page address.")
    approval_required_for = models.JSONField(
        default=default_approval_members, blank=True,
        help_text="Dangerous commands that wait for a second person's approval: any of door (unlock), immobilization, stolen.",
    )
    approval_ttl_minutes = models.PositiveIntegerField(
        default=15, help_text="A command not approved within this many minutes expires and is never sent."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def needs_approval(self, member: str) -> bool:
        """Whether a dangerous command of this feature waits for a second person here."""
        return member in self.approval_required_for


class Role(models.TextChoices):
    # Each role can do what the ones before it can (access.ROLE_ABILITIES).
    VIEWER = "viewer", "Viewer (reads)"
    OPERATOR = "operator", "Operator (sends ordinary commands)"
    APPROVER = "approver", "Approver (sends and approves dangerous commands)"
    ADMIN = "admin", "Organisation admin (members, callbacks, tokens)"


class MembershipQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Members of the organisations a person belongs to (colleagues see each other); none for a token."""
        if not _is_person(user):
            return self.none()
        return self.filter(organisation__in=Organisation.objects.visible_to(user))


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    fleets = models.ManyToManyField(
        "vehicles.Fleet", blank=True, related_name="+",
        help_text="Limit this member to these fleets of the organisation; none means every fleet.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organisation", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} · {self.organisation} · {self.get_role_display()}"


class Scope(models.TextChoices):
    # Every scope also reads what it acts on (access.token_abilities).
    READ = "read", "Read fleets, vehicles and actions"
    COMMAND = "command", "Send ordinary commands"
    DANGEROUS_COMMAND = "dangerous_command", "Send dangerous commands (unlock, immobilization, stolen)"
    CALLBACKS = "callbacks", "Manage callbacks"


TOKEN_PREFIX = "fpt_"


def _hash(key: str) -> str:
    # A plain SHA-256 is enough: the key is 256 random bits, not a password to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class PartnerTokenQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Tokens of the organisations a person administers, and their own; none for a token."""
        if not _is_person(user):
            return self.none()
        if user.is_superuser:
            return self
        administered = Membership.objects.filter(user=user, role=Role.ADMIN, fleets__isnull=True).values("organisation_id")
        return self.filter(models.Q(organisation_id__in=administered) | models.Q(user=user))

    def for_key(self, key: str):
        """The token whose key this is (prefix finds the row, the whole key's hash must match), or None."""
        found = PartnerToken.split(key)
        if found is None:
            return None
        token = self.filter(prefix=found[0]).first()
        return token if token is not None and token.matches(key) else None

    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class PartnerToken(models.Model):
    """An API credential of an organisation, acting for the member who issued it.

    Only a hash of the key is stored: the key is shown once, when it is made (`issue`). It
    never does more than its scopes, its fleet list, nor more than its member may do today.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="tokens")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partner_tokens",
        help_text="The member the token acts for: it never does more than this person may.",
    )
    name = models.CharField(max_length=100, help_text="What it is for, e.g. the partner's name.")
    prefix = models.CharField(max_length=12, unique=True, editable=False, help_text="Public part of the key: finds the row.")
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, help_text="Subset of read, command, dangerous_command, callbacks.")
    fleets = models.ManyToManyField("vehicles.Fleet", blank=True, related_name="+", help_text="Limit to these fleets; none means every fleet.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused after this; empty means no expiry.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = PartnerTokenQuerySet.as_manager()

    class Meta:
        ordering = ["organisation", "-created_at"]

    def __str__(self):
        return f"{self.name} ({TOKEN_PREFIX}{self.prefix}…)"

    @classmethod
    def issue(cls, *, organisation, user, name: str, scopes, expires_at=None, fleets=(), key: str | None = None) -> tuple[PartnerToken, str]:
        """A new token and its key, which exists nowhere else afterwards.

        `key` is for the demo seeding only, whose keys are derived from SECRET_KEY so that
        seeding again finds the same tokens (`make key`)."""
        if key is None:
            key = cls.make_key(secrets.token_hex(4), secrets.token_urlsafe(32))
        prefix = cls.split(key)[0]
        token = cls.objects.create(
            organisation=organisation, user=user, name=name, prefix=prefix, key_hash=_hash(key),
            scopes=sorted(set(scopes)), expires_at=expires_at,
        )
        if fleets:
            token.fleets.set(fleets)
        return token, key

    @staticmethod
    def make_key(prefix: str, secret: str) -> str:
        return f"{TOKEN_PREFIX}{prefix}_{secret}"

    @staticmethod
    def split(key: str) -> tuple[str, str] | None:
        """(prefix, key) of something that looks like one of our keys, else None."""
        if not key.startswith(TOKEN_PREFIX):
            return None
        prefix, sep, rest = key[len(TOKEN_PREFIX):].partition("_")
        if not sep or not rest or len(prefix) != 8:
            return None
        return prefix, key

    def matches(self, key: str) -> bool:
        return secrets.compare_digest(_hash(key), self.key_hash)

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class Preference(models.Model):
    """What one person chose for themselves: for now, the time zone times are shown in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    time_zone = models.CharField(
        max_length=64, blank=True,
        help_text="An IANA zone such as Europe/Paris; set from the browser's the first time, changed on the time-zone page.",
    )

    def __str__(self):
        return f"{self.user} · {self.time_zone or 'default zone'}"
