"""Forms of the organisation pages. Fleet choices come from the view (`organisation.fleets.all()`):
accounts sits below vehicles and never imports it."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import Organisation, Role, Scope


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError onto the form: on its field when the form has one."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, messages in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)


class _FleetsMixin:
    def _set_fleets(self, fleets):
        self.fields["fleets"].queryset = fleets
        if not fleets.exists():
            del self.fields["fleets"]


def _fleets_field(help_text):
    return forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple, help_text=help_text)


class OrganisationForm(forms.ModelForm):
    class Meta:
        model = Organisation
        fields = ["name", "slug"]


class ApprovalPolicyForm(forms.Form):
    required_for = forms.MultipleChoiceField(
        label="Wait for a second person's approval before sending", choices=Organisation.APPROVABLE, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The person who asks can never approve their own command; another approver (or admin) must.",
    )
    ttl_minutes = forms.IntegerField(
        label="Approval time (minutes)", min_value=1, max_value=24 * 60, help_text="Not approved by then: it expires and is never sent."
    )


class InviteForm(_FleetsMixin, forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(label="E-mail", help_text="A new person gets a link there to set their password.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    fleets = _fleets_field("Limit the member to these fleets; none means every fleet of the organisation.")

    def __init__(self, *args, fleets, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_fleets(fleets)


class MemberForm(_FleetsMixin, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    fleets = _fleets_field("None means every fleet of the organisation. An admin limited to some fleets cannot manage members or tokens.")

    def __init__(self, *args, fleets, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_fleets(fleets)


class TokenForm(_FleetsMixin, forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. the partner's name.")
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ])
    fleets = _fleets_field("Limit the token to these fleets; none means every fleet you may see.")
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", min_value=1, max_value=3650, required=False, help_text="Empty: never expires (revoke it when done)."
    )

    def __init__(self, *args, fleets, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_fleets(fleets)

    def expires_at(self) -> dt.datetime | None:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + dt.timedelta(days=days) if days else None
