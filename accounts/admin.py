"""Organisations, members and partner tokens in the admin. Every change is a `services` call.

Lists go through `visible_to(request.user)`: a superuser sees everything, a staff member the
organisations they belong to. A token's key is never shown here except once, in the answer
to the form that issued it.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse

from . import access, services
from .models import Membership, Organisation, PartnerToken, Scope
from .scoped_admin import FormKnowsWho


def _manages(request, organisation_id) -> bool:
    return access.access_of(request.user).may_in(access.MANAGE, organisation_id)


def _managed_organisations(request):
    orgs = Organisation.objects.visible_to(request.user)
    return orgs if request.user.is_superuser else orgs.filter(pk__in=[o.pk for o in orgs if _manages(request, o.pk)])


def _fleet_choices(request, db_field):
    # Through the relation: accounts sits below vehicles and never imports it.
    return db_field.remote_field.model.objects.visible_to(request.user).select_related("organisation")


def _by_service(form, call):
    """Run a service from a form's clean(): a refusal becomes a form error, not a 500."""
    try:
        return call()
    except ValidationError as exc:
        for field, errors in getattr(exc, "error_dict", {None: exc.error_list}).items():
            form.add_error(field if field in form.fields else None, errors)
    except PermissionDenied as exc:
        form.add_error(None, str(exc))
    return None


def _copy_saved(obj, saved):
    obj.pk = saved.pk
    obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})


# --- organisations ------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    """Read only here: members change on their own page (a service call each)."""

    model = Membership
    fields = ["user", "role", "fleet_limit"]
    readonly_fields = ["user", "role", "fleet_limit"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="Fleets")
    def fleet_limit(self, obj):
        return ", ".join(f.name for f in obj.fleets.all()) or "every fleet"


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return Organisation.objects.visible_to(request.user)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser  # name and address; members and tokens have their own pages

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
        else:
            _copy_saved(obj, services.create_organisation(name=obj.name, slug=obj.slug, by=request.user))


# --- members ------------------------------------------------------------------------------


class MembershipAdminForm(forms.ModelForm):
    """Saving this form *is* the service call (invite or change); `by` is set by the admin."""

    by = None

    class Meta:
        model = Membership
        fields = ["organisation", "user", "role", "fleets"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["organisation"].disabled = True
            self.fields["user"].disabled = True

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        fleets = list(data.get("fleets") or ())
        if self.instance.pk:
            self.saved = _by_service(self, lambda: services.change_member(membership=self.instance, role=data["role"], fleets=fleets, by=self.by))
        else:
            user = data["user"]
            self.saved = _by_service(self, lambda: services.invite_member(
                org=data["organisation"], email=user.email, username=user.get_username(), role=data["role"], fleets=fleets, by=self.by
            ))
        return data

    def validate_unique(self):
        pass  # the service's unique constraint says "already a member"; the row exists by now


@admin.register(Membership)
class MembershipAdmin(FormKnowsWho, admin.ModelAdmin):
    form = MembershipAdminForm
    list_display = ["user", "organisation", "role", "fleet_limit", "created_at"]
    list_filter = ["role", ("organisation", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "user__email", "organisation__name"]
    list_select_related = ["user", "organisation"]
    actions = ["remove_members"]

    @admin.display(description="Fleets")
    def fleet_limit(self, obj):
        return ", ".join(f.name for f in obj.fleets.all()) or "every fleet"

    def get_queryset(self, request):
        return Membership.objects.visible_to(request.user).prefetch_related("fleets")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organisation":
            kwargs["queryset"] = _managed_organisations(request)
        if db_field.name == "user" and not request.user.is_superuser:
            # A staff admin adds colleagues they already know; new people are invited from the page.
            kwargs["queryset"] = db_field.remote_field.model.objects.filter(memberships__in=Membership.objects.visible_to(request.user)).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "fleets":
            kwargs["queryset"] = _fleet_choices(request, db_field)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or _manages(request, obj.organisation_id))

    def has_delete_permission(self, request, obj=None):
        return False  # "Remove from the organisation" (the action) refuses to remove the last admin

    def has_remove_permission(self, request):
        return super().has_change_permission(request)

    def save_model(self, request, obj, form, change):
        _copy_saved(obj, form.saved)  # clean() already saved it through the service

    def save_related(self, request, form, formsets, change):
        pass  # the fleets too

    @admin.action(description="Remove from the organisation", permissions=["remove"])
    def remove_members(self, request, queryset):
        for membership in queryset.select_related("user", "organisation"):
            try:
                services.remove_member(membership=membership, by=request.user)
                self.message_user(request, f"{membership.user} removed from {membership.organisation}.", messages.SUCCESS)
            except (ValidationError, PermissionDenied) as exc:
                reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                self.message_user(request, f"{membership.user}: {reason}", messages.ERROR)


# --- partner tokens -----------------------------------------------------------------------


class PartnerTokenAdminForm(forms.ModelForm):
    """Adding a token issues it through the service; `by` is set by the admin."""

    by = None
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ])

    class Meta:
        model = PartnerToken
        fields = ["organisation", "name", "scopes", "fleets", "expires_at"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.issued = _by_service(self, lambda: services.issue_token(
            org=data["organisation"], name=data["name"], scopes=data["scopes"], fleets=list(data.get("fleets") or ()),
            expires_at=data.get("expires_at"), by=self.by,
        ))
        return data


@admin.register(PartnerToken)
class PartnerTokenAdmin(FormKnowsWho, admin.ModelAdmin):
    form = PartnerTokenAdminForm
    list_display = ["name", "organisation", "key_prefix", "scope_list", "user", "created_at", "last_used_at", "expires_at", "state"]
    list_filter = [("organisation", admin.RelatedOnlyFieldListFilter), ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username", "organisation__name"]
    list_select_related = ["organisation", "user"]
    readonly_fields = ["organisation", "name", "key_prefix", "key_hash", "scope_list", "user", "created_at", "last_used_at", "expires_at", "revoked_at", "state"]
    actions = ["revoke"]

    @admin.display(description="Key")
    def key_prefix(self, obj):
        return f"fpt_{obj.prefix}…" if obj.prefix else ""

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def get_queryset(self, request):
        return PartnerToken.objects.visible_to(request.user)

    def get_fields(self, request, obj=None):
        return ["organisation", "name", "scopes", "fleets", "expires_at"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organisation":
            kwargs["queryset"] = _managed_organisations(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "fleets":
            kwargs["queryset"] = _fleet_choices(request, db_field)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and (request.user.is_superuser or _managed_organisations(request).exists())

    def has_change_permission(self, request, obj=None):
        return False  # a token is issued, then only revoked (the action)

    def has_delete_permission(self, request, obj=None):
        return False  # revoked, never deleted: its row says who used what until when

    def has_revoke_permission(self, request):
        return self.has_view_permission(request)  # the service decides per token

    def save_model(self, request, obj, form, change):
        token, key = form.issued  # clean() issued it
        _copy_saved(obj, token)
        obj._key = key  # on this request's object only: it lives for this one answer

    def save_related(self, request, form, formsets, change):
        pass  # the service set the fleets

    def response_add(self, request, obj, post_url_continue=None):
        # The key goes into this one answer, not into a message stored in the session or cookie.
        context = {**self.admin_site.each_context(request), "title": f"Token {obj.name} issued", "token": obj, "key": obj._key, "opts": self.opts}
        response = TemplateResponse(request, "accounts/admin_token_issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        for token in queryset.select_related("organisation"):
            try:
                done = services.revoke_token(token=token, by=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{token}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{token}: {'revoked' if done else 'already revoked'}.", messages.SUCCESS if done else messages.INFO)



# --- people and groups: superusers only -------------------------------------------------------
# A person may belong to several organisations, so no organisation admin may edit (or even
# list) accounts in the admin: they invite and change members on their organisation's page,
# where only their own organisation's memberships are in reach. Django's model permissions,
# even if someone grants them, do not open these pages to anyone else.


class SuperusersOnly:
    def get_queryset(self, request):
        # No row for anyone else: an existing account and a missing one answer alike.
        queryset = super().get_queryset(request)
        return queryset if self.has_module_permission(request) else queryset.none()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request)


User = get_user_model()
for model, base in ((User, UserAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(f"SuperusersOnly{base.__name__}", (SuperusersOnly, base), {}))
