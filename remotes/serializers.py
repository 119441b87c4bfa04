from rest_framework import serializers
from rest_framework.reverse import reverse

from .models import RemoteAction
from .selectors import timeline


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    origin = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.CharField()


class RemoteActionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    vin = serializers.CharField(source="vehicle.vin")
    timeline = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()

    class Meta:
        model = RemoteAction
        fields = [
            "id", "url", "vin", "remote_type", "command", "status", "pending_status", "failure_cause", "failure",
            "feedback_detail", "error", "remote_action_id", "source", "reason", "created_at", "submitted_at",
            "finished_at", "expires_at", "timeline",
        ]

    def get_url(self, obj):
        return reverse("api-remote-detail", args=[obj.pk], request=self.context.get("request"))

    def get_timeline(self, obj):
        return TimelineEntrySerializer(timeline(obj), many=True).data

    def get_failure(self, obj):
        if not obj.failure_cause:
            return None
        return {"cause": obj.failure_cause, "label": obj.failure_label, "advice": obj.failure_advice}


class AcceptedActionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    vin = serializers.CharField(source="vehicle.vin")

    class Meta:
        model = RemoteAction
        fields = ["id", "url", "vin", "remote_type", "command", "status", "created_at"]

    def get_url(self, obj):
        return reverse("api-remote-detail", args=[obj.pk], request=self.context.get("request"))
