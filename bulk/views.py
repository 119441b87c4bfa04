"""Portal pages for bulk requests: new (choose, preview, send), the list, live progress."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from remotes.capabilities import FEATURES
from remotes.forms import FORMS
from remotes.models import Source
from vehicles.models import Fleet, Vehicle

from . import services
from .models import BulkRequest, BulkStatus, ItemState, Selection

ROWS = 100  # per page of the outcome table
LIST_ROWS = 50
# The vehicle list's own parameters that are no filter (a saved filter keeps only the filters).
NOT_FILTERS = ("sort", "cursor", "selection", "member", "page")


def _visible(request, pk) -> BulkRequest:
    try:
        return BulkRequest.objects.visible_to(request.user).select_related("fleet", "requested_by", "requested_by_token").get(pk=pk)
    except BulkRequest.DoesNotExist as exc:
        raise Http404("No such bulk request") from exc


def _when(value: str, field: str) -> dt.datetime | None:
    """A datetime-local input, read in the person's zone."""
    if not value:
        return None
    try:
        naive = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ServiceError("Not a date and time.", errors={field: "Not a date and time."}) from exc
    return timezone.make_aware(naive) if timezone.is_naive(naive) else naive


def _selection(request) -> dict:
    """What the vehicles are, from the page's request: chosen VINs, a saved filter, or a fleet."""
    data = request.POST if request.method == "POST" else request.GET
    selection = data.get("selection") or Selection.FILTER
    if selection == Selection.VINS:
        # Only the VINs this person sees go back into the page: an unknown one is refused by the
        # draft (by position), never repeated.
        asked = [v.strip().upper() for v in data.getlist("vin") if v.strip()]
        seen = set(Vehicle.objects.visible_to(request.user).filter(vin__in=asked).values_list("vin", flat=True))
        return {"selection": selection, "vins": [v for v in asked if v in seen], "left_out": sum(v not in seen for v in asked)}
    if selection == Selection.FLEET:
        fleet = Fleet.objects.visible_to(request.user).filter(external_id=data.get("fleet", "")).first()
        return {"selection": selection, "fleet": fleet}
    if request.method == "POST":
        query = data.get("filter", "")
    else:
        params = request.GET.copy()
        for key in NOT_FILTERS:
            params.pop(key, None)
        query = params.urlencode()
    return {"selection": Selection.FILTER, "filter_query": query}


def _args(chosen: dict) -> dict:
    return {k: v for k, v in chosen.items() if k != "left_out"}


@login_required
def new(request):
    """Choose the command and its window; Preview (the dry run) or Send."""
    chosen = _selection(request)
    data = request.POST if request.method == "POST" else request.GET
    member = data.get("member") if data.get("member") in FORMS else "horn"
    acting = request.method == "POST" and ("preview" in request.POST or "send" in request.POST)
    form = FORMS[member](request.POST if acting else None)
    forecast = error = None
    window = {"not_before": data.get("not_before", ""), "not_after": data.get("not_after", "")}
    window_errors = {}
    draft = None
    try:
        if acting and form.is_valid():
            draft = services.draft(
                by=request.user, command=form.command, reason=form.cleaned_data.get("reason") or "",
                not_before=_when(window["not_before"], "not_before"), not_after=_when(window["not_after"], "not_after"), **_args(chosen),
            )
        elif not acting:
            # The selection alone, to say how many vehicles it names before anything is chosen.
            draft = services.draft(by=request.user, command={"horn": {"state": "Activated"}}, **_args(chosen))
    except ServiceError as exc:
        error = exc.message
        window_errors = {k: v for k, v in exc.errors.items() if k in ("not_before", "not_after")}
    if draft is not None and acting and "send" in request.POST:
        bulk = services.create_bulk(by=request.user, draft=draft, source=Source.WEB)
        messages.success(request, f"Bulk request started for {bulk.total} vehicle(s): follow it here.")
        return redirect("bulk-detail", pk=bulk.pk)
    if draft is not None and acting:
        forecast = services.forecast(command=draft.command, by=request.user, vehicles=draft.vehicles, organisation=draft.organisation)
    count = draft.vehicles.count() if draft is not None and not acting else None
    return render(request, "bulk/new.html", {
        "chosen": chosen, "member": member, "form": form, "features": FEATURES, "forecast": forecast, "error": error,
        "window": window, "window_errors": window_errors, "count": count,
        "filter_pairs": list(QueryDict(chosen.get("filter_query", "")).lists()),
    })


@login_required
def bulk_list(request):
    bulks = list(BulkRequest.objects.visible_to(request.user).select_related("requested_by", "fleet")[:LIST_ROWS])
    for bulk in bulks:
        bulk.numbers = services.counts(bulk)
        bulk.percent = services.progress(bulk, bulk.numbers)
        bulk.title = services.summary_title(bulk)
    notices = list(services.unseen_notices(request.user)[:10])
    return render(request, "bulk/list.html", {"bulks": bulks, "notices": notices})


def _progress_context(request, bulk) -> dict:
    if bulk.status == BulkStatus.SENT and services.settle(bulk.pk):
        bulk.refresh_from_db()
    numbers = services.counts(bulk)
    return {
        "bulk": bulk, "numbers": numbers, "percent": services.progress(bulk, numbers), "refusals": services.refusals(bulk),
        "live": bulk.status not in (BulkStatus.FINISHED, BulkStatus.CANCELLED),
        "rows": [
            (k, services.COUNT_LABELS[k], numbers[k]) for k in services.COUNT_KEYS
            if numbers[k] or k in ("queued", "submitted", "success", "failed")
        ],
    }


# The outcome table's filters: `show` and what it selects.
SHOWS = {
    "all": {},
    "failed": {"action__status__in": ("failed", "rejected", "expired", "error", "unknown")},
    "refused": {"state": ItemState.REFUSED},
    "success": {"action__status__in": ("success", "already_done")},
    "waiting": {"state": ItemState.WAITING},
}


@login_required
def detail(request, pk):
    bulk = _visible(request, pk)
    if bulk.status in (BulkStatus.FINISHED, BulkStatus.CANCELLED) and bulk.seen_at is None and bulk.requested_by_id == request.user.pk:
        BulkRequest.objects.filter(pk=bulk.pk).update(seen_at=timezone.now())
    show = request.GET.get("show") if request.GET.get("show") in SHOWS else "all"
    # A bulk request across fleets is seen by members of its organisation; each sees the rows of their own fleets.
    items = (
        bulk.items.filter(vehicle__fleet__in=Fleet.objects.visible_to(request.user), **SHOWS[show])
        .select_related("vehicle", "action").order_by("pk")
    )
    cause = request.GET.get("cause", "")
    if cause:
        items = items.filter(cause=cause)
    after = request.GET.get("after", "")
    if after.isdigit():
        items = items.filter(pk__gt=int(after))
    page = list(items[: ROWS + 1])
    more = len(page) > ROWS
    page = page[:ROWS]
    next_url = None
    if more:
        q = request.GET.copy()
        q["after"] = page[-1].pk
        next_url = f"{reverse('bulk-detail', args=[bulk.pk])}?{q.urlencode()}"
    context = _progress_context(request, bulk)
    context.update({
        "items": page, "show": show, "shows": list(SHOWS), "cause": cause, "next_url": next_url,
        "title": services.summary_title(bulk), "causes": services.CAUSES,
        "may_act": not services.may_act_on(bulk, request.user),
        "has_failed": bulk.items.filter(action__status__in=services.RETRYABLE).exists(),
    })
    return render(request, "bulk/detail.html", context)


@login_required
def progress_fragment(request, pk):
    """The live part of the progress page (htmx polls it every 2 s while the bulk is open)."""
    bulk = _visible(request, pk)
    context = _progress_context(request, bulk)
    response = render(request, "bulk/_progress.html", context)
    if not context["live"] and request.headers.get("HX-Request"):
        # It just ended while the page watched: reload it whole, so the outcome table and the
        # buttons (retry the failed ones) match; the reloaded page no longer polls.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_POST
def cancel(request, pk):
    bulk = _visible(request, pk)
    try:
        done = services.cancel(bulk, by=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled: {done['items']} not yet dispatched, {done['actions']} queued command(s) stopped. What was already sent goes on.")
    return redirect("bulk-detail", pk=bulk.pk)


@login_required
@require_POST
def retry_failed(request, pk):
    bulk = _visible(request, pk)
    try:
        new_bulk = services.retry_failed(bulk, by=request.user, source=Source.WEB)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("bulk-detail", pk=bulk.pk)
    messages.success(request, f"Sending again to the {new_bulk.total} vehicle(s) whose command failed.")
    return redirect("bulk-detail", pk=new_bulk.pk)

