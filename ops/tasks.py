"""q2 entry points of the ops app: each calls one service."""

from . import retention


def prune() -> dict:
    """The hourly retention run (schedule `ops-retention`): a time budget under q2's timeout, the next run continues."""
    return retention.summary(retention.prune())
