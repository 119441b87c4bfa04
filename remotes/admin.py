from django.contrib import admin

from .models import ActionStep, RemoteAction, RemoteEvent


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


@admin.register(RemoteAction)
class RemoteActionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "vehicle", "remote_type", "status", "pending_status", "failure_cause", "source", "requested_by"]
    list_filter = ["status", "remote_type", "source", "failure_cause"]
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
