from django.db import models


class State(models.TextChoices):
    IN_FLIGHT = "in_flight", "In flight"
    DONE = "done", "Done"


class IdempotentRequest(models.Model):
    """One `Idempotency-Key` of one caller: claimed by INSERT, then the answer to replay.

    The unique constraint on (scope, key) is what decides between two requests carrying the
    same key, in any process: the one whose INSERT lands owns the key (services.claim).
    """

    scope = models.CharField(max_length=64, help_text="Who: token:<pk> for a partner token, user:<pk> for a session.")
    key = models.CharField(max_length=255, help_text="The client's Idempotency-Key, as sent.")
    method = models.CharField(max_length=10)
    path = models.TextField(help_text="Path and query string of the first request.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body: the same key with another request is refused.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    claim = models.UUIDField(help_text="Who holds the row now: only that request may store its answer or release it.")
    created_at = models.DateTimeField(help_text="First claim; the answer is replayed for 24 hours from here.")
    claimed_at = models.DateTimeField(help_text="Last claim; an in-flight row silent past IDEMPOTENCY_STALE_SECONDS is taken over.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True, help_text="Only those worth replaying (Content-Type, Location).")
    response_body = models.BinaryField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_one_request_per_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]

    def __str__(self):
        return f"{self.scope} {self.key} ({self.state})"
