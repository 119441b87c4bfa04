"""Bulk requests (campaigns): one command for many vehicles, expanded and sent in the background.

A `BulkRequest` is created in one short request (the selection is stored, not expanded); a
q2 task expands it into `BulkItem`s in chunks, refusing with a cause the vehicles a single
command would refuse, then dispatches the waiting items chunk by chunk. An item gets its
`remotes.RemoteAction` only when it is dispatched, so the remotes sweep never sees one that
is merely waiting its turn.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from remotes.models import RemoteAction, Source
from stellantis.vocabulary import RemoteType
from vehicles.models import Fleet


class Selection(models.TextChoices):
    VINS = "vins", "Chosen vehicles"
    FILTER = "filter", "A filter of the vehicle list"
    FLEET = "fleet", "A whole fleet"


class BulkStatus(models.TextChoices):
    EXPANDING = "expanding", "Preparing"
    DISPATCHING = "dispatching", "Sending"
    # Every command handed over (or refused, or cancelled); outcomes still arriving.
    SENT = "sent", "Sent, outcomes arriving"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (BulkStatus.EXPANDING, BulkStatus.DISPATCHING)


class BulkRequestQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Bulk requests of the organisations (and fleets) the user sees: a fleet-scoped one
        through its fleet, a selection across fleets through its organisation."""
        fleets = Fleet.objects.visible_to(user)
        return self.filter(Q(fleet__in=fleets) | Q(fleet__isnull=True, organisation__in=fleets.values("organisation_id")))


class BulkRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="bulk_requests")
    fleet = models.ForeignKey(
        Fleet, null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_requests",
        help_text="The fleet every selected vehicle belongs to; empty when the selection spans several.",
    )
    command = models.JSONField(help_text='The Remote body without its label, e.g. {"horn": {"state": "Activated"}}.')
    remote_type = models.CharField(max_length=40, choices=RemoteType.choices)
    selection = models.CharField(max_length=8, choices=Selection.choices)
    vins = models.JSONField(default=list, blank=True, help_text="The chosen VINs (selection 'vins').")
    filter_query = models.CharField(max_length=2000, blank=True, help_text="The vehicle list's query string (selection 'filter').")

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_token = models.ForeignKey("accounts.PartnerToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices)
    reason = models.CharField(max_length=500, blank=True)
    not_before = models.DateTimeField(help_text="Nothing is sent before this.")
    not_after = models.DateTimeField(help_text="Nothing is sent after this: what is left then is refused (window closed).")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")

    status = models.CharField(max_length=12, choices=BulkStatus.choices, default=BulkStatus.EXPANDING)
    total = models.PositiveIntegerField(default=0, help_text="Vehicles selected (known once expanded).")
    expanded = models.PositiveIntegerField(default=0, help_text="Vehicles of the selection expanded into items so far.")
    # The dispatcher's lease: one worker at a time; one gone silent past it is replaced by the sweep.
    lease_until = models.DateTimeField(null=True, blank=True)
    worked_at = models.DateTimeField(null=True, blank=True, help_text="Last slice of work (expansion or dispatch).")
    error = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="When the requester was told it finished.")
    approvers_notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the approvers were told (once) that its commands wait for them (four-eyes)."
    )
    seen_at = models.DateTimeField(null=True, blank=True, help_text="When the requester saw the finished notice in the portal.")

    objects = BulkRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "lease_until"], name="bulk_open", condition=Q(status__in=["expanding", "dispatching", "sent"]))]

    def __str__(self):
        return f"{self.get_remote_type_display()} × {self.total or '…'} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES or self.status == BulkStatus.SENT


class ItemState(models.TextChoices):
    WAITING = "waiting", "Waiting its turn"
    REFUSED = "refused", "Refused"
    DISPATCHED = "dispatched", "Handed to the command queue"
    CANCELLED = "cancelled", "Cancelled"


class BulkItem(models.Model):
    bulk = models.ForeignKey(BulkRequest, on_delete=models.CASCADE, related_name="items")
    vehicle = models.ForeignKey("vehicles.Vehicle", on_delete=models.CASCADE, related_name="+")
    callback = models.ForeignKey("callbacks.Callback", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.OneToOneField(RemoteAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="bulk_item")
    state = models.CharField(max_length=10, choices=ItemState.choices, default=ItemState.WAITING)
    cause = models.CharField(max_length=24, blank=True, help_text="Why it was refused (a code; `reason` in words).")
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["bulk", "vehicle"], name="bulk_item_once_per_vehicle")]
        indexes = [models.Index(fields=["bulk", "state"], name="bulk_item_state")]

    def __str__(self):
        return f"{self.vehicle_id} in {self.bulk_id} ({self.state})"


class BulkLane(models.Model):
    """One more dispatcher of a bulk beside its own run, under its own lease (bulk.services.open_lanes):
    with several q2 workers or clusters, up to BULK_LANES of them hand one bulk's commands over at once."""

    bulk = models.ForeignKey(BulkRequest, on_delete=models.CASCADE, related_name="lanes")
    number = models.PositiveSmallIntegerField()
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bulk", "number"], name="bulk_lane_once")]

    def __str__(self):
        return f"{self.bulk_id} lane {self.number}"
