"""q2 entry points: load by id, call one service."""

from . import services


def run(bulk_id: str) -> str:
    return services.run(bulk_id)


def run_lane(bulk_id: str, number: int) -> str:
    return services.run_lane(bulk_id, number)


def sweep() -> dict:
    return services.sweep()


def notify_finished(bulk_id: str) -> int:
    return services.notify_finished(bulk_id)


def notify_approvers(bulk_id: str) -> int:
    return services.notify_approvers(bulk_id)
