"""Filters of the partner API's vehicle list (`GET /api/v1/vehicles/`).

`capability` is `remotes.capabilities.availability` written as SQL (a list of 10,000 vehicles
cannot be filtered in Python page by page): the TWIN of that function, kept equal by
`remotes/tests/test_api_resources.py::test_the_capability_filter_agrees_with_availability`. `stolen` is what the latest successful Stolen declaration said.
`immobilized` likewise, from the latest successful Immobilization command (or a Stolen command's immobilization part).
The vehicle list (vehicles/listing.py) shares these.
"""

from django.db.models import BooleanField, Case, Exists, F, OuterRef, Q, Subquery, Value, When
from django_filters import rest_framework as filters

from remotes.capabilities import BY_MEMBER
from remotes.models import ActionStatus, RemoteAction
from stellantis.vocabulary import ELECTRIFIED, Motorization, RemoteType

from .models import Vehicle


def capable(member: str) -> Case:
    """True where `remotes.capabilities.availability(vehicle, member)` says available (its twin)."""
    feature = BY_MEMBER[member]
    whens = []
    if feature.needs_electrified:
        whens.append(When(Q(motorization__gt="") & ~Q(motorization__in=ELECTRIFIED), then=Value(False)))
    whens += [
        When(capabilities={}, then=Value(True)),  # never read: assumed, the vendor has the last word
        When(~Q(capabilities__has_key="remote"), then=Value(False)),  # no remote-control service
        When(**{f"capabilities__remote__{feature.capability}__supported": False}, then=Value(False)),
    ]
    return Case(*whens, default=Value(True), output_field=BooleanField())


def _last_stolen(declared: bool):
    """When the vehicle was last declared stolen (or back), by a command that succeeded."""
    return Subquery(
        RemoteAction.objects.filter(
            vehicle=OuterRef("pk"), remote_type=RemoteType.STOLEN, status__in=(ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE),
            command__stolen__stolen=declared,
        ).order_by("-created_at").values("created_at")[:1]
    )


def with_stolen(queryset):
    """Annotate `stolen`: declared stolen by the latest successful Stolen command about it."""
    declared, recovered = _last_stolen(True), _last_stolen(False)
    return queryset.annotate(_declared=declared, _recovered=recovered).annotate(
        stolen=Case(
            When(Q(_declared__isnull=False) & (Q(_recovered__isnull=True) | Q(_declared__gt=F("_recovered"))), then=Value(True)),
            default=Value(False), output_field=BooleanField(),
        )
    )


SUCCEEDED = (ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE)


def _immobilization(activate: bool) -> Q:
    """A command that immobilizes (or releases) the vehicle: its own type, or a Stolen command's immobilization part."""
    return Q(remote_type=RemoteType.IMMOBILIZATION, command__immobilization__activate=activate) | Q(
        remote_type=RemoteType.STOLEN, command__stolen__immobilization__activate=activate
    )


def _last_immobilization(activate: bool):
    return Subquery(
        RemoteAction.objects.filter(_immobilization(activate), vehicle=OuterRef("pk"), status__in=SUCCEEDED)
        .order_by("-created_at").values("created_at")[:1]
    )


def with_immobilized(queryset):
    """Annotate `immobilized`: immobilized by the latest successful command about it that said either way."""
    on, off = _last_immobilization(True), _last_immobilization(False)
    return queryset.annotate(_immobilized_at=on, _released_at=off).annotate(
        immobilized=Case(
            When(Q(_immobilized_at__isnull=False) & (Q(_released_at__isnull=True) | Q(_immobilized_at__gt=F("_released_at"))), then=Value(True)),
            default=Value(False), output_field=BooleanField(),
        )
    )


def _still_in_force(yes: Q, no: Q):
    """Vehicle ids whose latest successful command among `yes` and `no` is a `yes` (a tie counts as `no`,
    as in with_stolen): a scan of those few actions, not two subqueries for every vehicle of the list."""
    later_no = RemoteAction.objects.filter(no, vehicle=OuterRef("vehicle"), status__in=SUCCEEDED, created_at__gte=OuterRef("created_at"))
    return RemoteAction.objects.filter(yes, status__in=SUCCEEDED).filter(~Exists(later_no)).values("vehicle_id")


def stolen_vehicle_ids():
    """Ids of the vehicles `with_stolen` calls stolen, as a subquery for a filter."""
    return _still_in_force(
        Q(remote_type=RemoteType.STOLEN, command__stolen__stolen=True), Q(remote_type=RemoteType.STOLEN, command__stolen__stolen=False)
    )


def immobilized_vehicle_ids():
    """Ids of the vehicles `with_immobilized` calls immobilized, as a subquery for a filter."""
    return _still_in_force(_immobilization(True), _immobilization(False))


def yes_no(field_name: str, help_text: str) -> filters.TypedChoiceFilter:
    """`true` or `false`, and nothing else: django-filter's BooleanFilter ignores a value it cannot read."""
    return filters.TypedChoiceFilter(
        field_name=field_name, choices=[("true", "true"), ("false", "false")], coerce=lambda v: v == "true", help_text=help_text
    )


class VehicleFilter(filters.FilterSet):
    fleet = filters.CharFilter(field_name="fleet__external_id", help_text="The fleet's Stellantis id.")
    brand = filters.CharFilter(field_name="brand", lookup_expr="iexact", help_text="The brand, any case (e.g. `Peugeot`).")
    motorization = filters.ChoiceFilter(choices=Motorization.choices)
    capability = filters.ChoiceFilter(
        choices=[(f, f) for f in BY_MEMBER], method="filter_capability",
        help_text="A remote feature (a `Remote` member, e.g. `charging`) the vehicle can do.",
    )
    stolen = yes_no("stolen", "Declared stolen by its latest successful Stolen command.")
    charging_status = filters.CharFilter(field_name="status_snapshot__charging_status", help_text="From the latest status snapshot, e.g. `InProgress`.")
    plugged = yes_no("status_snapshot__plugged", "From the latest status snapshot.")
    doors_locked = yes_no("status_snapshot__doors_locked", "From the latest status snapshot.")
    search = filters.CharFilter(method="filter_search", help_text="Part of the VIN, any case.")

    class Meta:
        model = Vehicle
        fields = ["fleet", "brand", "motorization", "capability", "stolen", "charging_status", "plugged", "doors_locked", "search"]

    def filter_capability(self, queryset, name, value):
        return queryset.alias(_capable=capable(value)).filter(_capable=True)

    def filter_search(self, queryset, name, value):
        return queryset.filter(vin__icontains=value.strip())
