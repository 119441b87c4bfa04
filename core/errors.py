"""One error type for every domain service.

A service refuses with a `ServiceError` (or a subclass): a message a person can act on,
the field errors keyed by field path (`door.state`, `retry_number`), a machine-readable
`code` and the HTTP status an API answers with. Web pages show `message` and map `errors`
onto form fields; the partner API turns it into one problem document
(`fleetportal.api.exception_handler`). Subclasses only set `status` and `code`.
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 400
    code: str = "invalid"

    def __init__(self, message: str, errors: dict[str, str] | None = None, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {"non_field_errors": message}
        # Members of the problem document beyond the standard ones (e.g. missing_remote_type).
        self.extra = extra or {}
