"""Typed errors of the Stellantis client.

`permanent` tells the caller whether trying the same call again can help. `ambiguous`
marks the dangerous middle ground: the request may or may not have reached the vendor
(read time-out, 5xx), so a POST must be looked up before it is ever sent again.

The vendor's error body (`xError`) carries a `uuid` and a `timestamp` that its support
asks for: they are kept on the error and shown in `str(exc)`, so every page, log line and
timeline step that shows the error shows the reference too.
"""

import math


class StellantisError(Exception):
    permanent = False
    ambiguous = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        vendor_message: str = "",
        uuid: str = "",
        timestamp: str = "",
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.vendor_message = vendor_message
        self.uuid = uuid
        self.timestamp = timestamp

    @property
    def support_ref(self) -> str:
        """"support ref <uuid> at <timestamp>", what Stellantis' support asks for; "" without a uuid."""
        if not self.uuid:
            return ""
        return f"support ref {self.uuid}" + (f" at {self.timestamp}" if self.timestamp else "")

    @property
    def for_people(self) -> str:
        """The vendor's own message (or ours) with the support reference: what a person is shown."""
        return " · ".join(p for p in (self.vendor_message or Exception.__str__(self), self.support_ref) if p)

    def __str__(self):
        parts = [super().__str__()]
        if self.status:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code {self.code}")
        if self.support_ref:
            parts.append(self.support_ref)
        return " · ".join(parts)


class VendorRejected(StellantisError):
    """4xx: the vendor understood and refused. Sending the same thing again will not help."""

    permanent = True


class NotFound(VendorRejected):
    pass


class AuthenticationFailed(VendorRejected):
    """401: the vendor does not accept our credentials (Basic auth, certificate, client_id)."""


class NoAccess(VendorRejected):
    """403: our credentials are good, but this account has no access to that vehicle (or fleet)."""


class BadPaging(StellantisError):
    """The vendor's next-page link cannot be followed safely (it points at another host)."""

    permanent = True


class VendorUnavailable(StellantisError):
    """The vendor did not answer usefully (connection refused, 5xx, time-out)."""


class AmbiguousOutcome(VendorUnavailable):
    """The request may have been acted upon (read time-out, 5xx after sending)."""

    ambiguous = True


class TooLate(StellantisError):
    """Not sent: the command's time to live ran out before the request could leave.

    Checked at the last moment (after any wait for the rate-limit budget), so a command is
    never handed to the vendor late; nothing reached the vendor.
    """

    permanent = True


class RateLimited(VendorUnavailable):
    """429, or our shared budget says the vendor's window is spent: nothing was done.

    `retry_after` is how many seconds to wait before calling the vendor again. Never
    ambiguous: the vendor refused before acting (or was not called at all).
    """

    ambiguous = False

    def __init__(self, message: str, *, retry_after: float, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = float(retry_after)

    def __str__(self):
        return f"{super().__str__()} · retry in {math.ceil(self.retry_after)} s"
