"""django-q2 entry points of the simulator."""

from . import services


def pump() -> None:
    """Raise due events and deliver due notifications for up to 45 s (q2 kills tasks at 60 s)."""
    services.pump(max_seconds=services.PUMP_BUDGET)
