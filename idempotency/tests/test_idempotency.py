"""Idempotency-Key over real HTTP (live server + simulator), Stripe's semantics:
same key and body → the first answer again; other body → 422; still running → 409."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from accounts.models import Role
from callbacks.models import Callback
from conftest import _database_url_for_subprocess
from fleetportal.testing import wait_for
from idempotency import services as idem
from idempotency.models import IdempotentRequest, State
from remotes import services as remote_services
from remotes.models import RemoteAction
from simulator.models import SimCallback, SimRemoteAction

HORN = {"horn": {"state": "Activated"}}


@pytest.fixture
def approver(make_member):
    return make_member("rita", Role.APPROVER)


@pytest.fixture
def rita(api, approver, make_token):
    return api(make_token(approver))


@pytest.fixture
def vin(demo_fleet):
    return demo_fleet.vehicles.order_by("vin").first().vin


def post(s, path, body=HORN, key=None, **kw):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return s.post(f"{s.base_url}{path}", json=body, headers=headers, timeout=20, **kw)


def remotes_path(vin):
    return f"/api/v1/vehicles/{vin}/remotes/"


def submit_tasks():
    return [q for q in OrmQ.objects.all() if q.func() == remote_services.SUBMIT_TASK]


def test_it_answers_the_same_key_and_body_once(rita, vin):
    first = post(rita, remotes_path(vin), key="horn-1")
    again = post(rita, remotes_path(vin), key="horn-1")

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert RemoteAction.objects.count() == 1
    tasks = submit_tasks()
    assert len(tasks) == 1
    # The one task, run: the simulator receives one command.
    remote_services.submit_remote_action(action_id=tasks[0].task["args"][0])
    assert SimRemoteAction.objects.count() == 1


def test_it_refuses_the_same_key_with_another_body(rita, vin):
    assert post(rita, remotes_path(vin), key="k").status_code == 202

    other = post(rita, remotes_path(vin), body={"horn": {"state": "Deactivated"}}, key="k")

    assert other.status_code == 422
    assert other.headers["Content-Type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused" and other.json()["status"] == 422
    assert RemoteAction.objects.count() == 1


def test_it_refuses_the_same_key_on_another_path(rita, demo_fleet):
    first, second = demo_fleet.vehicles.order_by("vin")[:2]
    assert post(rita, remotes_path(first.vin), key="k").status_code == 202

    assert post(rita, remotes_path(second.vin), key="k").json()["code"] == "idempotency_key_reused"


def test_keys_are_per_token(rita, api, approver, make_token, vin):
    other_token = api(make_token(approver))

    a = post(rita, remotes_path(vin), key="shared")
    b = post(other_token, remotes_path(vin), key="shared")

    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b.headers
    assert RemoteAction.objects.count() == 2


def test_it_answers_409_while_the_first_request_is_running(rita, vin, monkeypatch):
    """The first request is held inside the view (the live server runs in this process) until
    the second one has been answered: no timing involved."""
    entered, go_on = threading.Event(), threading.Event()
    real = remote_services.request_remote

    def held(**kw):
        entered.set()
        assert go_on.wait(20)
        return real(**kw)

    monkeypatch.setattr(remote_services, "request_remote", held)
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault("first", post(rita, remotes_path(vin), key="slow")))
    first.start()
    try:
        assert entered.wait(20)
        second = post(rita, remotes_path(vin), key="slow")
    finally:
        go_on.set()
        first.join(30)

    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_use" and second.headers["Retry-After"] == "1"
    assert answers["first"].status_code == 202
    third = post(rita, remotes_path(vin), key="slow")
    assert third.json()["id"] == answers["first"].json()["id"] and third.headers["Idempotent-Replayed"] == "true"
    assert RemoteAction.objects.count() == 1 and len(submit_tasks()) == 1


def test_callback_creation_is_idempotent_too(api, make_member, make_token, demo_fleet):
    admin = api(make_token(make_member("alma", Role.ADMIN)))
    body = {"fleet": demo_fleet.external_id, "label": "partner", "remote_types": ["Horn"]}
    callbacks_before, at_vendor_before = Callback.objects.count(), SimCallback.objects.count()

    first = post(admin, "/api/v1/callbacks/", body=body, key="cb-1")
    again = post(admin, "/api/v1/callbacks/", body=body, key="cb-1")

    assert first.status_code == again.status_code == 201, first.text
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert Callback.objects.count() == callbacks_before + 1
    assert SimCallback.objects.count() == at_vendor_before + 1


def test_a_server_error_before_anything_was_done_releases_the_key(rita, vin, monkeypatch):
    real = remote_services.request_remote
    calls = []

    def fails_once(**kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(**kw)

    monkeypatch.setattr(remote_services, "request_remote", fails_once)

    failed = post(rita, remotes_path(vin), key="retry-me")
    retried = post(rita, remotes_path(vin), key="retry-me")

    assert failed.status_code == 500 and failed.json()["code"] == "server_error"
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert RemoteAction.objects.count() == 1


def test_a_server_error_after_the_command_was_created_is_replayed_not_run_again(rita, vin, monkeypatch):
    """ATOMIC_REQUESTS is off: the action is committed before the answer is rendered. A failure
    there must not free the key, or the retry would send a second command."""
    import remotes.api

    class Broken(remotes.api.AcceptedActionSerializer):
        def to_representation(self, instance):
            raise RuntimeError("rendering failed")

    monkeypatch.setattr(remotes.api, "AcceptedActionSerializer", Broken)

    failed = post(rita, remotes_path(vin), key="half-done")
    retried = post(rita, remotes_path(vin), key="half-done")

    assert failed.status_code == retried.status_code == 500
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert RemoteAction.objects.count() == 1 and len(submit_tasks()) == 1


def test_authentication_refusals_are_not_kept(api, rita, vin):
    stranger = api("fpt_deadbeef_not-a-real-secret")

    assert post(stranger, remotes_path(vin), key="k").status_code == 401
    assert post(api(), remotes_path(vin), key="k").status_code == 401
    assert not IdempotentRequest.objects.exists()
    assert post(rita, remotes_path(vin), key="k").status_code == 202


def test_a_key_older_than_a_day_no_longer_counts(rita, vin):
    first = post(rita, remotes_path(vin), key="old")
    IdempotentRequest.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, minutes=1))

    later = post(rita, remotes_path(vin), key="old")

    assert later.status_code == 202 and later.json()["id"] != first.json()["id"]
    assert "Idempotent-Replayed" not in later.headers
    assert RemoteAction.objects.count() == 2


def test_a_stale_claim_is_taken_over(rita, vin):
    """A process that died mid-request leaves its row in flight; a minute later it is taken over."""
    post(rita, remotes_path(vin), key="orphan")
    IdempotentRequest.objects.update(state=State.IN_FLIGHT, status_code=None, claimed_at=timezone.now() - dt.timedelta(seconds=61))

    again = post(rita, remotes_path(vin), key="orphan")

    assert again.status_code == 202 and "Idempotent-Replayed" not in again.headers
    assert IdempotentRequest.objects.get().state == State.DONE


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_it_refuses_an_empty_or_overlong_key(rita, vin, key):
    answer = post(rita, remotes_path(vin), key=key)

    assert answer.status_code == 400 and answer.json()["code"] == "invalid_idempotency_key"
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert RemoteAction.objects.count() == 0


def test_requests_without_a_key_and_the_webhook_are_untouched(rita, vin, stack):
    assert post(rita, remotes_path(vin)).status_code == 202
    requests.post(f"{stack.url}/webhooks/stellantis/remote/", data=b"{}", headers={"Idempotency-Key": "w"}, timeout=10)

    assert not IdempotentRequest.objects.exists()


def test_the_sweep_deletes_expired_keys(db):
    now = timezone.now()
    for key, age in (("fresh", dt.timedelta(hours=1)), ("expired", dt.timedelta(hours=25))):
        IdempotentRequest.objects.create(
            scope="user:1", key=key, method="POST", path="/api/v1/x/", fingerprint="f", claim=uuid.uuid4(), created_at=now - age, claimed_at=now - age
        )

    assert idem.sweep_expired() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["fresh"]


# --- two web processes on one PostgreSQL database --------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_processes(transactional_db):
    """Two `runserver --noreload` processes on the test database: two web processes sharing nothing but it."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite is one file serialised by its write lock, not two servers racing (set DATABASE_URL=postgres://…)")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "fleetportal.settings"),
        "SECURE_SSL_REDIRECT": "0",
        "CONN_MAX_AGE": "0",
        "API_THROTTLE_RATE": "off",
    }
    procs, urls = [], []
    try:
        for _ in range(2):
            port = _free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            ))
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls):
            wait_for(lambda url=url, proc=proc: proc.poll() is not None or _answers(url), timeout=60, message=f"{url} to serve")
            assert proc.poll() is None, "runserver exited"
        yield urls
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _answers(url) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _session(url, key):
    s = requests.Session()
    s.headers["Authorization"] = f"Token {key}"
    s.base_url = url
    return s


def test_one_key_is_one_command_across_two_processes(two_processes, make_member, make_token, make_vehicle, make_callback):
    """Process A holds the claim while its INSERT of the action waits on a table lock taken
    here; process B, asked with the same key meanwhile, answers 409. Deterministic: no sleeps."""
    import psycopg

    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    token = make_token(make_member("rita", Role.APPROVER))
    a, b = (_session(url, token) for url in two_processes)
    db = settings.DATABASES["default"]
    locker = psycopg.connect(
        dbname=db["NAME"], user=db.get("USER") or None, password=db.get("PASSWORD") or None, host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432
    )
    answers = {}
    try:
        locker.execute("LOCK TABLE remotes_remoteaction IN EXCLUSIVE MODE")  # reads pass, inserts wait
        first = threading.Thread(target=lambda: answers.setdefault("a", post(a, remotes_path(vehicle.vin), key="xproc")))
        first.start()
        wait_for(lambda: IdempotentRequest.objects.filter(key="xproc", state=State.IN_FLIGHT).exists(), message="A's claim")
        wait_for(lambda: _waiting_on_lock(), message="A waiting on the lock")
        second = post(b, remotes_path(vehicle.vin), key="xproc")
    finally:
        locker.rollback()
        locker.close()
    first.join(30)

    assert second.status_code == 409 and second.json()["code"] == "idempotency_key_in_use"
    assert answers["a"].status_code == 202
    replay = post(b, remotes_path(vehicle.vin), key="xproc")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["id"] == answers["a"].json()["id"]
    assert RemoteAction.objects.count() == 1 and len(submit_tasks()) == 1


def _waiting_on_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def test_concurrent_same_key_on_two_processes_makes_one_command(two_processes, make_member, make_token, make_vehicle, make_callback):
    """The plain race, several times: both processes get the key at the same instant."""
    vehicle = make_vehicle()
    make_callback(vehicle.fleet)
    token = make_token(make_member("rita", Role.APPROVER))
    sessions = [_session(url, token) for url in two_processes]
    for round_ in range(5):
        barrier, answers = threading.Barrier(2), [None, None]

        def send(i, round_=round_, barrier=barrier, answers=answers):
            barrier.wait()
            answers[i] = post(sessions[i], remotes_path(vehicle.vin), key=f"race-{round_}")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        codes = sorted(r.status_code for r in answers)
        assert codes in ([202, 202], [202, 409]), [r.text for r in answers]
        ids = {r.json()["id"] for r in answers if r.status_code == 202}
        assert len(ids) == 1

    assert RemoteAction.objects.count() == 5 and len(submit_tasks()) == 5
