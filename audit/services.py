"""Writing the audit log: `record(...)` from every service that changes something that matters."""

from __future__ import annotations

import logging

from .context import current
from .models import AuditEntry

log = logging.getLogger(__name__)


def actor_name(actor) -> str:
    if actor is None:
        return "system"
    token = getattr(actor, "token", None)
    if token is not None:  # accounts.access.TokenUser
        return f"token {token.name} (fpt_{token.prefix}…) of {token.user.get_username()}"[:200]
    return actor.get_username()[:200]


def record(
    action: str, *, actor=None, organisation=None, obj=None, changes: dict | None = None, reason: str = "",
    object_repr: str = "", actor_label: str = "",
) -> AuditEntry:
    """Append one entry. `actor` is a person, a token's TokenUser, or None for the system.

    Call it inside the transaction of the change it records: both are kept, or neither.
    """
    entry = _entry(action, actor=actor, organisation=organisation, obj=obj, changes=changes, reason=reason,
                   object_repr=object_repr, actor_label=actor_label)
    entry.save(force_insert=True)
    return entry


def entries_for(action: str, *, actor=None, objects, reason: str = "") -> list[AuditEntry]:
    """`record`'s entries for many objects at once, unsaved: `objects` are (organisation, obj) pairs,
    each its own entry with the same action, actor and reason (a bulk request's actions, created by
    the batch). The caller writes them in one statement (core.sql.insert_all), in the transaction
    of the change they record, as `record` does for one."""
    pairs = list(objects)
    if not pairs:
        return []
    # What every entry shares is worked out once (the first entry), then copied per object.
    first = _entry(action, actor=actor, organisation=pairs[0][0], obj=pairs[0][1], reason=reason)
    shared = {f: getattr(first, f) for f in ("user_id", "token_id", "actor", "source", "ip_address", "user_agent", "action", "object_type", "reason")}
    entries = [first] + [
        AuditEntry(
            **shared, organisation_id=getattr(org, "pk", org), object_id=str(obj.pk), object_repr=str(obj)[:200], changes={},
        )
        for org, obj in pairs[1:]
    ]
    return entries


def _entry(
    action: str, *, actor=None, organisation=None, obj=None, changes: dict | None = None, reason: str = "",
    object_repr: str = "", actor_label: str = "",
) -> AuditEntry:
    origin = current()
    token = getattr(actor, "token", None)
    user = token.user if token is not None else (actor if actor is not None and getattr(actor, "pk", None) else None)
    return AuditEntry(
        user=user,
        token=token,
        actor=actor_label or actor_name(actor),
        organisation_id=getattr(organisation, "pk", organisation),
        source=origin.source,
        ip_address=origin.ip_address,
        user_agent=origin.user_agent,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:200],
        changes=changes or {},
        reason=reason or "",
    )


def snapshot(obj, fields) -> dict:
    """The values of `fields` of `obj`, as JSON can hold them, for `diff` later."""
    out = {}
    for name in fields:
        value = getattr(obj, name)
        if hasattr(value, "pk"):
            value = value.pk
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[name] = value
    return out


def diff(before: dict, after: dict) -> dict:
    """{field: [before, after]} for the fields whose value changed."""
    return {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}
