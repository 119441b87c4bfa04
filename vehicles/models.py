from django.db import models

from stellantis.vocabulary import ELECTRIFIED, Motorization


class Fleet(models.Model):
    external_id = models.CharField(max_length=64, unique=True, help_text="The fleet id at Stellantis (fid).")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="When the vehicles were last imported.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class VehicleQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Vehicles a user may see. Everyone sees every fleet until organisations arrive."""
        if user is None or not user.is_authenticated:
            return self.none()
        return self


class Vehicle(models.Model):
    fleet = models.ForeignKey(Fleet, on_delete=models.CASCADE, related_name="vehicles")
    external_id = models.CharField(max_length=128, help_text="The vehicle id at Stellantis (vid), used in every URL.")
    vin = models.CharField(max_length=17, unique=True)
    brand = models.CharField(max_length=40, blank=True)
    motorization = models.CharField(max_length=16, choices=Motorization.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VehicleQuerySet.as_manager()

    class Meta:
        ordering = ["vin"]
        constraints = [models.UniqueConstraint(fields=["fleet", "external_id"], name="vehicle_unique_per_fleet")]

    def __str__(self):
        return self.vin

    @property
    def electrified(self) -> bool:
        return self.motorization in ELECTRIFIED
