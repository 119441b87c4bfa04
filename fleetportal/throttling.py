"""The partner API's rate limit: one budget per API token, counted in the shared cache.

A request authenticated by a partner token is counted under that token (its id: the cache
never holds a usable key); one authenticated by a session (a person using the API from the
portal) under the user. Anonymous requests never get here: they are refused (401) first.
Past the rate DRF raises `Throttled`, which `fleetportal.api.exception_handler` answers as a
429 problem document with code "throttled", keeping DRF's `Retry-After` header.
The webhook sets `throttle_classes = []`: Stellantis must never be slowed down by us.
"""

from __future__ import annotations

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class PartnerRateThrottle(SimpleRateThrottle):
    scope = "partner"  # REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["partner"] = API_THROTTLE_RATE

    def __init__(self):
        self.cache = caches["shared"]  # every web process counts in the same place (settings.CACHES)
        super().__init__()

    def get_rate(self):
        # Read when the throttle is made, not when the class was imported (as DRF's default does).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        token = getattr(request.user, "token", None)  # accounts.access.TokenUser
        if token is not None:
            ident = f"token-{token.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None  # not counted (unreachable today: permission refuses anonymous first)
        return self.cache_format % {"scope": self.scope, "ident": ident}
