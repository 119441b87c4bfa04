"""wire.Links builds from cached path templates the same text build_absolute_uri(reverse(…)) gives."""

import pytest
from django.test import RequestFactory
from django.urls import reverse, set_script_prefix

from simulator import wire

pytestmark = pytest.mark.urls("simulator.tests.urls")

KWARGS = [
    ("fleet", {"fleet_id": "84afe8c25b18598fa8967a9ee111a837"}),
    ("callback", {"fleet_id": "f-1_A", "callback_id": "c0e1911a9a6544a1b3704fff74b37cb4"}),
    ("remote", {"fleet_id": "f", "vehicle_id": "v", "callback_id": "c", "action_id": "a"}),
    ("vehicle-status", {"fleet_id": "f", "vehicle_id": "v"}),
    # Values reverse() quotes: not from a template, and still the same.
    ("fleet", {"fleet_id": "a b"}),
    ("fleet", {"fleet_id": "é?#%"}),
    ("vehicle", {"fleet_id": "f", "vehicle_id": "x:y@z"}),
]


@pytest.mark.parametrize("prefix", ["/", "/under/a proxy/"])
@pytest.mark.parametrize("host", ["testserver", "portal.example:8443"])
def test_links_are_what_reverse_and_build_absolute_uri_say(prefix, host, settings):
    settings.ALLOWED_HOSTS = ["*"]
    request = RequestFactory().get("/", HTTP_HOST=host, secure=host.endswith("8443"))
    set_script_prefix(prefix)
    try:
        links = wire.Links(request)
        for name, kwargs in KWARGS:
            expected = request.build_absolute_uri(reverse(f"simulator:{name}", kwargs=kwargs))
            assert links(name, **kwargs) == {"href": expected}, (name, kwargs)
    finally:
        set_script_prefix("/")
