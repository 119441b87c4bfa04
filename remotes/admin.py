import datetime as dt
import json

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

import audit.services as audit
from accounts.access import CALLBACKS
from accounts.scoped_admin import ScopedAdmin, ScopedInline, may_somewhere
from core.admin import HistoryAdmin, IndexedValuesFilter
from stellantis.vocabulary import DoneStatus, PendingStatus

from . import inbox
from .models import FLAGGED_OUTCOMES, ActionStatus, ActionStep, RemoteAction, RemoteEvent, WebhookDelivery


class StepInline(ScopedInline, admin.TabularInline):
    model = ActionStep
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status", "detail"]


class EventInline(ScopedInline, admin.TabularInline):
    model = RemoteEvent
    extra = 0
    can_delete = False
    readonly_fields = ["event_date", "event_type", "status", "failure_cause", "feedback_detail", "delivery"]
    fields = readonly_fields


class StuckFilter(admin.SimpleListFilter):
    """Actions that should have moved by now: the ones an operator looks at first."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("waiting", "Waiting for Stellantis too long"), ("unsent", "Not sent after 5 minutes")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "waiting":
            return queryset.stuck(older_than=now - dt.timedelta(seconds=settings.REMOTE_RECONCILE_AFTER))
        if self.value() == "unsent":
            return queryset.filter(status__in=(ActionStatus.QUEUED, ActionStatus.SUBMITTING), created_at__lt=now - dt.timedelta(minutes=5))
        return queryset


# Actions, events and deliveries are the record of what was commanded and what Stellantis
# said: read-only for everyone, superusers too. Nobody adds, edits or deletes one by hand
# (an action is decided on through remotes.approvals, a delivery only replayed).


class Undeletable:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EventStatusFilter(admin.AllValuesFieldListFilter):
    """The vendor's event statuses, from the vocabulary: no index lists them (remotes 0014 indexes
    only the rare ones a person looks for, so that the webhook's events do not write it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookup_choices = [*PendingStatus.values, *DoneStatus.values]


# The three lists below grow with history (a million rows is a few months of a big fleet):
# HistoryAdmin (core.admin) keeps each page to a constant number of queries, each on an index
# (remotes 0014): no count of the whole table, a capped count of the filtered one, filters on
# indexed columns, and a date filter instead of a date hierarchy (whose year and month links
# are a DISTINCT over every row the filters leave).


@admin.register(RemoteAction)
class RemoteActionAdmin(HistoryAdmin, Undeletable, ScopedAdmin):
    list_display = ["created_at", "vehicle", "remote_type", "status", "pending_status", "failure_cause", "source", "requested_by"]
    list_filter = [
        StuckFilter, "status", "remote_type", "source", ("failure_cause", IndexedValuesFilter), ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["vehicle__vin", "remote_action_id", "id"]
    list_select_related = ["vehicle", "requested_by"]
    list_defer = ("command", "error")
    inlines = [StepInline, EventInline]
    readonly_fields = [f.name for f in RemoteAction._meta.fields]
    fleet_path = "vehicle.fleet"


@admin.register(RemoteEvent)
class RemoteEventAdmin(HistoryAdmin, Undeletable, ScopedAdmin):
    list_display = ["when", "remote_action_id", "event_type", "status", "failure_cause", "action"]
    list_filter = ["event_type", ("status", EventStatusFilter)]
    list_select_related = ["action"]  # the action column: one join, not one query per row
    list_defer = ("action__command", "action__error")
    # Newest received first, by id: the primary key's index, and (status, id) under a filter
    # for a rare status (remote_event_notable); a common one is found at once walking the ids. No index on event_date (each index is written by every stored event, on the
    # webhook's hot path): its column sorts by arrival, which is its order but for a replay.
    ordering = ["-pk"]

    @admin.display(description="Event date", ordering="pk")
    def when(self, obj):
        return obj.event_date
    search_fields = ["remote_action_id", "vin"]
    readonly_fields = [f.name for f in RemoteEvent._meta.fields]
    fleet_path = "action.vehicle.fleet"  # an event not matched to an action yet: superusers only


def _readable(event) -> str:
    """A refused event, indented; one kept as text (too big, or holding what no database stores) as that text."""
    if isinstance(event, str):
        return event
    try:
        return json.dumps(event, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return repr(event)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(HistoryAdmin, Undeletable, ScopedAdmin):
    """The raw inbox: what Stellantis sent, what we made of it, and a safe replay."""

    list_display = ["pk", "received_at", "callback", "outcome", "event_count", "refused", "remote_addr"]
    list_filter = ["outcome", "callback", ("received_at", admin.DateFieldListFilter)]
    list_select_related = ["callback"]
    list_defer = ("body", "headers", "query", "error")  # the raw body may be 100 events: read on its own page only
    readonly_fields = [
        "received_at", "callback", "remote_addr", "outcome", "error", "event_count", "refused_events", "headers", "query", "pretty_body",
        "linked_actions", "reviewed_at",
    ]
    exclude = ["body", "bad_events"]
    actions = ["replay", "mark_reviewed"]
    fleet_path = "callback.fleet"  # a delivery no callback claimed: superusers only

    def has_replay_permission(self, request):
        return may_somewhere(request, CALLBACKS)

    @admin.display(description="Body")
    def pretty_body(self, obj):
        try:
            text = json.dumps(json.loads(obj.body), indent=2)
        except ValueError:
            text = obj.body
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    @admin.display(description="Refused")
    def refused(self, obj):
        return len(obj.bad_events) if isinstance(obj.bad_events, list) else "?"

    @admin.display(description="Refused events")
    def refused_events(self, obj):
        """The events of this delivery we could not read (the others were applied): where, why, what."""
        bad = [b for b in obj.bad_events if isinstance(b, dict)] if isinstance(obj.bad_events, list) else []
        if not bad:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>events[{}]</td><td>{}</td><td><pre style='white-space:pre-wrap;margin:0'>{}</pre></td></tr>",
            ((b.get("index"), b.get("error"), _readable(b.get("event"))) for b in bad),
        )
        return format_html("<table><thead><tr><th>Event</th><th>Why it was refused</th><th>As sent</th></tr></thead><tbody>{}</tbody></table>", rows)

    @admin.display(description="Actions")
    def linked_actions(self, obj):
        # Only actions sent through this delivery's callback take its events (events.py): its fleet's.
        actions = {e.action for e in obj.events.select_related("action__vehicle") if e.action_id}
        return format_html_join(", ", '<a href="{}">{}</a>', ((reverse("admin:remotes_remoteaction_change", args=[a.pk]), str(a)) for a in actions)) or "—"

    @admin.action(description="Replay (re-process; known events are skipped)", permissions=["replay"])
    def replay(self, request, queryset):
        # defer(None): the list's queryset leaves the body out, and a replay reads it.
        for delivery in self.allowed(request, queryset.defer(None).select_related("callback__fleet"), CALLBACKS, "Replay"):
            receipt = inbox.replay_delivery(delivery=delivery, by=request.user)
            self.message_user(request, f"Delivery {delivery.pk}: {receipt.events} event(s), {receipt.new_events} new — {WebhookDelivery.Outcome(receipt.outcome).label}.", messages.SUCCESS)

    @admin.action(description="Mark reviewed (retention may then prune it)", permissions=["replay"])
    def mark_reviewed(self, request, queryset):
        # Flagged deliveries are kept until someone has looked at them (ops.retention).
        deliveries = self.allowed(request, queryset.select_related("callback__fleet"), CALLBACKS, "Mark reviewed")
        marked = 0
        with transaction.atomic():
            for delivery in deliveries:
                # Conditional: a delivery already reviewed (or not flagged) keeps its first review.
                if WebhookDelivery.objects.filter(pk=delivery.pk, outcome__in=FLAGGED_OUTCOMES, reviewed_at__isnull=True).update(
                    reviewed_at=timezone.now()
                ):
                    audit.record(
                        "delivery.reviewed", actor=request.user, obj=delivery,
                        organisation=delivery.callback.fleet.organisation_id if delivery.callback else None,
                    )
                    marked += 1
        if deliveries:
            self.message_user(request, f"{marked} flagged delivery(ies) marked reviewed; {len(deliveries) - marked} needed no review.", messages.SUCCESS)
