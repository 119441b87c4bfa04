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

from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import NullIf
from django.http import QueryDict
from django.utils import timezone

from stellantis.behaviour import Connectivity, contact_range
from stellantis.vocabulary import Motorization

from .filters import capable, immobilized_vehicle_ids, stolen_vehicle_ids
from .models import Fleet, Vehicle, VehicleStatus

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
    vehicle's id breaks ties, so every vehicle has one place and pages neither skip nor repeat.
    `expression` is that order as one SQL expression (`ordered`: the reference, and what tests
    compare with); the pages read it in two ranges instead, the vehicles with a value
    (`present`, ordered by `field` then id: an index range, models.py) and then those without
    (`absent`, by id), because an ORDER BY over a LEFT JOIN with NULLS LAST can use no index
    and sorts every vehicle for each page."""

    key: str
    label: str
    expression: object
    field: str
    kind: type
    present: Q | None = None  # None: every vehicle has a value
    absent: Q | Exists | None = None

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


def _status_sort(key: str, label: str, column: str, kind: type) -> Sort:
    field = f"status_snapshot__{column}"
    # Without a value: no status at all, or one without this value. As NOT EXISTS, which the
    # database walks by id, probing the status per vehicle until the page is full; a LEFT JOIN
    # … IS NULL made it join both whole tables (140 ms at 50,000).
    absent = ~Exists(VehicleStatus.objects.filter(vehicle=OuterRef("pk"), **{f"{column}__isnull": False}))
    return Sort(key, label, F(field), field, kind, Q(**{f"{field}__isnull": False}), absent)


def _text_sort(key: str, label: str, field: str) -> Sort:
    return Sort(key, label, NullIf(F(field), Value("")), field, str, Q(**{f"{field}__gt": ""}), Q(**{field: ""}))


SORTS = {
    s.key: s
    for s in (
        Sort("vin", "VIN", F("vin"), "vin", str),
        _text_sort("label", "Label", "label"),
        _text_sort("brand", "Brand", "brand"),
        Sort("fleet", "Fleet", F("fleet__name"), "fleet__name", str),
        _status_sort("energy", "Energy", "energy_level", float),
        _status_sort("range", "Range", "autonomy_km", int),
        _status_sort("contact", "Last contact", "captured_at", dt.datetime),
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


def _with_value(vehicles, sort: Sort, down: bool):
    """The vehicles that have a value, in (value, id) order going `down` or up: an index range."""
    if sort.present is not None:
        vehicles = vehicles.filter(sort.present)
    field = F(sort.field)
    return vehicles.annotate(_sort=field).order_by(field.desc() if down else field.asc(), "-pk" if down else "pk")


def _without_value(vehicles, sort: Sort, down: bool):
    return vehicles.filter(sort.absent).order_by("-pk" if down else "pk")


def _from(sort: Sort, down: bool, value, pk, *, inclusive_op: str, op: str) -> Q:
    """(value, id) strictly past (value, pk) going `op`; the extra `value >= / <=` bound is what
    lets the database start the index range there instead of filtering from the beginning."""
    return Q(**{f"{sort.field}__{inclusive_op}": value}) & (Q(**{f"{sort.field}__{op}": value}) | Q(**{sort.field: value, f"pk__{op}": pk}))


def ordered(vehicles, sort: Sort, descending: bool):
    """`vehicles` in the list's order in one query, the sort value annotated as `_sort` (the
    reference order: the pages must walk exactly this)."""
    expression = sort.expression
    by_value = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
    return vehicles.annotate(_sort=expression).order_by(by_value, "-pk" if descending else "pk")


def _take(queries, size: int) -> list:
    """Rows from each query in turn until `size` are read: the second only when the first runs out."""
    rows = []
    for query, has_value in queries:
        if len(rows) >= size:
            break
        got = list(query[: size - len(rows)])
        if not has_value:
            for row in got:
                row._sort = None
        rows += got
    return rows


def keyset_page(vehicles, sort: Sort, descending: bool, cursor: Cursor | None, size: int = PAGE_SIZE) -> Page:
    """One page of `vehicles` at `cursor`: at most size + 1 rows read, from index ranges, wherever it is.

    The rows hold only their id and `_sort` (load them with `rows_for`-like code by id): one or
    two queries (two when the page runs from the vehicles with a value into those without)."""
    vehicles = vehicles.select_related(None).only("pk")
    forward = cursor is None or cursor.after
    down = descending if forward else not descending  # reading direction through the values
    more_op, incl_op = ("lt", "lte") if down else ("gt", "gte")
    with_value, without = _with_value(vehicles, sort, down), sort.absent is not None and _without_value(vehicles, sort, down)
    if forward:
        if cursor is None:
            parts = [(with_value, True), (without, False)]
        elif cursor.value is None:
            parts = [(without.filter(**{f"pk__{more_op}": cursor.pk}), False)] if without is not False else []
        else:
            parts = [(with_value.filter(_from(sort, down, cursor.value, cursor.pk, inclusive_op=incl_op, op=more_op)), True), (without, False)]
    else:  # backwards: first those without a value (they are last), then the values from the end
        if cursor.last:
            parts = [(without, False), (with_value, True)]
        elif cursor.value is None:
            parts = [(without.filter(**{f"pk__{more_op}": cursor.pk}), False), (with_value, True)]
        else:
            parts = [(with_value.filter(_from(sort, down, cursor.value, cursor.pk, inclusive_op=incl_op, op=more_op)), True)]
    rows = _take([(q, has) for q, has in parts if q is not False], size + 1)
    more = len(rows) > size
    rows = rows[:size]
    if forward:
        return Page(
            rows,
            next=Cursor(True, rows[-1]._sort, rows[-1].pk) if more else None,
            previous=Cursor(False, rows[0]._sort, rows[0].pk) if cursor is not None and rows else None,
            first=cursor is None,
        )
    rows.reverse()
    return Page(
        rows,
        next=Cursor(True, rows[-1]._sort, rows[-1].pk) if rows and not cursor.last else None,
        previous=Cursor(False, rows[0]._sort, rows[0].pk) if more else None,
        first=not more,
    )
