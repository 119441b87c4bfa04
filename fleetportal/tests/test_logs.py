"""Logs: one JSON line per request and per task, and no secret in any line (fleetportal/logs.py).

The flow runs over real HTTP (live server + simulator) with every logger at DEBUG, and what
every handler would write is searched for each secret the flow handled.

Run on both databases:
    .venv/bin/pytest fleetportal/tests/test_logs.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fp_logs .venv/bin/pytest fleetportal/tests/test_logs.py
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re

import pytest
import requests
from django.conf import settings
from django_q.tasks import async_task

from accounts.models import Role
from callbacks.models import Callback
from fleetportal import logs
from fleetportal.testing import drive
from remotes.models import ActionStatus, RemoteAction

PYTEST_HANDLERS = ("_pytest.",)  # pytest's own capture handlers (caplog, live logging, reports)


@pytest.fixture
def every_log(caplog):
    """Every logger at DEBUG; returns (the JSON lines our handler writes, caplog) while the test runs."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    levels = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        if lg.level:
            lg.setLevel(logging.DEBUG)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)  # what settings.LOGGING's console writes with LOG_FORMAT=json
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RedactFilter())
    logging.getLogger().addHandler(handler)
    try:
        yield buffer, caplog
    finally:
        logging.getLogger().removeHandler(handler)
        for lg, level in levels:
            lg.setLevel(level)


def _csrf_login(session: requests.Session, base: str, username: str, password: str) -> requests.Response:
    session.get(f"{base}/login/", timeout=10)
    return session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )


def test_no_log_line_holds_a_secret_and_each_request_is_one_json_line(demo_fleet, stack, make_member, make_token, every_log):
    buffer, caplog = every_log
    base = stack.url
    boss = make_member("boss", Role.ADMIN)
    key = make_token(boss)
    partner = requests.Session()
    partner.headers["Authorization"] = f"Token {key}"
    vin = demo_fleet.vehicles.order_by("vin").first().vin
    default_callback = demo_fleet.callbacks.get(label="default")

    # A command through the API, submitted by a q2 task (run in this process), then carried
    # to its end by the simulator's notifications, which reach our webhook over HTTP.
    r = partner.post(f"{base}/api/v1/vehicles/{vin}/remotes/", json={"horn": {"state": "Activated"}}, timeout=10)
    assert r.status_code == 202, r.text
    action_id = r.json()["id"]
    async_task("remotes.tasks.submit_remote_action", action_id, sync=True)
    action = drive(action_id)
    assert action.status == ActionStatus.SUCCESS
    assert partner.get(f"{base}/api/v1/remotes/{action_id}/", timeout=10).status_code == 200
    assert partner.get(f"{base}/api/v1/vehicles/{vin}/?token={key}&page=1", timeout=10).status_code == 200

    # A webhook delivery of our own, whose body carries a marker no line may repeat, and one
    # with a wrong secret.
    body = json.dumps({
        "callbackId": default_callback.external_id, "attributes": [], "events": [{
            "remoteActionId": action.remote_action_id, "vin": vin, "eventDate": "2026-11-25T10:00:00Z", "remoteType": "Horn",
            "eventStatus": {"type": "Pending", "status": "Accepted"}, "note": "raw-body-marker-4f1c",
        }],
    })
    hook = f"{base}/webhooks/stellantis/remote/"
    headers = {"Content-Type": "application/json", settings.WEBHOOK_SECRET_HEADER: default_callback.secret_header_value}
    assert requests.post(hook, data=body, headers=headers, timeout=10).status_code == 200
    wrong = f"{default_callback.webhook_key}.wrong-secret-9d7e2a1b"
    assert requests.post(hook, data=body, headers={**headers, settings.WEBHOOK_SECRET_HEADER: wrong}, timeout=10).status_code == 401

    # A callback with a secret Header attribute, and a push endpoint (whose whsec_ secret is shown once).
    header_secret = "partner-header-secret-73c0a9"
    r = partner.post(
        f"{base}/api/v1/callbacks/",
        json={
            "fleet": demo_fleet.external_id, "label": "with a secret", "remote_types": ["Horn"],
            "target": "http://127.0.0.1:9/hook", "attributes": [{"type": "Header", "key": "X-Partner-Key", "value": header_secret}],
        },
        timeout=20,
    )
    assert r.status_code == 201, r.text
    callback = Callback.objects.get(pk=r.json()["id"])
    r = partner.post(f"{base}/api/v1/webhook-endpoints/", json={"url": "http://127.0.0.1:9/push", "events": ["remote.status_changed"]}, timeout=10)
    assert r.status_code == 201, r.text
    whsec = r.json()["secret"]
    assert whsec.startswith("whsec_")

    # A login, and a failed one.
    person = requests.Session()
    assert _csrf_login(person, base, "boss", "pw-boss-1").url.rstrip("/") != f"{base}/login"
    assert person.get(f"{base}/actions/{action_id}/", timeout=10).status_code == 200
    stranger = requests.Session()
    r = _csrf_login(stranger, base, "boss", "wrong-password-5b2e")
    assert r.status_code == 200 and "/login/" in r.url

    sim_user, _, sim_password = settings.SIMULATOR_CREDENTIALS.partition(":")
    secrets = {
        "partner token key": key,
        "partner token secret part": key.split("_", 2)[2],
        "webhook secret": default_callback.secret,
        "webhook secret header value": default_callback.secret_header_value,
        "new callback's secret": callback.secret,
        "wrong webhook secret": wrong.split(".", 1)[1],
        "secret header attribute": header_secret,
        "push signing secret": whsec,
        "push signing secret body": whsec.removeprefix("whsec_"),
        "password": "pw-boss-1",
        "wrong password": "wrong-password-5b2e",
        "simulator password": sim_password,
        "simulator Basic credentials": base64.b64encode(settings.SIMULATOR_CREDENTIALS.encode()).decode(),
        "raw webhook body": body,
        "a field of the raw webhook body": "raw-body-marker-4f1c",
        "session cookie": person.cookies["sessionid"],
    }
    written = buffer.getvalue()
    everything = written + caplog.text  # caplog: every record at DEBUG, as the handlers received it
    assert written and caplog.records
    for what, secret in secrets.items():
        assert secret not in everything, f"the {what} is in the logs"

    lines = [json.loads(line) for line in written.splitlines()]  # each line is one JSON object
    requests_ = [line for line in lines if line["logger"] == "fleetportal.request"]
    for line in requests_:
        assert {"method", "path", "status", "duration_ms", "time", "level"} <= line.keys(), line
        assert "?" not in line["path"]
    by_path = {(line["method"], line["path"]): line for line in requests_}
    created = by_path[("POST", f"/api/v1/vehicles/{vin}/remotes/")]
    assert created["status"] == 202 and created["action_id"] == action_id and created["vin"] == vin
    assert created["token"] == f"fpt_{key.split('_')[1]}…"
    assert created["organisation_id"] == demo_fleet.organisation_id
    assert created["user_id"] == boss.pk
    assert by_path[("GET", f"/api/v1/remotes/{action_id}/")]["action_id"] == action_id
    assert by_path[("GET", f"/api/v1/vehicles/{vin}/")]["query_keys"] == ["page", "token"]
    page = by_path[("GET", f"/actions/{action_id}/")]
    assert page["action_id"] == action_id and page["user_id"] == boss.pk and "token" not in page
    webhooks = [line for line in requests_ if line["path"] == "/webhooks/stellantis/remote/"]
    # A stored delivery's only record is its inbox row (remotes.middleware: log_quiet); a refused one has a line.
    assert {line["status"] for line in webhooks} == {401}
    assert all("user_id" not in line and "token" not in line for line in webhooks)
    assert any(line["status"] == 401 for line in webhooks)

    tasks = [line for line in lines if line["logger"] == "fleetportal.task"]
    submit = [line for line in tasks if line["task"] == "remotes.tasks.submit_remote_action"]
    assert submit and submit[0]["success"] is True and submit[0]["action_id"] == action_id
    assert submit[0]["duration_ms"] >= 0
    assert RemoteAction.objects.filter(pk=action_id).exists()


def test_every_handler_masks_secrets(settings):
    """Whatever logger a record goes to, it meets a RedactFilter before it is written."""
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    handlers = {
        h for lg in loggers for h in lg.handlers
        if not type(h).__module__.startswith(PYTEST_HANDLERS) and not isinstance(h, logging.NullHandler)  # a NullHandler writes nothing
    }
    assert handlers, "settings.LOGGING configures at least the console"
    for handler in handlers:
        assert any(isinstance(f, logs.RedactFilter) for f in handler.filters), f"{handler!r} writes unmasked records"
    assert settings.LOGGING["loggers"]["django.db.backends"]["level"] == "WARNING"  # SQL parameters hold secrets


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Token fpt_ab12cd34_Zk3-mN_90qq", "Zk3-mN_90qq", "Authorization: Token ***"),
        ("key fpt_0f0f0f0f_abcDEF-_123 refused", "abcDEF-_123", "fpt_0f0f0f0f_***"),
        ("X-Fleetportal-Secret: 0123456789abcdef.s3cr3t-VALUE_long", "s3cr3t-VALUE_long", "X-Fleetportal-Secret: ***"),
        ("refused 0123456789abcdef.s3cr3t-VALUE_long from 10.0.0.1", "s3cr3t-VALUE_long", "0123456789abcdef.***"),
        ("{'HTTP_AUTHORIZATION': 'Basic c2ltOnB3ZA==', 'HTTP_HOST': 'x'}", "c2ltOnB3ZA==", "'HTTP_HOST': 'x'"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi", "Authorization: Bearer ***"),
        ("sent Basic c2ltdWxhdG9yOnB3ZA== upstream", "c2ltdWxhdG9yOnB3ZA==", "Basic ***"),
        ("Cookie: sessionid=abc123; csrftoken=def456", "abc123", "Cookie: ***"),
        ("set-cookie='sessionid=abc123; Path=/'", "abc123", "set-cookie='***"),
        ("push secret whsec_dGhpcyBpcyBzZWNyZXQ+/x= made", "dGhpcyBpcyBzZWNyZXQ", "whsec_*** made"),
        ("DATABASE_URL postgres://fp:hunter2@db:5432/fp", "hunter2", "postgres://fp:***@db:5432/fp"),
        ("GET /x?password=hunter2&page=2", "hunter2", "page=2"),
        ('{"password": "hunter2", "username": "boss"}', "hunter2", '"username": "boss"'),
        ("{'previous_secret': 'abcdefgh', 'label': 'x'}", "abcdefgh", "'label': 'x'"),
    ],
)
def test_the_redaction_filter_masks(text, secret, kept):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (text,), None)
    assert logs.RedactFilter().filter(record) is True
    message = record.getMessage()
    assert secret not in message and kept in message, message


def test_the_redaction_filter_masks_tracebacks_extras_and_the_json_line():
    key = "fpt_ab12cd34_TRACEBACKSECRET"
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.header = f"Token {key}"
    record.nested = {"url": "https://u:pw-in-url@example.com/"}
    logs.RedactFilter().filter(record)
    line = logs.JsonFormatter().format(record)
    assert "TRACEBACKSECRET" not in line and "pw-in-url" not in line
    parsed = json.loads(line)
    assert "fpt_ab12cd34_***" in parsed["exc_info"] and parsed["header"] == "Token fpt_ab12cd34_***"


def test_a_plain_message_is_left_alone():
    text = "webhook delivery 12 partial: 1 of 2 events refused; action 5b1c… VF3TEST0000000001 Authorization header missing"
    assert logs.redact(text) == text
    assert re.fullmatch(r"[^*]+", logs.redact("callback 3 (cb0001) is Failed at Stellantis (was Running here)"))


@pytest.mark.django_db
def test_a_failed_task_is_one_error_line_without_its_arguments(every_log):
    buffer, caplog = every_log
    with pytest.raises(TypeError):  # sync: q2 raises the task's error here, after its signals
        async_task("hmac.compare_digest", "task-argument-secret-61ad", 5, sync=True)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    (line,) = [x for x in lines if x["logger"] == "fleetportal.task"]
    assert line["level"] == "ERROR" and line["success"] is False and line["task"] == "hmac.compare_digest"
    assert "action_id" not in line and line["duration_ms"] >= 0
    assert "task-argument-secret-61ad" not in buffer.getvalue() + caplog.text
