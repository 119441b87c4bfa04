"""The header's "Approvals (N)": what waits for this person's approval, on every page."""

from functools import cached_property

from accounts import access

from . import approvals


class _Approvals:
    """Lazy: a page that never shows the header (the live timeline fragment) costs nothing,
    and a person who approves nowhere costs no COUNT either."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def shown(self) -> bool:
        organisations = access.access_of(self.user).organisation_ids(access.APPROVE)
        return organisations is None or bool(organisations)  # None: a superuser, everywhere

    @cached_property
    def count(self) -> int:
        return approvals.waiting_for(self.user).count() if self.shown else 0


def approvals_waiting(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"approvals": _Approvals(user)}
