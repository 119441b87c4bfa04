"""django-q2 entry points of the simulator."""

from . import pump as _pump


def pump() -> None:
    """One slice of pump work (`pump.slice_seconds()`, far within q2's 60 s time-out); re-armed while work remains."""
    _pump.pump()


def pump_safety_net() -> None:
    """Every minute (schedule of migration 0006): a slice if anything is waiting.

    Covers a pump task that never ran its follow-up: killed by q2's time-out or with its
    worker, or lost from the queue. Without it, work left then waits for the next remote.
    """
    if _pump.next_work_at() is not None:
        _pump.pump()
