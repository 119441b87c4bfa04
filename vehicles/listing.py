"""The vehicle list's selection: which vehicles a list URL's query names, for one user.

One function, so that the page, its CSV export and a bulk request made from a "saved filter"
(the same query string) always pick the same vehicles.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import QueryDict

from .models import Fleet, Vehicle


def matching(user, params: QueryDict | dict):
    """The vehicles `user` may see that the list's filters in `params` select (unordered)."""
    vehicles = Vehicle.objects.visible_to(user)
    q = (params.get("q") or "").strip()
    if q:
        vehicles = vehicles.filter(Q(vin__icontains=q) | Q(brand__icontains=q))
    fleet = params.get("fleet")
    if fleet:
        vehicles = vehicles.filter(fleet__in=Fleet.objects.visible_to(user).filter(external_id=fleet))
    return vehicles
