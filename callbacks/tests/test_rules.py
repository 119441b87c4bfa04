"""The RemoteCallbackSubscribe rules the portal checks before Stellantis sees a callback."""

import pytest

from callbacks import rules

GOOD = {
    "name": "fleetportal", "retry_policy": "None", "retry_number": 3, "retry_delay": 10, "batch_size": None,
    "batch_time_window": None, "remote_types": ["Horn"], "attributes": [], "reserved_header": "X-Fleetportal-Secret",
}


def target_error(target: str):
    return rules.check(target=target, **GOOD).get("target")


@pytest.mark.parametrize(
    "target",
    [
        "https://127.0.0.1/hook", "https://localhost:8443/hook", "https://10.1.2.3/hook", "https://192.168.1.10/hook",
        "https://172.16.0.5/hook", "https://169.254.169.254/latest", "https://[::1]/hook", "https://[fe80::1]/hook",
        "https://printer.local/hook", "https://portal.internal/hook",
    ],
)
def test_with_the_real_api_a_target_stellantis_cannot_reach_is_refused(target, settings):
    settings.USING_REAL_API = True
    assert "public address" in target_error(target)


def test_with_the_real_api_the_target_must_be_https(settings):
    settings.USING_REAL_API = True
    assert "https" in target_error("http://fleet.example.com/webhooks/stellantis/remote/")
    assert target_error("https://fleet.example.com/webhooks/stellantis/remote/") is None
    assert target_error("https://8.8.8.8/hook") is None  # a public address


def test_with_the_simulator_a_loopback_target_is_fine():
    assert target_error("http://127.0.0.1:8000/webhooks/stellantis/remote/") is None
