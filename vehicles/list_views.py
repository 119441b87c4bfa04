"""The vehicle list a manager works with: the page, its CSV export and the label form.

The selection is `listing.matching` (the same for page, export and a bulk request from a saved
filter); the order and pages are `listing`'s keyset. A page costs a constant number of
queries: the rows (fleet and status joined), their stolen/immobilized flags and last action id
in one query over the page's ids, the last actions themselves, the count, and the filter
choices.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts import access
from remotes.models import RemoteAction
from remotes.presentation import action_title, ago, status_words, when
from stellantis.behaviour import Connectivity, connectivity
from stellantis.vocabulary import Motorization

from . import labels, listing
from .filters import with_immobilized, with_stolen
from .models import Fleet, Vehicle

CHARGING_WORDS = {
    "InProgress": "Charging",
    "Stopped": "Plugged, not charging",
    "Finished": "Charged",
    "Disconnected": "Not plugged",
    "Failure": "Charging failed",
}
EXPORT_CHUNK = 1000


@dataclass
class Row:
    """One vehicle as the list shows it, everything in words."""

    vehicle: Vehicle
    snapshot: object  # VehicleStatus or None
    connectivity: Connectivity
    stolen: bool
    immobilized: bool
    last_action: RemoteAction | None
    last_contact_ago: str = ""
    last_contact_exact: str = ""

    @property
    def energy(self):
        return None if self.snapshot is None or self.snapshot.energy_level is None else round(self.snapshot.energy_level)

    @property
    def low_battery(self) -> bool:
        return self.energy is not None and self.snapshot.energy_level < listing.LOW_BATTERY_PERCENT

    @property
    def range_km(self):
        return None if self.snapshot is None else self.snapshot.autonomy_km

    @property
    def charging(self) -> str:
        if self.snapshot is None or not self.snapshot.charging_status:
            return ""
        return CHARGING_WORDS.get(self.snapshot.charging_status, self.snapshot.charging_status)

    @property
    def doors(self) -> str:
        locked = None if self.snapshot is None else self.snapshot.doors_locked
        return {True: "Locked", False: "Unlocked", None: ""}[locked]

    @property
    def last_contact(self) -> dt.datetime | None:
        return None if self.snapshot is None else self.snapshot.captured_at

    @property
    def badges(self) -> list[tuple[str, str]]:
        """(css class, words) for the states worth a badge; words always, colour as well."""
        found = []
        if self.stolen:
            found.append(("state-stolen", "Stolen"))
        if self.immobilized:
            found.append(("state-immobilized", "Immobilized"))
        if self.connectivity in (Connectivity.ASLEEP, Connectivity.OFFLINE, Connectivity.UNKNOWN):
            found.append((f"state-{self.connectivity.value}", self.connectivity.label))
        if self.low_battery:
            found.append(("state-low_battery", "Low battery"))
        return found

    @property
    def state_words(self) -> str:
        words = [w for _, w in self.badges] or [self.connectivity.label]
        return ", ".join(words)

    @property
    def last_action_words(self) -> str:
        action = self.last_action
        if action is None:
            return ""
        return f"{action_title(action)} · {status_words(action)}"


def rows_for(vehicles: list[Vehicle], now: dt.datetime) -> list[Row]:
    """The page's rows (given by id, in order) in words: the vehicles with their fleet, status,
    stolen/immobilized flags and last action id in one query, the last actions in another."""
    if not vehicles:
        return []
    latest = RemoteAction.objects.filter(vehicle=OuterRef("pk")).order_by("-created_at").values("pk")[:1]
    loaded = {
        v.pk: v
        for v in with_immobilized(with_stolen(Vehicle.objects.filter(pk__in=[v.pk for v in vehicles])))
        .select_related("fleet", "status_snapshot")
        .annotate(last_action_id=Subquery(latest))
    }
    actions = RemoteAction.objects.in_bulk([v.last_action_id for v in loaded.values() if v.last_action_id])
    rows = []
    for v in (loaded[v.pk] for v in vehicles if v.pk in loaded):
        snapshot = getattr(v, "status_snapshot", None)
        contact = snapshot.captured_at if snapshot else None
        rows.append(Row(
            vehicle=v, snapshot=snapshot, connectivity=connectivity(contact, now),
            stolen=v.stolen, immobilized=v.immobilized, last_action=actions.get(v.last_action_id),
            last_contact_ago=ago(contact, now) if contact else "", last_contact_exact=when(contact) if contact else "",
        ))
    return rows


BRANDS_CACHE_SECONDS = 600


def brands_of(fleets: list[Fleet]) -> list[str]:
    """The brands among these fleets' vehicles, for the brand filter's choices.

    A DISTINCT over every vehicle costs 40 ms at 50,000, on each page: kept for ten minutes per
    set of fleets and their last imports (an import that brings a new brand shows it at once)."""
    if not fleets:
        return []
    stamp = ",".join(f"{f.pk}:{f.last_synced_at.timestamp() if f.last_synced_at else 0}" for f in fleets)
    key = "vehicle-list-brands:" + hashlib.sha256(stamp.encode()).hexdigest()[:40]
    brands = cache.get(key)
    if brands is None:
        brands = list(
            Vehicle.objects.filter(fleet__in=[f.pk for f in fleets]).exclude(brand="").order_by("brand").values_list("brand", flat=True).distinct()
        )
        cache.set(key, brands, BRANDS_CACHE_SECONDS)
    return brands


def _may_command(user) -> bool:
    """Whether the person may send a command to some vehicle (the bulk controls are for them)."""
    orgs = access.access_of(user).organisation_ids(access.COMMAND)
    return orgs is None or bool(orgs)


def _sort_links(params, sort: listing.Sort, descending: bool) -> dict[str, dict]:
    """For each column: the URL that sorts by it (the other way when it is the current one) and its aria-sort."""
    base = listing.filter_query(params)
    links = {}
    for key, column in listing.SORTS.items():
        current = key == sort.key
        query = base.copy()
        query["sort"] = (key if descending else "-" + key) if current else key
        links[key] = {
            "url": "?" + query.urlencode(),
            "aria": ("descending" if descending else "ascending") if current else "none",
            "current": current,
            "descending": current and descending,
            "label": column.label,
        }
    return links


@login_required
def vehicle_list(request):
    params = request.GET
    notes = listing.problems(params)
    sort, descending, sort_note = listing.sort_of(params)
    if sort_note:
        notes.append(sort_note)
    cursor = None
    if params.get("cursor"):
        try:
            cursor = listing.Cursor.decode(params["cursor"], sort, descending)
        except ValueError:
            notes.append("That page link is no longer valid (the sort changed?): showing the first page.")
    now = timezone.now()
    vehicles = listing.matching(request.user, params)
    total = vehicles.count()
    page = listing.keyset_page(vehicles, sort, descending, cursor, size=listing.PAGE_SIZE)
    rows = rows_for(page.vehicles, now)
    filters = listing.filter_query(params)
    page_query = filters.copy()
    page_query["sort"] = ("-" if descending else "") + sort.key
    has_any = total > 0 or Vehicle.objects.visible_to(request.user).exists()
    fleets = list(Fleet.objects.visible_to(request.user).order_by("name"))
    brands = brands_of(fleets)
    chosen_brand = listing.filter_query(params).get("brand", "")
    if chosen_brand and chosen_brand.lower() not in {b.lower() for b in brands}:
        brands.append(chosen_brand)  # a brand typed into the URL stays shown as the filter

    def page_url(c):
        if c is None:
            return ""
        q = page_query.copy()
        q["cursor"] = c.encode(sort, descending)
        return "?" + q.urlencode()

    return render(request, "vehicles/vehicle_list.html", {
        "rows": rows,
        "now": now,
        "total": total,
        "total_words": f"{total:,}",
        "has_any": has_any,
        "notes": notes,
        "filters": filters,
        "filter_query": filters.urlencode(),
        "page_query": page_query.urlencode(),
        "filtered": bool(filters),
        "sorts": _sort_links(params, sort, descending),
        "sort_value": ("-" if descending else "") + sort.key,
        "next_url": page_url(page.next),
        "previous_url": page_url(page.previous),
        "first_url": "" if page.first else "?" + page_query.urlencode(),
        "last_url": page_url(listing.Cursor(after=False, last=True)) if page.next else "",
        "fleets": fleets,
        "brands": brands,
        "motorizations": Motorization.choices,
        "states": listing.STATES.items(),
        "capabilities": listing.CAPABILITIES.items(),
        "chosen": {
            "q": params.get("q", ""), "fleet": params.get("fleet", ""), "brand": params.get("brand", ""),
            "motorization": params.get("motorization", ""), "state": params.getlist("state"), "capability": params.getlist("capability"),
        },
        "may_command": _may_command(request.user),
    })


# --- CSV export --------------------------------------------------------------------------------

EXPORT_HEADER = [
    "VIN", "Label", "Plate", "Brand", "Motorization", "Fleet", "Energy level (%)", "Range (km)", "Charging", "Doors",
    "Last contact", "State", "Last action",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_rows(user, params):
    """Every matching vehicle in the list's order, as CSV cells: pages of EXPORT_CHUNK, 3 queries each."""
    sort, descending, _ = listing.sort_of(params)
    vehicles = listing.matching(user, params)
    cursor = None
    while True:
        page = listing.keyset_page(vehicles, sort, descending, cursor, size=EXPORT_CHUNK)
        now = timezone.now()
        for row in rows_for(page.vehicles, now):
            v = row.vehicle
            yield [safe_cell(c) for c in (
                v.vin, v.label, v.plate, v.brand, v.get_motorization_display(), v.fleet.name,
                "" if row.energy is None else row.energy, "" if row.range_km is None else row.range_km,
                row.charging, row.doors, timezone.localtime(row.last_contact).isoformat() if row.last_contact else "",
                row.state_words, row.last_action_words,
            )]
        if page.next is None:
            return
        cursor = page.next


class _Echo:
    def write(self, value):
        return value


@login_required
def vehicle_export(request):
    """The filtered list as CSV, streamed: 50,000 vehicles never sit in memory at once."""
    writer = csv.writer(_Echo())
    params = request.GET.copy()

    def lines():
        yield writer.writerow(EXPORT_HEADER)
        for cells in export_rows(request.user, params):
            yield writer.writerow(cells)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="vehicles-{timezone.localdate():%Y-%m-%d}.csv"'
    return response


# --- label ---------------------------------------------------------------------------------------


class LabelForm(forms.Form):
    label = forms.CharField(max_length=60, required=False, help_text="Your name for it, e.g. “Van 12, Lyon”.")
    plate = forms.CharField(max_length=16, required=False, help_text="The registration plate.")


@login_required
@require_http_methods(["GET", "POST"])
def vehicle_label(request, vin):
    vehicle = get_object_or_404(Vehicle.objects.visible_to(request.user).select_related("fleet"), vin=vin)
    why_not = access.access_of(request.user).why_not(access.COMMAND, vehicle.fleet)
    if why_not:
        if request.method == "POST":
            return HttpResponseForbidden(why_not)
        return render(request, "vehicles/vehicle_label.html", {"vehicle": vehicle, "why_not": why_not}, status=403)
    form = LabelForm(request.POST or None, initial={"label": vehicle.label, "plate": vehicle.plate})
    if request.method == "POST" and form.is_valid():
        if labels.set_label(vehicle=vehicle, label=form.cleaned_data["label"], plate=form.cleaned_data["plate"], by=request.user):
            messages.success(request, f"Saved the label and plate of {vehicle.vin}.")
        back = request.POST.get("next", "")
        safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
        return redirect(back if back and safe else reverse("vehicle-detail", args=[vehicle.vin]))
    return render(request, "vehicles/vehicle_label.html", {"vehicle": vehicle, "form": form, "next": request.GET.get("next", "")})
