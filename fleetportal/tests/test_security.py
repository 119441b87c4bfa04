"""Who may see and do what (issue 11): the Content-Security-Policy, login lock-out, the partner
API's rate per token, and the demo admin's password surviving `make run`."""

import json
import os

import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from accounts.models import Role


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


# --- Content-Security-Policy ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_pages_carry_a_policy_that_runs_only_our_own_scripts(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no nonce needed
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "<script>" not in response.content.decode()


def test_no_template_holds_inline_script_or_event_handlers():
    from django.conf import settings

    offenders = []
    for root, _dirs, files in os.walk(settings.BASE_DIR / "templates"):
        for name in files:
            text = open(os.path.join(root, name), encoding="utf-8").read()
            for needle in ("<script>", "onclick=", "onchange=", "onsubmit=", "javascript:"):
                if needle in text:
                    offenders.append(f"{name}: {needle}")
    assert offenders == []


def test_the_action_page_loads_its_script_from_static(client, operator, make_vehicle, make_callback):
    from django.utils import timezone

    from remotes.models import RemoteAction

    vehicle = make_vehicle()
    action = RemoteAction.objects.create(
        vehicle=vehicle, callback=make_callback(vehicle.fleet), command={"horn": {"state": "Activated"}}, remote_type="Horn",
        expires_at=timezone.now(),
    )
    client.force_login(operator)

    html = client.get(reverse("action-detail", args=[action.pk])).content.decode()

    assert 'src="/static/js/action-live.js"' in html and "<script>" not in html


@pytest.mark.browser
@pytest.mark.e2e
def test_the_mode_switch_works_under_the_policy_and_nothing_is_blocked(demo_fleet, stack, operator, page):
    from playwright.sync_api import expect

    vin = demo_fleet.vehicles.filter(motorization__in=["Electric", "PlugInHybrid", "Hybrid"]).order_by("vin").first().vin
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    page.goto(f"{stack.url}/login/")
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", "pw-operator-1")
    page.click("button[type=submit]")
    page.goto(f"{stack.url}/vehicles/{vin}/remote/charging/")

    expect(page.locator("#field-at")).to_be_hidden()  # the static script ran: "now" needs no time
    page.select_option("select[name=mode]", "delayed")
    expect(page.locator("#field-at")).to_be_visible()
    assert [m for m in messages if "Content Security Policy" in m] == []


# --- login lock-out (django-axes) ----------------------------------------------------------------


def _log_in(client, path, username, password):
    return client.post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_wrong_passwords_lock_that_user_out_and_no_one_else(client, db, settings, path):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("alice", password="pw-alice-12345", is_staff=True)
    User.objects.create_user("bob", password="pw-bob-12345", is_staff=True)

    for _ in range(2):
        assert _log_in(client, path, "alice", "wrong").status_code == 200  # the form again, with an error
    assert _log_in(client, path, "alice", "wrong").status_code == 429  # the third: locked out

    refused = _log_in(client, path, "alice", "pw-alice-12345")
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    other = _log_in(client, path, "bob", "pw-bob-12345")
    assert other.status_code == 302 and client.session["_auth_user_id"] == str(User.objects.get(username="bob").pk)


def test_the_lock_is_per_address(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 2
    User.objects.create_user("alice", password="pw-alice-12345")
    for _ in range(2):
        client.post("/login/", {"username": "alice", "password": "wrong"})

    from django.test import Client

    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert elsewhere.post("/login/", {"username": "alice", "password": "pw-alice-12345"}).status_code == 302


def test_a_success_clears_the_count(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("alice", password="pw-alice-12345")
    for _ in range(2):
        _log_in(client, "/login/", "alice", "wrong")
    assert _log_in(client, "/login/", "alice", "pw-alice-12345").status_code == 302
    client.logout()
    for _ in range(2):
        assert _log_in(client, "/login/", "alice", "wrong").status_code == 200  # counting from zero again


def test_authenticate_without_a_request_is_refused_loudly(db):
    """Why the tests use force_login: django-axes needs the request to know the address."""
    from axes.exceptions import AxesBackendRequestParameterRequired
    from django.contrib.auth import authenticate

    User.objects.create_user("alice", password="pw-alice-12345")
    with pytest.raises(AxesBackendRequestParameterRequired):
        authenticate(username="alice", password="pw-alice-12345")


# --- the partner API's rate per token ------------------------------------------------------------


@pytest.fixture
def partner(make_member, make_token):
    def make(name):
        return make_token(make_member(name, Role.VIEWER))

    return make


def test_a_token_past_its_rate_gets_429_with_retry_after_and_another_token_does_not(stack, settings, partner):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"partner": "3/min"}}
    fast, other = partner("fast"), partner("other")
    url = f"{stack.url}/api/v1/callbacks/"

    answers = [requests.get(url, headers={"Authorization": f"Token {fast}"}, timeout=10) for _ in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = refused.json()
    assert body["status"] == 429 and body["code"] == "throttled" and body["title"] == "Too Many Requests"
    assert requests.get(url, headers={"Authorization": f"Token {other}"}, timeout=10).status_code == 200


def test_the_count_lives_in_the_shared_cache_not_under_the_token(db, settings, partner):
    from rest_framework.test import APIClient

    assert settings.CACHES["shared"]["BACKEND"] == "fleetportal.cache.UpsertDatabaseCache"
    key = partner("p")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/callbacks/").status_code == 200

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key FROM fleetportal_cache")
        keys = [row[0] for row in cursor.fetchall()]
    assert any("throttle_partner_token-" in k for k in keys)
    assert not any(key in k for k in keys)  # the token itself is never written there


def test_the_webhook_is_never_throttled(settings):
    from remotes.views import StellantisWebhook

    assert StellantisWebhook.throttle_classes == []


def test_a_bad_rate_stops_start_up(monkeypatch):
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "API_THROTTLE_RATE": "lots", "DJANGO_SETTINGS_MODULE": "fleetportal.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "API_THROTTLE_RATE must look like 120/min" in result.stderr


# --- the demo admin's password -------------------------------------------------------------------


def test_seed_demo_never_resets_a_changed_admin_password(stack, settings, capsys):
    call_command("seed_demo", "--json", "--vehicles", "2")
    first = json.loads(capsys.readouterr().out)
    assert first["admin_password"] == settings.DEMO_ADMIN_PASSWORD
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(settings.DEMO_ADMIN_PASSWORD)

    admin.set_password("my-own-password-42")
    admin.save()
    call_command("seed_demo", "--json", "--vehicles", "2")
    second = json.loads(capsys.readouterr().out)

    assert User.objects.get(username="admin").check_password("my-own-password-42")  # kept
    assert second["admin_password"] is None  # the demo password no longer works: not shown
    assert set(second) == set(first)

    call_command("seed_demo", "--vehicles", "2")
    assert "Login: admin / (changed since seeding: not shown)" in capsys.readouterr().out


def test_a_redis_url_makes_the_shared_cache_redis():
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "CACHE_URL": "redis://127.0.0.1:6379/3", "DJANGO_SETTINGS_MODULE": "fleetportal.settings"}
    code = "from django.conf import settings as s; print(s.CACHES['shared']['BACKEND'], s.CACHES['shared']['LOCATION'], s.CACHES['default']['BACKEND'])"
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    assert result.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://127.0.0.1:6379/3",
        "django.core.cache.backends.locmem.LocMemCache",
    ], result.stderr


def test_the_shared_database_cache_writes_in_one_statement_and_reads_back(db):
    from django.core.cache import caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cache = caches["shared"]
    with CaptureQueriesContext(connection) as ctx:
        cache.set("k", [1.5, 2.5], 60)
        cache.set("k", [3.5], 60)  # an existing key: updated in place
    assert len(ctx.captured_queries) == 2
    assert cache.get("k") == [3.5]
    cache.set("forever", "x", None)
    assert cache.get("forever") == "x"
    cache.set("gone", "x", -1)  # already expired
    assert cache.get("gone", "default") == "default"
    assert cache.add("new", 1) and not cache.add("new", 2) and cache.get("new") == 1
    cache.delete("k")
    assert cache.get("k") is None


@pytest.mark.browser
@pytest.mark.e2e
def test_the_admin_works_under_the_policy(demo_fleet, stack, page):
    """The admin's own scripts (actions, filters, the bulk-action page) run; nothing is blocked."""
    from playwright.sync_api import expect

    User.objects.create_superuser("boss", password="pw-boss-12345")
    vehicle = demo_fleet.vehicles.filter(motorization__in=["Electric", "PlugInHybrid", "Hybrid"]).order_by("vin").first()
    messages = []
    page.on("console", lambda m: messages.append(m.text))
    page.goto(f"{stack.url}/admin/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw-boss-12345")
    page.click("input[type=submit]")
    page.goto(f"{stack.url}/admin/vehicles/vehicle/")
    page.check(f"input[name=_selected_action][value='{vehicle.pk}']")
    expect(page.locator(".action-counter")).to_contain_text("1 of")  # admin/js/actions.js ran
    page.select_option("select[name=action]", "remote_charging_form")
    page.click("button[name=index]")
    expect(page.locator("select[name=mode]")).to_be_visible()  # the intermediate page
    expect(page.locator("#field-at")).to_be_hidden()  # our static script ran there too
    page.select_option("select[name=mode]", "delayed")
    expect(page.locator("#field-at")).to_be_visible()
    page.goto(f"{stack.url}/admin/vehicles/vehicle/{vehicle.pk}/change/")
    expect(page.locator("input[name=_save]")).to_be_visible()
    assert [m for m in messages if "Content Security Policy" in m] == []
