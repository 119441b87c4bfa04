"""Organisation B learns nothing of organisation A: every URL, walked as B's admin and as B's token.

The URLconf is walked programmatically (`get_resolver()`, recursively, the admin's URLs for
every registered model included), so a URL added later is walked too, and this test fails
for a pattern whose parameters it cannot fill: add the parameter to `BY_PARAM` or
`BY_URL_NAME` (an object's id to A's object) or the model to `ADMIN_OBJECTS`.

Each URL with a parameter naming one of A's objects is requested twice: with A's value and
with a value naming nothing ("ghost"). The answers must be the same and a refusal (404,
403, 405, 401 or a redirect): a 403 for A's vehicle but a 404 for no vehicle would say A's
exists. Every other URL (lists, forms) must not mention A, and the lists must answer 200.
POSTs (and PUT/DELETE under /api/) run in a rolled-back savepoint and must leave A's rows
as they were. Markers echoed from the requested URL itself are not counted (a 404 page may
repeat the path it was asked for).

Run on both databases:
    .venv/bin/pytest fleetportal/tests/test_leaks.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fp_leaks .venv/bin/pytest fleetportal/tests/test_leaks.py
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.http import urlsafe_base64_encode
from django.utils.regex_helper import normalize

from accounts.models import Membership, Organisation, PartnerToken, Role, Scope
from bulk.models import BulkItem, BulkRequest
from callbacks.models import Callback
from pushes.models import PushDelivery, WebhookEndpoint
from remotes.models import ActionStatus, ActionStep, RemoteAction, RemoteEvent, Source, WebhookDelivery
from stellantis.vocabulary import EventType, RemoteType
from vehicles.models import Fleet, Vehicle, VehicleStatus

pytestmark = pytest.mark.django_db

GHOST_INT = 2_000_000_001
GHOST_UUID = uuid.UUID(int=0)
GHOST_VIN = "VF0GHOST000000000"
GHOST_SLUG = "no-such-organisation"

# Admin models that hold nothing of an organisation: their object pages are walked with an id
# naming nothing (they must not break), and their lists must not mention A.
NOT_ORGANISATION_DATA = {
    "auth.group",  # permission groups are global
    "core.vendorbudget",  # the vendor's rate budget, one for the portal
    "simulator.simfleet", "simulator.simvehicle", "simulator.simcallback",  # the vendor's
    "simulator.simremoteaction", "simulator.simnotification", "simulator.simpumplease",  # world
    "django_q.schedule", "django_q.task", "django_q.success", "django_q.failure", "django_q.ormq",
    "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog",
}
# Readiness answers 503 when no q2 cluster runs (none does here): its answer, not a crash.
NOT_READY_IS_AN_ANSWER = {"healthz-ready"}
# Lists that must answer 200 (without A's markers), per actor.
LISTS = {
    "user": {"vehicle-list", "callback-list", "admin:index"},
    "token": {"api-callback-list", "api-fleet-list", "api-vehicle-list", "api-remote-list"},
}
# Admin changelists of organisation data: 200 for B's admin (who holds every model permission).
ORGANISATION_ADMIN_MODELS = {
    "vehicles.fleet", "vehicles.vehicle", "callbacks.callback", "remotes.remoteaction", "remotes.remoteevent",
    "remotes.webhookdelivery", "accounts.organisation", "accounts.membership", "accounts.partnertoken",
    "audit.auditentry",
}


@dataclass
class World:
    markers: dict[str, str]
    objects: dict[str, object]  # model label → A's object
    by_param: dict[str, object]
    by_url_name: dict[tuple[str, str], object]
    post_bodies: dict[str, dict]
    b_user: User
    b_key: str
    a_state: callable = field(repr=False)


@pytest.fixture
def world(settings):
    # Hundreds of API requests by one token: the rate limit is not what this test is about.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"partner": None}}
    now = timezone.now()

    # --- organisation A: everything B must never learn of -------------------------------
    org_a = Organisation.objects.create(name="Alphaleak Org", slug="alphaleak-org")
    a_admin = User.objects.create_user("alphaleak-admin", password="pw-alphaleak-1", is_staff=True)
    a_membership = Membership.objects.create(user=a_admin, organisation=org_a, role=Role.ADMIN)
    a_token, _ = PartnerToken.issue(organisation=org_a, user=a_admin, name="alphaleak partner", scopes=Scope.values)
    fleet_a = Fleet.objects.create(organisation=org_a, external_id="FID-ALPHALEAK", name="Alphaleak Fleet")
    vehicle_a = Vehicle.objects.create(fleet=fleet_a, external_id="VID-ALPHALEAK-1", vin="VF3ALPHALEAK00001", brand="Peugeot", motorization="Electric")
    vehicle_a2 = Vehicle.objects.create(fleet=fleet_a, external_id="VID-ALPHALEAK-2", vin="VF3ALPHALEAK00002", brand="Citroen", motorization="Thermal")
    callback_a = Callback.objects.create(
        fleet=fleet_a, external_id="CBID-ALPHALEAK", label="Alphaleak callback", target="http://127.0.0.1:9/alphaleak-hook",
        remote_types=list(RemoteType.values), secret="alphaleak-secret-0123456789abcdef",
    )
    destination = [7.7654321, 47.1234567]
    action_a = RemoteAction.objects.create(
        vehicle=vehicle_a, callback=callback_a, remote_type=RemoteType.NAVIGATION, source=Source.WEB, requested_by=a_admin,
        command={"navigation": {"positions": [{"type": "Point", "coordinates": destination}]}},
        status=ActionStatus.PENDING, remote_action_id="RAID-ALPHALEAK", reason="alphaleak errand", expires_at=now + dt.timedelta(hours=1),
    )
    ActionStep.objects.create(action=action_a, status=ActionStatus.PENDING, at=now, detail="alphaleak step")
    delivery_a = WebhookDelivery.objects.create(callback=callback_a, body='{"marker": "ALPHALEAK-DELIVERY-BODY"}', headers={})
    event_a = RemoteEvent.objects.create(
        action=action_a, remote_action_id="RAID-ALPHALEAK", vin=vehicle_a.vin, remote_type=RemoteType.NAVIGATION,
        event_type=EventType.PENDING, status="Accepted", event_date=now, delivery=delivery_a,
    )
    status_a = VehicleStatus.objects.create(vehicle=vehicle_a, fetched_at=now, energy_level=42.0, latitude=47.1234567, longitude=7.7654321)
    push_endpoint_a = WebhookEndpoint.objects.create(
        organisation=org_a, url="http://127.0.0.1:9/alphaleak-push", events=["remote.status_changed"], description="alphaleak ERP"
    )
    bulk_a = BulkRequest.objects.create(
        organisation=org_a, fleet=fleet_a, command={"horn": {"state": "Activated"}}, remote_type=RemoteType.HORN,
        selection="vins", vins=[vehicle_a.vin], requested_by=a_admin, source=Source.WEB, reason="ALPHALEAK-BULK-REASON",
        not_before=now, not_after=now + dt.timedelta(hours=1), total=1, status="finished",
    )
    BulkItem.objects.create(bulk=bulk_a, vehicle=vehicle_a, action=action_a, state="dispatched")
    push_a = PushDelivery.objects.create(
        endpoint=push_endpoint_a, event_type="remote.status_changed", action=action_a, action_state="pending:Accepted",
        payload={"marker": "ALPHALEAK-PUSH-PAYLOAD"}, state=PushDelivery.State.DELIVERED,
    )

    # --- organisation B: the curious one, with its own world -----------------------------
    org_b = Organisation.objects.create(name="Bravo Org", slug="bravo-org")
    fleet_b = Fleet.objects.create(organisation=org_b, external_id="FID-BRAVO", name="Bravo Fleet")
    Vehicle.objects.create(fleet=fleet_b, external_id="VID-BRAVO-1", vin="VF3BRAVO000000001", brand="Opel", motorization="Electric")
    Callback.objects.create(fleet=fleet_b, external_id="CBID-BRAVO", label="Bravo callback", target="http://127.0.0.1:9/bravo", remote_types=list(RemoteType.values))
    b_user = User.objects.create_user("bravo-admin", password="pw-bravo-admin-1", is_staff=True)
    # Every model permission Django knows: what B's admin sees is decided by the scoping, not by
    # missing permissions.
    b_user.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=b_user, organisation=org_b, role=Role.ADMIN)
    _, b_key = PartnerToken.issue(organisation=org_b, user=b_user, name="bravo partner", scopes=Scope.values)

    markers = {
        "A's VIN": vehicle_a.vin,
        "A's second VIN": vehicle_a2.vin,
        "A's fleet id": fleet_a.external_id,
        "A's fleet name": fleet_a.name,
        "A's organisation": org_a.name,
        "A's callback label": callback_a.label,
        "A's callback secret": callback_a.secret,
        "A's callback target": callback_a.target,
        "A's navigation destination": "47.1234567",
        "A's action": str(action_a.pk),
        "A's action at Stellantis": action_a.remote_action_id,
        "A's delivery body": "ALPHALEAK-DELIVERY-BODY",
        "A's member": a_admin.username,
        "A's token": a_token.name,
        "A's push endpoint": push_endpoint_a.url,
        "A's push secret": push_endpoint_a.secret,
        "A's push payload": "ALPHALEAK-PUSH-PAYLOAD",
        "A's bulk request": str(bulk_a.pk),
        "A's bulk reason": bulk_a.reason,
    }
    objects = {
        "vehicles.fleet": fleet_a, "vehicles.vehicle": vehicle_a, "vehicles.vehiclestatus": status_a,
        "callbacks.callback": callback_a, "remotes.remoteaction": action_a, "remotes.remoteevent": event_a,
        "remotes.webhookdelivery": delivery_a, "remotes.actionstep": action_a.steps.get(),
        "accounts.organisation": org_a, "accounts.membership": a_membership, "accounts.partnertoken": a_token,
        "auth.user": a_admin,
        "pushes.webhookendpoint": push_endpoint_a, "pushes.pushdelivery": push_a,
    }
    if apps.is_installed("audit"):  # the audit log names the organisation each entry is about
        entry = apps.get_model("audit", "AuditEntry").objects.create(
            organisation=org_a, user=a_admin, actor=a_admin.username, source="page", action="remote.requested",
            object_type="remotes.remoteaction", object_id=str(action_a.pk), object_repr="ALPHALEAK-AUDIT-ENTRY",
        )
        objects["audit.auditentry"] = entry
        markers["A's audit entry"] = entry.object_repr

    def a_state():
        """A's rows as they are: a POST by B must change none of them."""
        return (
            list(Vehicle.objects.filter(fleet=fleet_a).values_list("pk", "vin", "updated_at")),
            list(Callback.objects.filter(fleet=fleet_a).values_list("pk", "label", "status", "secret", "deleted_at", "updated_at")),
            list(RemoteAction.objects.filter(vehicle__fleet=fleet_a).values_list("pk", "status")),
            list(WebhookDelivery.objects.filter(callback=callback_a).values_list("pk", "outcome")),
            list(RemoteEvent.objects.filter(action=action_a).values_list("pk")),
            list(Membership.objects.filter(organisation=org_a).values_list("pk", "role")),
            list(PartnerToken.objects.filter(organisation=org_a).values_list("pk", "revoked_at")),
            list(Fleet.objects.filter(organisation=org_a).values_list("pk", "name")),
            list(Organisation.objects.filter(pk=org_a.pk).values_list("pk", "name")),
            list(WebhookEndpoint.objects.filter(organisation=org_a).values_list("pk", "url", "enabled", "secret")),
            list(PushDelivery.objects.filter(endpoint__organisation=org_a).values_list("pk", "state", "attempts")),
            list(BulkRequest.objects.filter(organisation=org_a).values_list("pk", "status", "finished_at")),
            list(BulkItem.objects.filter(bulk=bulk_a).values_list("pk", "state")),
        )

    return World(
        markers=markers,
        objects=objects,
        by_param={
            "vin": vehicle_a.vin,
            "member": "horn",  # not an object: every vehicle has the same features
            "slug": org_a.slug,
            "uidb64": urlsafe_base64_encode(str(a_admin.pk).encode()),
            "token": "set-password",  # not an object: a password-reset link's token part
            "url": "no-such-admin-page/",  # the admin's catch-all
        },
        by_url_name={
            **{(name, "pk"): action_a.pk for name in (
                "action-detail", "action-timeline", "action-approve", "action-reject", "action-cancel",
                "api-remote-detail", "api-remote-approve", "api-remote-reject", "api-remote-cancel",
            )},
            **{(name, "pk"): callback_a.pk for name in (
                "callback-edit", "callback-status", "callback-delete", "callback-rotate", "callback-check",
                "api-callback-detail", "api-callback-status",
            )},
            ("api-fleet-detail", "fleet_id"): fleet_a.external_id,
            ("member-edit", "pk"): a_membership.pk,
            ("member-remove", "pk"): a_membership.pk,
            ("token-revoke", "pk"): a_token.pk,
            **{(name, "pk"): push_endpoint_a.pk for name in (
                "api-webhook-endpoint-detail", "api-webhook-endpoint-deliveries", "api-webhook-delivery-replay",
            )},
            ("api-webhook-delivery-replay", "delivery_id"): push_a.pk,
            **{(name, "pk"): bulk_a.pk for name in (
                "bulk-detail", "bulk-progress", "bulk-cancel", "bulk-retry-failed", "api-bulk-detail", "api-bulk-cancel", "api-bulk-retry-failed",
            )},
        },
        post_bodies={
            "vehicle-remote": {"state": "Locked", "reason": "bravo"},
            "vehicle-label": {"label": "bravo's", "plate": "BRAVO"},
            "callback-create": {"fleet": fleet_a.external_id, "label": "bravo's", "remote_types": [RemoteType.HORN]},
            "callback-import": {"fleet": fleet_a.external_id},
            "callback-status": {"status": "Paused"},
            "callback-edit": {"label": "bravo's"},
            "api-vehicle-remotes": {"horn": {"state": "Activated"}},
            "api-bulk-list": {"command": {"horn": {"state": "Activated"}}, "vins": [vehicle_a.vin]},
            "bulk-new": {"selection": "vins", "vin": [vehicle_a.vin], "member": "horn", "send": "1"},
            "api-callback-list": {"fleet": fleet_a.external_id, "remote_types": [RemoteType.HORN]},
            "api-callback-detail": {"remote_types": [RemoteType.HORN]},
            "api-callback-status": {"status": "Paused"},
            "member-edit": {"role": Role.VIEWER},
            "member-invite": {"email": "x@example.com", "role": Role.VIEWER},
            "token-issue": {"name": "bravo", "scopes": [Scope.READ]},
            **{name: {"comment": "bravo"} for name in (
                "action-approve", "action-reject", "action-cancel", "api-remote-approve", "api-remote-reject", "api-remote-cancel",
            )},
            "approval-policy": {"required_for": ["door"], "ttl_minutes": 5},
            "api-webhook-endpoint-list": {"url": "http://127.0.0.1:9/bravo-push", "events": ["remote.status_changed"]},
            "api-webhook-endpoint-detail": {"enabled": False},
        },
        b_user=b_user,
        b_key=b_key,
        a_state=a_state,
    )


# --- the walker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # namespaced url name, or the view's path when the pattern has none
    regex: str  # the whole path as one regex
    converters: dict


def _join(prefix: str, regex: str) -> str:
    return prefix + regex.removeprefix("^")


def walk(resolver=None, prefix: str = "", namespaces: tuple = (), converters=None):
    """Every leaf pattern of the URLconf, its full regex and name (admin URLs included)."""
    resolver = resolver or get_resolver()
    for p in resolver.url_patterns:
        regex = p.pattern.regex.pattern
        conv = {**(converters or {}), **getattr(p.pattern, "converters", {})}
        if isinstance(p, URLResolver):
            ns = namespaces + ((p.namespace,) if p.namespace else ())
            yield from walk(p, _join(prefix, regex), ns, conv)
        elif isinstance(p, URLPattern):
            view = p.lookup_str
            name = ":".join(namespaces + (p.name,)) if p.name else view
            yield Route(name, _join(prefix, regex), conv)


def _admin_model(route: Route):
    """The model of an admin URL (admin/<app>/<model>/…), else None."""
    for model in admin.site._registry:
        if route.regex.startswith(f"admin/{model._meta.app_label}/{model._meta.model_name}/"):
            return model
    return None


def _ghost(value):
    if isinstance(value, uuid.UUID):
        return GHOST_UUID
    if isinstance(value, int):
        return GHOST_INT
    if re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", str(value)):
        return GHOST_VIN
    return GHOST_SLUG


@dataclass
class Target:
    route: Route
    url: str
    ghost_url: str | None  # None: the URL names no object of A's
    values: list = field(default_factory=list)  # (A's value, the ghost's) as they appear in URLs


class CannotFill(Exception):
    pass


def targets(world: World) -> list[Target]:
    out = []
    unfillable = []
    for route in walk():
        if route.regex.startswith(settings.SIMULATOR_PATH + "/"):
            continue  # the vendor's API, Basic auth: test_the_simulators_vendor_api_wants_its_credentials
        forms = normalize(route.regex)
        fmt, params = forms[0]
        try:
            for values, ghosts in _fillings(world, route, params):
                url = "/" + fmt % {k: values[k] for k in params}
                ghost_url = "/" + fmt % {k: ghosts[k] for k in params} if ghosts != values else None
                pairs = [(str(values[k]), str(ghosts[k])) for k in params if values[k] != ghosts[k]]
                out.append(Target(route, url, ghost_url, pairs))
        except CannotFill as exc:
            unfillable.append(f"{route.name} ({route.regex}): {exc}")
    assert not unfillable, "URL parameters with no value of organisation A's to fill them:\n" + "\n".join(unfillable)
    return out


def _fillings(world: World, route: Route, params):
    """[(values, ghost values)] for a route's parameters; several for admin's app_label."""
    if not params:
        return [({}, {})]
    model = _admin_model(route)
    if route.name == "admin:app_list":
        labels = sorted({m._meta.app_label for m in admin.site._registry})
        return [({"app_label": label}, {"app_label": label}) for label in labels]
    if route.name == "admin:view_on_site":
        return [
            ({"content_type_id": ContentType.objects.get_for_model(obj).pk, "object_id": obj.pk},
             {"content_type_id": ContentType.objects.get_for_model(obj).pk, "object_id": _ghost(obj.pk)})
            for obj in (world.objects["vehicles.vehicle"], world.objects["callbacks.callback"], world.objects["remotes.remoteaction"])
        ]
    values, ghosts = {}, {}
    for param in params:
        if model is not None and param in ("object_id", "id"):
            label = model._meta.label_lower
            if label in world.objects:
                values[param] = world.objects[label].pk
                ghosts[param] = _ghost(values[param])
            elif label in NOT_ORGANISATION_DATA:
                values[param] = ghosts[param] = GHOST_INT
            else:
                raise CannotFill(f"admin model {label} is in neither ADMIN objects of A nor NOT_ORGANISATION_DATA")
        elif (route.name, param) in world.by_url_name:
            values[param] = world.by_url_name[(route.name, param)]
            ghosts[param] = _ghost(values[param])
        elif param in world.by_param:
            values[param] = world.by_param[param]
            ghosts[param] = values[param] if param in ("member", "token", "url") else _ghost(values[param])
        else:
            raise CannotFill(f"no value for parameter {param!r}")
    return [(values, ghosts)]


# --- requests -------------------------------------------------------------------------------


def _client(world: World, actor: str) -> Client:
    if actor == "user":
        client = Client()
        client.force_login(world.b_user)
        return client
    return Client(HTTP_AUTHORIZATION=f"Token {world.b_key}")


def _methods(target: Target) -> list[str]:
    if target.url.startswith("/api/"):
        return ["GET", "POST", "PUT", "DELETE"]
    return ["GET", "POST"]


def _request(client: Client, method: str, url: str, body: dict):
    if url.startswith("/api/"):
        return client.generic(method, url, json.dumps(body) if method != "GET" else "", content_type="application/json")
    if method == "GET":
        return client.get(url)
    return client.post(url, body)


def _body(response) -> str:
    """The answer's text; a streamed one (the vehicle list's CSV export) is read once and kept."""
    if getattr(response, "streaming", False):
        if not hasattr(response, "_walked_body"):
            response._walked_body = response.getvalue().decode(errors="replace")
        return response._walked_body
    return response.content.decode(errors="replace")


def _leaked(world: World, response, url: str) -> list[str]:
    """Markers of A's in the answer (body and Location), those the URL itself carries aside."""
    text = _body(response) + " " + response.get("Location", "")
    return [what for what, marker in world.markers.items() if marker in text and marker not in url]


_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def _answer(response, url: str, ghost_url: str, values: list[tuple[str, str]]):
    """What an answer tells: status, where it redirects, and a page's text, with the asked
    object's value written as the ghost's (and CSRF tokens left out)."""
    text = _body(response) if response.status_code == 200 else ""
    where = response.get("Location", "")
    text, where = text.replace(url, ghost_url), where.replace(url, ghost_url)
    for a_value, ghost_value in values:
        # A short id (a pk such as 1) only as a path segment; a VIN, uuid or slug wherever it is.
        a_value, ghost_value = (a_value, ghost_value) if len(a_value) >= 8 else (f"/{a_value}/", f"/{ghost_value}/")
        text, where = text.replace(a_value, ghost_value), where.replace(a_value, ghost_value)
    return response.status_code, where, _CSRF.sub("", text)


@pytest.mark.parametrize("actor", ["user", "token"])
def test_organisation_b_learns_nothing_of_organisation_a_anywhere(world, actor):
    problems = []
    before = world.a_state()
    walked = 0
    for target in targets(world):
        for method in _methods(target):
            client = _client(world, actor)  # fresh each time: a walked logout must not end the walk
            body = world.post_bodies.get(target.route.name, {})
            with transaction.atomic():
                response = _request(client, method, target.url, body)
                after = world.a_state()
                transaction.set_rollback(True)  # whatever the request did, the next one sees A whole
            walked += 1
            where = f"{actor} {method} {target.url} [{target.route.name}] → {response.status_code}"
            if response.status_code >= 500 and not (target.route.name in NOT_READY_IS_AN_ANSWER and response.status_code == 503):
                problems.append(f"{where}: server error")
            leaked = _leaked(world, response, target.url)
            if leaked:
                problems.append(f"{where}: shows {', '.join(leaked)}")
            if after != before:
                problems.append(f"{where}: changed A's rows")
            if target.ghost_url is not None:
                ghost = _client(world, actor)
                with transaction.atomic():
                    ghost_response = _request(ghost, method, target.ghost_url, body)
                    transaction.set_rollback(True)
                # Indistinguishable from an object that does not exist: same status, same
                # redirect, same page (a 403 for A's vehicle and a 404 for none says A's exists).
                values = target.values
                if _answer(response, target.url, target.ghost_url, values) != _answer(ghost_response, target.url, target.ghost_url, values):
                    problems.append(f"{where}: but {ghost_response.status_code} and another answer for an object that does not exist")
            elif method == "GET" and _must_list(world, target, actor) and response.status_code != 200:
                problems.append(f"{where}: a list that should answer 200")
    assert walked > 100, f"only {walked} requests: the walker lost its way"
    assert not problems, f"{len(problems)} leak(s) of organisation A to organisation B's {actor}:\n" + "\n".join(problems)


def _must_list(world: World, target: Target, actor: str) -> bool:
    if target.route.name in LISTS[actor]:
        return True
    model = _admin_model(target.route)
    return actor == "user" and model is not None and target.route.name.endswith("_changelist") and model._meta.label_lower in ORGANISATION_ADMIN_MODELS


@pytest.mark.parametrize("actor", ["user", "token"])
def test_filtered_and_searched_lists_do_not_reach_into_organisation_a(world, actor):
    """Lists asked for A's fleet or VIN by name answer as for a fleet that does not exist."""
    fid, vin = world.markers["A's fleet id"], world.markers["A's VIN"]
    urls = [f"/?fleet={fid}", f"/?q={vin}", f"/?q=ALPHALEAK&fleet={fid}", f"/api/v1/callbacks/?fleet={fid}", f"/callbacks/new/?fleet={fid}"]
    urls += [f"/vehicles/{where}?{query}" for where in ("", "export.csv") for query in (f"fleet={fid}", "q=ALPHALEAK", "state=stolen&brand=Peugeot")]
    for model in admin.site._registry:
        urls.append(f"/admin/{model._meta.app_label}/{model._meta.model_name}/?q=ALPHALEAK")
        urls.append(f"/admin/{model._meta.app_label}/{model._meta.model_name}/?q={vin}")
    problems = []
    for url in urls:
        response = _client(world, actor).get(url)
        leaked = _leaked(world, response, url)
        if leaked or response.status_code >= 500:
            problems.append(f"{actor} GET {url} → {response.status_code}: {', '.join(leaked)}")
    assert not problems, "\n".join(problems)


def test_the_walker_reaches_every_kind_of_url(world):
    """The walk covers pages, API, admin objects (with A's ids) and leaves out the simulator."""
    urls = {t.url for t in targets(world)}
    vehicle = world.objects["vehicles.vehicle"]
    action = world.objects["remotes.remoteaction"]
    assert f"/vehicles/{vehicle.vin}/" in urls
    assert f"/actions/{action.pk}/" in urls and f"/api/v1/remotes/{action.pk}/" in urls
    assert f"/admin/vehicles/vehicle/{vehicle.pk}/change/" in urls
    assert f"/admin/remotes/webhookdelivery/{world.objects['remotes.webhookdelivery'].pk}/change/" in urls
    assert not any(u.startswith(f"/{settings.SIMULATOR_PATH}/") for u in urls)


def test_the_simulators_vendor_api_wants_its_credentials(world):
    """Skipped by the walk: the vendor's API is not the portal's; without Basic auth it is a 401."""
    fid = world.markers["A's fleet id"]
    for path in ("fleets", f"fleets/{fid}/vehicles", "fleets/x/remote/callbacks"):
        response = _client(world, "user").get(f"/{settings.SIMULATOR_PATH}/{path}")
        assert response.status_code == 401, path
        response = _client(world, "token").get(f"/{settings.SIMULATOR_PATH}/{path}")
        assert response.status_code == 401, path
