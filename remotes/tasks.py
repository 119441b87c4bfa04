"""q2 entry points: load by id, call one service."""

from . import services


def submit_remote_action(action_id: str) -> str:
    return services.submit_remote_action(action_id=action_id)


def sweep() -> dict:
    return services.sweep()


def reconcile() -> dict:
    return services.reconcile()
