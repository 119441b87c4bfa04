"""Fleet import: the vendor's fleet and vehicles, mirrored locally through the client."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.core.cache import caches
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

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

    fleet, created, updated = _store(fleet_id=fleet_id, info=info, remote_vehicles=remote_vehicles, capabilities=capabilities,
                                     organisation=organisation, synced=True)
    return ImportResult(fleet=fleet, created=created, updated=updated)


def _store(*, fleet_id, info, remote_vehicles, capabilities: dict, organisation, synced: bool) -> tuple[Fleet, int, int]:
    """Create or refresh the fleet and its vehicles in one transaction; a vehicle whose
    capabilities were not read keeps what we knew (unknown for a new one)."""
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
        if synced:
            fleet.last_synced_at = timezone.now()
            fleet.save(update_fields=["last_synced_at"])
    return fleet, len(to_create), len(to_update)


# --- the same import in the background (the admin's action) ------------------------------------
#
# 9,000 vehicles took 85 s inside the admin's request: one vendor call per vehicle for its
# capabilities. In the background it runs as a chain of q2 tasks, each a slice of at most
# VEHICLE_IMPORT_SLICE_SECONDS (q2 kills a task after 60 s): the first reads the fleet and
# every page of its vehicles and stores them (known vehicles keep their capabilities, new ones
# are "unknown" until read), then each slice reads the capabilities of the next vehicles by
# VIN and enqueues the next slice after its commit. Progress lives in the shared cache (every
# process sees it) under the fleet's key; the fleet's last_synced_at is set when the last
# slice is done. One import per fleet at a time: a lock in the same cache, claimed with add().

IMPORT_SLICE_SECONDS = 20.0  # a third of q2's time-out: a slow vendor call still ends in time
IMPORT_LOCK_SECONDS = 600  # a run whose worker died frees its fleet after this long without a slice
IMPORT_PROGRESS_SECONDS = 7 * 24 * 3600
IMPORT_TASK = "vehicles.tasks.import_fleet_slice"


def _import_cache():
    return caches["shared"]


def _lock_key(fleet_pk: int) -> str:
    return f"fleet-import-lock:{fleet_pk}"


def _progress_key(fleet_pk: int) -> str:
    return f"fleet-import:{fleet_pk}"


def import_progress(fleet: Fleet) -> dict | None:
    """The fleet's last background import: {state: running|done|failed, total, done, created,
    updated, started_at, finished_at, message}; None if none is known."""
    return _import_cache().get(_progress_key(fleet.pk))


def _save_progress(fleet_pk: int, **values) -> dict:
    cache = _import_cache()
    progress = {**(cache.get(_progress_key(fleet_pk)) or {}), **values}
    cache.set(_progress_key(fleet_pk), progress, IMPORT_PROGRESS_SECONDS)
    return progress


def start_fleet_import(*, fleet: Fleet) -> bool:
    """Start importing `fleet` in the background; False when an import of it is already running."""
    run = uuid.uuid4().hex
    if not _import_cache().add(_lock_key(fleet.pk), run, IMPORT_LOCK_SECONDS):
        return False
    _import_cache().set(_progress_key(fleet.pk), {
        "run": run, "state": "running", "total": None, "done": 0, "created": 0, "updated": 0,
        "started_at": timezone.now().isoformat(), "finished_at": None, "message": "Reading the fleet's vehicles from Stellantis…",
    }, IMPORT_PROGRESS_SECONDS)
    transaction.on_commit(lambda: async_task(IMPORT_TASK, fleet.pk, run, None, task_name=f"fleet-import-{fleet.pk}-{run[:8]}"))
    return True


def import_fleet_slice(*, fleet_pk: int, run: str, after_vin: str | None, client: FleetClient | None = None,
                       budget: float | None = None) -> str:
    """One slice of a background import: the listing first (after_vin None), then capabilities
    until the time budget is spent; enqueues the next slice while vehicles remain."""
    cache = _import_cache()
    if cache.get(_lock_key(fleet_pk)) != run:
        return "another import of this fleet took over (or this one was abandoned)"
    cache.set(_lock_key(fleet_pk), run, IMPORT_LOCK_SECONDS)  # still alive
    started = time.monotonic()
    budget = IMPORT_SLICE_SECONDS if budget is None else budget
    fleet = Fleet.objects.get(pk=fleet_pk)
    client = client or FleetClient.from_settings()
    try:
        if after_vin is None:
            info = client.fleet(fleet.external_id)
            remote_vehicles = [rv for rv in client.vehicles(fleet.external_id) if rv.vin]
            _, created, updated = _store(fleet_id=fleet.external_id, info=info, remote_vehicles=remote_vehicles, capabilities={},
                                         organisation=None, synced=False)
            _save_progress(fleet_pk, total=len(remote_vehicles), created=created, updated=updated, done=0,
                           message="Reading each vehicle's capabilities…")
            after_vin = ""
        remaining = Vehicle.objects.filter(fleet_id=fleet_pk, vin__gt=after_vin).order_by("vin").values_list("pk", "vin", "external_id")
        read, last_vin, stopped, tried = {}, after_vin, "", 0
        for pk, vin, external_id in remaining.iterator(chunk_size=500):
            if tried and time.monotonic() - started > budget:
                break  # at least one vehicle per slice: the chain always moves on
            tried += 1
            try:
                read[pk] = client.vehicle_capabilities(fleet.external_id, external_id)
            except RateLimited as exc:
                stopped = f"Stellantis' rate limit is spent, the other vehicles keep what we knew: {exc}"
                break
            except StellantisError as exc:
                log.info("capabilities of %s not read: %s", vin, exc)
            last_vin = vin
        else:
            last_vin = None  # every vehicle read
    except StellantisError as exc:
        cache.delete(_lock_key(fleet_pk))
        _save_progress(fleet_pk, state="failed", finished_at=timezone.now().isoformat(), message=f"Import failed: {exc}")
        return f"import of fleet {fleet_pk} failed: {exc}"
    with transaction.atomic():
        if read:
            vehicles, now = list(Vehicle.objects.filter(pk__in=read).only("pk")), timezone.now()
            for vehicle in vehicles:
                vehicle.capabilities, vehicle.updated_at = read[vehicle.pk], now
            Vehicle.objects.bulk_update(vehicles, ["capabilities", "updated_at"], batch_size=500)
        progress = _save_progress(fleet_pk, done=(import_progress(fleet) or {}).get("done", 0) + len(read))
        if last_vin is None or stopped:
            Fleet.objects.filter(pk=fleet_pk).update(last_synced_at=timezone.now())
            cache.delete(_lock_key(fleet_pk))
            progress = _save_progress(fleet_pk, state="done", finished_at=timezone.now().isoformat(),
                                      message=stopped or f"{progress['created']} new, {progress['updated']} refreshed vehicles.")
            return f"import of fleet {fleet_pk} done"
        transaction.on_commit(lambda: async_task(IMPORT_TASK, fleet_pk, run, last_vin, task_name=f"fleet-import-{fleet_pk}-{run[:8]}-{last_vin}"))
    return f"import of fleet {fleet_pk}: {progress['done']} of {progress['total']} vehicles read, continuing after {last_vin}"


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
