"""What the partner API shows of fleets and vehicles (reads only: fleets are imported from Stellantis)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from remotes.capabilities import all_availability

from .models import Fleet, Vehicle, VehicleStatus


class FleetSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id", help_text="The fleet's Stellantis id (fid), used in URLs and filters.")
    url = serializers.SerializerMethodField()
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    vehicle_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Fleet
        fields = ["id", "url", "name", "description", "organisation", "vehicle_count", "last_synced_at"]

    def get_url(self, obj) -> str:
        return reverse("api-fleet-detail", args=[obj.external_id], request=self.context.get("request"))


class VehicleStatusSerializer(serializers.ModelSerializer):
    class Meta:
        model = VehicleStatus
        fields = [
            "captured_at", "fetched_at", "energy_type", "energy_level", "autonomy_km", "charging_status", "plugged",
            "doors_locked", "locked_states", "longitude", "latitude", "position_at", "preconditioning_status", "ignition", "moving",
        ]


class CapabilitySerializer(serializers.Serializer):
    feature = serializers.CharField(source="feature.member", help_text="The `Remote` member, e.g. `charging`.")
    remote_type = serializers.CharField(source="feature.remote_type")
    label = serializers.CharField(source="feature.label")
    available = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why not, when not available; empty otherwise.")


class VehicleSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    fleet = serializers.CharField(source="fleet.external_id", help_text="The fleet's Stellantis id.")
    capabilities = serializers.SerializerMethodField(help_text="The nine remote features and whether this vehicle can do each.")
    stolen = serializers.BooleanField(read_only=True, help_text="Declared stolen by its latest successful Stolen command.")
    status = serializers.SerializerMethodField(help_text="The latest status Stellantis reported (after a State refresh); null if never read.")
    remotes_url = serializers.SerializerMethodField()

    class Meta:
        model = Vehicle
        fields = ["vin", "url", "fleet", "brand", "motorization", "capabilities", "stolen", "status", "remotes_url"]

    def get_url(self, obj) -> str:
        return reverse("api-vehicle-detail", args=[obj.vin], request=self.context.get("request"))

    def get_remotes_url(self, obj) -> str:
        return reverse("api-vehicle-remotes", args=[obj.vin], request=self.context.get("request"))

    @extend_schema_field(CapabilitySerializer(many=True))
    def get_capabilities(self, obj):
        return CapabilitySerializer(all_availability(obj), many=True).data

    @extend_schema_field(VehicleStatusSerializer(allow_null=True))
    def get_status(self, obj):
        # select_related("status_snapshot") by the view: no query per vehicle.
        try:
            snapshot = obj.status_snapshot
        except VehicleStatus.DoesNotExist:
            return None
        return VehicleStatusSerializer(snapshot).data
