"""Partner API: fleets and vehicles of the token's organisation (reads; commands are remotes/api.py).

Every list goes through `visible_to` (another organisation's fleet or vehicle is a 404) and
costs the same number of queries for 3 rows or 10,000: related rows are joined or annotated,
never read per row (remotes/tests/test_api_resources.py counts them).
"""

from django.db.models import Count
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

from .filters import VehicleFilter, with_stolen
from .models import Fleet, Vehicle
from .serializers import FleetSerializer, VehicleSerializer


class CursorPage(CursorPagination):
    """Cursor pagination on a unique or indexed column: a deep page costs what the first does
    (no OFFSET, no COUNT), and rows added meanwhile never shift a page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound as exc:  # DRF answers a bad cursor with a 404; it is a bad parameter (400 naming it)
            raise ValidationError({self.cursor_query_param: ["Invalid cursor: use the `next` or `previous` link as given."]}) from exc

    def get_page_size(self, request):
        if self.page_size_query_param in request.query_params:
            try:
                size = int(request.query_params[self.page_size_query_param])
            except ValueError:
                size = 0
            if not 1 <= size <= self.max_page_size:
                raise ValidationError({self.page_size_query_param: [f"must be a whole number from 1 to {self.max_page_size}"]})
        return super().get_page_size(request)


class VinCursorPage(CursorPage):
    ordering = "vin"  # unique


class FleetCursorPage(CursorPage):
    ordering = "external_id"  # unique


def visible_fleets(request):
    return Fleet.objects.visible_to(request.user).select_related("organisation").annotate(vehicle_count=Count("vehicles"))


def visible_vehicles(request):
    return with_stolen(Vehicle.objects.visible_to(request.user).select_related("fleet", "status_snapshot"))


@extend_schema(summary="List your fleets", tags=["fleets"])
class FleetList(generics.ListAPIView):
    serializer_class = FleetSerializer
    pagination_class = FleetCursorPage

    def get_queryset(self):
        return visible_fleets(self.request)


@extend_schema(summary="One fleet", tags=["fleets"])
class FleetDetail(generics.RetrieveAPIView):
    serializer_class = FleetSerializer
    lookup_field = "external_id"
    lookup_url_kwarg = "fleet_id"

    def get_queryset(self):
        return visible_fleets(self.request)


@extend_schema(summary="List your vehicles (filters, VIN search, cursor pages)", tags=["vehicles"])
class VehicleList(generics.ListAPIView):
    serializer_class = VehicleSerializer
    pagination_class = VinCursorPage
    filterset_class = VehicleFilter

    def get_queryset(self):
        return visible_vehicles(self.request)


@extend_schema(summary="One vehicle: its capabilities and latest status", tags=["vehicles"])
class VehicleDetail(generics.RetrieveAPIView):
    serializer_class = VehicleSerializer
    lookup_field = "vin"

    def get_queryset(self):
        return visible_vehicles(self.request)

    def get_object(self):
        self.kwargs["vin"] = self.kwargs["vin"].upper()
        return super().get_object()
