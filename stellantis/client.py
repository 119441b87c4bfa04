"""Plain-Python client of the Stellantis Fleet Owner API (remote part). No Django models here.

One `requests.Session` per client: mutual TLS, Basic auth and `client_id` on every call,
a timeout on every call, HAL paging, vendor errors raised as typed exceptions. It answers
with small typed results (`FleetInfo`, `VehicleInfo`, `RemoteCallback`, `RemoteState`), so
the apps never read the vendor's JSON keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django.conf import settings
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .callbacks import RemoteCallback, Subscription
from .errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    NotFound,
    StellantisError,
    VendorRejected,
    VendorUnavailable,
)
from .vocabulary import DoneStatus, EventType, Motorization, PendingStatus

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 60


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
        )


class FleetClient:
    def __init__(self, config: ClientConfig, session: requests.Session | None = None):
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.session = session or requests.Session()
        if config.user:
            self.session.auth = (config.user, config.password)
        if config.cert:
            self.session.cert = (config.cert, config.key) if config.key else config.cert
        if config.ca:
            self.session.verify = config.ca
        self.session.headers.update({"Accept": "application/hal+json, application/json"})

    @classmethod
    def from_settings(cls) -> FleetClient:
        return cls(ClientConfig.from_settings())

    # --- transport -------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        query = {"client_id": self.config.client_id, **(params or {})}
        try:
            response = self.session.request(method, url, params=query, json=json, timeout=self.config.timeout)
        except requests.ConnectTimeout as exc:
            # Never connected: nothing reached the vendor.
            raise VendorUnavailable(f"Stellantis unreachable ({exc.__class__.__name__})") from exc
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                raise VendorUnavailable(f"Stellantis unreachable ({exc.__class__.__name__})") from exc
            raise AmbiguousOutcome(f"Connection to Stellantis lost ({exc.__class__.__name__})") from exc
        except requests.Timeout as exc:
            raise AmbiguousOutcome("Stellantis did not answer in time") from exc
        return self._handle(method, url, response)

    @staticmethod
    def _handle(method: str, url: str, response: requests.Response) -> Any:
        if response.status_code < 400:
            if response.status_code == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise AmbiguousOutcome(f"Stellantis answered {response.status_code} with a body that is not JSON", status=response.status_code) from exc
        code, message = None, ""
        try:
            body = response.json()
            if isinstance(body, dict):
                code, message = body.get("code"), str(body.get("message") or "")
        except ValueError:
            message = response.text[:300]
        text = message or response.reason or "error"
        log.info("stellantis %s %s -> %s %s", method, url, response.status_code, text)
        kwargs = {"status": response.status_code, "code": code, "vendor_message": message}
        if response.status_code == 404:
            raise NotFound(f"Not found at Stellantis: {text}", **kwargs)
        if response.status_code in (401, 403):
            raise AuthenticationFailed(f"Stellantis refused our credentials: {text}", **kwargs)
        if response.status_code == 429:
            raise VendorUnavailable(f"Stellantis asks us to slow down: {text}", **kwargs)
        if 400 <= response.status_code < 500:
            raise VendorRejected(f"Stellantis refused the request: {text}", **kwargs)
        raise AmbiguousOutcome(f"Stellantis failed: {text}", **kwargs)

    def _pages(self, path: str, embedded_key: str, *, page_size: int = MAX_PAGE_SIZE, params: dict | None = None) -> Iterator[dict]:
        """Every item of a HAL collection, following `pageToken` from page to page."""
        query = {"pageSize": page_size, **(params or {})}
        seen_tokens = set()
        while True:
            body = self._request("GET", path, params=query) or {}
            yield from (body.get("_embedded") or {}).get(embedded_key) or []
            token = _next_page_token(body)
            if not token or token in seen_tokens:  # a vendor loop must not become ours
                return
            seen_tokens.add(token)
            query = {**query, "pageToken": token}

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

    def send_remote(self, fleet_id: str, vehicle_id: str, callback_id: str, remote: dict) -> str:
        """POST a `Remote` body (label included); answers the vendor's remoteActionId. Not idempotent at the vendor."""
        reply = self._request("POST", self._remotes_path(fleet_id, vehicle_id, callback_id), json=remote)
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


def _next_page_token(body: dict) -> str | None:
    href = (((body.get("_links") or {}).get("next")) or {}).get("href")
    if not href:
        return None
    values = parse_qs(urlsplit(href).query).get("pageToken")
    return values[0] if values else None


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
]
