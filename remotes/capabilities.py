"""What each vehicle can do: the nine remote features, and why one is not available.

Two sources: the motorization (charging and preconditioning need an electrified one) and
the vendor's `onboardCapabilities`, read by `stellantis.capabilities` (which also tells
whether the remote-control service is subscribed at all). Unknown capabilities (never
imported) are assumed available; the vendor then has the last word (`MissingRights`).
"""

from __future__ import annotations

from dataclasses import dataclass

from stellantis import behaviour
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


# --- what the vehicle's state allows now (stolen, immobilized) -------------------------------

# Members Stellantis still takes from a vehicle reported stolen (NotPossibleDueToVehicleStolenState
# for every other): the vendor's rule, in stellantis.behaviour.
ALLOWED_WHILE_STOLEN = behaviour.ALLOWED_WHILE_STOLEN


@dataclass(frozen=True)
class Theft:
    """Stolen and immobilized, as far as the portal knows: the vehicle's status says stolen while it
    is (the vendor's `stolen` object), and our own successful commands say the rest."""

    stolen: bool = False
    immobilized: bool = False


def theft_state(vehicle, snapshot=None) -> Theft:
    """One query: the latest successful stolen and immobilization commands, and the status read."""
    from .models import ActionStatus, RemoteAction

    stolen = immobilized = None
    recent = (
        RemoteAction.objects.filter(
            vehicle=vehicle, status__in=(ActionStatus.SUCCESS, ActionStatus.ALREADY_DONE),
            remote_type__in=(RemoteType.STOLEN, RemoteType.IMMOBILIZATION),
        )
        .order_by("-created_at")
        .values_list("command", "created_at")[:50]
    )
    stolen_at = None
    for command, created_at in recent:
        ((member, body),) = command.items()
        if stolen is None and member == "stolen" and "stolen" in body:
            stolen, stolen_at = bool(body["stolen"]), created_at
        sub = body if member == "immobilization" else body.get("immobilization") if member == "stolen" else None
        if immobilized is None and isinstance(sub, dict) and "activate" in sub:
            immobilized = bool(sub["activate"])
        if stolen is not None and immobilized is not None:
            break
    # The status read after our last declaration wins (a declaration made elsewhere, or undone).
    if snapshot is not None and snapshot.captured_at and (stolen_at is None or snapshot.captured_at > stolen_at):
        stolen = bool(((snapshot.raw or {}).get("stolen") or {}).get("state"))
    return Theft(stolen=bool(stolen), immobilized=bool(immobilized))


STOLEN_REASON = "The vehicle is reported stolen: Stellantis takes only stolen-vehicle and immobilization commands until it is declared recovered."


def command_availability(vehicle, member: str, theft: Theft | None = None) -> Availability:
    """`availability`, and what the vehicle's state refuses now (a stolen vehicle takes only theft commands)."""
    verdict = availability(vehicle, member)
    if verdict.available and theft is not None and theft.stolen and member not in ALLOWED_WHILE_STOLEN:
        return Availability(verdict.feature, False, STOLEN_REASON)
    return verdict
