"""The refusals of an `Idempotency-Key`, in the API's one error shape (core.errors.ServiceError)."""

from core.errors import ServiceError


class InvalidIdempotencyKey(ServiceError):
    status = 400
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(ServiceError):
    status = 422
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(ServiceError):
    status = 409
    code = "idempotency_key_in_use"
