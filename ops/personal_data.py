"""A vehicle's personal data: export everything held about it, erase its positions and destinations.

A fleet vehicle is driven by a person, so where it is and where it was sent say where that
person is and goes (docs/operations.md, "Retention and personal data"). What is held about
one vehicle: its row, its latest status (with a position), its commands (a navigation
command's points are destinations; a dangerous command carries a reason), their events,
steps and pushes, the raw deliveries that mention its VIN, and the audit entries about it.

Erasure takes the positions and destinations: the status snapshot row (a State refresh reads
a new one), and the points of its finished navigation commands, replaced by "(erased)". It
leaves what is a record rather than a whereabouts: the commands themselves (type, who, when,
outcome), their events and the raw deliveries (RemoteEvents carry statuses, no position; they
go after RETENTION_DELIVERIES_DAYS) and the audit log (append-only, never edited). A navigation
command still on its way is not touched (it would be sent with "(erased)" as its route): the
result counts it, and erasing again once it has finished takes it.
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit.services as audit
from audit.models import AuditEntry
from pushes.models import PushDelivery
from remotes.models import FINAL_STATUSES, RemoteAction, RemoteEvent, WebhookDelivery
from remotes.selectors import timeline
from stellantis.vocabulary import RemoteType
from vehicles.models import Vehicle, VehicleStatus

ERASED = "(erased)"
NAVIGATION_MEMBER = "navigation"  # the command's member whose `positions` are the route (stellantis.remotes)


def _row(obj, *, exclude=()) -> dict:
    """The object's stored columns (foreign keys as ids)."""
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if f.name not in exclude}


def _json_ready(data):
    # Dates, UUIDs and decimals as JSON writes them: the dict is what the file will hold.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _action(action: RemoteAction) -> dict:
    return {
        **_row(action),
        "requested_by_name": action.requested_by.get_username() if action.requested_by else None,
        "decided_by_name": action.decided_by.get_username() if action.decided_by else None,
        "timeline": [
            {"at": t.at, "origin": t.origin, "kind": t.kind, "status": t.status, "title": t.title, "detail": t.detail}
            for t in timeline(action)
        ],
        "steps": [_row(s) for s in action.steps.all()],
        "events": [_row(e) for e in action.events.all()],
    }


def export_vehicle(*, vehicle: Vehicle, by, reason: str = "") -> dict:
    """Everything held about `vehicle`, as JSON-ready data; an audit entry records who took it."""
    actions = list(
        RemoteAction.objects.filter(vehicle=vehicle)
        .select_related("requested_by", "decided_by")
        .prefetch_related("steps", "events")
        .order_by("created_at")
    )
    action_ids = [a.pk for a in actions]
    snapshot = VehicleStatus.objects.filter(vehicle=vehicle).first()
    # The raw bodies name the VIN (unparseable ones too, which no event links back): a scan
    # of the inbox, which retention keeps to about a month.
    deliveries = WebhookDelivery.objects.filter(body__contains=vehicle.vin).order_by("pk")
    about = Q(object_type=Vehicle._meta.label_lower, object_id=str(vehicle.pk)) | Q(
        object_type=RemoteAction._meta.label_lower, object_id__in=[str(i) for i in action_ids]
    )
    data = {
        "exported_at": timezone.now(),
        "exported_by": audit.actor_name(by),
        "vehicle": {**_row(vehicle), "fleet_name": vehicle.fleet.name, "organisation_id": vehicle.fleet.organisation_id},
        "status_snapshot": _row(snapshot) if snapshot else None,
        "actions": [_action(a) for a in actions],
        "unmatched_events": [_row(e) for e in RemoteEvent.objects.filter(action__isnull=True, vin=vehicle.vin).order_by("pk")],
        "pushes": [_row(p) for p in PushDelivery.objects.filter(action_id__in=action_ids).order_by("pk")],
        "deliveries": [_row(d) for d in deliveries],
        "audit": [_row(e) for e in AuditEntry.objects.filter(about).order_by("at", "pk")],
    }
    audit.record(
        "vehicle.personal_data_exported", actor=by, organisation=vehicle.fleet.organisation_id, obj=vehicle, reason=reason,
        changes={"exported": [None, {"actions": len(actions), "deliveries": len(data["deliveries"])}]},
    )
    return _json_ready(data)


def erase_navigation(command: dict) -> dict:
    """A navigation command with its points (the route, the last one the destination) erased."""
    body = command.get(NAVIGATION_MEMBER)
    if not isinstance(body, dict) or "positions" not in body:
        return command
    return {**command, NAVIGATION_MEMBER: {**body, "positions": ERASED}}


def erase_vehicle(*, vehicle: Vehicle, by, reason: str = "") -> dict:
    """Erase `vehicle`'s positions (its status snapshot) and its finished commands' destinations.

    One transaction with its audit entry. Returns what was erased and what was left (open
    navigation commands).
    """
    with transaction.atomic():
        snapshots = VehicleStatus.objects.filter(vehicle=vehicle).delete()[0]
        navigation = RemoteAction.objects.filter(vehicle=vehicle, remote_type=RemoteType.NAVIGATION)
        # Locked: a webhook finishing one of them meanwhile waits, then finds it erased.
        finished = list(navigation.filter(status__in=FINAL_STATUSES).select_for_update().only("pk", "command"))
        changed = []
        for action in finished:
            erased = erase_navigation(action.command)
            if erased != action.command:
                action.command = erased
                changed.append(action)
        RemoteAction.objects.bulk_update(changed, ["command"])
        still_open = navigation.exclude(status__in=FINAL_STATUSES).count()
        result = {"snapshots": snapshots, "destinations": len(changed), "open_navigation_left": still_open}
        audit.record(
            "vehicle.personal_data_erased", actor=by, organisation=vehicle.fleet.organisation_id, obj=vehicle, reason=reason,
            changes={k: [None, v] for k, v in result.items()},
        )
    return result
