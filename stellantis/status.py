"""Reader of the vendor's vehicle `Status` body: the few values a fleet manager looks at."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .dates import parse_instant


@dataclass(frozen=True)
class StatusSnapshot:
    captured_at: dt.datetime | None
    energy_type: str = ""
    energy_level: float | None = None
    autonomy_km: int | None = None
    charging_status: str = ""
    plugged: bool | None = None
    locked_states: tuple[str, ...] = ()
    longitude: float | None = None
    latitude: float | None = None
    position_at: dt.datetime | None = None
    preconditioning_status: str = ""
    ignition: str = ""
    moving: bool | None = None

    @property
    def doors_locked(self) -> bool | None:
        if not self.locked_states:
            return None
        return any(s in ("Locked", "SuperLocked") for s in self.locked_states)


def _date(value) -> dt.datetime | None:
    """An aware date-time (no offset: UTC), or None when absent or unreadable."""
    try:
        return parse_instant(value)
    except ValueError:
        return None


def parse_status(body: dict) -> StatusSnapshot:
    """Missing fields are simply absent: the vendor warns that any of them may be."""
    energies = body.get("energies") or []
    # Electric first: on a hybrid the battery is what remote charging and preconditioning care about.
    energy = next((e for e in energies if e.get("type") == "Electric"), energies[0] if energies else {})
    charging = (((energy.get("extension") or {}).get("electric") or {}).get("charging")) or {}
    position = body.get("lastPosition") or {}
    coords = ((position.get("geometry") or {}).get("coordinates")) or []
    ac = ((body.get("preconditioning") or {}).get("airConditioning")) or {}
    return StatusSnapshot(
        captured_at=_date(body.get("updatedAt") or body.get("createdAt")),
        energy_type=str(energy.get("type") or ""),
        energy_level=energy.get("level"),
        autonomy_km=energy.get("autonomy"),
        charging_status=str(charging.get("status") or ""),
        plugged=charging.get("plugged"),
        locked_states=tuple((body.get("doorsState") or {}).get("lockedStates") or ()),
        longitude=coords[0] if len(coords) >= 2 else None,
        latitude=coords[1] if len(coords) >= 2 else None,
        position_at=_date((position.get("properties") or {}).get("createdAt")),
        preconditioning_status=str(ac.get("status") or ""),
        ignition=str((body.get("ignition") or {}).get("type") or ""),
        moving=(body.get("kinetic") or {}).get("moving"),
    )
