"""Typed errors of the Stellantis client.

`permanent` tells the caller whether trying the same call again can help. `ambiguous`
marks the dangerous middle ground: the request may or may not have reached the vendor
(read time-out, 5xx), so a POST must be looked up before it is ever sent again.
"""


class StellantisError(Exception):
    permanent = False
    ambiguous = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None, vendor_message: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.vendor_message = vendor_message

    def __str__(self):
        parts = [super().__str__()]
        if self.status:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code {self.code}")
        return " · ".join(parts)


class VendorRejected(StellantisError):
    """4xx: the vendor understood and refused. Sending the same thing again will not help."""

    permanent = True


class NotFound(VendorRejected):
    pass


class AuthenticationFailed(VendorRejected):
    pass


class VendorUnavailable(StellantisError):
    """The vendor did not answer usefully (connection refused, 5xx, time-out)."""


class AmbiguousOutcome(VendorUnavailable):
    """The request may have been acted upon (read time-out, 5xx after sending)."""

    ambiguous = True
