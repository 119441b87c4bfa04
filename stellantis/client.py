"""Plain-Python client of the Stellantis Fleet Owner API (remote part). No Django models here.

One `requests.Session` per client: mutual TLS, Basic auth and `client_id` on every call,
a timeout on every call, HAL paging (the vendor's `_links.next.href`, followed as given),
vendor errors raised as typed exceptions, and the vendor's rate limits obeyed through a
pacer shared by every worker (`stellantis.pacing`). It answers with small typed results
(`FleetInfo`, `VehicleInfo`, `RemoteCallback`, `RemoteState`), so the apps never read the
vendor's JSON keys.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import requests
from django.conf import settings
from django.utils.module_loading import import_string
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .callbacks import RemoteCallback, Subscription
from .errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    BadPaging,
    NoAccess,
    NotFound,
    RateLimited,
    StellantisError,
    TooLate,
    VendorRejected,
    VendorUnavailable,
)
from .pacing import Hold, Limits, LocalPacer, Pacer, hold_for, read_limits
from .vocabulary import DoneStatus, EventType, Motorization, PendingStatus

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 60
# A 429 whose Retry-After is short is waited out and the call made again, at most this many times.
RATE_LIMITED_ATTEMPTS = 3
# While held off, the budget is read again this often.
BUDGET_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class FleetInfo:
    id: str
    name: str = ""
    description: str = ""

    @classmethod
    def from_wire(cls, body: dict) -> FleetInfo:
        return cls(id=str(body.get("id") or ""), name=body.get("name") or "", description=body.get("description") or "")


@dataclass(frozen=True)
class VehicleInfo:
    id: str
    vin: str
    brand: str = ""
    motorization: str = ""  # one of Motorization's values, or "" when the vendor says something else

    @classmethod
    def from_wire(cls, body: dict) -> VehicleInfo:
        motorization = body.get("motorization") or ""
        return cls(
            id=str(body.get("id") or ""),
            vin=str(body.get("vin") or ""),
            brand=body.get("brand") or "",
            motorization=motorization if motorization in Motorization.values else "",
        )


@dataclass(frozen=True)
class RemoteState:
    """A remote action as the vendor holds it (`GET …/remotes/{rid}`, or one item of the list)."""

    remote_action_id: str
    status: str = ""
    label: str = ""
    failure_cause: str = ""
    feedback_detail: str = ""

    @property
    def event_type(self) -> str:
        """Done or Pending, as a notification with this status would say; "" for a status we do not know."""
        if self.status in DoneStatus.values:
            return EventType.DONE
        if self.status in PendingStatus.values:
            return EventType.PENDING
        return ""

    @classmethod
    def from_wire(cls, body: dict) -> RemoteState:
        return cls(
            remote_action_id=str(body.get("remoteActionId") or ""),
            status=str(body.get("status") or ""),
            label=str((body.get("remote") or {}).get("label") or ""),
            failure_cause=str(body.get("failureCause") or ""),
            feedback_detail=str(body.get("feedbackDetail") or ""),
        )


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    client_id: str
    user: str = ""
    password: str = ""
    cert: str = ""
    key: str = ""
    ca: str = ""
    timeout: tuple[float, float] = (5.0, 15.0)
    # A wait for the rate-limit budget up to this long is slept through; a longer one raises
    # RateLimited at once, without calling the vendor.
    rate_limit_max_wait: float = 5.0

    @classmethod
    def from_settings(cls) -> ClientConfig:
        return cls(
            base_url=settings.STELLANTIS_API_BASE,
            client_id=settings.STELLANTIS_CLIENT_ID,
            user=settings.STELLANTIS_USER,
            password=settings.STELLANTIS_PASSWORD,
            cert=settings.STELLANTIS_CERT,
            key=settings.STELLANTIS_KEY,
            ca=settings.STELLANTIS_CA,
            timeout=tuple(settings.STELLANTIS_TIMEOUT),
            rate_limit_max_wait=settings.STELLANTIS_RATE_LIMIT_MAX_WAIT,
        )


_pacers: dict[str, Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_from_settings() -> Pacer:
    """The pacer `settings.STELLANTIS_PACER` names (a class or factory taking no argument), one per process."""
    path = settings.STELLANTIS_PACER
    with _pacers_lock:
        if path not in _pacers:
            _pacers[path] = import_string(path)()
        return _pacers[path]


# Told of every call's answer: (method, status code or "unreachable" / "no_answer", Limits or
# None). The portal's metrics set it at start-up (ops.apps), as settings name the pacer:
# stellantis imports none of our apps. An observer that fails is logged, never raised.
_call_observer: Callable[[str, int | str, Limits | None], None] | None = None


def set_call_observer(observer: Callable[[str, int | str, Limits | None], None] | None) -> None:
    global _call_observer
    _call_observer = observer


def _observe(method: str, status: int | str, limits: Limits | None) -> None:
    if _call_observer is not None:
        try:
            _call_observer(method, status, limits)
        except Exception:
            log.exception("the Stellantis call observer failed")


class FleetClient:
    def __init__(self, config: ClientConfig, session: requests.Session | None = None, pacer: Pacer | None = None):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.session = session or requests.Session()
        # Without a shared pacer the client still obeys the vendor within this process.
        self.pacer = pacer if pacer is not None else LocalPacer()
        self._sleep = time.sleep
        if config.user:
            self.session.auth = (config.user, config.password)
        if config.cert:
            self.session.cert = (config.cert, config.key) if config.key else config.cert
        if config.ca:
            self.session.verify = config.ca
        self.session.headers.update({"Accept": "application/hal+json, application/json"})
        if self.session.trust_env:
            # requests reads the proxy variables on every call (walking the whole environment
            # twice: a sixth of a bulk request's CPU per command). Every call goes to base_url and
            # the environment does not change under a running process: read it once, here.
            self.session.proxies = {**requests.utils.get_environ_proxies(self.base_url), **self.session.proxies}
            if self.session.verify is True:
                self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            self.session.trust_env = False

    @classmethod
    def from_settings(cls) -> FleetClient:
        return cls(ClientConfig.from_settings(), pacer=pacer_from_settings())

    # --- transport -------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict | None = None, json: Any = None, not_after: float | None = None) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        query = {"client_id": self.config.client_id, **(params or {})}
        return self._handle(method, url, self._send(method, url, params=query, json=json, not_after=not_after))

    def _send(self, method: str, url: str, *, params: dict | None = None, json: Any = None, not_after: float | None = None) -> requests.Response:
        """One call, paced: waits for the shared budget, tells the pacer what the answer said.

        A 429 is never ambiguous (the vendor refused before acting), so one with a short
        Retry-After is waited out and the call made again, even a POST. `not_after` (a Unix
        time) is checked after every wait, just before the request leaves: past it, TooLate.
        """
        for attempt in range(1, RATE_LIMITED_ATTEMPTS + 1):
            self._wait_for_budget()
            timeout = self.config.timeout
            if not_after is not None:
                left = not_after - time.time()
                if left <= 0:
                    raise TooLate(f"Not sent: its time to live ran out {-left:.1f} s before the request could leave")
                # A connection that takes longer than the time left would deliver it late.
                timeout = (min(timeout[0], left), timeout[1])
            try:
                response = self._transport(method, url, params=params, json=json, timeout=timeout)
            except VendorUnavailable:
                _observe(method, "unreachable", None)
                raise
            except AmbiguousOutcome:
                _observe(method, "no_answer", None)
                raise
            limits = read_limits(response.headers)
            _observe(method, response.status_code, limits)
            hold = hold_for(limits, response.status_code)
            if hold:
                log.info("stellantis %s %s: holding every call off for %.1f s (%s)", method, url, hold.seconds, hold.reason)
                self.pacer.hold(hold.seconds, reason=hold.reason)
            else:
                self.pacer.clear()
            if response.status_code != 429:
                return response
            if hold.seconds > self.config.rate_limit_max_wait or attempt == RATE_LIMITED_ATTEMPTS:
                raise self._rate_limited(method, url, response, hold)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_for_budget(self) -> None:
        """Sleep through a short hold-off; raise RateLimited at once for a long one."""
        slept = 0.0
        limit = self.config.rate_limit_max_wait
        while (wait := self.pacer.delay()) > 0:
            if wait > limit or slept + wait > 3 * limit:
                raise RateLimited(f"Stellantis' rate limit is spent: not calling it for {wait:.0f} s", retry_after=wait)
            # In slices: a probe that comes back fine lifts the hold for everyone at once.
            nap = min(wait, BUDGET_POLL_SECONDS)
            self._sleep(nap)
            slept += nap

    def _transport(self, method: str, url: str, *, params: dict | None, json: Any, timeout: tuple[float, float]) -> requests.Response:
        try:
            return self.session.request(method, url, params=params, json=json, timeout=timeout)
        except requests.ConnectTimeout as exc:
            # Never connected: nothing reached the vendor.
            raise VendorUnavailable(f"Stellantis unreachable ({exc.__class__.__name__})") from exc
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise VendorUnavailable(f"Stellantis unreachable ({exc.__class__.__name__})") from exc
            raise AmbiguousOutcome(f"Connection to Stellantis lost ({exc.__class__.__name__})") from exc
        except requests.Timeout as exc:
            raise AmbiguousOutcome("Stellantis did not answer in time") from exc

    @staticmethod
    def _error_details(response: requests.Response) -> dict:
        """The vendor's `xError` (code, message, uuid, timestamp) as keyword arguments of an error."""
        details = {"status": response.status_code, "code": None, "vendor_message": "", "uuid": "", "timestamp": ""}
        try:
            body = response.json()
        except ValueError:
            details["vendor_message"] = response.text[:300]
            return details
        if isinstance(body, dict):
            code = body.get("code")
            details.update(
                code=code if isinstance(code, int) else None,
                vendor_message=str(body.get("message") or ""),
                uuid=str(body.get("uuid") or ""),
                timestamp=str(body.get("timestamp") or ""),
            )
        return details

    def _rate_limited(self, method: str, url: str, response: requests.Response, hold: Hold) -> RateLimited:
        details = self._error_details(response)
        text = details["vendor_message"] or response.reason or "Too Many Requests"
        log.info("stellantis %s %s -> 429 %s", method, url, text)
        return RateLimited(f"Stellantis asks us to slow down: {text}", retry_after=hold.seconds, **details)

    @classmethod
    def _handle(cls, method: str, url: str, response: requests.Response) -> Any:
        if response.status_code < 400:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise AmbiguousOutcome(f"Stellantis answered {response.status_code} with a body that is not JSON", status=response.status_code) from exc
        details = cls._error_details(response)
        text = details["vendor_message"] or response.reason or "error"
        log.info("stellantis %s %s -> %s %s", method, url, response.status_code, text)
        if response.status_code == 404:
            raise NotFound(f"Not found at Stellantis: {text}", **details)
        if response.status_code == 401:
            raise AuthenticationFailed(f"Stellantis refused our credentials: {text}", **details)
        if response.status_code == 403:
            raise NoAccess(f"Stellantis gives this account no access to that vehicle: {text}", **details)
        if response.status_code == 429:  # only when a caller bypassed _send's handling
            raise RateLimited(f"Stellantis asks us to slow down: {text}", retry_after=hold_for(read_limits(response.headers), 429).seconds, **details)
        if 400 <= response.status_code < 500:
            raise VendorRejected(f"Stellantis refused the request: {text}", **details)
        raise AmbiguousOutcome(f"Stellantis failed: {text}", **details)

    def _pages(self, path: str, embedded_key: str, *, page_size: int = MAX_PAGE_SIZE, params: dict | None = None) -> Iterator[dict]:
        """Every item of a HAL collection, following `_links.next.href` as the vendor gives it.

        The link may carry a `pageToken`, an `indexRange` or anything else: it is requested
        as given (resolved against the page it came from when relative, `client_id` added
        when it lacks one). A link seen before ends the walk (a vendor loop must not become
        ours); a link to another host is refused, since it would get our credentials.
        """
        url = f"{self.base_url}/{path.lstrip('/')}"
        query: dict | None = {"client_id": self.config.client_id, "pageSize": page_size, **(params or {})}
        seen: set = set()
        while True:
            response = self._send("GET", url, params=query)
            body = self._handle("GET", url, response) or {}
            yield from (body.get("_embedded") or {}).get(embedded_key) or []
            seen.add(_page_key(response.url))
            href = (((body.get("_links") or {}).get("next")) or {}).get("href")
            if not href:
                return
            url, query = self._next_url(response.url, str(href)), None
            if _page_key(url) in seen:
                log.warning("stellantis: the next page of %s is one already read (%s); stopping there", path, url)
                return

    def _next_url(self, current: str, href: str) -> str:
        absolute = urljoin(current, href)
        if _origin(absolute) != _origin(self.base_url):
            raise BadPaging(
                f"Stellantis' next-page link points at {_origin(absolute)[1] or absolute}, not at {_origin(self.base_url)[1]}: not followed"
            )
        parts = urlsplit(absolute)
        if "client_id" not in {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}:
            extra = f"client_id={quote(self.config.client_id, safe='')}"
            absolute = parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra).geturl()
        return absolute

    # --- fleets and vehicles ---------------------------------------------------------

    def fleets(self) -> Iterator[FleetInfo]:
        return (FleetInfo.from_wire(f) for f in self._pages("fleets", "fleets"))

    def fleet(self, fleet_id: str) -> FleetInfo:
        return FleetInfo.from_wire({"id": fleet_id, **(self._request("GET", f"fleets/{fleet_id}") or {})})

    def vehicles(self, fleet_id: str, *, page_size: int = MAX_PAGE_SIZE) -> Iterator[VehicleInfo]:
        return (VehicleInfo.from_wire(v) for v in self._pages(f"fleets/{fleet_id}/vehicles", "vehicles", page_size=page_size))

    def vehicle(self, fleet_id: str, vehicle_id: str, *, extension: tuple[str, ...] = ()) -> dict:
        params = {"extension": ",".join(extension)} if extension else None
        return self._request("GET", f"fleets/{fleet_id}/vehicles/{vehicle_id}", params=params)

    def vehicle_capabilities(self, fleet_id: str, vehicle_id: str) -> dict:
        """The vehicle's `onboardCapabilities` as given (empty when the vendor gives none).

        Kept as the vendor wrote it (the portal stores it raw); `stellantis.capabilities`
        reads it."""
        body = self.vehicle(fleet_id, vehicle_id, extension=("onboardCapabilities",)) or {}
        return (((body.get("_embedded") or {}).get("extension")) or {}).get("onboardCapabilities") or {}

    def vehicle_status(self, fleet_id: str, vehicle_id: str) -> dict:
        return self._request("GET", f"fleets/{fleet_id}/vehicles/{vehicle_id}/status")

    # --- remote callbacks ------------------------------------------------------------

    def callbacks(self, fleet_id: str) -> Iterator[RemoteCallback]:
        return (RemoteCallback.from_wire(c) for c in self._pages(f"fleets/{fleet_id}/remote/callbacks", "callbacks"))

    def create_callback(self, fleet_id: str, subscription: Subscription) -> RemoteCallback:
        """POST a subscription; answers the new callback's id and status (a `CallbackRef`)."""
        reply = self._request("POST", f"fleets/{fleet_id}/remote/callbacks", json=subscription.to_wire())
        return RemoteCallback.from_wire(reply, id_key="callbackId")

    def callback(self, fleet_id: str, callback_id: str) -> RemoteCallback:
        return RemoteCallback.from_wire(self._request("GET", f"fleets/{fleet_id}/remote/callbacks/{callback_id}"))

    def replace_callback(self, fleet_id: str, callback_id: str, subscription: Subscription) -> None:
        self._request("PUT", f"fleets/{fleet_id}/remote/callbacks/{callback_id}", json=subscription.to_wire())

    def set_callback_status(self, fleet_id: str, callback_id: str, status: str) -> str:
        """Pause or resume; answers the status the vendor reports (the one asked for when it says none)."""
        reply = self._request("PUT", f"fleets/{fleet_id}/remote/callbacks/{callback_id}/status", json={"status": status})
        return (reply or {}).get("status") or status

    def delete_callback(self, fleet_id: str, callback_id: str) -> None:
        self._request("DELETE", f"fleets/{fleet_id}/remote/callbacks/{callback_id}")

    # --- remotes ---------------------------------------------------------------------

    def _remotes_path(self, fleet_id: str, vehicle_id: str, callback_id: str) -> str:
        return f"fleets/{fleet_id}/vehicles/{vehicle_id}/callbacks/{callback_id}/remotes"

    def send_remote(self, fleet_id: str, vehicle_id: str, callback_id: str, remote: dict, *, not_after: float | None = None) -> str:
        """POST a `Remote` body (label included); answers the vendor's remoteActionId. Not idempotent at the vendor.

        `not_after` (a Unix time): the command's time to live; past it the POST does not leave (TooLate).
        """
        reply = self._request("POST", self._remotes_path(fleet_id, vehicle_id, callback_id), json=remote, not_after=not_after)
        remote_action_id = str((reply or {}).get("remoteActionId") or "")
        if not remote_action_id:
            # Accepted, but we cannot follow it: as unsure as a lost answer (look it up by label).
            raise AmbiguousOutcome("Stellantis accepted the command without saying its id")
        return remote_action_id

    def remotes(self, fleet_id: str, vehicle_id: str, callback_id: str) -> Iterator[RemoteState]:
        return (RemoteState.from_wire(r) for r in self._pages(self._remotes_path(fleet_id, vehicle_id, callback_id), "remoteActions"))

    def remote(self, fleet_id: str, vehicle_id: str, callback_id: str, remote_action_id: str) -> RemoteState:
        body = self._request("GET", f"{self._remotes_path(fleet_id, vehicle_id, callback_id)}/{remote_action_id}") or {}
        return RemoteState.from_wire({"remoteActionId": remote_action_id, **body})

    def find_remote_by_label(self, fleet_id: str, vehicle_id: str, callback_id: str, label: str) -> RemoteState | None:
        """The remote whose `label` is ours, if the vendor has one: how an ambiguous POST is resolved."""
        return next((r for r in self.remotes(fleet_id, vehicle_id, callback_id) if r.label == label), None)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _page_key(url: str) -> tuple:
    """A page's URL with its query in a fixed order: the same page however its link was written."""
    parts = urlsplit(url)
    return (*_origin(url), parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True))))


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP/TLS connection was never made, so the request surely was not sent."""
    seen = exc
    for _ in range(6):
        if isinstance(seen, (NewConnectionError, NameResolutionError, ConnectionRefusedError)):
            return True
        reason = getattr(seen, "reason", None) or getattr(seen, "__cause__", None) or getattr(seen, "__context__", None)
        if reason is None and seen.args:
            reason = seen.args[0] if isinstance(seen.args[0], BaseException) else None
        if reason is None:
            return False
        seen = reason
    return False


__all__ = [
    "ClientConfig",
    "FleetClient",
    "FleetInfo",
    "VehicleInfo",
    "RemoteState",
    "StellantisError",
    "VendorRejected",
    "VendorUnavailable",
    "AmbiguousOutcome",
    "NotFound",
    "AuthenticationFailed",
    "NoAccess",
    "RateLimited",
    "BadPaging",
    "pacer_from_settings",
    "set_call_observer",
]
