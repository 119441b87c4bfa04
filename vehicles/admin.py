from django.contrib import admin, messages
from django.db.models import Count
from django.template.response import TemplateResponse

from accounts.access import CALLBACKS, COMMAND, DANGEROUS
from accounts.scoped_admin import ScopedAdmin, may_somewhere
from callbacks import services as callback_services
from remotes import services as remote_services
from remotes.forms import FORMS
from remotes.models import ActionStatus, Source
from stellantis.errors import StellantisError

from . import services
from .models import Fleet, Vehicle


@admin.register(Fleet)
class FleetAdmin(ScopedAdmin):
    # Read-only but for superusers, who also give an imported fleet (of no organisation) to one.
    list_display = ["name", "organisation", "external_id", "vehicle_count", "last_synced_at"]
    list_filter = ["organisation"]
    list_select_related = ["organisation"]
    search_fields = ["name", "external_id"]
    ordering = ["name"]
    actions = ["import_vehicles", "import_callbacks"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_vehicles=Count("vehicles"))

    def get_list_filter(self, request):
        # A member's fleets are of one or two organisations they know: no filter needed.
        return super().get_list_filter(request) if request.user.is_superuser else []

    def has_import_permission(self, request):
        return may_somewhere(request, CALLBACKS)

    @admin.display(description="Vehicles", ordering="_vehicles")
    def vehicle_count(self, obj):
        return obj._vehicles

    @admin.action(description="Import vehicles from Stellantis", permissions=["import"])
    def import_vehicles(self, request, queryset):
        for fleet in self.allowed(request, queryset, CALLBACKS, "Import"):
            try:
                result = services.import_fleet(fleet_id=fleet.external_id)
            except StellantisError as exc:
                self.message_user(request, f"{fleet}: import failed, nothing changed — {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{fleet}: {result.created} new, {result.updated} refreshed vehicles.", messages.SUCCESS)

    @admin.action(description="Import callbacks from Stellantis", permissions=["import"])
    def import_callbacks(self, request, queryset):
        for fleet in self.allowed(request, queryset, CALLBACKS, "Import"):
            try:
                result = callback_services.import_callbacks(fleet=fleet, by=request.user)
            except callback_services.CallbackSyncError as exc:
                self.message_user(request, f"{fleet}: {exc.message}", messages.ERROR)
                continue
            self.message_user(request, f"{fleet}: {result.created} new, {result.updated} refreshed callbacks.", messages.SUCCESS)
            if result.without_secret:
                self.message_user(request, f"{fleet}: {result.without_secret} callback(s) lack our webhook secret; rotate it.", messages.WARNING)


def _bulk_feature(modeladmin, request, queryset, member: str, preset: dict | None = None):
    """Send one feature's command to each selected vehicle.

    Commands with parameters (and dangerous ones) first show an intermediate page with the
    feature's form; then one service call per vehicle, and one message per outcome.
    """
    form_class = FORMS[member]
    if preset is not None:
        form = form_class({**preset, "confirm": request.POST.get("confirm"), "reason": request.POST.get("reason", "")})
    elif request.POST.get("apply"):
        form = form_class(request.POST)
    else:
        form = form_class(initial=request.GET.dict())
    if not form.is_bound or not form.is_valid():
        return TemplateResponse(
            request,
            "admin/vehicles/remote_params.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{form.title} — {queryset.count()} vehicle(s)",
                "form": form,
                "vehicles": queryset,
                "action": request.POST.get("action"),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "opts": modeladmin.model._meta,
            },
        )
    sent, waiting, refused = 0, 0, {}
    for vehicle in queryset.select_related("fleet"):
        try:
            action = remote_services.request_remote(
                vehicle=vehicle, command=form.command, by=request.user, source=Source.ADMIN, reason=form.cleaned_data.get("reason", "")
            )
            sent += 1
            waiting += action.status == ActionStatus.AWAITING_APPROVAL
        except remote_services.RemoteRequestError as exc:
            refused.setdefault(exc.message, []).append(vehicle.vin)
    if sent - waiting:
        modeladmin.message_user(request, f"{form.title}: queued for {sent - waiting} vehicle(s). Follow them under Remote actions.", messages.SUCCESS)
    if waiting:
        modeladmin.message_user(
            request, f"{form.title}: {waiting} command(s) wait for another approver (four-eyes); nothing is sent before.", messages.WARNING
        )
    for reason, vins in refused.items():
        modeladmin.message_user(request, f"{form.title} refused for {', '.join(vins[:10])}{'…' if len(vins) > 10 else ''}: {reason}", messages.ERROR)
    return None


def _action(member: str, description: str, preset: dict | None = None, permission: str = "request_remote"):
    """A bulk action sending `member`'s command; `permission` names the `has_<permission>_permission` that shows it."""
    @admin.action(description=description, permissions=[permission])
    def run(modeladmin, request, queryset):
        return _bulk_feature(modeladmin, request, queryset, member, preset)

    suffix = "_form" if preset is None else "".join(f"_{v}".lower() for v in preset.values())
    run.__name__ = f"remote_{member}{suffix}"  # the admin tells actions apart by name
    return run


@admin.register(Vehicle)
class VehicleAdmin(ScopedAdmin):
    list_display = ["vin", "brand", "motorization", "fleet", "external_id"]
    list_filter = ["fleet", "brand", "motorization"]
    search_fields = ["vin", "external_id"]
    list_select_related = ["fleet"]
    fleet_path = "fleet"
    actions = [
        _action("horn", "Sound the horn", preset={}),
        _action("door", "Lock the doors", preset={"state": "Locked"}),
        _action("door", "Unlock the doors (asks for confirmation)", preset={"state": "Unlocked"}, permission="request_dangerous_remote"),
        _action("lights", "Lights…"),
        _action("wakeUp", "Refresh the state", preset={}),
        _action("charging", "Charging…"),
        _action("preconditioning", "Preconditioning…"),
        _action("navigation", "Send a route…"),
        _action("immobilization", "Immobilization… (asks for confirmation)", permission="request_dangerous_remote"),
        _action("stolen", "Stolen vehicle… (asks for confirmation)", permission="request_dangerous_remote"),
    ]

    # An action is listed when the user's role allows it in one of their fleets at least;
    # `request_remote` still refuses it vehicle by vehicle (a member may read one fleet and
    # command another), and each refusal is told.
    def has_request_remote_permission(self, request):
        return may_somewhere(request, COMMAND)

    def has_request_dangerous_remote_permission(self, request):
        return may_somewhere(request, DANGEROUS)
