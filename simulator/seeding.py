"""Seeding the simulator: a plausible fleet with valid VINs, and a few troubled vehicles for a demo."""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import uuid
from collections import defaultdict

from django.utils import timezone

from stellantis.vocabulary import ELECTRIFIED, Motorization

from . import scenario
from .models import DEEP_SLEEP_AFTER, SimFleet, SimVehicle, current_month

log = logging.getLogger(__name__)

# (brand, WMI, weight): Stellantis brands the portal drives, with their manufacturer codes.
BRANDS = [
    ("Peugeot", "VF3", 30),
    ("Citroën", "VF7", 25),
    ("DS", "VR1", 10),
    ("Opel", "W0L", 20),
    ("Vauxhall", "W0V", 15),
]
MOTORIZATIONS = [
    (Motorization.ELECTRIC, 35),
    (Motorization.HYBRID, 25),
    (Motorization.THERMIC, 37),
    (Motorization.HYDROGEN, 3),
]
VIN_CHARACTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q
_VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True))}
_VIN_VALUES.update(dict(zip("JKLMN", range(1, 6), strict=True)))
_VIN_VALUES.update({"P": 7, "R": 9})
_VIN_VALUES.update(dict(zip("STUVWXYZ", range(2, 10), strict=True)))
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
MODEL_YEARS = "LMNPRS"  # 2020 … 2025
# Cities the vehicles are parked around, by market.
CITIES = {
    "FR": [
        (2.3522, 48.8566),
        (4.8357, 45.7640),
        (5.3698, 43.2965),
        (3.0573, 50.6292),
        (-1.6778, 48.1173),
        (7.7521, 48.5734),
    ],
    "DE": [(8.4232, 49.9929), (13.4050, 52.5200), (6.9603, 50.9375)],
    "GB": [(-0.1276, 51.5072), (-0.4200, 51.8787), (-2.2426, 53.4808)],
}
_MARKET = {"Opel": "DE", "Vauxhall": "GB"}
_ID_NAMESPACE = uuid.UUID("5b0e8f0e-3c1a-4d53-9a55-0c7f1ee7a001")


def vin_check_digit(vin: str) -> str:
    """Position 9 of a VIN: weighted sum of the transliterated characters modulo 11, 10 written X."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin.upper(), _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _make_vin(rng: random.Random, wmi: str) -> str:
    vds = "".join(rng.choice(VIN_CHARACTERS) for _ in range(5))
    year = rng.choice(MODEL_YEARS)
    plant = rng.choice(VIN_CHARACTERS)
    serial = f"{rng.randrange(1_000_000):06d}"
    vin = f"{wmi}{vds}0{year}{plant}{serial}"
    return vin[:8] + vin_check_digit(vin) + vin[9:]


# Fleets this large get a demo's mix of troubled vehicles; smaller ones (tests) stay healthy.
TRAITS_FROM = 20
# The first vehicles by VIN are always fit for every command: the portal's tests and a demo's
# first click pick them.
SAFE_FIRST = 2
LOW_BATTERY_LEVELS = (5.0, 12.0)


def seed_world(*, fleet_name: str, vehicle_count: int, seed: int) -> SimFleet:
    """A fleet of `vehicle_count` plausible vehicles, the same every time for the same name and seed.

    From TRAITS_FROM vehicles on, a few are troubled so a demo shows failures (see `_give_traits`).
    """
    fleet_id = uuid.uuid5(_ID_NAMESPACE, f"fleet:{fleet_name}:{seed}").hex
    fleet, _ = SimFleet.objects.get_or_create(
        pk=fleet_id,
        defaults={"name": fleet_name, "description": f"Simulated fleet (seed {seed})", "seed": seed},
    )
    # The name joins the seed so two fleets seeded alike still get distinct (unique) VINs.
    rng = random.Random(f"{fleet_name}:{seed}")
    now = timezone.now()
    vins: set[str] = set()
    vehicles = []
    for index in range(vehicle_count):
        brand, wmi, _weight = rng.choices(BRANDS, weights=[b[2] for b in BRANDS])[0]
        vin = _make_vin(rng, wmi)
        while vin in vins:
            vin = _make_vin(rng, wmi)
        vins.add(vin)
        motorization = rng.choices(MOTORIZATIONS, weights=[m[1] for m in MOTORIZATIONS])[0][0]
        electrified = motorization != Motorization.THERMIC
        level = round(rng.uniform(12.0, 96.0), 1)
        if level < scenario.LOW_BATTERY_LEVEL:
            # Only the low-battery trait goes below the threshold (lifted without a new draw,
            # so the VINs stay those earlier seeds gave).
            level = round(level + scenario.LOW_BATTERY_LEVEL, 1)
        range_km = _range_km(rng, motorization)
        plugged = electrified and rng.random() < 0.3
        lon, lat = rng.choice(CITIES[_MARKET.get(brand, "FR")])
        vehicles.append(
            SimVehicle(
                id=uuid.uuid5(_ID_NAMESPACE, f"vehicle:{vin}").hex,
                fleet=fleet,
                vin=vin,
                brand=brand,
                motorization=motorization,
                # A few doze (one for sure from the second vehicle on, so demos always have one).
                asleep=rng.random() < 0.2 or index == 1,
                online=True,
                doors_locked=True,
                energy_level=level,
                autonomy_km=math.floor(level / 100 * range_km),
                plugged=plugged,
                charging=plugged and level < 80 and rng.random() < 0.5,
                longitude=round(lon + rng.uniform(-0.08, 0.08), 6),
                latitude=round(lat + rng.uniform(-0.05, 0.05), 6),
                last_driven_at=now - dt.timedelta(minutes=rng.randrange(10, 60 * 72)),
                created_at=now,
            )
        )
    by_vin = sorted(vehicles, key=lambda v: v.vin)
    for vehicle in by_vin[:SAFE_FIRST]:
        _make_fit(vehicle)
    if vehicle_count >= TRAITS_FROM:
        given = _give_traits(by_vin[SAFE_FIRST:], rng=random.Random(f"{fleet_name}:{seed}:traits"), now=now)
        log.info("seeding %s: troubled vehicles %s", fleet_name, given)
    # Idempotent and safe against a concurrent seeding: existing rows are left alone.
    SimVehicle.objects.bulk_create(vehicles, ignore_conflicts=True, batch_size=500)
    return fleet


def _range_km(rng: random.Random, motorization: str) -> float:
    """Range on a full tank or battery, km."""
    if motorization == Motorization.ELECTRIC:
        return rng.uniform(250, 420)
    if motorization == Motorization.HYBRID:
        return rng.uniform(45, 65)
    if motorization == Motorization.HYDROGEN:
        return rng.uniform(350, 420)
    return rng.uniform(600, 900)


def _make_fit(vehicle: SimVehicle) -> None:
    """Electrified, plugged in and not yet charging: every command can succeed on it."""
    if vehicle.motorization not in ELECTRIFIED:
        vehicle.motorization = Motorization.ELECTRIC
        vehicle.autonomy_km = math.floor(vehicle.energy_level / 100 * 330)
    vehicle.plugged, vehicle.charging = True, False


# One vehicle each (two offline from 50 vehicles on), in this order; see `_give_traits`.
TRAITS = ("offline", "deep_sleep", "no_subscription", "door_open", "in_use", "low_battery", "wake_ups_spent")


def _give_traits(candidates: list[SimVehicle], *, rng: random.Random, now: dt.datetime) -> dict[str, list[str]]:
    """Make a few vehicles troubled, each in one way, so a demo meets every common failure.

    offline → VehicleConnectionTimeout; deep sleep → VehicleConnectionTimeout after a long
    wait; no subscription → MissingRights; door open → DoorsOpen on a lock; in use →
    VehicleInUse on a charge or immobilization; low battery (an EV) → preconditioning refused
    (NotPossibleDueToVehicleBatteryLevel); wake-ups spent → TooManyWakeUpsOverMonth.
    Answers the VINs per trait.
    """
    pool = list(candidates)
    rng.shuffle(pool)
    given: dict[str, list[str]] = defaultdict(list)

    def take(*, prefer=None) -> SimVehicle | None:
        for vehicle in pool:
            if prefer is None or prefer(vehicle):
                pool.remove(vehicle)
                return vehicle
        return pool.pop(0) if pool and prefer is not None else None

    offline_count = 2 if len(candidates) + SAFE_FIRST >= 50 else 1
    for trait in TRAITS:
        for _ in range(offline_count if trait == "offline" else 1):
            prefer = (lambda v: v.motorization == Motorization.ELECTRIC) if trait == "low_battery" else None
            vehicle = take(prefer=prefer)
            if vehicle is None:
                return dict(given)
            _TRAIT_SETTERS[trait](vehicle, rng, now)
            given[trait].append(vehicle.vin)
    return dict(given)


def _offline(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.online = False


def _deep_sleep(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.asleep, vehicle.charging = True, False
    vehicle.last_driven_at = now - DEEP_SLEEP_AFTER - dt.timedelta(days=rng.randrange(5, 40))


def _no_subscription(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.remote_subscribed = False


def _door_open(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.door_open, vehicle.doors_locked = True, False


def _in_use(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    vehicle.in_use, vehicle.asleep, vehicle.plugged, vehicle.charging = True, False, False, False
    vehicle.last_driven_at = now


def _low_battery(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    if vehicle.motorization not in ELECTRIFIED:
        vehicle.motorization = Motorization.ELECTRIC
    old = vehicle.energy_level
    vehicle.energy_level = round(rng.uniform(*LOW_BATTERY_LEVELS), 1)
    vehicle.autonomy_km = math.floor(vehicle.autonomy_km * vehicle.energy_level / old) if old else 0
    vehicle.charging = False


def _wake_ups_spent(vehicle: SimVehicle, rng: random.Random, now: dt.datetime) -> None:
    # Asleep, so the next remote needs a wake-up the budget no longer allows (until next month).
    vehicle.asleep, vehicle.charging = True, False
    vehicle.wake_ups_used = vehicle.wake_up_budget
    vehicle.wake_up_month = current_month(now)


_TRAIT_SETTERS = {
    "offline": _offline,
    "deep_sleep": _deep_sleep,
    "no_subscription": _no_subscription,
    "door_open": _door_open,
    "in_use": _in_use,
    "low_battery": _low_battery,
    "wake_ups_spent": _wake_ups_spent,
}
