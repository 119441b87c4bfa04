import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from stellantis.callbacks import Subscription
from stellantis.vocabulary import AttributeType, CallbackStatus, RemoteType, RetryPolicy
from vehicles.models import Fleet

from . import rules


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_webhook_key() -> str:
    return secrets.token_hex(8)


class CallbackQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(fleet__in=Fleet.objects.visible_to(user))

    def live(self):
        return self.filter(deleted_at__isnull=True)

    def serving(self, fleet, remote_type: str):
        """Running callbacks of `fleet` that serve `remote_type`, the oldest first."""
        candidates = self.live().filter(fleet=fleet, status=CallbackStatus.RUNNING).exclude(external_id="").order_by("created_at", "pk")
        # remote_types is a JSON list; filtered in Python because JSON containment differs
        # between SQLite and PostgreSQL and a fleet has a handful of callbacks at most.
        return [cb for cb in candidates if remote_type in cb.remote_types]


class Callback(models.Model):
    """A Stellantis remote callback: how notifications of actions sent through it reach us."""

    fleet = models.ForeignKey("vehicles.Fleet", on_delete=models.CASCADE, related_name="callbacks")
    external_id = models.CharField(max_length=64, blank=True, db_index=True, help_text="The callback's id at Stellantis; empty until created there.")
    label = models.CharField(max_length=200, blank=True)
    target = models.URLField(max_length=500, help_text="Webhook URL Stellantis posts notifications to.")
    name = models.CharField(max_length=100, default="fleetportal", help_text="Webhook name at Stellantis.")
    attributes = models.JSONField(default=list, blank=True, help_text="Extra attributes [{type, key, value}], besides our secret header.")
    retry_policy = models.CharField(max_length=10, choices=RetryPolicy.choices, default=RetryPolicy.BOUNDED)
    retry_number = models.PositiveIntegerField(default=3, help_text="Bounded policy: retries after the first attempt.")
    retry_delay = models.PositiveIntegerField(default=10, help_text="Bounded policy: seconds between attempts.")
    batch_size = models.PositiveIntegerField(null=True, blank=True, help_text="Deliver events together once this many are ready.")
    batch_time_window = models.PositiveIntegerField(null=True, blank=True, help_text="…or once the oldest has waited this many seconds (≥ 5).")
    remote_types = models.JSONField(default=list, help_text="Remote types this callback serves.")
    status = models.CharField(max_length=10, choices=CallbackStatus.choices, default=CallbackStatus.RUNNING)
    webhook_key = models.CharField(
        max_length=16, unique=True, default=new_webhook_key, help_text="Public half of the secret header: finds this row."
    )
    secret = models.CharField(max_length=64, default=new_secret, help_text="Sent as a header attribute; our webhook checks it.")
    previous_secret = models.CharField(max_length=64, blank=True, help_text="Still accepted while a rotation is in flight.")
    previous_secret_until = models.DateTimeField(
        null=True, blank=True, help_text="The previous secret is refused after this (retries of old notifications are over)."
    )
    secret_at_vendor = models.BooleanField(
        default=True, help_text="False for a callback imported from Stellantis whose header does not carry our secret yet."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted at Stellantis; kept here for the actions' history.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CallbackQuerySet.as_manager()

    # What a person may change (forms, admin, API); the rest is Stellantis' or ours.
    EDITABLE_FIELDS = (
        "label", "target", "name", "remote_types", "retry_policy", "retry_number", "retry_delay",
        "batch_size", "batch_time_window", "attributes",
    )

    class Meta:
        ordering = ["fleet", "created_at"]

    def __str__(self):
        return self.label or f"Callback {self.external_id or self.pk}"

    @property
    def secret_header_value(self) -> str:
        # "<key>.<secret>": the key finds the row, the secret is compared in constant time.
        # Not the pk: the value must exist before the row does, so that the vendor is
        # called without holding a transaction open (SQLite would deadlock on its own lock).
        return f"{self.webhook_key}.{self.secret}"

    def subscription(self) -> Subscription:
        """What Stellantis should hold for this callback: our fields plus our secret, as a Header and a Body attribute."""
        attributes = [a for a in self.attributes if a.get("key") != settings.WEBHOOK_SECRET_HEADER]
        attributes.append({"type": AttributeType.HEADER, "key": settings.WEBHOOK_SECRET_HEADER, "value": self.secret_header_value})
        # The same secret in the body too (RemoteEvents.attributes): the spec says header
        # attributes are "added as http header extension x-…", so the header may reach us
        # renamed, and a proxy may strip it; the body reaches us whole. Same key, so that
        # `Subscription.attribute(key)` and the import (which drops our key) see one secret.
        attributes.append({"type": AttributeType.BODY, "key": settings.WEBHOOK_SECRET_HEADER, "value": self.secret_header_value})
        return Subscription(
            label=self.label, target=self.target, name=self.name, attributes=attributes, retry_policy=self.retry_policy,
            retry_number=self.retry_number, retry_delay=self.retry_delay, batch_size=self.batch_size,
            batch_time_window=self.batch_time_window, remote_types=list(self.remote_types),
        )

    def rule_errors(self) -> dict[str, str]:
        """What Stellantis would refuse in this callback (callbacks.rules), by field path."""
        return rules.check(
            target=self.target, name=self.name, retry_policy=self.retry_policy, retry_number=self.retry_number,
            retry_delay=self.retry_delay, batch_size=self.batch_size, batch_time_window=self.batch_time_window,
            remote_types=self.remote_types, attributes=self.attributes, reserved_header=settings.WEBHOOK_SECRET_HEADER,
        )

    def clean(self):
        errors = self.rule_errors()
        if errors:
            raise ValidationError({k.split(".")[0]: f"{k}: {v}" if "." in k else v for k, v in errors.items()})

    def remote_type_labels(self) -> list[str]:
        return [RemoteType(t).label for t in self.remote_types if t in RemoteType.values]
