"""Project-wide fixtures: data factories and the live stack (portal + simulator over HTTP)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests
from django.conf import settings as django_settings


@pytest.fixture
def reference_dir():
    """The vendor's OpenAPI files; tests that need them skip cleanly where they are absent."""
    path = django_settings.STELLANTIS_REFERENCE_DIR
    if not (path / "api-b2b.yaml").exists():
        pytest.skip(f"Stellantis reference files not found at {path}")
    return path


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and a clean drop of it on PostgreSQL.

    Live-server threads keep their database connection after the last request (a browser's
    keep-alive holds the thread open), and PostgreSQL refuses to drop a database in use: end
    those sessions before pytest-django drops it.
    """
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")


# --- plain data, no vendor involved ------------------------------------------------------------


@pytest.fixture
def organisation(db):
    """The organisation test fleets belong to unless a test says otherwise.

    Four-eyes is off here (it is on by default for immobilization and stolen): tests of what a
    command does at the vendor send it at once; the approval tests turn it on."""
    from accounts.models import Organisation

    return Organisation.objects.get_or_create(slug="org-a", defaults={"name": "Org A", "approval_required_for": []})[0]


@pytest.fixture
def make_organisation(db):
    from accounts.models import Organisation

    def make(name):
        return Organisation.objects.create(name=name, slug=name.lower().replace(" ", "-"))

    return make


@pytest.fixture
def make_fleet(db, organisation):
    from vehicles.models import Fleet

    def make(**kw):
        n = Fleet.objects.count() + 1
        return Fleet.objects.create(**{"external_id": f"fleet{n}", "name": f"Fleet {n}", "organisation": organisation, **kw})

    return make


@pytest.fixture
def make_member(db, organisation):
    """A person with a role in an organisation (Org A unless told), maybe limited to some fleets."""
    from django.contrib.auth.models import User

    from accounts.models import Membership

    def make(username, role, *, org=None, fleets=(), **user_fields):
        user = User.objects.filter(username=username).first() or User.objects.create_user(
            username, password=f"pw-{username}-1", **user_fields
        )
        membership = Membership.objects.create(user=user, organisation=org or organisation, role=role)
        if fleets:
            membership.fleets.set(fleets)
        return User.objects.get(pk=user.pk)  # fresh instance: no cached access

    return make


@pytest.fixture
def make_token(db, organisation):
    """A partner token's key (every scope unless told), acting for `user`, of Org A unless told."""
    from accounts.models import PartnerToken, Scope

    def make(user, scopes=tuple(Scope.values), *, org=None, fleets=(), **kw):
        return PartnerToken.issue(organisation=org or organisation, user=user, name=f"token of {user}", scopes=scopes, fleets=fleets, **kw)[1]

    return make


@pytest.fixture
def make_vehicle(db, make_fleet):
    from vehicles.models import Vehicle

    def make(fleet=None, **kw):
        fleet = fleet or make_fleet()
        n = Vehicle.objects.count() + 1
        return Vehicle.objects.create(
            **{"fleet": fleet, "external_id": f"veh{n}", "vin": f"VF3TEST{n:010d}", "brand": "Peugeot", "motorization": "Electric", **kw}
        )

    return make


@pytest.fixture
def make_callback(db):
    from callbacks.models import Callback
    from stellantis.vocabulary import RemoteType

    def make(fleet, **kw):
        n = Callback.objects.count() + 1
        defaults = {"external_id": f"cb{n:04x}", "target": "http://127.0.0.1:9/webhook", "remote_types": list(RemoteType.values), "label": f"cb {n}"}
        return Callback.objects.create(fleet=fleet, **{**defaults, **kw})

    return make


@pytest.fixture
def operator(make_member):
    """A fleet manager of Org A allowed to send every command (the approver role)."""
    from accounts.models import Role

    return make_member("operator", Role.APPROVER)


# --- the live stack: portal and simulator served over real HTTP ----------------------------------


@pytest.fixture
def stack(live_server, settings, transactional_db):
    """Point the portal's client at the simulator served by the live server, like `make run`."""
    settings.PORTAL_PUBLIC_URL = live_server.url
    settings.STELLANTIS_API_BASE = f"{live_server.url}/{django_settings.SIMULATOR_PATH}"
    settings.SIMULATOR_SPEED = 40.0
    # The simulator always demands Basic auth: the client sends its credentials, as `make run` sets up.
    settings.STELLANTIS_USER, _, settings.STELLANTIS_PASSWORD = django_settings.SIMULATOR_CREDENTIALS.partition(":")
    return live_server


@pytest.fixture
def demo_fleet(stack, organisation):
    """A simulated fleet of Org A imported through the client, with a Running callback for every type."""
    from callbacks.services import create_callback
    from simulator.seeding import seed_world
    from vehicles.services import import_fleet

    sim_fleet = seed_world(fleet_name="Test fleet", vehicle_count=6, seed=7)
    fleet = import_fleet(fleet_id=sim_fleet.id, organisation=organisation).fleet
    create_callback(fleet=fleet, label="default")
    return fleet


def _database_url_for_subprocess() -> str:
    db = django_settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def q2_cluster(stack):
    """A real django-q2 cluster in a subprocess, on the test database, for end-to-end tests."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "PORTAL_PUBLIC_URL": stack.url,
        "STELLANTIS_API_BASE": f"{stack.url}/{django_settings.SIMULATOR_PATH}",
        "SIMULATOR_SPEED": "40",
        "SIMULATOR_CREDENTIALS": django_settings.SIMULATOR_CREDENTIALS,
        "STELLANTIS_USER": django_settings.STELLANTIS_USER,
        "STELLANTIS_PASSWORD": django_settings.STELLANTIS_PASSWORD,
        "Q2_WORKERS": "2",
        "Q2_GUARD_CYCLE": "0.1",
        "DJANGO_SETTINGS_MODULE": "fleetportal.settings",
    }
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    time.sleep(1.5)
    if proc.poll() is not None:
        pytest.fail(f"qcluster exited: {proc.stderr.read().decode()[-2000:]}")
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The cluster's worker processes may outlive its main one by a moment, each holding a
    # database connection that would stop the test database from being dropped.
    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def api(stack):
    def session(token=None):
        s = requests.Session()
        if token:
            s.headers["Authorization"] = f"Token {token}"
        s.base_url = stack.url
        return s

    return session


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # Live-server threads must not keep connections between requests: a kept-alive
    # connection would stop PostgreSQL from dropping the test database at the end.
    from django.db import connections

    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _fresh_webhook_secret_cache():
    """Each test starts with no cached webhook secrets (rows are created anew per test)."""
    from remotes import inbox

    inbox._SECRETS.clear()


@pytest.fixture(autouse=True)
def _fresh_push_cache():
    """Each test starts with no cached "which callbacks' organisations have a push endpoint" answer
    (rows are created anew per test; a warm "none anywhere" would silence the pushes of the next)."""
    from pushes import services

    services.forget_cache()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """Before any fixture is torn down (a transactional test's flush among them), let a background
    read of the push endpoints that a webhook delivery started finish: its locks and the flush's
    TRUNCATE, taken in another order, deadlocked now and then in CI."""
    from pushes import services

    services.wait_for_refresh()


# --- a real browser: Debian's chromium driven by Playwright ---------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page(monkeypatch):
    """A fresh page in Debian's chromium (headless); skips where chromium is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # alongside it are still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        # The background-networking flags: this machine's closed network refuses those connections.
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page()
        page.set_default_timeout(20_000)
        yield page
        browser.close()
