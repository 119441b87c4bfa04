"""Admin for the simulator's world, so a demo can put a vehicle to sleep, offline, open a door, spend its wake-ups…"""

from django.conf import settings
from django.contrib import admin, messages
from django.utils import timezone

from stellantis.vocabulary import CallbackStatus

from . import demo, pump, vendor
from .models import SimCallback, SimEvent, SimFleet, SimNotification, SimPumpLease, SimRemoteAction, SimVehicle


class SuperuserOnly:
    """The simulator is the vendor's world, of every organisation at once: superusers only.

    Staff members of an organisation use the admin too; Django's model permissions must not
    open this to them (the simulator knows nothing of organisations, it may not import them)."""

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):  # inlines pass the parent object too
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(SimFleet)
class SimFleetAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["name", "id", "seed", "created_at"]
    search_fields = ["name", "id"]
    readonly_fields = ["id"]


def _vehicle_action(description: str, **changes):
    def action(modeladmin, request, queryset):
        count = demo.set_vehicles_state(vehicle_ids=list(queryset.values_list("pk", flat=True)), **changes)
        modeladmin.message_user(request, f"{count} vehicle(s): {description.lower()}.", messages.SUCCESS)

    action.__name__ = "set_" + "_".join(f"{k}_{v}" for k, v in changes.items()).lower()
    return admin.action(description=description)(action)


@admin.register(SimVehicle)
class SimVehicleAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = [
        "vin",
        "brand",
        "motorization",
        "fleet",
        "asleep",
        "awake_until",
        "online",
        "remote_subscribed",
        "doors_locked",
        "door_open",
        "in_use",
        "stolen",
        "immobilized",
        "plugged",
        "charging",
        "energy_level",
        "wake_ups_used",
        "wake_up_budget",
        "next_failure",
        "last_driven_at",
    ]
    # What a demo flips to show a failure (see the help text of each field for the one it causes).
    list_editable = [
        "asleep",
        "online",
        "remote_subscribed",
        "doors_locked",
        "door_open",
        "in_use",
        "stolen",
        "immobilized",
        "plugged",
        "charging",
        "energy_level",
        "wake_ups_used",
        "wake_up_budget",
        "next_failure",
    ]
    list_filter = [
        "fleet",
        "brand",
        "motorization",
        "asleep",
        "online",
        "remote_subscribed",
        "doors_locked",
        "door_open",
        "in_use",
        "stolen",
        "immobilized",
        "plugged",
        "charging",
        "next_failure",
    ]
    search_fields = ["vin", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "fleet", "vin", "brand", "motorization", "created_at", "updated_at"]}),
        (
            "Demo: force the next failure",
            {
                "fields": ["next_failure"],
                "description": "Pick a cause: the next command to this vehicle goes through the Pending steps a "
                "real vehicle shows first and ends Failed with it, whatever the vehicle's state; then the "
                "choice is cleared. Most causes also happen for real: see the help text of each trait below.",
            },
        ),
        ("Connectivity", {"fields": ["online", "asleep", "awake_until", "last_driven_at", "remote_subscribed"]}),
        ("Wake-ups this month", {"fields": ["wake_up_budget", "wake_ups_used", "wake_up_month"]}),
        ("Body", {"fields": ["doors_locked", "door_open", "in_use", "lights_on", "longitude", "latitude"]}),
        ("Theft", {"fields": ["stolen", "stolen_since", "immobilized", "tracking_running", "tracking_shutdown"]}),
        (
            "Energy",
            {
                "fields": [
                    "energy_level",
                    "autonomy_km",
                    "plugged",
                    "charging",
                    "next_delayed_charge",
                    "charge_programs",
                    "charge_preferences",
                    "preconditioning_on",
                    "preconditioning_programs",
                ]
            },
        ),
        ("Navigation", {"fields": ["navigation_positions"]}),
    ]
    actions = [
        _vehicle_action("Put to sleep", asleep=True, awake_until=None),
        _vehicle_action("Keep awake", asleep=False),
        _vehicle_action("Take offline (out of coverage)", online=False),
        _vehicle_action("Bring back online", online=True),
        _vehicle_action("Lock doors", doors_locked=True),
        _vehicle_action("Unlock doors", doors_locked=False),
        "reset_wake_ups",
        "clear_next_failure",
    ]

    @admin.action(description="Reset the monthly wake-up counter")
    def reset_wake_ups(self, request, queryset):
        count = demo.reset_wake_ups(vehicle_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} vehicle(s): wake-up budget available again.", messages.SUCCESS)

    @admin.action(description="Clear the forced next failure")
    def clear_next_failure(self, request, queryset):
        count = queryset.exclude(next_failure="").update(next_failure="", updated_at=timezone.now())
        self.message_user(request, f"{count} vehicle(s): the next command follows the vehicle's state again.")


@admin.register(SimCallback)
class SimCallbackAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "fleet", "__str__", "status", "created_at"]
    list_filter = ["status", "fleet"]
    search_fields = ["id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    actions = ["pause", "resume", "mark_failed"]

    def _set(self, request, queryset, status):
        for callback in queryset:
            vendor.change_callback_status(callback=callback, status=status)
        self.message_user(request, f"{queryset.count()} callback(s) now {status}.", messages.SUCCESS)

    @admin.action(description="Pause (post nothing)")
    def pause(self, request, queryset):
        self._set(request, queryset, CallbackStatus.PAUSED)

    @admin.action(description="Resume (Running)")
    def resume(self, request, queryset):
        self._set(request, queryset, CallbackStatus.RUNNING)

    @admin.action(description="Mark Failed")
    def mark_failed(self, request, queryset):
        self._set(request, queryset, CallbackStatus.FAILED)


class SimEventInline(SuperuserOnly, admin.TabularInline):
    model = SimEvent
    extra = 0
    can_delete = False
    fields = ["seq", "event_type", "status", "failure_cause", "feedback_detail", "effects", "due_at", "raised_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SimRemoteAction)
class SimRemoteActionAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "remote_type", "vehicle", "status", "failure_cause", "created_at"]
    list_filter = ["status", "remote_type", "fleet"]
    search_fields = ["id", "vehicle__vin"]
    readonly_fields = ["id", "fleet", "vehicle", "callback", "remote", "remote_type", "created_at", "updated_at"]
    inlines = [SimEventInline]


@admin.register(SimNotification)
class SimNotificationAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "callback", "event", "state", "attempts", "next_attempt_at", "delivered_at", "last_error"]
    list_filter = ["state", "callback"]
    list_select_related = ["callback", "event"]
    readonly_fields = ["callback", "event", "created_at", "delivered_at"]
    actions = ["retry_now"]

    @admin.action(description="Send again now")
    def retry_now(self, request, queryset):
        count = pump.retry_notifications(notification_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)


@admin.register(SimPumpLease)
class SimPumpLeaseAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["id", "holder", "leased_until"]
    readonly_fields = ["id", "holder", "leased_until"]

    def has_add_permission(self, request):
        return False


# Mounted only when the simulator is (settings.SIMULATOR_ENABLED): a production start shows
# no simulator section, nor its demo controls, in the admin.
if not settings.SIMULATOR_ENABLED:
    for _model in (SimFleet, SimVehicle, SimCallback, SimRemoteAction, SimNotification, SimPumpLease):
        admin.site.unregister(_model)
