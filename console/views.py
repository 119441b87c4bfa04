"""The fleet manager's console: the overview (landing page), the portal's action list, the map."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.gzip import gzip_page

from remotes.models import ActionStatus
from stellantis.vocabulary import FailureCause, RemoteType
from vehicles.models import Fleet

from . import selectors


@login_required
def overview(request):
    data = selectors.overview(request.user)
    per_hour = data["per_hour"]
    failures = data["failures"]
    charts = {
        "perHour": {"labels": per_hour["labels"], "series": [{"key": s["key"], "label": s["label"], "data": s["data"]} for s in per_hour["series"]]},
        "causes": {"labels": [f.label for f in failures], "data": [f.count for f in failures]},
    }
    today = [
        {"key": key, "label": label, "count": data["today"][key], "query": "since=today&" + "&".join(f"status={s}" for s in statuses)}
        for key, label, statuses in selectors.OUTCOMES
    ]
    return render(request, "console/overview.html", {**data, "charts": charts, "today_outcomes": today})


@login_required
def action_list(request):
    now = timezone.now()
    error = ""
    try:
        actions = selectors.filter_actions(request.user, request.GET, now)
        rows, next_cursor = selectors.action_page(actions, request.GET.get("cursor", ""))
    except selectors.BadFilter as exc:
        error, rows, next_cursor = str(exc), [], ""
    params = request.GET.copy()
    params.pop("cursor", None)
    filters = params.urlencode()
    context = {
        "actions": rows,
        "error": error,
        "filters": filters,
        "next_cursor": next_cursor,
        "first_page": bool(request.GET.get("cursor")),
        "statuses": ActionStatus.choices,
        "chosen_statuses": request.GET.getlist("status"),
        "remote_types": RemoteType.choices,
        "causes": FailureCause.choices,
        "fleets": Fleet.objects.visible_to(request.user).order_by("name"),
        "q": request.GET,
    }
    return render(request, "console/action_list.html", context, status=400 if error else 200)


@login_required
def fleet_map(request):
    fleets = Fleet.objects.visible_to(request.user).order_by("name")
    params = request.GET.copy()
    for key in list(params):
        if key not in ("fleet", "state"):
            del params[key]
    context = {
        "fleets": fleets, "fleet": request.GET.get("fleet", ""), "states": selectors.STATE_WORDS.items(),
        "chosen_states": request.GET.getlist("state"), "query": params.urlencode(),
    }
    return render(request, "console/map.html", context)


@login_required
@gzip_page  # 40,000 vehicles are 2.3 MB of JSON, ~10x less compressed; it holds no secret nor echo of input (BREACH)
def map_positions(request):
    """The map's markers: [vin, lat, lon, label, state] for each visible vehicle with a position."""
    states = [s for s in request.GET.getlist("state") if s in selectors.STATE_WORDS]
    rows = selectors.positions(request.user, fleet=request.GET.get("fleet", ""), states=states)
    return JsonResponse({"columns": ["vin", "lat", "lon", "label", "state"], "vehicles": rows, "states": selectors.STATE_WORDS})

