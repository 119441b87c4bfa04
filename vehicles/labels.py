"""The manager's own names for a vehicle: its label and plate (searchable in the vehicle list)."""

from __future__ import annotations

from django.db import transaction

import audit.services as audit

from .models import Vehicle


def set_label(*, vehicle: Vehicle, label: str, plate: str, by) -> bool:
    """Set the label and plate, audited with what they were; False when nothing changed."""
    before = {"label": vehicle.label, "plate": vehicle.plate}
    after = {"label": label.strip(), "plate": plate.strip().upper()}
    changes = audit.diff(before, after)
    if not changes:
        return False
    with transaction.atomic():
        vehicle.label, vehicle.plate = after["label"], after["plate"]
        vehicle.save(update_fields=["label", "plate", "updated_at"])
        audit.record("vehicle.label_changed", actor=by, organisation=vehicle.fleet.organisation_id, obj=vehicle, changes=changes)
    return True
