from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html_join

from accounts.access import CALLBACKS, access_of
from accounts.scoped_admin import FormKnowsWho, ScopedAdmin
from stellantis.vocabulary import CallbackStatus, RemoteType

from . import services
from .forms import attributes_to_text, text_to_attributes
from .models import Callback


class CallbackAdminForm(forms.ModelForm):
    """Saving this form *is* the sync: Stellantis first, the local row only if it accepted."""

    by = None  # the person saving it, for the audit log (CallbackAdmin.get_form)
    target = forms.URLField(max_length=500, assume_scheme="https")
    remote_types = forms.MultipleChoiceField(choices=RemoteType.choices, widget=forms.CheckboxSelectMultiple)
    attributes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="One per line: Header X-Key: value")

    class Meta:
        model = Callback
        fields = ["fleet", *Callback.EDITABLE_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["attributes"] = attributes_to_text(self.instance.attributes)
        if self.instance.pk and "fleet" in self.fields:  # absent when the page is read-only
            self.fields["fleet"].disabled = True

    def clean_attributes(self):
        return text_to_attributes(self.cleaned_data.get("attributes", ""))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        fields = {f: data.get(f) for f in Callback.EDITABLE_FIELDS}
        fields["remote_types"] = list(fields["remote_types"] or [])
        try:
            if self.instance.pk:
                self.synced = services.update_callback(callback=self.instance, changes=fields, by=self.by)
            else:
                self.synced = services.create_callback(fleet=data["fleet"], **fields, by=self.by)
        except services.CallbackSyncError as exc:
            for key, message in exc.errors.items():
                field = key.split(".")[0]
                self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(Callback)
class CallbackAdmin(FormKnowsWho, ScopedAdmin):
    """Organisation admins manage their fleets' callbacks (the CALLBACKS ability); others read them."""

    form = CallbackAdminForm
    list_display = ["__str__", "fleet", "external_id", "status", "last_synced_at", "retry_policy", "batch_size", "types", "deleted_at"]
    list_filter = ["status", "fleet", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["label", "external_id", "target"]
    list_select_related = ["fleet"]
    actions = ["pause", "resume", "refresh_status", "delete_at_stellantis", "check_with_stellantis", "rotate_secret"]
    fleet_path = "fleet"
    add_ability = change_ability = CALLBACKS

    @admin.display(description="Remote types")
    def types(self, obj):
        return ", ".join(obj.remote_type_labels())

    def save_model(self, request, obj, form, change):
        # The form's clean() already synced and saved through the service.
        synced = form.synced
        obj.pk = synced.pk
        obj.__dict__.update({k: v for k, v in synced.__dict__.items() if not k.startswith("_")})

    def has_delete_permission(self, request, obj=None):
        return False  # deleting goes through Stellantis: see the "Delete at Stellantis" action

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "fleet" and not request.user.is_superuser:
            # A new callback goes to a fleet where the user manages callbacks, not any fleet they read.
            access = access_of(request.user)
            field.queryset = field.queryset.filter(pk__in=[f.pk for f in field.queryset if access.may(CALLBACKS, f)])
        return field

    def _mine(self, request, queryset):
        return self.allowed(request, queryset.select_related("fleet"), CALLBACKS, "Not changed")

    def _each(self, request, queryset, what, call):
        for callback in self._mine(request, queryset):
            try:
                call(callback)
                self.message_user(request, f"{callback}: {what}.", messages.SUCCESS)
            except services.CallbackSyncError as exc:
                self.message_user(request, f"{callback}: {exc.message}", messages.ERROR)

    @admin.action(description="Pause at Stellantis", permissions=["change"])
    def pause(self, request, queryset):
        self._each(request, queryset, "paused", lambda cb: services.set_callback_status(callback=cb, status=CallbackStatus.PAUSED, by=request.user))

    @admin.action(description="Resume at Stellantis (also a Failed one, once its webhook answers again)", permissions=["change"])
    def resume(self, request, queryset):
        self._each(request, queryset, "running", lambda cb: services.set_callback_status(callback=cb, status=CallbackStatus.RUNNING, by=request.user))

    @admin.action(description="Read the status back from Stellantis", permissions=["change"])
    def refresh_status(self, request, queryset):
        mine = self._mine(request, queryset)
        if not mine:
            return
        result = services.refresh_callback_statuses(callbacks=queryset.filter(pk__in=[cb.pk for cb in mine]))
        self.message_user(request, f"{result.checked} callback(s) read back from Stellantis.", messages.SUCCESS)
        for change in result.changed:
            self.message_user(request, change, messages.WARNING)
        for gone in result.gone:
            self.message_user(request, f"{gone}: no longer at Stellantis, marked deleted.", messages.WARNING)
        for error in result.errors:
            self.message_user(request, error, messages.ERROR)

    @admin.action(description="Delete at Stellantis (refused while actions are pending)", permissions=["change"])
    def delete_at_stellantis(self, request, queryset):
        self._each(request, queryset.filter(deleted_at__isnull=True), "deleted", lambda cb: services.delete_callback(callback=cb, by=request.user))

    @admin.action(description="Rotate the webhook secret", permissions=["change"])
    def rotate_secret(self, request, queryset):
        self._each(request, queryset, "new secret accepted by Stellantis", lambda cb: services.rotate_secret(callback=cb, by=request.user))

    @admin.action(description="Check against Stellantis")
    def check_with_stellantis(self, request, queryset):
        for callback in queryset.select_related("fleet"):
            try:
                diffs = services.compare_with_vendor(callback=callback)
            except services.CallbackSyncError as exc:
                self.message_user(request, f"{callback}: {exc.message}", messages.ERROR)
                continue
            if not diffs:
                self.message_user(request, f"{callback}: in sync with Stellantis.", messages.SUCCESS)
            else:
                listing = format_html_join("; ", "{}: portal {} / Stellantis {}", ((d.field, d.ours, d.theirs) for d in diffs))
                self.message_user(request, format_html_join("", "{}: differs — {}", [(str(callback), listing)]), messages.WARNING)
