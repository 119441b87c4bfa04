"""Bad settings stop start-up with the variable's name; good ones start as before.

The start-up tests run `django.setup()` in a subprocess with an explicit environment (nothing
inherited from CI, such as a DATABASE_URL), so they see what `manage.py` or gunicorn would.
"""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from fleetportal.settings import env_bool, env_float, env_int, env_url


def django_process(tmp_path, argv: list[str], *, timeout: float = 60, **variables):
    """Run Python with `argv` in the project, with only these variables (and a temporary database)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "fleetportal.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **variables,
    }
    return subprocess.run(
        [sys.executable, *argv], cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_up(tmp_path, code="", **variables):
    return django_process(tmp_path, ["-c", f"import django; django.setup(); {code}"], **variables)


@pytest.mark.parametrize(
    "name, value",
    [
        ("DEBUG", "treu"),
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("Q2_WORKERS", "0"),
        ("STELLANTIS_READ_TIMEOUT", "0"),
        ("WEBHOOK_MAX_BODY_BYTES", "1.5"),
        ("DATABASE_URL", "nonsense://x"),
        ("DATABASE_URL", "postgres://u:secret@db:abc/fleet"),
        ("PORTAL_PUBLIC_URL", "not-a-url"),
        ("STELLANTIS_API_BASE", "ftp://x"),
        ("Q2_BROKER", "redis:/nohost"),
        ("SIMULATOR_CREDENTIALS", "no-colon"),
        ("SIMULATOR_CREDENTIALS", ":no-user"),
        ("SECURE_SSL_REDIRECT", "maybe"),
        ("SECURE_HSTS_SECONDS", "-1"),
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https"),
        ("X_FRAME_OPTIONS", "ALLOWALL"),
        ("SECURE_REFERRER_POLICY", "everywhere"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    result = start_up(tmp_path, **{name: value})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ")
    assert name in last_line
    assert "secret" not in result.stderr  # a database password never ends up in a log


def test_good_values_start_up(tmp_path):
    result = start_up(
        tmp_path,
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.PORT, s.PORTAL_PUBLIC_URL, s.STELLANTIS_API_BASE, s.USING_REAL_API, s.Q2_BROKER,"
        " s.Q_CLUSTER['redis'], s.Q_CLUSTER['workers'], s.DATABASES['default']['ENGINE'], s.STELLANTIS_TIMEOUT)",
        DEBUG=" Off ",
        PORT="8123",
        PORTAL_PUBLIC_URL="https://portal.example.com/",
        STELLANTIS_API_BASE="http://127.0.0.1:8123/simulator/connectedcar/v3",
        DATABASE_URL="postgres://fleet:pw@db.example.com:5432/fleet",  # parsed, never connected to
        Q2_BROKER="rediss://:pw@redis.example.com:6380/0",
        Q2_WORKERS="2",
        STELLANTIS_READ_TIMEOUT="2.5",
        SIMULATOR_ENABLED="yes",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False", "8123", "https://portal.example.com", "http://127.0.0.1:8123/simulator/connectedcar/v3", "False",
        "rediss://:pw@redis.example.com:6380/0", "rediss://:pw@redis.example.com:6380/0", "2",
        "django.db.backends.postgresql", "(5.0,", "2.5)",
    ]  # fmt: skip


def test_defaults_start_up(tmp_path):
    """Nothing set but a database: production defaults (DEBUG off, no simulator); `make run` sets DEBUG=1."""
    result = start_up(
        tmp_path,
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SIMULATOR_ENABLED, s.PORT, s.PORTAL_PUBLIC_URL, s.USING_REAL_API, s.Q2_BROKER, s.Q_CLUSTER['orm'], s.Q_CLUSTER['workers'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "8000", "http://127.0.0.1:8000", "False", "orm", "default", "4"]


# --- the helpers, in-process ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("1", True), ("TRUE", True), (" yes ", True), ("On", True), ("0", False), ("false", False), ("NO", False), ("off", False)],
)
def test_env_bool_spellings(monkeypatch, value, expected):
    monkeypatch.setenv("FP_TEST_FLAG", value)
    assert env_bool("FP_TEST_FLAG", not expected) is expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_env_bool_unset_or_empty_is_the_default(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("FP_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("FP_TEST_FLAG", value)
    assert env_bool("FP_TEST_FLAG", True) is True
    assert env_bool("FP_TEST_FLAG", False) is False


@pytest.mark.parametrize("value", ["treu", "y", "2", "enabled"])
def test_env_bool_refuses_other_spellings(monkeypatch, value):
    monkeypatch.setenv("FP_TEST_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match=r"FP_TEST_FLAG must be one of 1/0, true/false, yes/no, on/off"):
        env_bool("FP_TEST_FLAG", False)


def test_env_int(monkeypatch):
    monkeypatch.delenv("FP_TEST_INT", raising=False)
    assert env_int("FP_TEST_INT", 7, minimum=1) == 7
    monkeypatch.setenv("FP_TEST_INT", " 42 ")
    assert env_int("FP_TEST_INT", 7, minimum=1, maximum=65535) == 42
    monkeypatch.setenv("FP_TEST_INT", "-3")
    assert env_int("FP_TEST_INT", 7) == -3  # no bound, no refusal


@pytest.mark.parametrize(
    "value, bounds, message",
    [
        ("abc", {}, "FP_TEST_INT must be an integer, got 'abc'"),
        ("1.5", {}, "FP_TEST_INT must be an integer, got '1.5'"),
        ("0", {"minimum": 1}, "FP_TEST_INT must be at least 1, got '0'"),
        ("70000", {"minimum": 1, "maximum": 65535}, "FP_TEST_INT must be between 1 and 65535, got '70000'"),
        ("0", {"minimum": 1, "maximum": 65535}, "FP_TEST_INT must be between 1 and 65535, got '0'"),
    ],
)
def test_env_int_refusals(monkeypatch, value, bounds, message):
    monkeypatch.setenv("FP_TEST_INT", value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_int("FP_TEST_INT", 7, **bounds)
    assert str(excinfo.value) == message


def test_env_float(monkeypatch):
    monkeypatch.setenv("FP_TEST_FLOAT", "")
    assert env_float("FP_TEST_FLOAT", 5.0, above=0) == 5.0
    monkeypatch.setenv("FP_TEST_FLOAT", "0.1")
    assert env_float("FP_TEST_FLOAT", 5.0, above=0) == 0.1


@pytest.mark.parametrize(
    "value, message",
    [
        ("soon", "FP_TEST_FLOAT must be a number, got 'soon'"),
        ("nan", "FP_TEST_FLOAT must be a finite number, got 'nan'"),
        ("inf", "FP_TEST_FLOAT must be a finite number, got 'inf'"),
        ("0", "FP_TEST_FLOAT must be greater than 0, got '0'"),
        ("-1.5", "FP_TEST_FLOAT must be greater than 0, got '-1.5'"),
    ],
)
def test_env_float_refusals(monkeypatch, value, message):
    monkeypatch.setenv("FP_TEST_FLOAT", value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_float("FP_TEST_FLOAT", 5.0, above=0)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        (None, {}, "http://default"),
        ("", {}, "http://default"),
        ("https://portal.example.com/", {}, "https://portal.example.com/"),
        ("http://[::1]:8000", {}, "http://[::1]:8000"),
        ("ORM", {"schemes": ("redis", "rediss"), "keywords": ("orm",)}, "orm"),
        ("redis://localhost:6379/0", {"schemes": ("redis", "rediss"), "keywords": ("orm",)}, "redis://localhost:6379/0"),
        ("sqlite:///tmp/db.sqlite3", {"schemes": ("sqlite", "postgres"), "host": False}, "sqlite:///tmp/db.sqlite3"),
        ("postgres:///fleet", {"schemes": ("sqlite", "postgres"), "host": False}, "postgres:///fleet"),
    ],
)
def test_env_url_accepts(monkeypatch, value, kwargs, expected):
    if value is None:
        monkeypatch.delenv("FP_TEST_URL", raising=False)
    else:
        monkeypatch.setenv("FP_TEST_URL", value)
    assert env_url("FP_TEST_URL", "http://default", **kwargs) == expected


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        ("not-a-url", {}, "a URL (http:// or https://) with a host"),
        ("ftp://x", {}, "a URL (http:// or https://) with a host"),
        ("http://", {}, "a URL (http:// or https://) with a host"),
        ("http://host:port", {}, "a URL (http:// or https://) with a host"),
        ("redis:/nohost", {"schemes": ("redis", "rediss"), "keywords": ("orm",)}, "'orm' or a URL (redis:// or rediss://) with a host"),
        ("amqp://rabbit", {"schemes": ("redis", "rediss"), "keywords": ("orm",)}, "'orm' or a URL (redis:// or rediss://) with a host"),
        ("nonsense://x", {"schemes": ("sqlite", "postgres"), "host": False}, "a URL (postgres:// or sqlite://)"),
    ],
)
def test_env_url_refusals(monkeypatch, value, kwargs, expected):
    monkeypatch.setenv("FP_TEST_URL", value)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_url("FP_TEST_URL", "http://default", **kwargs)
    assert str(excinfo.value).startswith(f"FP_TEST_URL must be {expected}, got {value!r}")


def test_env_url_hides_a_password(monkeypatch):
    monkeypatch.setenv("FP_TEST_URL", "redis://user:hunter2@:6379/0")
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_url("FP_TEST_URL", "orm", schemes=("redis",), keywords=("orm",))
    assert "hunter2" not in str(excinfo.value)
    assert "redis://user:***@:6379/0" in str(excinfo.value)


REAL_API = {
    "STELLANTIS_API_BASE": "https://api-cert.groupe-psa.com/connectedcar/v3",
    "STELLANTIS_USER": "fleet",
    "STELLANTIS_PASSWORD": "pw",
    "STELLANTIS_CERT": "/etc/fleetportal/client.pem",
    "STELLANTIS_KEY": "/etc/fleetportal/client.key",
    "STELLANTIS_CA": "/etc/fleetportal/stellantis-ca.pem",
    "SECRET_KEY": "k" * 50,
    "PORTAL_PUBLIC_URL": "https://fleet.example.com",
}


def test_the_real_api_starts_with_everything_it_needs(tmp_path):
    result = start_up(tmp_path, "from django.conf import settings as s; print(s.USING_REAL_API, s.SIMULATOR_ENABLED)", **REAL_API)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


@pytest.mark.parametrize(
    "change, named",
    [
        ({"STELLANTIS_CA": ""}, "STELLANTIS_CA"),
        ({"STELLANTIS_KEY": ""}, "STELLANTIS_KEY"),
        ({"PORTAL_PUBLIC_URL": ""}, "PORTAL_PUBLIC_URL"),
        ({"PORTAL_PUBLIC_URL": "http://fleet.example.com"}, "PORTAL_PUBLIC_URL"),
        ({"STELLANTIS_API_BASE": "http://api-cert.groupe-psa.com/connectedcar/v3"}, "STELLANTIS_API_BASE"),
    ],
    ids=["no CA", "no key", "no public URL", "public URL not https", "vendor not https"],
)
def test_the_real_api_refuses_to_start_without_what_it_needs(tmp_path, change, named):
    result = start_up(tmp_path, **{**REAL_API, **change})
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: ") and named in last_line
