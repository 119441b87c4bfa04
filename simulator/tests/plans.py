"""An unsaved simulated vehicle and a fixed clock, for tests of the scenario's plans."""

import datetime as dt

from simulator.models import SimVehicle

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def vehicle(**state) -> SimVehicle:
    """A healthy, awake, locked, plugged-in electric vehicle, changed by `state`."""
    values = {
        "vin": "VF3TEST0000000001",
        "brand": "Peugeot",
        "motorization": "Electric",
        "energy_level": 60.0,
        "plugged": True,
        "last_driven_at": NOW - dt.timedelta(hours=3),
        **state,
    }
    return SimVehicle(**values)
