from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.reverse import reverse

from accounts.models import TOKEN_PREFIX

from .models import RemoteAction
from .selectors import timeline


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    origin = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.CharField()


def token_summary(token) -> dict | None:
    """A token as people recognise it: its name and the public start of its key, never the key."""
    if token is None:
        return None
    return {"name": token.name, "prefix": f"{TOKEN_PREFIX}{token.prefix}…"}


def decision_of(action: RemoteAction) -> str | None:
    """approved / rejected / cancelled / expired, or None while it waits (four-eyes actions only).

    Recorded by remotes.approvals: an approved command Stellantis rejects later stays "approved"."""
    return action.decision or None


class TokenSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The public start of the key, e.g. `fpt_ab12…`; never the key.")


def _token_field():
    return TokenSummarySerializer(allow_null=True)


_FAILURE = inline_serializer(
    "Failure", {"cause": serializers.CharField(), "label": serializers.CharField(), "advice": serializers.CharField()}, allow_null=True
)
_APPROVAL = inline_serializer("Approval", {
    "expires_at": serializers.DateTimeField(),
    "decided_by": serializers.CharField(allow_null=True),
    "decided_by_token": _token_field(),
    "decided_at": serializers.DateTimeField(allow_null=True),
    "comment": serializers.CharField(),
    "decision": serializers.ChoiceField(choices=["approved", "rejected", "cancelled", "expired"], allow_null=True),
}, allow_null=True)


class RemoteActionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    vin = serializers.CharField(source="vehicle.vin")
    timeline = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()
    requested_by = serializers.SerializerMethodField()
    requested_by_token = serializers.SerializerMethodField()
    approval = serializers.SerializerMethodField()

    class Meta:
        model = RemoteAction
        fields = [
            "id", "url", "vin", "remote_type", "command", "status", "pending_status", "failure_cause", "failure",
            "feedback_detail", "error", "remote_action_id", "source", "reason", "requested_by", "requested_by_token",
            "approval", "created_at", "submitted_at", "finished_at", "expires_at", "verification", "verified_at", "timeline",
        ]
        extra_kwargs = {
            "verification": {"help_text": "After a Success of doors, charging, preconditioning or immobilization: `verified` when the "
                             "vehicle's status read back agrees, `not_confirmed` when it does not; empty while not checked."},
        }

    def get_url(self, obj) -> str:
        return reverse("api-remote-detail", args=[obj.pk], request=self.context.get("request"))

    @extend_schema_field(TimelineEntrySerializer(many=True))
    def get_timeline(self, obj):
        return TimelineEntrySerializer(timeline(obj), many=True).data

    @extend_schema_field(_FAILURE)
    def get_failure(self, obj):
        if not obj.failure_cause:
            return None
        return {"cause": obj.failure_cause, "label": obj.failure_label, "advice": obj.failure_advice}

    def get_requested_by(self, obj) -> str | None:
        return obj.requested_by.get_username() if obj.requested_by else None

    @extend_schema_field(_token_field())
    def get_requested_by_token(self, obj):
        return token_summary(obj.requested_by_token)

    @extend_schema_field(_APPROVAL)
    def get_approval(self, obj):
        if obj.approval_expires_at is None:  # never under four-eyes
            return None
        return {
            "expires_at": serializers.DateTimeField().to_representation(obj.approval_expires_at),
            "decided_by": obj.decided_by.get_username() if obj.decided_by else None,
            "decided_by_token": token_summary(obj.decided_by_token),
            "decided_at": serializers.DateTimeField().to_representation(obj.decided_at) if obj.decided_at else None,
            "comment": obj.decision_comment,
            "decision": decision_of(obj),
        }


class RemoteActionListSerializer(RemoteActionSerializer):
    """An action in a list: everything but the timeline (one GET of its `url` gives that)."""

    class Meta(RemoteActionSerializer.Meta):
        fields = [f for f in RemoteActionSerializer.Meta.fields if f != "timeline"]


class AcceptedActionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    vin = serializers.CharField(source="vehicle.vin")

    class Meta:
        model = RemoteAction
        fields = ["id", "url", "vin", "remote_type", "command", "status", "created_at"]

    def get_url(self, obj) -> str:
        return reverse("api-remote-detail", args=[obj.pk], request=self.context.get("request"))
