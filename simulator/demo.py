"""Demo controls the admin offers: flip a simulated vehicle's state by hand, give wake-ups back."""

from __future__ import annotations

from django.utils import timezone

from . import scenario
from .models import SimVehicle

# What a demo may flip: anything a raised event may set, plus the traits that make events fail.
VEHICLE_DEMO_FIELDS = scenario.EFFECT_FIELDS | {
    "awake_until",
    "energy_level",
    "autonomy_km",
    "last_driven_at",
    "remote_subscribed",
    "wake_up_budget",
    "wake_ups_used",
    "wake_up_month",
    "door_open",
    "in_use",
}


def set_vehicles_state(*, vehicle_ids: list[str], **changes) -> int:
    """Flip demo state (asleep, online, doors, traits…) on some vehicles; answers how many changed."""
    unknown = set(changes) - VEHICLE_DEMO_FIELDS
    if unknown:
        raise ValueError(f"not a demo field: {', '.join(sorted(unknown))}")
    return SimVehicle.objects.filter(pk__in=vehicle_ids).update(**changes, updated_at=timezone.now())


def reset_wake_ups(*, vehicle_ids: list[str]) -> int:
    """Give some vehicles their whole monthly wake-up budget back; answers how many changed."""
    return SimVehicle.objects.filter(pk__in=vehicle_ids).update(
        wake_ups_used=0, wake_up_month="", updated_at=timezone.now()
    )
