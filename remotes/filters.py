"""Filters of the partner API's action lists (`GET /api/v1/remotes/`, `…/vehicles/{vin}/remotes/`).

django-filter FilterSets: a value it cannot read (an unknown status, a date that is not one)
is a 400 problem naming the query parameter, never an empty list.
"""

from django_filters import rest_framework as filters

from stellantis.vocabulary import RemoteType

from .models import ActionStatus, RemoteAction


class VehicleActionFilter(filters.FilterSet):
    """One vehicle's actions (`/vehicles/{vin}/remotes/`): the vehicle is in the path."""

    status = filters.ChoiceFilter(choices=ActionStatus.choices, help_text="The action's status, e.g. `success` or `awaiting_approval`.")
    remote_type = filters.ChoiceFilter(choices=RemoteType.choices, help_text="The Stellantis remote type, e.g. `Horn`.")
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", help_text="Created at or after this instant (ISO 8601).")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt", help_text="Created before this instant (ISO 8601).")

    class Meta:
        model = RemoteAction
        fields = ["status", "remote_type", "created_after", "created_before"]


class RemoteActionFilter(VehicleActionFilter):
    vin = filters.CharFilter(method="filter_vin", help_text="The vehicle's VIN (any case).")
    fleet = filters.CharFilter(field_name="vehicle__fleet__external_id", help_text="The fleet's Stellantis id.")

    class Meta(VehicleActionFilter.Meta):
        fields = [*VehicleActionFilter.Meta.fields, "vin", "fleet"]

    def filter_vin(self, queryset, name, value):
        return queryset.filter(vehicle__vin=value.upper())
