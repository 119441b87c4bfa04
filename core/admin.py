from django.contrib import admin

from .models import VendorBudget


@admin.register(VendorBudget)
class VendorBudgetAdmin(admin.ModelAdmin):
    """Read-only: whether calls to Stellantis are held off by its rate limits, until when and why.

    The vendor's budget is shared by every organisation: superusers only (no import of
    accounts here, core sits below it)."""

    list_display = ["name", "hold_until", "reason", "updated_at"]
    readonly_fields = ["name", "hold_until", "reason", "updated_at"]

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
