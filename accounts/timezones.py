"""Each person's time zone: stored as a preference, carried in the session, activated per request.

The middleware costs no query: the zone is put in the session when the person logs in (and
when they change it); a session from before that is filled once. Without a choice yet, pages
show the portal's zone (settings.TIME_ZONE) and static/js/timezone.js sends the browser's
zone once, which becomes the person's choice until they pick another.
"""

from __future__ import annotations

import functools
import zoneinfo

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

SESSION_KEY = "time_zone"


@functools.cache
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def valid_zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name or name not in zone_names():
        return None
    return zoneinfo.ZoneInfo(name)


def stored_zone(user) -> str:
    from .models import Preference

    return Preference.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


def set_zone(request, name: str, *, only_if_unset: bool = False) -> bool:
    """Save `name` as the person's zone (and in their session); False when refused or already set."""
    from .models import Preference

    if valid_zone(name) is None:
        return False
    if only_if_unset:
        pref, created = Preference.objects.get_or_create(user=request.user, defaults={"time_zone": name})
        if not created and pref.time_zone:
            request.session[SESSION_KEY] = pref.time_zone
            return False
        if not created:
            Preference.objects.filter(pk=pref.pk, time_zone="").update(time_zone=name)
    else:
        Preference.objects.update_or_create(user=request.user, defaults={"time_zone": name})
    request.session[SESSION_KEY] = name
    return True


@receiver(user_logged_in)
def _remember_zone_at_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = stored_zone(user)


class TimeZoneMiddleware:
    """Activates the person's zone, so `timezone.localtime()` and `|date` speak it (after auth)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = ""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            name = request.session.get(SESSION_KEY)
            if name is None:  # a session from before zones were kept: filled once
                name = request.session[SESSION_KEY] = stored_zone(user)
        zone = valid_zone(name)
        request.time_zone_chosen = zone is not None
        zone = zone or zoneinfo.ZoneInfo(settings.TIME_ZONE)
        request.time_zone = zone.key
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
