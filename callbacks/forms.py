from django import forms
from django.conf import settings

from stellantis.vocabulary import AttributeType, RemoteType, RetryPolicy

from . import rules

ATTRIBUTES_HELP = (
    "One per line: <type> <key>: <value>, e.g. “Header X-Vehicle: $vin” or “Query source: stellantis”. "
    "Types: Header, Query, Body. Variables: $vin, $callbackID, $remoteType, $fleetID. "
    f"The {settings.WEBHOOK_SECRET_HEADER} header is added by the portal."
)


def attributes_to_text(attributes: list) -> str:
    return "\n".join(f"{a['type']} {a['key']}: {a['value']}" for a in attributes or [])


def text_to_attributes(text: str) -> list:
    out = []
    for n, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        key, sep, value = rest.partition(":")
        if kind not in AttributeType.values or not sep:
            raise forms.ValidationError(f"Line {n}: write it as “Header X-Key: value” (types: Header, Query, Body).")
        out.append({"type": kind, "key": key.strip(), "value": value.strip()})
    return out


class CallbackForm(forms.Form):
    """Every field of RemoteCallbackSubscribe, in the words of a fleet manager."""

    label = forms.CharField(max_length=200, required=False)
    target = forms.URLField(max_length=500, assume_scheme="https", help_text="Webhook URL Stellantis posts to. Default: this portal's own webhook.")
    name = forms.CharField(max_length=100, initial="fleetportal", help_text="Webhook name at Stellantis.")
    remote_types = forms.MultipleChoiceField(choices=RemoteType.choices, widget=forms.CheckboxSelectMultiple)
    retry_policy = forms.ChoiceField(choices=RetryPolicy.choices, initial=RetryPolicy.BOUNDED)
    retry_number = forms.IntegerField(min_value=1, initial=3, required=False, help_text="Bounded: retries after the first try.")
    retry_delay = forms.IntegerField(min_value=1, initial=10, required=False, help_text="Bounded: seconds between tries.")
    batch_size = forms.IntegerField(min_value=1, required=False, help_text="Deliver events together once this many are ready. Empty: one event per request.")
    batch_time_window = forms.IntegerField(min_value=rules.MIN_TIME_WINDOW, required=False, help_text="…or once the oldest waited this many seconds (default 60).")
    attributes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text=ATTRIBUTES_HELP)

    def clean_attributes(self):
        return text_to_attributes(self.cleaned_data.get("attributes", ""))

    def clean(self):
        data = super().clean()
        data["batch_time_window"] = rules.time_window(data.get("batch_size"), data.get("batch_time_window"))
        errors = rules.check(
            target=data.get("target", ""), name=data.get("name", ""), retry_policy=data.get("retry_policy"),
            retry_number=data.get("retry_number"), retry_delay=data.get("retry_delay"), batch_size=data.get("batch_size"),
            batch_time_window=data.get("batch_time_window"), remote_types=list(data.get("remote_types") or []),
            attributes=data.get("attributes") or [], reserved_header=settings.WEBHOOK_SECRET_HEADER,
        )
        for key, message in errors.items():
            field = key.split(".")[0]
            if field in self.errors:  # already said by the field itself, in its own words
                continue
            self.add_error(field if field in self.fields else None, f"{key}: {message}" if "." in key else message)
        data["remote_types"] = list(data.get("remote_types") or [])
        return data

    def warnings(self) -> list[str]:
        if not self.is_valid():
            return []
        return rules.warnings(batch_size=self.cleaned_data.get("batch_size"), attributes=self.cleaned_data.get("attributes"))

    @classmethod
    def initial_from(cls, callback) -> dict:
        return {
            "label": callback.label, "target": callback.target, "name": callback.name, "remote_types": callback.remote_types,
            "retry_policy": callback.retry_policy, "retry_number": callback.retry_number, "retry_delay": callback.retry_delay,
            "batch_size": callback.batch_size, "batch_time_window": callback.batch_time_window,
            "attributes": attributes_to_text(callback.attributes),
        }
