from django.db import models

from accounts.access import access_of
from stellantis.vocabulary import Motorization


class FleetQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Fleets a user (or token) may see: every other model's `visible_to` builds on this."""
        return self.filter(access_of(user).fleet_q())


class Fleet(models.Model):
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="fleets",
        help_text="Who owns it. A fleet of no organisation (just imported) is seen by superusers only.",
    )
    external_id = models.CharField(max_length=64, unique=True, help_text="The fleet id at Stellantis (fid).")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="When the vehicles were last imported.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = FleetQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class VehicleQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(fleet__in=Fleet.objects.visible_to(user))


class Vehicle(models.Model):
    fleet = models.ForeignKey(Fleet, on_delete=models.CASCADE, related_name="vehicles")
    external_id = models.CharField(max_length=128, help_text="The vehicle id at Stellantis (vid), used in every URL.")
    vin = models.CharField(max_length=17, unique=True)
    brand = models.CharField(max_length=40, blank=True)
    motorization = models.CharField(max_length=16, choices=Motorization.choices, blank=True)
    capabilities = models.JSONField(
        default=dict, blank=True, help_text="The vendor's onboardCapabilities (data scopes and remote features); empty when unknown."
    )
    label = models.CharField(max_length=60, blank=True, help_text="A name the fleet manager gives it (\"Van 12, Lyon\"); searchable.")
    plate = models.CharField(max_length=16, blank=True, help_text="The registration plate, as the manager typed it; searchable.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VehicleQuerySet.as_manager()

    class Meta:
        ordering = ["vin"]
        constraints = [models.UniqueConstraint(fields=["fleet", "external_id"], name="vehicle_unique_per_fleet")]
        # The vehicle list's keyset sorts (vehicles/list_views.py): each column with the id as
        # its tiebreaker, so a page after the 1,000th row is an index range, not a sort of all.
        indexes = [
            models.Index(fields=["brand", "id"], name="vehicle_brand_keyset"),
            models.Index(fields=["label", "id"], name="vehicle_label_keyset"),
        ]

    def __str__(self):
        return self.vin


class VehicleStatusQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self.filter(vehicle__fleet__in=Fleet.objects.visible_to(user))


class VehicleStatus(models.Model):
    """The latest status Stellantis reported for a vehicle (read after a State refresh)."""

    vehicle = models.OneToOneField(Vehicle, on_delete=models.CASCADE, related_name="status_snapshot")
    captured_at = models.DateTimeField(null=True, blank=True, help_text="When the vehicle reported it.")
    fetched_at = models.DateTimeField(help_text="When the portal read it.")
    energy_type = models.CharField(max_length=16, blank=True)
    energy_level = models.FloatField(null=True, blank=True, help_text="Percent.")
    autonomy_km = models.PositiveIntegerField(null=True, blank=True)
    charging_status = models.CharField(max_length=16, blank=True)
    plugged = models.BooleanField(null=True, blank=True)
    doors_locked = models.BooleanField(null=True, blank=True)
    locked_states = models.JSONField(default=list, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    position_at = models.DateTimeField(null=True, blank=True)
    preconditioning_status = models.CharField(max_length=16, blank=True)
    ignition = models.CharField(max_length=16, blank=True)
    moving = models.BooleanField(null=True, blank=True)
    raw = models.JSONField(default=dict, help_text="The Status body as received.")

    objects = VehicleStatusQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "vehicle statuses"
        # The vehicle list's sorts by energy, range and last contact (keyset, vehicle id as tiebreaker).
        indexes = [
            models.Index(fields=["energy_level", "vehicle"], name="status_energy_keyset"),
            models.Index(fields=["autonomy_km", "vehicle"], name="status_range_keyset"),
            models.Index(fields=["captured_at", "vehicle"], name="status_contact_keyset"),
        ]

    def __str__(self):
        return f"{self.vehicle} @ {self.captured_at}"
