from django.contrib import admin, messages
from django.template.response import TemplateResponse

from remotes import services as remote_services
from remotes.models import Source
from stellantis.errors import StellantisError

from . import services
from .models import Fleet, Vehicle


@admin.register(Fleet)
class FleetAdmin(admin.ModelAdmin):
    list_display = ["name", "external_id", "vehicle_count", "last_synced_at"]
    search_fields = ["name", "external_id"]
    actions = ["import_vehicles", "import_callbacks"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_vehicles=Count("vehicles"))

    @admin.display(description="Vehicles", ordering="_vehicles")
    def vehicle_count(self, obj):
        return obj._vehicles

    @admin.action(description="Import vehicles from Stellantis")
    def import_vehicles(self, request, queryset):
        for fleet in queryset:
            try:
                result = services.import_fleet(fleet_id=fleet.external_id)
            except StellantisError as exc:
                self.message_user(request, f"{fleet}: import failed, nothing changed — {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{fleet}: {result.created} new, {result.updated} refreshed vehicles.", messages.SUCCESS)


    @admin.action(description="Import callbacks from Stellantis")
    def import_callbacks(self, request, queryset):
        from callbacks.services import CallbackSyncError, import_callbacks

        for fleet in queryset:
            try:
                result = import_callbacks(fleet=fleet)
            except CallbackSyncError as exc:
                self.message_user(request, f"{fleet}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"{fleet}: {result.created} new, {result.updated} refreshed callbacks.", messages.SUCCESS)
            if result.without_secret:
                self.message_user(request, f"{fleet}: {result.without_secret} callback(s) lack our webhook secret; rotate it.", messages.WARNING)


def _bulk_remote(modeladmin, request, queryset, command: dict, title: str, confirm: bool):
    """Send one command to each selected vehicle: a service call per vehicle, then a message."""
    if confirm and request.POST.get("confirm") != "yes":
        return TemplateResponse(
            request,
            "admin/vehicles/confirm_remote.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{title}?",
                "vehicles": queryset,
                "action": request.POST.get("action"),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "opts": modeladmin.model._meta,
            },
        )
    sent, refused = 0, {}
    for vehicle in queryset.select_related("fleet"):
        try:
            remote_services.request_remote(vehicle=vehicle, command=command, by=request.user, source=Source.ADMIN, reason=request.POST.get("reason", ""))
            sent += 1
        except remote_services.RemoteRequestError as exc:
            refused.setdefault(exc.message, []).append(vehicle.vin)
    if sent:
        modeladmin.message_user(request, f"{title}: queued for {sent} vehicle(s). Follow them under Remote actions.", messages.SUCCESS)
    for reason, vins in refused.items():
        modeladmin.message_user(request, f"{title} refused for {', '.join(vins[:10])}{'…' if len(vins) > 10 else ''}: {reason}", messages.ERROR)
    return None


@admin.register(Vehicle)
class VehicleAdmin(admin.ModelAdmin):
    list_display = ["vin", "brand", "motorization", "fleet", "external_id"]
    list_filter = ["fleet", "brand", "motorization"]
    search_fields = ["vin", "external_id"]
    list_select_related = ["fleet"]
    actions = ["sound_horn", "lock_doors", "unlock_doors"]

    @admin.action(description="Sound the horn", permissions=["request_remote"])
    def sound_horn(self, request, queryset):
        return _bulk_remote(self, request, queryset, {"horn": {"state": "Activated"}}, "Sound the horn", confirm=False)

    @admin.action(description="Lock the doors", permissions=["request_remote"])
    def lock_doors(self, request, queryset):
        return _bulk_remote(self, request, queryset, {"door": {"state": "Locked"}}, "Lock the doors", confirm=False)

    @admin.action(description="Unlock the doors (asks for confirmation)", permissions=["request_dangerous_remote"])
    def unlock_doors(self, request, queryset):
        return _bulk_remote(self, request, queryset, {"door": {"state": "Unlocked"}}, "Unlock the doors", confirm=True)

    def has_request_remote_permission(self, request):
        return request.user.has_perm("remotes.request_remote")

    def has_request_dangerous_remote_permission(self, request):
        return request.user.has_perm("remotes.request_dangerous_remote")
