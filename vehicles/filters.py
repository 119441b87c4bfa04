"""Filters of the partner API's vehicle list (`GET /api/v1/vehicles/`).

`capability` is `remotes.capabilities.availability` written as SQL (a list of 10,000 vehicles
cannot be filtered in Python page by page): the TWIN of that function, kept equal by
`remotes/tests/test_api_resources.py::test_the_capability_filter_agrees_with_availability`. `stolen` is what the latest successful Stolen declaration said.
"""

from django.db.models import BooleanField, Case, F, OuterRef, Q, Subquery, Value, When
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
