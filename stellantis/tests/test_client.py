"""The client against the simulator over HTTP: auth on every call, paging, typed errors."""

import pytest

from simulator.seeding import seed_world
from stellantis.client import ClientConfig, FleetClient
from stellantis.errors import AmbiguousOutcome, AuthenticationFailed, NotFound, VendorRejected, VendorUnavailable

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(stack, settings, **kw):
    # The simulator always demands Basic auth; the stack fixture gives the client its credentials.
    kw = {"user": settings.STELLANTIS_USER, "password": settings.STELLANTIS_PASSWORD, **kw}
    return FleetClient(ClientConfig(base_url=f"{stack.url}/{settings.SIMULATOR_PATH}", client_id="fleetportal-test", **kw))


def test_it_reads_every_page_of_a_large_fleet_once(stack, settings):
    fleet = seed_world(fleet_name="Big", vehicle_count=130, seed=3)
    client = client_for(stack, settings)

    vins = [v.vin for v in client.vehicles(fleet.id, page_size=60)]

    assert len(vins) == 130 == len(set(vins))


def test_it_sends_basic_auth_when_the_vendor_demands_it(stack, settings):
    settings.SIMULATOR_CREDENTIALS = "fleet:s3cret"
    fleet = seed_world(fleet_name="Auth", vehicle_count=1, seed=4)

    with pytest.raises(AuthenticationFailed) as exc:
        client_for(stack, settings).fleet(fleet.id)
    assert exc.value.status == 401 and exc.value.permanent

    assert client_for(stack, settings, user="fleet", password="s3cret").fleet(fleet.id).name == "Auth"


def test_vendor_errors_are_typed_with_code_and_message(stack, settings):
    client = client_for(stack, settings)
    with pytest.raises(NotFound) as exc:
        client.fleet("ffff0000")
    assert exc.value.status == 404 and exc.value.code
    assert isinstance(exc.value, VendorRejected) and not exc.value.ambiguous
    # The simulator's xError carries a support reference, as the vendor's does; it shows.
    assert exc.value.uuid and exc.value.timestamp
    assert f"support ref {exc.value.uuid} at {exc.value.timestamp}" in str(exc.value)


def test_a_server_that_is_not_there_is_unavailable_not_ambiguous(settings):
    client = FleetClient(ClientConfig(base_url="http://127.0.0.1:9/v3", client_id="x", timeout=(1, 1)))
    with pytest.raises(VendorUnavailable) as exc:
        client.fleet("f")
    assert not isinstance(exc.value, AmbiguousOutcome)


def test_mutual_tls_and_credentials_are_set_on_the_session():
    client = FleetClient(ClientConfig(base_url="https://api.example/v3", client_id="x", user="u", password="p", cert="/c.pem", key="/k.pem", ca="/ca.pem"))
    assert client.session.cert == ("/c.pem", "/k.pem")
    assert client.session.verify == "/ca.pem"
    assert client.session.auth == ("u", "p")
