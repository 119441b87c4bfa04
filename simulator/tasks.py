"""django-q2 entry points of the simulator."""

from .pump import PUMP_BUDGET
from .pump import pump as run_pump


def pump() -> None:
    """Raise due events and deliver due notifications for up to 45 s (q2 kills tasks at 60 s)."""
    run_pump(max_seconds=PUMP_BUDGET)
