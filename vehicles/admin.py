import json

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.access import CALLBACKS, COMMAND, DANGEROUS, MANAGE
from accounts.scoped_admin import ScopedAdmin, may_somewhere
from bulk import services as bulk_services
from callbacks import services as callback_services
from core.errors import ServiceError
from ops import personal_data
from remotes.forms import FORMS
from remotes.models import Source

from . import services
from .models import Fleet, Vehicle


@admin.register(Fleet)
class FleetAdmin(ScopedAdmin):
    # Read-only but for superusers, who also give an imported fleet (of no organisation) to one.
    list_display = ["name", "organisation", "external_id", "vehicle_count", "last_synced_at", "import_status"]
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

    @admin.display(description="Last import")
    def import_status(self, obj):
        """The background import's progress (services.import_progress): running, done or failed."""
        progress = services.import_progress(obj)
        if not progress:
            return "—"
        if progress["state"] == "running":
            total = progress.get("total")
            return f"Running: {progress['done']} of {total} vehicles read" if total is not None else "Running: reading the vehicle list"
        return f"{progress['state'].capitalize()} {progress['finished_at'][:16].replace('T', ' ')} UTC: {progress['message']}"

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "import_status"]

    @admin.action(description="Import vehicles from Stellantis (in the background)", permissions=["import"])
    def import_vehicles(self, request, queryset):
        # In the background, in slices (services.import_fleet_slice): 9,000 vehicles took 85 s in the request.
        for fleet in self.allowed(request, queryset, CALLBACKS, "Import"):
            if services.start_fleet_import(fleet=fleet):
                self.message_user(request, f"{fleet}: import started in the background; its progress shows under Last import (reload).", messages.SUCCESS)
            else:
                self.message_user(request, f"{fleet}: an import is already running; its progress shows under Last import.", messages.WARNING)

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
        count = queryset.count()
        # "Select all N" is carried as select_across (the admin then takes the changelist's
        # whole filtered queryset again), not as one hidden field per vehicle: the ids of the
        # page alone sent the command to those only, and thousands of fields are refused.
        select_across = request.POST.get("select_across") == "1"
        return TemplateResponse(
            request,
            "admin/vehicles/remote_params.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{form.title} — {count} vehicle(s)",
                "form": form,
                "vehicles": queryset[:12],
                "count": count,
                "select_across": select_across,
                "action": request.POST.get("action"),
                "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)[:1] if select_across
                else request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                "opts": modeladmin.model._meta,
            },
        )
    # One bulk request per organisation (a superuser's selection may span several), created in a
    # short request whatever the size: expansion, the per-vehicle checks and sending happen in
    # the background (bulk.services), followed on the bulk request's progress page.
    by_org: dict = {}
    for vin, org in queryset.order_by("pk").values_list("vin", "fleet__organisation_id"):
        by_org.setdefault(org, []).append(vin)
    created = []
    for org, vins in by_org.items():
        if org is None:
            modeladmin.message_user(request, f"{form.title}: {len(vins)} vehicle(s) of fleets of no organisation skipped.", messages.WARNING)
            continue
        try:
            draft = bulk_services.draft(
                by=request.user, command=form.command, selection="vins", vins=vins, reason=form.cleaned_data.get("reason", "")
            )
            created.append(bulk_services.create_bulk(by=request.user, draft=draft, source=Source.ADMIN))
        except ServiceError as exc:
            modeladmin.message_user(request, f"{form.title}: {exc.message}", messages.ERROR)
    for bulk in created:
        modeladmin.message_user(
            request, f"{form.title}: one bulk request for {bulk.total} vehicle(s) is being sent in the background; "
            "its page shows the progress, each vehicle's outcome and the refusals.", messages.SUCCESS,
        )
    if created:
        return HttpResponseRedirect(reverse("bulk-detail", args=[created[0].pk]))
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
        "export_personal_data",
        "erase_personal_data",
    ]

    # An action is listed when the user's role allows it in one of their fleets at least;
    # `request_remote` still refuses it vehicle by vehicle (a member may read one fleet and
    # command another), and each refusal is told.
    def has_request_remote_permission(self, request):
        return may_somewhere(request, COMMAND)

    def has_request_dangerous_remote_permission(self, request):
        return may_somewhere(request, DANGEROUS)

    # Personal data (ops.personal_data): superusers and organisation admins (`manage`), each
    # vehicle checked again; every export and erasure leaves an audit entry.
    def has_personal_data_permission(self, request):
        return may_somewhere(request, MANAGE)

    @admin.action(description="Export personal data (JSON)", permissions=["personal_data"])
    def export_personal_data(self, request, queryset):
        vehicles = self.allowed(request, queryset.select_related("fleet"), MANAGE, "Export")
        if not vehicles:
            return None
        data = [personal_data.export_vehicle(vehicle=v, by=request.user) for v in vehicles]
        name = f"personal-data-{vehicles[0].vin}.json" if len(vehicles) == 1 else f"personal-data-{len(vehicles)}-vehicles.json"
        response = HttpResponse(
            json.dumps(data[0] if len(data) == 1 else {"vehicles": data}, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description="Erase personal data… (asks for confirmation)", permissions=["personal_data"])
    def erase_personal_data(self, request, queryset):
        vehicles = self.allowed(request, queryset.select_related("fleet"), MANAGE, "Erase")
        if not vehicles:
            return None
        if not request.POST.get("confirm"):
            return TemplateResponse(
                request,
                "admin/vehicles/erase_personal_data.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"Erase the personal data of {len(vehicles)} vehicle(s)?",
                    "vehicles": vehicles,
                    "action": request.POST.get("action"),
                    "selected": [v.pk for v in vehicles],
                    "opts": self.model._meta,
                },
            )
        reason = request.POST.get("reason", "")
        for vehicle in vehicles:
            result = personal_data.erase_vehicle(vehicle=vehicle, by=request.user, reason=reason)
            self.message_user(
                request,
                f"{vehicle.vin}: status snapshot {'erased' if result['snapshots'] else 'absent'}, "
                f"{result['destinations']} navigation destination(s) erased.",
                messages.SUCCESS,
            )
            if result["open_navigation_left"]:
                self.message_user(
                    request,
                    f"{vehicle.vin}: {result['open_navigation_left']} navigation command(s) still in progress were left; erase again once they finish.",
                    messages.WARNING,
                )
        return None
