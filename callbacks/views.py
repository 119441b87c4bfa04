from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import access
from remotes import health
from stellantis.vocabulary import CallbackStatus, RemoteType
from vehicles.models import Fleet

from . import services
from .forms import CallbackForm
from .models import Callback

# --- callback pages ----------------------------------------------------------------------


def _sync_form(request, form, sync, done: str):
    """Run a create/update sync; a refusal becomes a form error, success a redirect."""
    try:
        callback = sync()
    except services.CallbackSyncError as exc:
        form.add_error(None, exc.message)
        return None
    for warning in form.warnings():
        messages.warning(request, warning)
    messages.success(request, f"Callback {callback} {done} ({callback.external_id}).")
    return redirect("callback-list")


@login_required
def callback_list(request):
    callbacks = list(Callback.objects.visible_to(request.user).live().select_related("fleet").order_by("fleet__name", "created_at"))
    # Stellantis turns a callback Failed on its own; the status is read back every 5 minutes.
    failed = [str(cb) for cb in callbacks if cb.status == CallbackStatus.FAILED]
    # Is Stellantis still telling us what became of the commands? (a constant few queries)
    figures = health.for_callbacks(callbacks)
    for cb in callbacks:
        cb.health = figures[cb.pk]
    quiet = [str(cb) for cb in callbacks if cb.health.quiet]
    context = {"callbacks": callbacks, "fleets": _managed_fleets(request), "failed": failed, "quiet": quiet}
    return render(request, "callbacks/callback_list.html", context)


def _callback(request, pk, ability=access.CALLBACKS) -> Callback:
    """A live callback the user can see (else 404) and may manage (else 403)."""
    callback = get_object_or_404(Callback.objects.visible_to(request.user).live().select_related("fleet"), pk=pk)
    access.require(request.user, ability, callback.fleet)
    return callback


def _managed_fleets(request):
    visible = Fleet.objects.visible_to(request.user)
    return [f for f in visible if access.access_of(request.user).may(access.CALLBACKS, f)]


@login_required
def callback_create(request):
    fleet_id = request.GET.get("fleet") or request.POST.get("fleet")
    fleets = _managed_fleets(request)
    if fleet_id:
        fleet = get_object_or_404(Fleet.objects.visible_to(request.user), external_id=fleet_id)
        access.require(request.user, access.CALLBACKS, fleet)
    elif fleets:
        fleet = fleets[0]
    else:
        messages.error(request, "No fleet of yours takes a callback from you: a callback belongs to a fleet, and managing callbacks needs the organisation admin role.")
        return redirect("callback-list")
    remote_type = request.GET.get("remote_type")
    initial = {"target": services.default_webhook_target(), "remote_types": [remote_type] if remote_type in RemoteType.values else RemoteType.values}
    form = CallbackForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = _sync_form(request, form, lambda: services.create_callback(fleet=fleet, **form.cleaned_data, by=request.user), "created at Stellantis")
        if saved:
            return saved
    return render(request, "callbacks/callback_form.html", {"form": form, "fleet": fleet, "fleets": fleets, "callback": None})


@login_required
def callback_edit(request, pk):
    callback = _callback(request, pk)
    form = CallbackForm(request.POST or None, initial=CallbackForm.initial_from(callback))
    if request.method == "POST" and form.is_valid():
        saved = _sync_form(request, form, lambda: services.update_callback(callback=callback, changes=form.cleaned_data, by=request.user), "updated at Stellantis")
        if saved:
            return saved
    return render(request, "callbacks/callback_form.html", {"form": form, "fleet": callback.fleet, "callback": callback})


def _run(request, what, call):
    try:
        call()
    except services.CallbackSyncError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, what)
    return redirect("callback-list")


@login_required
@require_POST
def callback_status(request, pk):
    callback = _callback(request, pk)
    new = CallbackStatus.PAUSED if request.POST.get("status") == CallbackStatus.PAUSED else CallbackStatus.RUNNING
    return _run(request, f"{callback}: {new}.", lambda: services.set_callback_status(callback=callback, status=new, by=request.user))


@login_required
def callback_delete(request, pk):
    callback = _callback(request, pk)
    if request.method != "POST":
        return render(request, "callbacks/callback_delete.html", {"callback": callback, "pending": services.pending_action_count(callback)})
    return _run(request, f"{callback} deleted at Stellantis.", lambda: services.delete_callback(callback=callback, by=request.user))


@login_required
@require_POST
def callback_rotate(request, pk):
    callback = _callback(request, pk)
    return _run(request, f"{callback}: new webhook secret accepted by Stellantis; the old one stays valid 3 days.", lambda: services.rotate_secret(callback=callback, by=request.user))


@login_required
def callback_check(request, pk):
    callback = _callback(request, pk, access.READ)
    try:
        differences = services.compare_with_vendor(callback=callback)
        error = ""
    except services.CallbackSyncError as exc:
        differences, error = None, exc.message
    return render(request, "callbacks/callback_check.html", {"callback": callback, "differences": differences, "error": error})


@login_required
@require_POST
def callback_import(request):
    fleet = get_object_or_404(Fleet.objects.visible_to(request.user), external_id=request.POST.get("fleet"))
    access.require(request.user, access.CALLBACKS, fleet)
    try:
        result = services.import_callbacks(fleet=fleet, by=request.user)
    except services.CallbackSyncError as exc:
        messages.error(request, exc.message)
        return redirect("callback-list")
    messages.success(request, f"{fleet}: {result.created} new, {result.updated} refreshed callbacks.")
    if result.without_secret:
        messages.warning(request, f"{result.without_secret} callback(s) do not carry this portal's webhook secret: rotate their secret so our webhook accepts their notifications.")
    return redirect("callback-list")
