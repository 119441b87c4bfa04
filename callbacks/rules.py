"""Rules a callback must follow (the vendor's RemoteCallbackSubscribe), keyed by field name.

Shared by the model's clean(), the web/admin forms and the API serializer, so every surface
names the same field with the same words.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from stellantis.callbacks import DEFAULT_BATCH_TIME_WINDOW
from stellantis.vocabulary import ATTRIBUTE_VARIABLES, AttributeType, RemoteType, RetryPolicy

MIN_TIME_WINDOW = 5


def time_window(batch_size: int | None, batch_time_window: int | None) -> int | None:
    """The vendor's default window (60 s) when batching is on and none was given."""
    if batch_size and not batch_time_window:
        return DEFAULT_BATCH_TIME_WINDOW
    return batch_time_window


def check(
    *,
    target: str,
    name: str,
    retry_policy: str,
    retry_number: int | None,
    retry_delay: int | None,
    batch_size: int | None,
    batch_time_window: int | None,
    remote_types: list,
    attributes: list,
    reserved_header: str,
) -> dict[str, str]:
    errors: dict[str, str] = {}
    parts = urlsplit(target or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors["target"] = "must be an http(s) URL Stellantis can reach"
    elif settings.USING_REAL_API:
        if parts.scheme != "https":
            errors["target"] = "must be https: Stellantis posts only to a publicly trusted certificate"
        elif not _public_host(parts.hostname or ""):
            errors["target"] = "must be a public address: Stellantis cannot reach loopback, private or link-local ones"
    if not (name or "").strip():
        errors["name"] = "is required"
    if retry_policy not in RetryPolicy.values:
        errors["retry_policy"] = f"must be one of {', '.join(RetryPolicy.values)}"
    elif retry_policy == RetryPolicy.BOUNDED:
        if retry_number is None or retry_number < 1:
            errors["retry_number"] = "must be at least 1 with a Bounded policy"
        if retry_delay is None or retry_delay < 1:
            errors["retry_delay"] = "must be at least 1 second with a Bounded policy"
    if batch_size is not None and batch_size < 1:
        errors["batch_size"] = "must be more than 0 (leave it empty for one event per request)"
    if batch_time_window is not None:
        if batch_size is None:
            errors["batch_time_window"] = "needs a batch size"
        elif batch_time_window < MIN_TIME_WINDOW:
            errors["batch_time_window"] = f"must be at least {MIN_TIME_WINDOW} seconds"
    if not isinstance(remote_types, list) or not remote_types:
        errors["remote_types"] = "choose at least one remote type"
    else:
        unknown = [t for t in remote_types if t not in RemoteType.values]
        if unknown:
            errors["remote_types"] = f"unknown remote type(s): {', '.join(map(str, unknown))}"
        elif len(set(remote_types)) != len(remote_types):
            errors["remote_types"] = "each remote type once"
    if not isinstance(attributes, list):
        errors["attributes"] = "must be a list of {type, key, value}"
    else:
        for i, attr in enumerate(attributes):
            if not isinstance(attr, dict) or set(attr) - {"type", "key", "value"}:
                errors[f"attributes.{i}"] = "must be {type, key, value}"
                continue
            if attr.get("type") not in AttributeType.values:
                errors[f"attributes.{i}.type"] = f"must be one of {', '.join(AttributeType.values)}"
            if not str(attr.get("key") or "").strip():
                errors[f"attributes.{i}.key"] = "is required"
            elif str(attr["key"]).lower() == reserved_header.lower():
                errors[f"attributes.{i}.key"] = f"{reserved_header} is set by the portal (it carries the webhook secret)"
            value = attr.get("value")
            if not isinstance(value, str) or value == "":
                errors[f"attributes.{i}.value"] = "is required"
            elif value.startswith("$") and value not in ATTRIBUTE_VARIABLES:
                errors[f"attributes.{i}.value"] = f"unknown variable; use a literal or one of {', '.join(ATTRIBUTE_VARIABLES)}"
    return errors


def warnings(*, batch_size: int | None, attributes: list) -> list[str]:
    """Legal but surprising settings, said to the user without refusing them."""
    out = []
    if batch_size and any(a.get("type") == AttributeType.QUERY and a.get("value") == "$vin" for a in attributes or []):
        out.append("$vin is a Query attribute: Stellantis then sends one event per request, so batching is off in practice.")
    return out


_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _public_host(host: str) -> bool:
    """False for a loopback, private, link-local or otherwise non-public address or name.

    A name is resolved (where it resolves here) and refused when every address it has is
    non-public; a name that does not resolve here is left to the vendor's own resolver.
    """
    host = host.strip("[]").lower()
    if not host or host == "localhost" or host.endswith(_LOCAL_NAMES):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return True
    return any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses)
