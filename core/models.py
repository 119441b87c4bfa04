"""What every worker shares about the vendor: the hold-off its rate limits impose."""

from django.db import models


class VendorBudget(models.Model):
    """One row per vendor account: until when nobody may call it, and why.

    Written only when the vendor says a window is spent (or 429) and when a probe after a
    hold comes back fine; read before calls (`core.ratelimit.DatabasePacer`: at most every half second per process while nothing is held).
    """

    name = models.CharField(primary_key=True, max_length=64)
    hold_until = models.DateTimeField(null=True, blank=True, help_text="No call to the vendor before this time.")
    reason = models.CharField(max_length=200, blank=True, help_text="What the vendor said (429, which window is spent).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "vendor rate-limit budget"

    def __str__(self):
        return f"{self.name}: held until {self.hold_until:%Y-%m-%d %H:%M:%S}" if self.hold_until else f"{self.name}: open"
