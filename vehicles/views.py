from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from remotes import services as remote_services
from remotes.capabilities import all_availability, availability
from remotes.forms import FORMS
from remotes.models import RemoteAction, Source

from .models import Fleet, Vehicle

# One-click commands on the vehicle page: (label, member, form data). The rest open their form.
QUICK = [
    ("Sound horn", "horn", {}),
    ("Lock doors", "door", {"state": "Locked"}),
    ("Flash lights", "lights", {"on": "1"}),
    ("Refresh state", "wakeUp", {}),
]


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
        {"page": page, "q": q, "fleets": Fleet.objects.visible_to(request.user), "fleet": fleet},
    )


@login_required
def vehicle_detail(request, vin):
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet", "status_snapshot"), vin=vin)
    actions = vehicle.remote_actions.select_related("requested_by").order_by("-created_at")[:15]
    features = {a.feature.member: a for a in all_availability(vehicle)}
    quick = [(label, member, data, features[member]) for label, member, data in QUICK]
    return render(
        request,
        "vehicles/vehicle_detail.html",
        {
            "vehicle": vehicle,
            "actions": actions,
            "quick": quick,
            "features": features.values(),
            "callbacks": list(vehicle.fleet.callbacks.visible_to(request.user).live()),
            "snapshot": getattr(vehicle, "status_snapshot", None),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def vehicle_remote(request, vin, member):
    """A feature's form: GET shows it (fields pre-filled from the query), POST sends the command."""
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet"), vin=vin)
    if member not in FORMS:
        raise Http404("Unknown remote feature")
    verdict = availability(vehicle, member)
    form = FORMS[member](request.POST if request.method == "POST" else None, initial=request.GET.dict())
    if request.method == "POST" and verdict.available and form.is_valid():
        try:
            action = remote_services.request_remote(
                vehicle=vehicle, command=form.command, by=request.user, source=Source.WEB, reason=form.cleaned_data.get("reason", "")
            )
        except remote_services.NoCallbackForType as exc:
            create = reverse("callback-create") + f"?fleet={vehicle.fleet.external_id}&remote_type={exc.remote_type}"
            messages.error(request, format_html('{} <a href="{}">Create a callback serving {}</a>.', exc.message, create, exc.remote_type))
            return redirect("vehicle-detail", vin=vin)
        except remote_services.RemoteRequestError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{form.title}: queued for {vehicle.vin}.")
            return redirect("action-detail", pk=action.pk)
    return render(request, "vehicles/remote_form.html", {"vehicle": vehicle, "form": form, "member": member, "verdict": verdict})
