"""What each vehicle can do: the nine remote features, and why one is not available.

Two sources: the motorization (charging and preconditioning need an electrified one) and
the vendor's `onboardCapabilities`, read by `stellantis.capabilities` (which also tells
whether the remote-control service is subscribed at all). Unknown capabilities (never
imported) are assumed available; the vendor then has the last word (`MissingRights`).
"""

from __future__ import annotations

from dataclasses import dataclass

from stellantis.capabilities import RemoteSupport, remote_support
from stellantis.remotes import MAY_BE_DANGEROUS
from stellantis.vocabulary import ELECTRIFIED, RemoteType


@dataclass(frozen=True)
class Feature:
    member: str  # the `Remote` member
    remote_type: str
    label: str
    capability: str  # the vendor's name for it among the remote capabilities
    needs_electrified: bool = False

    @property
    def dangerous(self) -> bool:
        """Some command of this feature needs a confirmation (for doors: unlocking)."""
        return self.member in MAY_BE_DANGEROUS


FEATURES = [
    Feature("charging", RemoteType.CHARGING, "Charging", "charging", needs_electrified=True),
    Feature("preconditioning", RemoteType.THERMAL_PRECONDITIONING, "Preconditioning", "preconditioning", needs_electrified=True),
    Feature("door", RemoteType.DOORS, "Doors", "door"),
    Feature("horn", RemoteType.HORN, "Horn", "horn"),
    Feature("lights", RemoteType.LIGHTS, "Lights", "lights"),
    Feature("wakeUp", RemoteType.WAKE_UP, "State refresh", "wakeup"),
    Feature("navigation", RemoteType.NAVIGATION, "Navigation", "navigation"),
    Feature("immobilization", RemoteType.IMMOBILIZATION, "Immobilization", "stolen"),
    Feature("stolen", RemoteType.STOLEN, "Stolen", "stolen"),
]
BY_MEMBER = {f.member: f for f in FEATURES}


@dataclass(frozen=True)
class Availability:
    feature: Feature
    available: bool
    reason: str = ""


def availability(vehicle, member: str) -> Availability:
    feature = BY_MEMBER[member]
    if feature.needs_electrified and vehicle.motorization and vehicle.motorization not in ELECTRIFIED:
        return Availability(feature, False, f"{feature.label} needs an electric or plug-in hybrid vehicle; this one is {vehicle.get_motorization_display().lower()}.")
    support = remote_support(vehicle.capabilities, feature.capability)
    if support == RemoteSupport.NOT_SUBSCRIBED:
        return Availability(feature, False, "This vehicle has no remote-control service subscribed.")
    if support == RemoteSupport.UNSUPPORTED:
        return Availability(feature, False, f"Stellantis reports that this vehicle does not support remote {feature.label.lower()}.")
    return Availability(feature, True)


def all_availability(vehicle) -> list[Availability]:
    return [availability(vehicle, f.member) for f in FEATURES]
