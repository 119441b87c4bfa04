"""q2 entry points: load by id, call one service."""

from . import services
from .models import Vehicle


def refresh_status(vehicle_id: int) -> str:
    vehicle = Vehicle.objects.select_related("fleet").get(pk=vehicle_id)
    services.refresh_status(vehicle=vehicle)
    return f"status of {vehicle.vin} refreshed"
