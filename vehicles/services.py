"""Fleet import: the vendor's fleet and vehicles, mirrored locally through the client."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from stellantis.client import FleetClient
from stellantis.vocabulary import Motorization

from .models import Fleet, Vehicle


@dataclass(frozen=True)
class ImportResult:
    fleet: Fleet
    created: int
    updated: int

    @property
    def total(self) -> int:
        return self.created + self.updated


def import_fleet(*, fleet_id: str, client: FleetClient | None = None) -> ImportResult:
    """Pull the fleet and every page of its vehicles; create new ones, refresh known ones."""
    client = client or FleetClient.from_settings()
    info = client.fleet(fleet_id) or {}
    remote_vehicles = list(client.vehicles(fleet_id))  # all pages, before we write anything

    with transaction.atomic():
        fleet, _ = Fleet.objects.update_or_create(
            external_id=fleet_id,
            defaults={"name": info.get("name") or fleet_id, "description": info.get("description") or ""},
        )
        known = {v.vin: v for v in Vehicle.objects.filter(vin__in=[rv.get("vin") for rv in remote_vehicles])}
        to_create, to_update = [], []
        for rv in remote_vehicles:
            vin = rv.get("vin")
            if not vin:
                continue
            motorization = rv.get("motorization") if rv.get("motorization") in Motorization.values else ""
            values = {"fleet": fleet, "external_id": rv["id"], "brand": rv.get("brand") or "", "motorization": motorization}
            if vin in known:
                vehicle = known[vin]
                for field, value in values.items():
                    setattr(vehicle, field, value)
                vehicle.updated_at = timezone.now()
                to_update.append(vehicle)
            else:
                to_create.append(Vehicle(vin=vin, **values))
        Vehicle.objects.bulk_create(to_create, batch_size=500)
        Vehicle.objects.bulk_update(to_update, ["fleet", "external_id", "brand", "motorization", "updated_at"], batch_size=500)
        fleet.last_synced_at = timezone.now()
        fleet.save(update_fields=["last_synced_at"])
    return ImportResult(fleet=fleet, created=len(to_create), updated=len(to_update))


def import_all_fleets(*, client: FleetClient | None = None) -> list[ImportResult]:
    client = client or FleetClient.from_settings()
    return [import_fleet(fleet_id=f["id"], client=client) for f in client.fleets()]
