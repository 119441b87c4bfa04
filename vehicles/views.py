from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from accounts import access
from remotes import reachability
from remotes import services as remote_services
from remotes.capabilities import FEATURES, command_availability, theft_state
from remotes.forms import FORMS
from remotes.models import ActionStatus, RemoteAction, Source
from remotes.presentation import action_title, when
from stellantis.remotes import Command

from .models import Vehicle

# One-click commands on the vehicle page: (label, member, form data). The rest open their form.
QUICK = [
    ("Sound horn", "horn", {}),
    ("Lock doors", "door", {"state": "Locked"}),
    ("Flash lights", "lights", {"on": "1"}),
    ("Refresh state", "wakeUp", {}),
]


@dataclass(frozen=True)
class Offer:
    """One command the page offers: shown enabled only when the vehicle can and the user may."""

    label: str
    member: str
    data: dict
    allowed: bool
    reason: str  # why not: the vehicle's (capability) or the user's (role), else empty
    key: str  # data-remote / data-feature value the templates and tests rely on
    dangerous: bool  # asks for a confirmation

    @property
    def query(self) -> str:
        return urlencode(self.data)


def _offer(label, member, data, *, vehicle, user_access, key, theft=None) -> Offer:
    # The same rule the service enforces on POST (remotes.services.command_ability); what the
    # vehicle's state refuses now (stolen) is said here, before the vendor would refuse it.
    ability = remote_services.command_ability(Command(member, data))
    reason = command_availability(vehicle, member, theft).reason or user_access.why_not(ability, vehicle.fleet)
    return Offer(label, member, data, not reason, reason, key, ability == access.DANGEROUS)


def _offers(vehicle, user, theft=None) -> tuple[list[Offer], list[Offer]]:
    """The quick buttons and the features list, each entry with whether this user may send it.

    Doors have an ordinary part (lock, a quick button) and a dangerous one (unlock, its own
    entry in the list); immobilization and stolen are dangerous as a whole."""
    user_access = access.access_of(user)
    quick = [
        _offer(
            label, member, data, vehicle=vehicle, user_access=user_access, theft=theft,
            key=member + (f"-{data['state'].lower()}" if "state" in data else ""),
        )
        for label, member, data in QUICK
    ]
    features = [
        _offer("Unlock doors", "door", {"state": "Unlocked"}, vehicle=vehicle, user_access=user_access, key="door", theft=theft)
        if f.member == "door"
        else _offer(f.label, f.member, {}, vehicle=vehicle, user_access=user_access, key=f.member, theft=theft)
        for f in FEATURES
    ]
    return quick, features


@login_required
def vehicle_detail(request, vin):
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet", "status_snapshot"), vin=vin)
    actions = RemoteAction.objects.visible_to(request.user).filter(vehicle=vehicle).select_related("requested_by").order_by("-created_at")[:15]
    user_access = access.access_of(request.user)
    # A person who may not send any command (a viewer) gets no button at all, only why.
    read_only = user_access.why_not(access.COMMAND, vehicle.fleet)
    snapshot = getattr(vehicle, "status_snapshot", None)
    theft = theft_state(vehicle, snapshot)
    quick, features = ([], []) if read_only else _offers(vehicle, request.user, theft)
    return render(
        request,
        "vehicles/vehicle_detail.html",
        {
            "vehicle": vehicle,
            "actions": actions,
            "quick": quick,
            "features": features,
            "read_only": read_only,
            "may_manage_callbacks": user_access.may(access.CALLBACKS, vehicle.fleet),
            "callbacks": list(vehicle.fleet.callbacks.visible_to(request.user).live()),
            "snapshot": snapshot,
            "theft": theft,
            "reach": reachability.estimate(vehicle),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def vehicle_remote(request, vin, member):
    """A feature's form: GET shows it (fields pre-filled from the query), POST sends the command."""
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet__organisation", "status_snapshot"), vin=vin)
    if member not in FORMS:
        raise Http404("Unknown remote feature")
    theft = theft_state(vehicle, getattr(vehicle, "status_snapshot", None))
    verdict = command_availability(vehicle, member, theft)
    user_access = access.access_of(request.user)
    # Not a form that is refused once filled in: what the user may not send shows only why.
    # (The service checks again on POST; this only spares the user the form.)
    wanted = Command(member, (request.POST if request.method == "POST" else request.GET).dict())
    refused = user_access.why_not(remote_services.command_ability(wanted), vehicle.fleet)
    if refused:
        return _refused(request, vehicle, member, refused)
    form = FORMS[member](request.POST if request.method == "POST" else None, initial=request.GET.dict())
    unlock_refused = member == "door" and user_access.why_not(access.DANGEROUS, vehicle.fleet)
    if unlock_refused:
        # Lock is theirs to send, unlock is not: the form offers only what they may send.
        form.fields["state"].choices = [c for c in form.fields["state"].choices if c[0] != "Unlocked"]
    if request.method == "POST" and verdict.available and form.is_valid():
        try:
            action = remote_services.request_remote(
                vehicle=vehicle, command=form.command, by=request.user, source=Source.WEB, reason=form.cleaned_data.get("reason", "")
            )
        except remote_services.NoCallbackForType as exc:
            # The form again, as typed, with the way out: nothing is lost while a callback is made.
            create = reverse("callback-create") + f"?fleet={vehicle.fleet.external_id}&remote_type={exc.remote_type}"
            form.add_error(None, format_html('{} <a href="{}">Create a callback serving {}</a>.', exc.message, create, exc.remote_type))
        except remote_services.NotAllowed as exc:
            return _refused(request, vehicle, member, exc.message)
        except remote_services.InvalidCommand as exc:
            # The service's own check (a date gone past since the form was checked): on the field it names.
            for path, message in (exc.errors or {}).items():
                field = form.field_for_path.get(path)
                form.add_error(field if field in form.fields else None, f"{message} ({path})")
            if not exc.errors:
                form.add_error(None, exc.message)
        except remote_services.RemoteRequestError as exc:
            form.add_error(None, exc.message)
        else:
            if action.status == ActionStatus.AWAITING_APPROVAL:
                until = when(action.approval_expires_at)
                messages.success(
                    request, f"{action_title(action)} for {vehicle.vin}: nothing sent yet, it waits for another approver's approval (until {until})."
                )
            else:
                messages.success(request, f"{action_title(action)}: queued for {vehicle.vin}.")
            return redirect("action-detail", pk=action.pk)
    organisation = vehicle.fleet.organisation
    four_eyes = organisation is not None and organisation.needs_approval(member)
    context = {
        "vehicle": vehicle, "form": form, "member": member, "verdict": verdict, "unlock_refused": unlock_refused, "four_eyes": four_eyes,
        "theft": theft, "reach": reachability.estimate(vehicle),
    }
    return render(request, "vehicles/remote_form.html", context)


def _refused(request, vehicle, member, reason: str):
    """The form page of a command this user may not send: the reason, no fields, no submit (403)."""
    form = FORMS[member]()
    return render(request, "vehicles/remote_form.html", {"vehicle": vehicle, "form": form, "member": member, "refused": reason}, status=403)
