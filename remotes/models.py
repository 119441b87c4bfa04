import uuid

from django.conf import settings
from django.db import models

from stellantis.vocabulary import FAILURE_ADVICE, EventType, FailureCause, PendingStatus, RemoteType, label_of
from vehicles.models import Fleet


class ActionStatus(models.TextChoices):
    # A dangerous command under four-eyes: nothing is sent until a second person approves.
    AWAITING_APPROVAL = "awaiting_approval", "Waiting for approval"
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Sending to Stellantis"
    SUBMITTED = "submitted", "Sent to Stellantis"
    PENDING = "pending", "In progress"
    SUCCESS = "success", "Success"
    ALREADY_DONE = "already_done", "Already done"
    FAILED = "failed", "Failed"
    # By Stellantis (`error` says why) or by an approver (the timeline says who).
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired before sending"
    ERROR = "error", "Error"
    # Maybe sent, maybe not, and not safe to send again by itself (unlock, immobilization,
    # stolen): a person checks the vehicle and decides.
    UNKNOWN = "unknown", "Outcome unknown"


FINAL_STATUSES = (
    ActionStatus.SUCCESS,
    ActionStatus.ALREADY_DONE,
    ActionStatus.FAILED,
    ActionStatus.REJECTED,
    ActionStatus.EXPIRED,
    ActionStatus.ERROR,
    ActionStatus.UNKNOWN,
    ActionStatus.CANCELLED,
)
# Finals a person looks for (the history lists' status filter has an index of its own for them).
ENDED_BADLY = (
    ActionStatus.FAILED, ActionStatus.REJECTED, ActionStatus.EXPIRED, ActionStatus.ERROR, ActionStatus.UNKNOWN, ActionStatus.CANCELLED,
)
# Final for the portal (nothing more is done by itself), but not knowledge of the outcome:
# a late Done from the vendor is the truth and still moves them (events._derive, pg_ingest).
CORRECTABLE_FINAL_STATUSES = (ActionStatus.ERROR, ActionStatus.UNKNOWN)


class Source(models.TextChoices):
    WEB = "web", "Web page"
    ADMIN = "admin", "Admin bulk action"
    API = "api", "Partner API"
    SYSTEM = "system", "System"


class RemoteActionQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(vehicle__fleet__in=Fleet.objects.visible_to(user))

    def open(self):
        return self.exclude(status__in=FINAL_STATUSES)

    def stuck(self, *, older_than):
        """Handed to Stellantis before `older_than` and still without a final word."""
        return self.filter(status__in=(ActionStatus.SUBMITTED, ActionStatus.PENDING), submitted_at__lt=older_than)


class RemoteAction(models.Model):
    """One command to one vehicle. Its id goes to Stellantis as the `label` (correlation id)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    vehicle = models.ForeignKey("vehicles.Vehicle", on_delete=models.PROTECT, related_name="remote_actions")
    callback = models.ForeignKey("callbacks.Callback", on_delete=models.PROTECT, related_name="remote_actions")
    remote_type = models.CharField(max_length=40, choices=RemoteType.choices)
    command = models.JSONField(help_text="The Remote body without its label, e.g. {\"horn\": {\"state\": \"Activated\"}}.")
    status = models.CharField(max_length=20, choices=ActionStatus.choices, default=ActionStatus.QUEUED)
    pending_status = models.CharField(max_length=40, blank=True, choices=PendingStatus.choices, help_text="Latest Pending step.")
    pending_at = models.DateTimeField(null=True, blank=True, help_text="eventDate of that Pending step.")
    failure_cause = models.CharField(max_length=64, blank=True)
    feedback_detail = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True, help_text="Why the portal gave up, or the vendor's refusal.")
    remote_action_id = models.CharField(max_length=64, null=True, blank=True, help_text="The action's id at Stellantis.")

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_token = models.ForeignKey(
        "accounts.PartnerToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The partner token that sent it, when it came through the API with one.",
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was asked for; required for dangerous commands.")

    # Four-eyes approval (only for commands the organisation says need it).
    approval_expires_at = models.DateTimeField(null=True, blank=True, help_text="Never sent if not approved by then.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who approved, rejected or cancelled it (a token's member when through a token).",
    )
    decided_by_token = models.ForeignKey("accounts.PartnerToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.CharField(max_length=500, blank=True)
    decision = models.CharField(
        max_length=10, blank=True, choices=[(d, d.capitalize()) for d in ("approved", "rejected", "cancelled", "expired")],
        help_text="What became of the approval; empty while it waits (or without four-eyes).",
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField(help_text="Not sent after this: a late unlock is worse than none.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker claimed it for submission.")
    submit_attempts = models.PositiveIntegerField(default=0)
    maybe_sent_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set just before a POST leaves, cleared once Stellantis' answer is known: while set, the command may be at "
        "Stellantis, so it is looked up by label before it is ever sent again.",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True, help_text="Last read back from Stellantis.")
    # After a Success, the vehicle's status is read back (remotes.verification): does it say what was asked?
    verification = models.CharField(
        max_length=16, blank=True, choices=[("verified", "Verified"), ("not_confirmed", "Not confirmed")],
        help_text="What the vehicle's status said after the command succeeded; empty when not checked (yet).",
    )
    verified_at = models.DateTimeField(null=True, blank=True, help_text="When the status was read back for that check.")

    objects = RemoteActionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("request_remote", "Can send remote commands"),
            ("request_dangerous_remote", "Can send unlock, immobilization and stolen commands"),
        ]
        # Every index here is written by each webhook delivery that moves an action, so only
        # the ones a query needs: a UniqueConstraint (unlike unique=True) adds no
        # varchar_pattern_ops copy on PostgreSQL, and open actions (what sweep, reconcile and
        # the stuck filter look for) get a partial index that finished ones leave.
        constraints = [models.UniqueConstraint(fields=["remote_action_id"], name="remote_action_id_unique")]
        indexes = [
            models.Index(fields=["vehicle", "-created_at"]),
            models.Index(
                fields=["status", "submitted_at"],
                name="remote_action_open",
                condition=~models.Q(status__in=[str(s) for s in FINAL_STATUSES]),
            ),
            # The history lists (admin, portal): a status filter newest first, and a failure
            # cause's. Both partial, so that the webhook's updates (to pending, success) never
            # write them: an update that changes an indexed column writes every index whose
            # condition the new row meets. The open statuses have remote_action_open; success
            # and already-done are most rows, found at once on created_at's index.
            models.Index(
                fields=["status", "created_at"], name="remote_action_ended_badly",
                condition=models.Q(status__in=[str(s) for s in ENDED_BADLY]),
            ),
            models.Index(fields=["failure_cause", "created_at"], name="remote_action_cause_created", condition=~models.Q(failure_cause="")),
            # Stolen / immobilized (the vehicle list's state filter and badges, the overview's counts, the
            # vehicle page): the latest successful declaration per vehicle, found among a few rows instead
            # of every action. Partial on the rare types, so a horn's or a lock's Success never writes it.
            models.Index(
                fields=["vehicle", "created_at"], name="remote_action_theft",
                condition=models.Q(remote_type__in=[RemoteType.STOLEN, RemoteType.IMMOBILIZATION], status__in=["success", "already_done"]),
            ),
        ]

    def __str__(self):
        return f"{self.get_remote_type_display()} → {self.vehicle_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def label(self) -> str:
        return str(self.id)

    @property
    def summary(self) -> str:
        """The command in a few words, e.g. "Doors: Locked"."""
        member, body = next(iter(self.command.items()))
        if isinstance(body, dict) and len(body) == 1:
            value = next(iter(body.values()))
            if isinstance(value, (str, bool)):
                return f"{self.get_remote_type_display()}: {value}"
        return self.get_remote_type_display()

    @property
    def failure_label(self) -> str:
        return label_of(FailureCause, self.failure_cause)

    @property
    def failure_advice(self) -> str:
        return FAILURE_ADVICE.get(self.failure_cause, "")


class WebhookDeliveryQuerySet(models.QuerySet):
    def visible_to(self, user):
        # A delivery no callback claimed (refused secret, unparseable) is nobody's: superusers only.
        return self.filter(callback__fleet__in=Fleet.objects.visible_to(user))


class WebhookDelivery(models.Model):
    """A notification exactly as it reached our webhook, stored before it is interpreted."""

    class Outcome(models.TextChoices):
        PROCESSED = "processed", "Processed"
        PARTIAL = "partial", "Processed, some events refused"
        UNPARSEABLE = "unparseable", "Unparseable"
        FAILED = "failed", "Processing failed"

    callback = models.ForeignKey("callbacks.Callback", null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, help_text="Request headers, secrets removed.")
    query = models.CharField(max_length=2000, blank=True)
    body = models.TextField(blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.PROCESSED)
    error = models.TextField(blank=True)
    event_count = models.PositiveIntegerField(default=0)
    bad_events = models.JSONField(
        default=list, blank=True, help_text="Events of this delivery we could not read: [{index, error, event}]; the good ones were applied."
    )
    # Retention (ops.retention) keeps a flagged delivery (partial, unparseable, failed) until
    # someone has looked at it: the admin's "Mark reviewed" sets this.
    reviewed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a person marked this flagged delivery reviewed; only then may retention prune it."
    )

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        # Born in the callbacks app; the inbox moved here with the events it applies, the
        # table stayed where it was (a state-only migration, no data moved).
        db_table = "callbacks_webhookdelivery"
        ordering = ["-received_at", "-pk"]
        # Flagged deliveries (the admin's outcome filter, retention's "kept until reviewed"):
        # partial, so the webhook's processed deliveries never write it.
        indexes = [
            models.Index(fields=["outcome", "received_at"], name="delivery_flagged", condition=~models.Q(outcome="processed")),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"Delivery {self.pk} · {self.get_outcome_display()}"


# Deliveries someone should look at; retention keeps them until `reviewed_at` is set.
FLAGGED_OUTCOMES = (WebhookDelivery.Outcome.PARTIAL, WebhookDelivery.Outcome.UNPARSEABLE, WebhookDelivery.Outcome.FAILED)


# Event statuses an operator filters for and that are rare (a failure, a vehicle that cannot be woken).
NOTABLE_EVENT_STATUSES = ["Failed", "VehicleBatteryChargeTooLow", "TooManyWakeUpsOverMonth"]


class RemoteEventQuerySet(models.QuerySet):
    def visible_to(self, user):
        # An event not matched to an action yet is nobody's: superusers only.
        return self.filter(action__vehicle__fleet__in=Fleet.objects.visible_to(user))


class RemoteEvent(models.Model):
    """A notification event from Stellantis. Kept even before its action is known (early arrival)."""

    action = models.ForeignKey(RemoteAction, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    # No index of its own: the unique constraint below leads with it.
    remote_action_id = models.CharField(max_length=64)
    vin = models.CharField(max_length=17, blank=True)
    remote_type = models.CharField(max_length=40, blank=True)
    event_type = models.CharField(max_length=8, choices=EventType.choices)
    status = models.CharField(max_length=40)
    failure_cause = models.CharField(max_length=64, blank=True)
    feedback_detail = models.CharField(max_length=64, blank=True)
    event_date = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    # Which delivery brought it: a pointer for operators, not an invariant. No database
    # constraint: its check ran once per inserted event, and a PostgreSQL connection plans
    # that check once, so a backend opened while the inbox was small kept seq-scanning it as
    # it grew (webhook throughput fell by half within a minute). on_delete still applies.
    delivery = models.ForeignKey(
        "WebhookDelivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_constraint=False
    )

    objects = RemoteEventQuerySet.as_manager()

    class Meta:
        ordering = ["event_date", "pk"]
        # The history lists filter by status, newest received first (id order: the primary
        # key's index serves the unfiltered list and the common statuses, found at once).
        # Partial, for the statuses people look for and that are rare: an index written by
        # every stored event cost the webhook 0.07 ms of PostgreSQL per delivery (docs/benchmarks.md).
        indexes = [models.Index(fields=["status", "id"], name="remote_event_notable", condition=models.Q(status__in=NOTABLE_EVENT_STATUSES))]
        constraints = [
            # A re-delivered event is the same (action, type, status, date): the insert is a no-op.
            models.UniqueConstraint(
                fields=["remote_action_id", "event_type", "status", "event_date"], name="remote_event_unique"
            )
        ]

    def __str__(self):
        return f"{self.event_type} {self.status} @ {self.event_date:%H:%M:%S}"


class ActionStepQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(action__vehicle__fleet__in=Fleet.objects.visible_to(user))


class ActionStep(models.Model):
    """The portal's own steps in an action's life (queued, submitted, …), for the timeline."""

    action = models.ForeignKey(RemoteAction, on_delete=models.CASCADE, related_name="steps")
    status = models.CharField(max_length=20, choices=ActionStatus.choices)
    at = models.DateTimeField()
    detail = models.CharField(max_length=500, blank=True)

    objects = ActionStepQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.status} @ {self.at:%H:%M:%S}"
