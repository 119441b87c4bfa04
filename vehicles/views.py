from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from remotes import services as remote_services
from remotes.models import RemoteAction, Source

from .models import Fleet, Vehicle

# The commands offered as buttons on a vehicle page (more arrive with the other features).
PRESETS = {
    "horn": {"label": "Sound horn", "command": {"horn": {"state": "Activated"}}, "confirm": False},
    "lock": {"label": "Lock doors", "command": {"door": {"state": "Locked"}}, "confirm": False},
    "unlock": {"label": "Unlock doors", "command": {"door": {"state": "Unlocked"}}, "confirm": True},
}


@login_required
def vehicle_list(request):
    latest = RemoteAction.objects.filter(vehicle=OuterRef("pk")).order_by("-created_at")
    vehicles = (
        Vehicle.objects.visible_to(request.user)
        .select_related("fleet")
        .annotate(last_action_status=Subquery(latest.values("status")[:1]), last_action_type=Subquery(latest.values("remote_type")[:1]))
    )
    q = request.GET.get("q", "").strip()
    if q:
        vehicles = vehicles.filter(Q(vin__icontains=q) | Q(brand__icontains=q))
    fleet = request.GET.get("fleet")
    if fleet:
        vehicles = vehicles.filter(fleet__external_id=fleet)
    page = Paginator(vehicles, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "vehicles/vehicle_list.html",
        {"page": page, "q": q, "fleets": Fleet.objects.all(), "fleet": fleet},
    )


@login_required
def vehicle_detail(request, vin):
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet"), vin=vin)
    actions = vehicle.remote_actions.select_related("requested_by").order_by("-created_at")[:15]
    callbacks = list(vehicle.fleet.callbacks.all())
    return render(
        request,
        "vehicles/vehicle_detail.html",
        {"vehicle": vehicle, "actions": actions, "presets": PRESETS, "callbacks": callbacks},
    )


@login_required
@require_http_methods(["GET", "POST"])
def vehicle_remote(request, vin, preset):
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet"), vin=vin)
    if preset not in PRESETS:
        messages.error(request, "Unknown command.")
        return redirect("vehicle-detail", vin=vin)
    spec = PRESETS[preset]
    if request.method == "GET" or (spec["confirm"] and request.POST.get("confirm") != "yes"):
        return render(request, "vehicles/confirm_remote.html", {"vehicle": vehicle, "preset": preset, "spec": spec})
    try:
        action = remote_services.request_remote(
            vehicle=vehicle, command=spec["command"], by=request.user, source=Source.WEB, reason=request.POST.get("reason", "")
        )
    except remote_services.NoCallbackForType as exc:
        create = reverse("callback-create") + f"?fleet={vehicle.fleet.external_id}&remote_type={exc.remote_type}"
        messages.error(request, format_html('{} <a href="{}">Create a callback serving {}</a>.', exc.message, create, exc.remote_type))
        return redirect("vehicle-detail", vin=vin)
    except remote_services.RemoteRequestError as exc:
        messages.error(request, exc.message)
        return redirect("vehicle-detail", vin=vin)
    messages.success(request, f"{spec['label']}: queued for {vehicle.vin}.")
    return redirect("action-detail", pk=action.pk)
