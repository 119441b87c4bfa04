"""/metrics: behind a token; moves when a command runs and deliveries arrive, summed across gunicorn workers."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from conftest import _database_url_for_subprocess
from fleetportal.testing import drive
from remotes.models import ActionStatus, RemoteAction

TOKEN = "test-metrics-token-0123456789"


def samples(text: str) -> dict:
    """{(sample name, ((label, value), …)): value} of a Prometheus text page."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(page: dict, name: str, **labels) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    r = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/plain")
    return samples(r.content.decode())


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_metrics_answer_only_with_the_token(client, db, token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401  # the API's scheme is not this one
    r = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 200
    text = r.content.decode()
    for name in ("fleetportal_remote_actions_total", "fleetportal_webhook_deliveries_total", "fleetportal_queue_depth"):
        assert name in text


def test_without_a_token_there_is_no_metrics_page(client, db, settings):
    settings.METRICS_TOKEN = ""  # production's default
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_a_command_and_its_deliveries_move_the_metrics(demo_fleet, api, operator, make_token, client, token):
    before = scrape(client)
    partner = api(make_token(operator))
    vin = demo_fleet.vehicles.order_by("vin").first().vin
    r = partner.post(f"{partner.base_url}/api/v1/vehicles/{vin}/remotes/", json={"horn": {"state": "Activated"}}, timeout=10)
    assert r.status_code == 202
    action = RemoteAction.objects.get()

    assert drive(action.pk).status == ActionStatus.SUCCESS  # submit, then the simulator's notifications to our webhook
    after = scrape(client)

    moved = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)  # noqa: E731
    assert moved("fleetportal_remote_actions_total", remote_type="Horn", status="success") == 1
    assert moved("fleetportal_remote_action_done_seconds_count", remote_type="Horn", status="success") == 1
    assert moved("fleetportal_remote_action_transitions_total", status="queued") == 1
    assert moved("fleetportal_remote_action_transitions_total", status="submitted") == 1
    assert moved("fleetportal_webhook_deliveries_total", outcome="processed") >= 1
    assert moved("fleetportal_webhook_event_lag_seconds_count") >= 2  # Accepted … Success
    assert moved("fleetportal_vendor_calls_total", method="POST", status="202") + moved(
        "fleetportal_vendor_calls_total", method="POST", status="200"
    ) >= 1
    assert ("fleetportal_queue_depth", ()) in after
    assert value(after, "fleetportal_callbacks", status="Running") >= 1


def test_the_settled_base_and_the_recent_window_add_up(db, make_vehicle, make_callback, client, token):
    from django.core.cache import caches
    from django.utils import timezone

    from ops import metrics

    caches["shared"].delete(metrics.BASE_KEY)
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    now = timezone.now()
    for age_days, status in ((10, "success"), (5, "success"), (1, "failed"), (0, "success"), (0, "queued")):
        a = RemoteAction.objects.create(
            vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}}, source="api",
            status=status, expires_at=now, finished_at=None if status == "queued" else now,
        )
        created = now - dt.timedelta(days=age_days, seconds=30)
        RemoteAction.objects.filter(pk=a.pk).update(created_at=created, finished_at=None if status == "queued" else created + dt.timedelta(seconds=7))

    page = scrape(client)
    assert value(page, "fleetportal_remote_actions_total", remote_type="Horn", status="success") == 3
    assert value(page, "fleetportal_remote_actions_total", remote_type="Horn", status="failed") == 1
    assert value(page, "fleetportal_remote_actions_open", remote_type="Horn", status="queued") == 1
    assert value(page, "fleetportal_remote_action_done_seconds_bucket", remote_type="Horn", status="success", le="5.0") == 0
    assert value(page, "fleetportal_remote_action_done_seconds_bucket", remote_type="Horn", status="success", le="10.0") == 3
    assert value(page, "fleetportal_remote_action_done_seconds_sum", remote_type="Horn", status="success") == pytest.approx(21)
    assert caches["shared"].get(metrics.BASE_KEY) is not None  # the old rows are counted once, then kept

    # The base is kept: a second scrape reads only the last days, and says the same.
    page = scrape(client)
    assert value(page, "fleetportal_remote_actions_total", remote_type="Horn", status="success") == 3


# --- two gunicorn workers --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """gunicorn with two workers on the test database, its metrics in a fresh multiprocess directory."""
    port = _free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_for_subprocess(),
        "DEBUG": "1",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SIMULATOR_CREDENTIALS": django_settings.SIMULATOR_CREDENTIALS,
        "DJANGO_SETTINGS_MODULE": "fleetportal.settings",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn_bin = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen(
        [gunicorn_bin, "fleetportal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--log-level", "warning"],
        cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {proc.stderr.read().decode()[-3000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail("gunicorn did not answer /healthz within 30 s")
        time.sleep(0.2)
    proc.url, proc.metrics_dir = url, metrics_dir
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _deliveries_per_process(metrics_dir: Path) -> dict[str, float]:
    """pid → webhook deliveries counted by that process, read from its multiprocess file."""
    out = {}
    for path in metrics_dir.glob("counter_*.db"):
        counted = sum(
            v for key, v, *_ in MmapedDict.read_all_values_from_file(str(path)) if json.loads(key)[0] == "fleetportal_webhook_deliveries"
        )
        if counted:
            out[path.stem.rsplit("_", 1)[-1]] = counted
    return out


def test_deliveries_to_two_gunicorn_workers_add_up_in_every_scrape(gunicorn, make_vehicle, make_callback):
    vehicle = make_vehicle()
    callback = make_callback(vehicle.fleet)
    RemoteAction.objects.create(
        vehicle=vehicle, callback=callback, remote_type="Horn", command={"horn": {"state": "Activated"}},
        source="api", status=ActionStatus.SUBMITTED, remote_action_id="cafe01", expires_at="2030-01-01T00:00:00Z",
    )
    hook = f"{gunicorn.url}/webhooks/stellantis/remote/"
    start = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)

    def deliver(i: int, secret: str) -> int:
        date = (start + dt.timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
        body = {"callbackId": "cb0001", "attributes": [], "events": [
            {"remoteActionId": "cafe01", "vin": vehicle.vin, "eventDate": date, "remoteType": "Horn",
             "eventStatus": {"type": "Pending", "status": "Accepted"}}]}
        headers = {"Content-Type": "application/json", "Connection": "close", django_settings.WEBHOOK_SECRET_HEADER: secret}
        return requests.post(hook, data=json.dumps(body), headers=headers, timeout=30).status_code

    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Batches until both workers have counted some: which worker accepts a connection is the kernel's choice.
        for _ in range(10):
            statuses = list(pool.map(lambda i: deliver(i, callback.secret_header_value), range(sent, sent + 16)))
            assert statuses == [200] * 16
            sent += 16
            if len(_deliveries_per_process(gunicorn.metrics_dir)) >= 2:
                break
    refused = [deliver(0, f"{callback.webhook_key}.wrong") for _ in range(3)]
    assert refused == [401] * 3

    per_process = _deliveries_per_process(gunicorn.metrics_dir)
    assert len(per_process) == 2, per_process  # both workers counted deliveries…
    for _ in range(6):  # …and every scrape, whichever worker answers it, shows their sum
        r = requests.get(f"{gunicorn.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"}, timeout=10)
        assert r.status_code == 200
        page = samples(r.text)
        assert value(page, "fleetportal_webhook_deliveries_total", outcome="processed") == sent
        assert value(page, "fleetportal_webhook_deliveries_total", outcome="unauthorized") == 3
        assert value(page, "fleetportal_webhook_event_lag_seconds_count") == sent
        assert ("fleetportal_queue_depth", ()) in page
    assert requests.get(f"{gunicorn.url}/metrics", timeout=10).status_code == 401


def test_the_grafana_dashboard_uses_only_metrics_we_export(client, db, token):
    import re

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    dashboard = json.loads((Path(django_settings.BASE_DIR) / "docs" / "grafana-fleetportal.json").read_text())
    used = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for panel in dashboard["panels"] for target in panel["targets"] for name in re.findall(r"fleetportal_\w+", target["expr"])
    }
    assert used and all(f"# HELP {name}" in text for name in used), used - {n for n in used if f"# HELP {n}" in text}


def test_a_source_that_fails_is_left_out_and_named(client, db, token, monkeypatch):
    from ops import metrics

    def broken():
        raise RuntimeError("broker down")

    monkeypatch.setattr(metrics, "queue_state", broken)
    page = scrape(client)
    assert value(page, "fleetportal_metrics_source_up", source="queue") == 0
    assert value(page, "fleetportal_metrics_source_up", source="actions") == 1
    assert ("fleetportal_queue_depth", ()) not in page
    assert ("fleetportal_webhook_deliveries_total", (("outcome", "processed"),)) in page  # the counters still go out
