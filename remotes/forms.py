"""One form per remote feature, in a fleet manager's words.

Each form only gathers values; the body is checked by the one validation layer
(`stellantis.remotes.parse_remote`), whose field paths are mapped back onto form fields.
Forms serve the vehicle pages and the admin bulk actions alike.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from stellantis.remotes import DAYS, MAY_BE_DANGEROUS, CommandInvalid, is_dangerous, parse_remote, past_dates

DAY_CHOICES = [(d, d) for d in DAYS]
SLOTS = (1, 2, 3, 4)


def duration_of_day(value: dt.time) -> str:
    """07:30 → PT7H30M, the vendor's "time within a day" format."""
    out = "PT"
    if value.hour:
        out += f"{value.hour}H"
    if value.minute or not value.hour:
        out += f"{value.minute}M"
    return out


class FeatureForm(forms.Form):
    member: str = ""
    title: str = ""
    # Which fields each choice of `mode` needs; the page shows only those (others stay hidden).
    mode_fields: dict[str, list[str]] = {}
    # Where a validation-layer error lands when its path has no form field of its own.
    field_for_path: dict[str, str] = {}

    confirm = forms.BooleanField(
        required=False, label="I confirm: this command is sent to the vehicle(s) and cannot be undone remotely in time"
    )
    reason = forms.CharField(
        max_length=500, required=False, help_text="Kept with the action (who, why); required for unlock, immobilization and stolen."
    )

    def body(self) -> dict:
        raise NotImplementedError

    @property
    def may_be_dangerous(self) -> bool:
        """Shows the confirmation box."""
        return self.member in MAY_BE_DANGEROUS

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.command = parse_remote({self.member: self.body()})
            past = past_dates(self.command)
            if past:
                # In the person's words and zone, on the field they typed it in.
                zone = timezone.get_current_timezone_name()
                raise CommandInvalid({path: f"is in the past ({zone}): choose a time still to come" for path in past})
        except CommandInvalid as exc:
            for path, message in exc.errors.items():
                field = self.field_for_path.get(path) or next(
                    (f for p, f in self.field_for_path.items() if path.startswith(p + ".")), None
                )
                self.add_error(field if field in self.fields else None, f"{message} ({path})")
            return data
        if is_dangerous(self.command) and not data.get("confirm"):
            self.add_error("confirm", "Tick to confirm: this command is dangerous if sent by mistake.")
        if is_dangerous(self.command) and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why: a reason is required for unlock, immobilization and stolen.")
        return data


class HornForm(FeatureForm):
    member, title = "horn", "Sound the horn"

    def body(self):
        return {"state": "Activated"}


class DoorsForm(FeatureForm):
    member, title = "door", "Lock or unlock the doors"
    state = forms.ChoiceField(choices=[("Locked", "Lock"), ("Unlocked", "Unlock")])
    field_for_path = {"door.state": "state"}

    def body(self):
        return {"state": self.cleaned_data.get("state")}


class LightsForm(FeatureForm):
    member, title = "lights", "Lights"
    on = forms.TypedChoiceField(choices=[("1", "Switch on / flash"), ("0", "Switch off")], coerce=lambda v: v == "1", initial="1")
    field_for_path = {"lights.on": "on"}

    def body(self):
        return {"on": self.cleaned_data.get("on")}


class WakeUpForm(FeatureForm):
    member, title = "wakeUp", "Refresh the vehicle's state"

    def body(self):
        return {"action": "WakeUp"}


class ImmobilizationForm(FeatureForm):
    member, title = "immobilization", "Immobilization"
    activate = forms.TypedChoiceField(
        choices=[("1", "Immobilize (the engine will not start)"), ("0", "Release the immobilization")], coerce=lambda v: v == "1"
    )
    field_for_path = {"immobilization.activate": "activate"}

    def body(self):
        return {"activate": self.cleaned_data.get("activate")}


class StolenForm(FeatureForm):
    member, title = "stolen", "Stolen vehicle"
    mode = forms.ChoiceField(
        choices=[
            ("declare", "Declare the vehicle stolen"),
            ("cancel", "Cancel the stolen declaration"),
            ("tracking", "Change the tracking periods"),
            ("immobilize", "Immobilize the stolen vehicle"),
            ("release", "Release the stolen vehicle's immobilization"),
        ]
    )
    mode_fields = {"declare": [], "cancel": [], "tracking": ["running", "shutdown"], "immobilize": [], "release": []}
    running = forms.IntegerField(required=False, label="Tracking period while running (seconds, ≥ 5)")
    shutdown = forms.IntegerField(required=False, label="Tracking period while parked (seconds, ≥ 60)")
    field_for_path = {"stolen.trackingPeriod.running": "running", "stolen.trackingPeriod.shutdown": "shutdown", "stolen": "mode"}

    def body(self):
        d = self.cleaned_data
        mode = d.get("mode")
        if mode in ("declare", "cancel"):
            return {"stolen": mode == "declare"}
        if mode in ("immobilize", "release"):
            return {"immobilization": {"activate": mode == "immobilize"}}
        return {"trackingPeriod": {k: d[k] for k in ("running", "shutdown") if d.get(k) is not None}}


class _ProgramsMixin:
    """Four program rows (slots 1–4) as flat fields: p1_enabled, p1_start, p1_days…"""

    def add_program_fields(self, *, with_end=False, with_action=False):
        for slot in SLOTS:
            if with_action:
                self.fields[f"p{slot}_action"] = forms.ChoiceField(
                    choices=[("", "—"), ("Set", "Set"), ("Delete", "Delete")], required=False, label=f"Program {slot}"
                )
            else:
                self.fields[f"p{slot}_use"] = forms.BooleanField(required=False, label=f"Program {slot}")
            self.fields[f"p{slot}_enabled"] = forms.BooleanField(required=False, initial=True, label="enabled")
            self.fields[f"p{slot}_start"] = forms.TimeField(required=False, label="start", widget=forms.TimeInput(attrs={"type": "time"}))
            if with_end:
                self.fields[f"p{slot}_end"] = forms.TimeField(required=False, label="end", widget=forms.TimeInput(attrs={"type": "time"}))
            self.fields[f"p{slot}_days"] = forms.MultipleChoiceField(
                choices=DAY_CHOICES, required=False, widget=forms.CheckboxSelectMultiple, label="days"
            )

    def program_rows(self):
        return [[self[name] for name in self.fields if name.startswith(f"p{slot}_")] for slot in SLOTS]


class ChargingForm(_ProgramsMixin, FeatureForm):
    member, title = "charging", "Charging"
    mode = forms.ChoiceField(
        choices=[
            ("now", "Start charging now"),
            ("stop", "Stop charging"),
            ("delayed", "Start charging at a given time"),
            ("programs", "Set scheduled charging programs"),
            ("preferences", "Set charging preferences"),
        ]
    )
    mode_fields = {"now": [], "stop": [], "delayed": ["at"], "programs": ["programs"], "preferences": ["level", "charge_type"]}
    # datetime-local shows only "YYYY-MM-DDTHH:MM": any other format and the browser drops the value after an error.
    at = forms.DateTimeField(
        required=False, label="Start at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your time zone.",
    )
    level = forms.ChoiceField(choices=[("", "—")] + [(f"Level{i}", f"Level {i}") for i in range(1, 6)], required=False)
    charge_type = forms.ChoiceField(choices=[("", "—"), ("Partial", "Partial (battery-friendly)"), ("Full", "Full")], required=False)
    field_for_path = {
        "charging.schedule.nextDelayedTime": "at",
        "charging.preferences.level": "level",
        "charging.preferences.type": "charge_type",
        "charging.preferences": "level",
        "charging": "mode",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_program_fields(with_end=True)
        for slot in SLOTS:
            self.field_for_path[f"charging.schedule.programs.{slot - 1}.start"] = f"p{slot}_start"
            self.field_for_path[f"charging.schedule.programs.{slot - 1}.end"] = f"p{slot}_end"
            self.field_for_path[f"charging.schedule.programs.{slot - 1}.occurence"] = f"p{slot}_days"

    def body(self):
        d = self.cleaned_data
        mode = d.get("mode")
        if mode == "now":
            return {"immediate": True}
        if mode == "stop":
            return {"immediate": False}
        if mode == "delayed":
            at = d.get("at")
            if at is None:
                return {"schedule": {"nextDelayedTime": None}}
            if timezone.is_naive(at):
                at = timezone.make_aware(at)
            return {"schedule": {"nextDelayedTime": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}}
        if mode == "programs":
            programs = []
            for slot in SLOTS:
                if not d.get(f"p{slot}_use"):
                    continue
                program = {"slot": slot, "enabled": bool(d.get(f"p{slot}_enabled"))}
                if d.get(f"p{slot}_start"):
                    program["start"] = duration_of_day(d[f"p{slot}_start"])
                if d.get(f"p{slot}_end"):
                    program["end"] = duration_of_day(d[f"p{slot}_end"])
                if d.get(f"p{slot}_days"):
                    program["occurence"] = {"day": list(d[f"p{slot}_days"])}
                programs.append(program)
            return {"schedule": {"programs": programs}}
        prefs = {}
        if d.get("level"):
            prefs["level"] = d["level"]
        if d.get("charge_type"):
            prefs["type"] = d["charge_type"]
        return {"preferences": prefs}


class PreconditioningForm(_ProgramsMixin, FeatureForm):
    member, title = "preconditioning", "Preconditioning (heating / air conditioning)"
    immediate = forms.BooleanField(required=False, label="Start now")
    field_for_path = {"preconditioning.airConditioning": "immediate"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_program_fields(with_action=True)
        for slot in SLOTS:
            self.fields[f"p{slot}_recurrence"] = forms.ChoiceField(choices=[("Daily", "Daily"), ("None", "Once")], required=False, label="repeat")
        self.field_for_path = dict(self.field_for_path)

    def body(self):
        d = self.cleaned_data
        ac = {}
        if d.get("immediate"):
            ac["immediate"] = True
        programs, index = [], 0
        for slot in SLOTS:
            action = d.get(f"p{slot}_action")
            if not action:
                continue
            path = f"preconditioning.airConditioning.programs.{index}"
            self.field_for_path.update({f"{path}.start": f"p{slot}_start", f"{path}.occurence": f"p{slot}_days", f"{path}.slot": f"p{slot}_action"})
            index += 1
            if action == "Delete":
                programs.append({"slot": slot, "actionsType": "Delete"})
                continue
            program = {"slot": slot, "actionsType": "Set", "enabled": bool(d.get(f"p{slot}_enabled")), "recurrence": d.get(f"p{slot}_recurrence") or "Daily"}
            if d.get(f"p{slot}_start"):
                program["start"] = duration_of_day(d[f"p{slot}_start"])
            program["occurence"] = {"day": list(d.get(f"p{slot}_days") or [])}
            programs.append(program)
        if programs:
            ac["programs"] = programs
        return {"airConditioning": ac}


class NavigationForm(FeatureForm):
    member, title = "navigation", "Send a route to the vehicle's navigation"
    positions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "48.8584, 2.2945\n45.7640, 4.8357"}),
        help_text="One point per line as latitude, longitude (decimal degrees). Up to 10; the last one is the destination.",
    )
    field_for_path = {"navigation.positions": "positions"}

    def clean_positions(self):
        points = []
        for n, line in enumerate(self.cleaned_data["positions"].splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            try:
                lat, lon = (float(part) for part in line.replace(";", ",").split(","))
            except ValueError as exc:
                raise forms.ValidationError(f"Line {n}: write “latitude, longitude”, e.g. 48.8584, 2.2945.") from exc
            points.append({"type": "Point", "coordinates": [lon, lat]})
        return points

    def body(self):
        return {"positions": self.cleaned_data.get("positions") or []}


FORMS = {f.member: f for f in (ChargingForm, PreconditioningForm, DoorsForm, HornForm, LightsForm, WakeUpForm, NavigationForm, ImmobilizationForm, StolenForm)}
