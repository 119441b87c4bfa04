"""q2 entry points: load by id, call one service."""

from . import services
from .models import Vehicle


def refresh_status(vehicle_id: int) -> str:
    vehicle = Vehicle.objects.select_related("fleet").get(pk=vehicle_id)
    services.refresh_status(vehicle=vehicle)
    return f"status of {vehicle.vin} refreshed"


def import_fleet_slice(fleet_pk: int, run: str, after_vin: str | None) -> str:
    """A slice of the admin's background fleet import (services.import_fleet_slice)."""
    return services.import_fleet_slice(fleet_pk=fleet_pk, run=run, after_vin=after_vin)
