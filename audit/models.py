"""The audit log: who did what, for which organisation, from where. Append-only.

Nobody edits or deletes an entry: the model and its queryset refuse it, the admin shows it
read-only, and the database refuses it too (a trigger: UPDATE and DELETE on PostgreSQL,
UPDATE on SQLite — see migration 0002 for why not DELETE there).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    pass


class Source(models.TextChoices):
    PAGE = "page", "Web page"
    ADMIN = "admin", "Admin"
    API = "api", "Partner API"
    SYSTEM = "system", "System"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("Audit entries cannot be changed.")

    def delete(self):
        raise AppendOnly("Audit entries cannot be deleted.")

    def visible_to(self, user):
        """Entries of the organisations a person administers; every entry for superusers.

        Entries about no organisation (logins) are superusers' only."""
        if user is None or not getattr(user, "is_authenticated", False) or getattr(user, "token", None) is not None:
            return self.none()
        if user.is_superuser:
            return self
        # accounts.Role.ADMIN, by value: accounts records into the audit log, so audit cannot import it.
        from_memberships = user.memberships.filter(role="admin", fleets__isnull=True).values("organisation_id")
        return self.filter(organisation_id__in=from_memberships)


class AuditEntry(models.Model):
    # The references are kept without database constraints: an entry outlives the person,
    # token or organisation it names (a cascade or SET NULL would be an edit), and `actor`
    # keeps their name as it was.
    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.PartnerToken", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    actor = models.CharField(max_length=200, help_text="Who, as they were named then: a person, a token and its member, or system.")
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=40, db_index=True, help_text="What happened, e.g. remote.requested, callback.changed, login.failed.")
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]} for a change.")
    reason = models.TextField(blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["organisation", "-at"]), models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_repr}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("Audit entries cannot be deleted.")
