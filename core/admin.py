from django.contrib import admin

from .models import VendorBudget


@admin.register(VendorBudget)
class VendorBudgetAdmin(admin.ModelAdmin):
    """Read-only: whether calls to Stellantis are held off by its rate limits, until when and why."""

    list_display = ["name", "hold_until", "reason", "updated_at"]
    readonly_fields = ["name", "hold_until", "reason", "updated_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
