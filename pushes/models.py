"""Partner webhook endpoints and the log of what was pushed to them (Standard Webhooks)."""

from __future__ import annotations

import base64
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from accounts.access import READ, access_of
from accounts.models import Organisation

from .targets import check_url


class EventType(models.TextChoices):
    STATUS_CHANGED = "remote.status_changed", "A remote action's status changed"


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and base64 of random bytes (the library's convention)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_event_id() -> str:
    """The `webhook-id` of one message, the same on every attempt: receivers deduplicate with it."""
    return f"msg_{uuid.uuid4().hex}"


def _whole_organisations(user) -> list[int] | None:
    """Organisations `user` reads whole (None: all). An endpoint gets every fleet's events, so a
    member or token limited to some fleets of an organisation does not see its endpoints."""
    rights = access_of(user)
    ids = rights.organisation_ids(READ)
    return None if ids is None else [o for o in ids if rights.may_in(READ, o)]


class WebhookEndpointQuerySet(models.QuerySet):
    def visible_to(self, user):
        ids = _whole_organisations(user)
        return self if ids is None else self.filter(organisation_id__in=ids)

    def subscribed(self, event_type: str):
        """Enabled endpoints that want `event_type` (events is a short list: filtered in Python, every database alike)."""
        return [e for e in self.filter(enabled=True) if event_type in e.events]


class WebhookEndpoint(models.Model):
    """A partner's URL that receives our events, signed with its own secret."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500, help_text="https on a public address in production; checked again at each delivery.")
    events = models.JSONField(default=list, help_text='Event types it receives, e.g. ["remote.status_changed"].')
    secret = models.CharField(
        max_length=100, default=new_secret, editable=False,
        help_text="Standard Webhooks signing secret (whsec_…). Shown once, when the endpoint is created; never logged.",
    )
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, help_text="Why it is disabled (by whom, or what failed).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["organisation", "pk"]

    def __str__(self):
        return f"{self.url} ({self.organisation})"

    def __repr__(self):  # never the secret, even in a traceback's locals
        return f"<WebhookEndpoint {self.pk} {self.url}>"

    def clean(self):
        # The admin's form (superusers); the API goes through services, which check the same.
        errors = {}
        if why := check_url(self.url):
            errors["url"] = why
        if not isinstance(self.events, list) or not self.events or any(e not in EventType.values for e in self.events):
            errors["events"] = f"a list of event types among {', '.join(EventType.values)}"
        if errors:
            raise ValidationError(errors)


class PushDeliveryQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(endpoint__in=WebhookEndpoint.objects.visible_to(user))


class PushDelivery(models.Model):
    """One event for one endpoint, and where its delivery stands (the log partners read and replay)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=40, unique=True, default=new_event_id, help_text="The webhook-id, the same on every attempt.")
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    action = models.ForeignKey("remotes.RemoteAction", on_delete=models.CASCADE, related_name="+")
    action_state = models.CharField(
        max_length=80, help_text="The status pushed (pending: with its step): one event per action and state and endpoint."
    )
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="Due then (pending); while a worker sends, a lease: moved ahead by the claim."
    )
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = PushDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "push deliveries"
        constraints = [
            # Two emitters racing over one change (the portal's hook and a read of the action
            # after a webhook delivery) insert one row: the second insert is refused here.
            models.UniqueConstraint(fields=["endpoint", "event_type", "action", "action_state"], name="push_delivery_once"),
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="push_delivery_due")]

    def __str__(self):
        return f"{self.event_id} · {self.get_state_display()}"
