"""q2 entry points."""

from . import services


def sweep_expired() -> int:
    return services.sweep_expired()
