import datetime as dt

from django.conf import settings
from django.contrib import admin
from django.utils import timezone

from .models import ActionStatus, ActionStep, RemoteAction, RemoteEvent


class StepInline(admin.TabularInline):
    model = ActionStep
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status", "detail"]


class EventInline(admin.TabularInline):
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


@admin.register(RemoteAction)
class RemoteActionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "vehicle", "remote_type", "status", "pending_status", "failure_cause", "source", "requested_by"]
    list_filter = [StuckFilter, "status", "remote_type", "source", "failure_cause"]
    search_fields = ["vehicle__vin", "remote_action_id", "id"]
    list_select_related = ["vehicle", "requested_by"]
    date_hierarchy = "created_at"
    inlines = [StepInline, EventInline]
    readonly_fields = [f.name for f in RemoteAction._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RemoteEvent)
class RemoteEventAdmin(admin.ModelAdmin):
    list_display = ["event_date", "remote_action_id", "event_type", "status", "failure_cause", "action"]
    list_filter = ["event_type", "status"]
    search_fields = ["remote_action_id", "vin"]
    readonly_fields = [f.name for f in RemoteEvent._meta.fields]
