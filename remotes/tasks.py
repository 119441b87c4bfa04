"""q2 entry points: load by id, call one service."""

from . import approvals, services


def submit_remote_action(action_id: str) -> str:
    return services.submit_remote_action(action_id=action_id)


def sweep() -> dict:
    return {**services.sweep(), "expired_unapproved": approvals.expire_unapproved()}


def reconcile() -> dict:
    return services.reconcile()


def notify_approvers(action_id: str) -> int:
    return approvals.notify_approvers(action_id)


def verify_outcome(action_id: str, attempt: int = 1) -> str:
    from . import verification

    return verification.verify(action_id=action_id, attempt=attempt)
