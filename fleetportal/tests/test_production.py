"""Who may see what in a production start: DEBUG off unless asked, the simulator mounted only
when enabled and always behind HTTP Basic, security settings that pass `check --deploy`, and
no debug page on a 500.

Start-ups run in a subprocess with an explicit environment (`test_settings.start_up`), so they
see what `manage.py` or gunicorn would, not the test run's own variables.
"""

import secrets

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client, override_settings
from django.urls import path

import fleetportal.urls
from fleetportal.tests.test_settings import REAL_API, django_process, start_up

SIMULATOR_URL = f"/{django_settings.SIMULATOR_PATH}/fleets?client_id=x"

WHAT_IS_MOUNTED = f"""
from django.conf import settings as s
from django.contrib import admin
from django.test import Client
from simulator.models import SimFleet, SimVehicle
print(s.DEBUG, s.SIMULATOR_ENABLED, admin.site.is_registered(SimVehicle), admin.site.is_registered(SimFleet))
print(Client().get({SIMULATOR_URL!r}, secure=True).status_code, Client().get('/healthz', secure=True).status_code)
"""


def test_nothing_set_is_a_production_start_without_the_simulator(tmp_path):
    result = start_up(tmp_path, WHAT_IS_MOUNTED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "False", "False", "404", "200"]


def test_a_debug_demo_mounts_the_simulator_behind_basic_auth(tmp_path):
    result = start_up(tmp_path, WHAT_IS_MOUNTED, DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "True", "401", "200"]


def test_production_mounts_the_simulator_only_when_asked(tmp_path):
    result = start_up(tmp_path, WHAT_IS_MOUNTED, SIMULATOR_ENABLED="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True", "401", "200"]


def test_the_real_api_leaves_the_simulator_off_even_in_debug(tmp_path):
    result = start_up(tmp_path, WHAT_IS_MOUNTED, **REAL_API, DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False", "False", "404", "200"]


SECURITY = (
    "from django.conf import settings as s; "
    "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD,"
    " s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY,"
    " s.X_FRAME_OPTIONS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.SECURE_REFERRER_POLICY, sep='|')"
)


def test_security_defaults_are_production_safe_without_debug_and_demo_friendly_with_it(tmp_path):
    production = start_up(tmp_path, SECURITY)
    demo = start_up(tmp_path, SECURITY, DEBUG="1")
    assert production.returncode == 0 and demo.returncode == 0, production.stderr + demo.stderr
    assert production.stdout.split("|") == [
        "True", "31536000", "True", "True", "None", "True", "True", "True", "DENY", "True", "same-origin\n"
    ]  # fmt: skip
    assert demo.stdout.split("|") == [
        "False", "0", "False", "False", "None", "False", "False", "True", "DENY", "True", "same-origin\n"
    ]  # fmt: skip


def test_security_settings_come_from_the_environment(tmp_path):
    result = start_up(
        tmp_path,
        SECURITY,
        SECURE_SSL_REDIRECT="off",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="no",
        SECURE_HSTS_PRELOAD="no",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SESSION_COOKIE_HTTPONLY="0",
        X_FRAME_OPTIONS="sameorigin",
        SECURE_CONTENT_TYPE_NOSNIFF="0",
        SECURE_REFERRER_POLICY="Strict-Origin-When-Cross-Origin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("|") == [
        "False", "3600", "False", "False", "('HTTP_X_FORWARDED_PROTO', 'https')", "False", "False", "False",
        "SAMEORIGIN", "False", "strict-origin-when-cross-origin\n",
    ]  # fmt: skip


def _check_deploy(tmp_path, **variables):
    return django_process(tmp_path, ["manage.py", "check", "--deploy"], timeout=120, **variables)


@pytest.mark.parametrize(
    "variables",
    [{}, REAL_API],
    ids=["simulator off", "real API"],
)
def test_check_deploy_finds_nothing_with_production_settings(tmp_path, variables):
    result = _check_deploy(
        tmp_path, **{**variables, "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "fleet.example.com"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_warns_about_the_demo_secret_key(tmp_path):
    result = _check_deploy(tmp_path, ALLOWED_HOSTS="fleet.example.com")
    assert "security.W009" in result.stdout + result.stderr


# --- a 500 with DEBUG unset: no debug page --------------------------------------------------------


def _boom(request):
    raise RuntimeError("boom: the view failed")


# This module is the URLconf of the tests below: the project's URLs plus two views that raise.
urlpatterns = [path("boom/", _boom), path("api/v1/boom/", _boom), *fleetportal.urls.urlpatterns]
handler500 = fleetportal.urls.handler500


@pytest.mark.urls(__name__)
@override_settings(DEBUG=False)
@pytest.mark.parametrize("url", ["/boom/", "/api/v1/boom/"])
def test_a_500_shows_no_debug_page(url):
    response = Client(raise_request_exception=False).get(url, secure=True)

    assert response.status_code == 500
    body = response.content.decode()
    for leak in ("DATABASE_URL", "SECRET_KEY", "Traceback", "boom", "RuntimeError", "settings"):
        assert leak not in body
    if url.startswith("/api/"):
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "server_error"


# --- the simulator is locked, over real HTTP with the project's URLs ----------------------------


def test_the_mounted_simulator_demands_its_credentials(live_server, transactional_db, settings):
    url = f"{live_server.url}{SIMULATOR_URL}"
    user, _, password = settings.SIMULATOR_CREDENTIALS.partition(":")

    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=(user, password + "x"), timeout=10).status_code == 401
    assert requests.get(url, auth=(user, password), timeout=10).status_code == 200


def test_the_portal_client_defaults_to_the_simulator_credentials(settings):
    """Not configured (as in this test run): the client's Basic auth is the simulator's."""
    assert settings.SIMULATOR_CREDENTIALS == f"{settings.STELLANTIS_USER}:{settings.STELLANTIS_PASSWORD}"


CREDENTIALS = "from django.conf import settings as s; print(s.SIMULATOR_CREDENTIALS, s.STELLANTIS_USER, s.STELLANTIS_PASSWORD)"


def test_credentials_are_derived_from_the_secret_key(tmp_path):
    """Every process of one deployment agrees without configuration; another key, other credentials."""
    one = start_up(tmp_path, CREDENTIALS, SECRET_KEY="a" * 60)
    again = start_up(tmp_path, CREDENTIALS, SECRET_KEY="a" * 60)
    other = start_up(tmp_path, CREDENTIALS, SECRET_KEY="b" * 60)
    assert one.returncode == again.returncode == other.returncode == 0, one.stderr
    credentials, user, password = one.stdout.split()
    assert credentials == f"{user}:{password}" and len(password) >= 32
    assert one.stdout == again.stdout != other.stdout


def test_configured_credentials_win_and_the_real_api_keeps_its_own(tmp_path):
    configured = start_up(tmp_path, CREDENTIALS, SIMULATOR_CREDENTIALS="sim:pw-1")
    assert configured.stdout.split() == ["sim:pw-1", "sim", "pw-1"], configured.stderr
    real = start_up(tmp_path, CREDENTIALS, **REAL_API)
    assert real.stdout.split()[1:] == ["fleet", "pw"], real.stderr
