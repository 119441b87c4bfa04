"""Fleet import: the vendor's fleet and vehicles, mirrored locally through the client."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from core.errors import ServiceError
from stellantis.client import FleetClient
from stellantis.errors import RateLimited, StellantisError
from stellantis.status import parse_status

from .models import Fleet, Vehicle, VehicleStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    fleet: Fleet
    created: int
    updated: int


class FleetOwnedElsewhere(ServiceError):
    status, code = 409, "fleet_owned_elsewhere"


def import_fleet(*, fleet_id: str, organisation=None, client: FleetClient | None = None) -> ImportResult:
    """Pull the fleet and every page of its vehicles; create new ones, refresh known ones.

    A new fleet goes to `organisation` (none: superusers only, until one is given in the
    admin); a known fleet stays with its own, and is never moved to another by an import.
    """
    if organisation is not None:
        owner = Fleet.objects.filter(external_id=fleet_id).values_list("organisation_id", flat=True).first()
        if owner is not None and owner != organisation.pk:
            raise FleetOwnedElsewhere(f"Fleet {fleet_id} belongs to another organisation.")
    client = client or FleetClient.from_settings()
    info = client.fleet(fleet_id)
    remote_vehicles = [rv for rv in client.vehicles(fleet_id) if rv.vin]  # all pages, before we write anything
    capabilities = {}
    for n, rv in enumerate(remote_vehicles):
        # What each vehicle can do is only in the single-vehicle resource. A failure here
        # keeps what we knew: capabilities are advice, the vendor has the last word.
        try:
            capabilities[rv.vin] = client.vehicle_capabilities(fleet_id, rv.id)
        except RateLimited as exc:
            # The vendor's budget is spent: every further call would be refused too. Keep
            # what was read; the others keep what we knew (unknown for new vehicles).
            log.warning(
                "capabilities of %d of %d vehicles not read, Stellantis' rate limit is spent: %s",
                len(remote_vehicles) - n, len(remote_vehicles), exc,
            )
            break
        except StellantisError as exc:
            log.info("capabilities of %s not read: %s", rv.vin, exc)

    with transaction.atomic():
        fleet, _ = Fleet.objects.update_or_create(
            external_id=fleet_id,
            defaults={"name": info.name or fleet_id, "description": info.description},
            create_defaults={"name": info.name or fleet_id, "description": info.description, "organisation": organisation},
        )
        if organisation is not None and fleet.organisation_id is None:
            fleet.organisation = organisation
            fleet.save(update_fields=["organisation"])
        known = {v.vin: v for v in Vehicle.objects.filter(vin__in=[rv.vin for rv in remote_vehicles])}
        to_create, to_update = [], []
        for rv in remote_vehicles:
            values = {"fleet": fleet, "external_id": rv.id, "brand": rv.brand, "motorization": rv.motorization}
            if rv.vin in capabilities:
                values["capabilities"] = capabilities[rv.vin]
            if rv.vin in known:
                vehicle = known[rv.vin]
                for field, value in values.items():
                    setattr(vehicle, field, value)
                vehicle.updated_at = timezone.now()
                to_update.append(vehicle)
            else:
                to_create.append(Vehicle(vin=rv.vin, **values))
        Vehicle.objects.bulk_create(to_create, batch_size=500)
        Vehicle.objects.bulk_update(
            to_update, ["fleet", "external_id", "brand", "motorization", "capabilities", "updated_at"], batch_size=500
        )
        fleet.last_synced_at = timezone.now()
        fleet.save(update_fields=["last_synced_at"])
    return ImportResult(fleet=fleet, created=len(to_create), updated=len(to_update))


def import_all_fleets(*, organisation=None, client: FleetClient | None = None) -> list[ImportResult]:
    client = client or FleetClient.from_settings()
    return [import_fleet(fleet_id=f.id, organisation=organisation, client=client) for f in client.fleets()]


def refresh_status(*, vehicle: Vehicle, client: FleetClient | None = None) -> VehicleStatus:
    """Read the vehicle's status from Stellantis and keep it as the latest snapshot."""
    client = client or FleetClient.from_settings()
    body = client.vehicle_status(vehicle.fleet.external_id, vehicle.external_id) or {}
    snap = parse_status(body)
    values = {
        "captured_at": snap.captured_at,
        "fetched_at": timezone.now(),
        "energy_type": snap.energy_type,
        "energy_level": snap.energy_level,
        "autonomy_km": snap.autonomy_km,
        "charging_status": snap.charging_status,
        "plugged": snap.plugged,
        "doors_locked": snap.doors_locked,
        "locked_states": list(snap.locked_states),
        "longitude": snap.longitude,
        "latitude": snap.latitude,
        "position_at": snap.position_at,
        "preconditioning_status": snap.preconditioning_status,
        "ignition": snap.ignition,
        "moving": snap.moving,
        "raw": body,
    }
    status, _ = VehicleStatus.objects.update_or_create(vehicle=vehicle, defaults=values)
    return status
