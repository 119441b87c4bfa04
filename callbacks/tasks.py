"""q2 entry points: call one service."""

from . import services


def refresh_statuses() -> dict:
    """Read every live callback's status back from Stellantis (schedule `callbacks-refresh-status`)."""
    return services.refresh_callback_statuses().as_dict()
