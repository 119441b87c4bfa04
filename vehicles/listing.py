"""The vehicle list's selection and order: which vehicles a list URL's query names, for one user.

One function, `matching`, so that the page, its CSV export and a bulk request made from a
"saved filter" (the same query string) always pick the same vehicles. The order and the
pages (`Sort`, `keyset_page`) are the list's own: keyset pagination, so that the last page
of 50,000 vehicles costs what the first does (an OFFSET makes the database walk, and here
annotate, every row before the page).

Query parameters (docs: notes/contracts.md "Vehicle list"): `q`, `fleet`, `brand`,
`motorization`, `state` (repeatable: any of them), `capability` (repeatable: all of them),
`sort`, `cursor`. A value the list does not know is ignored and named by `problems()`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from django.db.models import F, Q, Value
from django.db.models.functions import NullIf
from django.http import QueryDict
from django.utils import timezone

from stellantis.behaviour import Connectivity, contact_range
from stellantis.vocabulary import Motorization

from .filters import capable, immobilized_vehicle_ids, stolen_vehicle_ids
from .models import Fleet, Vehicle

# Below this energy level (percent) a vehicle is "low battery" (the state filter, the overview).
LOW_BATTERY_PERCENT = 20

STATES = {
    "online": "Online",
    "asleep": "Asleep",
    "offline": "Offline",
    "unknown": "Never seen",
    "charging": "Charging",
    "plugged": "Plugged in",
    "low_battery": "Low battery",
    "stolen": "Stolen",
    "immobilized": "Immobilized",
}
# The remote features a `capability` filter may name (remotes.capabilities.FEATURES, by member).
CAPABILITIES = {
    "charging": "Charging", "preconditioning": "Preconditioning", "door": "Doors", "horn": "Horn", "lights": "Lights",
    "wakeUp": "State refresh", "navigation": "Navigation", "immobilization": "Immobilization", "stolen": "Stolen",
}
# The parameters that select vehicles (not the order nor the page): what a saved filter is.
FILTERS = ("q", "fleet", "brand", "motorization", "state", "capability")
CHARGING_IN_PROGRESS = "InProgress"  # the vendor's charging status while it charges


def _values(params, name: str) -> list[str]:
    if isinstance(params, QueryDict):
        values = params.getlist(name)
    else:
        value = params.get(name)
        values = value if isinstance(value, list | tuple) else ([] if value is None else [value])
    return [str(v).strip() for v in values if str(v).strip()]


def _one(params, name: str) -> str:
    values = _values(params, name)
    return values[0] if values else ""


def problems(params: QueryDict | dict) -> list[str]:
    """What in `params` the list does not understand and ignores, in words for the page."""
    found = []
    motorization = _one(params, "motorization")
    if motorization and motorization not in Motorization.values:
        found.append(f"Unknown motorization “{motorization}” ignored.")
    for state in _values(params, "state"):
        if state not in STATES:
            found.append(f"Unknown state “{state}” ignored.")
    for member in _values(params, "capability"):
        if member not in CAPABILITIES:
            found.append(f"Unknown capability “{member}” ignored.")
    return found


def _state_q(state: str, now: dt.datetime) -> Q:
    if state == "unknown":
        return Q(status_snapshot__captured_at__isnull=True)
    if state in (Connectivity.ONLINE, Connectivity.ASLEEP, Connectivity.OFFLINE):
        after, before = contact_range(Connectivity(state), now)
        q = Q()
        if after is not None:
            q &= Q(status_snapshot__captured_at__gt=after)
        if before is not None:
            q &= Q(status_snapshot__captured_at__lte=before)
        return q
    if state == "charging":
        return Q(status_snapshot__charging_status=CHARGING_IN_PROGRESS)
    if state == "plugged":
        return Q(status_snapshot__plugged=True)
    if state == "low_battery":
        return Q(status_snapshot__energy_level__lt=LOW_BATTERY_PERCENT)
    if state == "stolen":
        return Q(pk__in=stolen_vehicle_ids())
    if state == "immobilized":
        return Q(pk__in=immobilized_vehicle_ids())
    raise ValueError(state)


def matching(user, params: QueryDict | dict):
    """The vehicles `user` may see that the list's filters in `params` select (unordered).

    Unknown values are ignored (`problems` names them); several states select vehicles in any
    of them, several capabilities vehicles able to do all of them."""
    vehicles = Vehicle.objects.visible_to(user)
    q = _one(params, "q")
    if q:
        vehicles = vehicles.filter(Q(vin__icontains=q) | Q(plate__icontains=q) | Q(label__icontains=q))
    fleet = _one(params, "fleet")
    if fleet:
        vehicles = vehicles.filter(fleet__in=Fleet.objects.visible_to(user).filter(external_id=fleet))
    brand = _one(params, "brand")
    if brand:
        vehicles = vehicles.filter(brand__iexact=brand)
    motorization = _one(params, "motorization")
    if motorization in Motorization.values:
        vehicles = vehicles.filter(motorization=motorization)
    states = [s for s in dict.fromkeys(_values(params, "state")) if s in STATES]
    if states:
        now = timezone.now()
        any_of = Q(pk__in=[])
        for state in states:
            any_of |= _state_q(state, now)
        vehicles = vehicles.filter(any_of)
    for member in dict.fromkeys(_values(params, "capability")):
        if member in CAPABILITIES:
            vehicles = vehicles.alias(**{f"_can_{member}": capable(member)}).filter(**{f"_can_{member}": True})
    return vehicles


def filter_query(params: QueryDict | dict) -> QueryDict:
    """Only the selecting parameters of `params` (no sort, no page): the saved filter."""
    kept = QueryDict(mutable=True)
    for name in FILTERS:
        values = _values(params, name)
        if values:
            kept.setlist(name, values)
    return kept


# --- order and pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    """One sortable column: its key in the URL, its label and the value it sorts on.

    Vehicles with no value (no status read yet, no label) come last in both directions; the
    vehicle's id breaks ties, so every vehicle has one place and pages neither skip nor repeat."""

    key: str
    label: str
    expression: object
    kind: type

    def parse(self, raw):
        if raw is None:
            return None
        if self.kind is dt.datetime:
            return dt.datetime.fromisoformat(raw)
        return self.kind(raw)

    def dump(self, value):
        if value is None:
            return None
        return value.isoformat() if isinstance(value, dt.datetime) else value


SORTS = {
    s.key: s
    for s in (
        Sort("vin", "VIN", F("vin"), str),
        Sort("label", "Label", NullIf(F("label"), Value("")), str),
        Sort("brand", "Brand", NullIf(F("brand"), Value("")), str),
        Sort("fleet", "Fleet", F("fleet__name"), str),
        Sort("energy", "Energy", F("status_snapshot__energy_level"), float),
        Sort("range", "Range", F("status_snapshot__autonomy_km"), int),
        Sort("contact", "Last contact", F("status_snapshot__captured_at"), dt.datetime),
    )
}
DEFAULT_SORT = "vin"
PAGE_SIZE = 50


def sort_of(params) -> tuple[Sort, bool, str]:
    """(column, descending, a note when the asked sort was not understood)."""
    raw = _one(params, "sort") or DEFAULT_SORT
    descending = raw.startswith("-")
    sort = SORTS.get(raw.lstrip("-"))
    if sort is None:
        return SORTS[DEFAULT_SORT], False, f"Unknown sort “{raw}” ignored."
    return sort, descending, ""


@dataclass(frozen=True)
class Cursor:
    """A position between two rows: after (or before) the row whose sort value and id it holds.
    `last` is the end of the list (its last page), reached from the end."""

    after: bool
    value: object = None
    pk: int | None = None
    last: bool = False

    def encode(self, sort: Sort, descending: bool) -> str:
        if self.last:
            return "last"
        body = {"s": ("-" if descending else "") + sort.key, "a": self.after, "v": sort.dump(self.value), "i": self.pk}
        return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, raw: str, sort: Sort, descending: bool) -> Cursor:
        """The cursor in `raw`; ValueError when it is not one of this sort's."""
        if raw == "last":
            return cls(after=False, last=True)
        try:
            body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if body["s"] != ("-" if descending else "") + sort.key or not isinstance(body["i"], int):
                raise ValueError("another sort's cursor")
            return cls(after=bool(body["a"]), value=sort.parse(body["v"]), pk=body["i"])
        except (binascii.Error, json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise ValueError(str(e)) from e


@dataclass
class Page:
    vehicles: list
    next: Cursor | None
    previous: Cursor | None
    first: bool  # nothing before it


def _beyond(descending: bool, value, pk) -> Q:
    """Rows after (value, pk) in the list's order: values further on, then no value at all."""
    further = "lt" if descending else "gt"
    if value is None:
        return Q(_sort__isnull=True, **{f"pk__{further}": pk})
    return Q(**{f"_sort__{further}": value}) | Q(_sort=value, **{f"pk__{further}": pk}) | Q(_sort__isnull=True)


def _before(descending: bool, value, pk) -> Q:
    """Rows before (value, pk) in the list's order."""
    nearer = "gt" if descending else "lt"
    if value is None:
        return Q(_sort__isnull=False) | Q(_sort__isnull=True, **{f"pk__{nearer}": pk})
    return Q(_sort__isnull=False) & (Q(**{f"_sort__{nearer}": value}) | Q(_sort=value, **{f"pk__{nearer}": pk}))


def ordered(vehicles, sort: Sort, descending: bool, *, reverse: bool = False):
    """`vehicles` in the list's order (or its exact reverse), the sort value annotated as `_sort`."""
    expression = sort.expression
    down = descending != reverse
    nulls = {"nulls_first": True} if reverse else {"nulls_last": True}  # explicit: databases differ
    by_value = expression.desc(**nulls) if down else expression.asc(**nulls)
    return vehicles.annotate(_sort=expression).order_by(by_value, "-pk" if down else "pk")


def keyset_page(vehicles, sort: Sort, descending: bool, cursor: Cursor | None, size: int = PAGE_SIZE) -> Page:
    """One page of `vehicles` at `cursor`: a range of the order and `size` + 1 rows read, wherever it is."""
    if cursor is None or cursor.after:
        rows = ordered(vehicles, sort, descending)
        if cursor is not None:
            rows = rows.filter(_beyond(descending, cursor.value, cursor.pk))
        rows = list(rows[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        return Page(
            rows,
            next=Cursor(True, rows[-1]._sort, rows[-1].pk) if more else None,
            previous=Cursor(False, rows[0]._sort, rows[0].pk) if cursor is not None and rows else None,
            first=cursor is None,
        )
    rows = ordered(vehicles, sort, descending, reverse=True)
    if not cursor.last:
        rows = rows.filter(_before(descending, cursor.value, cursor.pk))
    rows = list(rows[: size + 1])
    more = len(rows) > size
    rows = rows[:size][::-1]
    return Page(
        rows,
        next=Cursor(True, rows[-1]._sort, rows[-1].pk) if rows and not cursor.last else None,
        previous=Cursor(False, rows[0]._sort, rows[0].pk) if more else None,
        first=not more,
    )
