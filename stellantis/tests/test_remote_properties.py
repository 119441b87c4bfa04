"""Property test: every command the validation layer accepts is valid for the vendor's schema."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stellantis import spec
from stellantis.remotes import DAYS, CommandInvalid, parse_remote

LABEL = "3f1c2a4e-0000-4000-8000-000000000001"

bools = st.booleans()
maybe = lambda s: st.one_of(s, s, s, st.none(), st.integers(), st.text(max_size=3))  # noqa: E731  mostly the right type
times = st.builds(lambda h, m: f"PT{h}H{m}M", st.integers(0, 25), st.integers(0, 61)) | st.sampled_from(["PT0M", "PT23H59M", "P1D", "7:30", ""])
days = st.lists(st.sampled_from(DAYS + ("Funday",)), min_size=0, max_size=8)
slots = st.integers(0, 5)


def opt(d):
    """A dict strategy where every key may be missing."""
    return st.fixed_dictionaries({}, optional=d)


programs_charging = st.lists(opt({"slot": maybe(slots), "enabled": maybe(bools), "start": maybe(times), "end": maybe(times), "occurence": opt({"day": days})}), max_size=5)
programs_ac = st.lists(
    opt({"slot": maybe(slots), "enabled": maybe(bools), "actionsType": maybe(st.sampled_from(["Set", "Delete", "Add"])),
         "recurrence": maybe(st.sampled_from(["None", "Daily", "Weekly"])), "start": maybe(times), "occurence": opt({"day": days})}),
    max_size=5,
)
point = st.fixed_dictionaries({"type": st.just("Point"), "coordinates": st.lists(st.floats(-200, 200, allow_nan=False), min_size=1, max_size=3)})
rfc3339 = st.sampled_from(["2026-12-01T06:30:00Z", "2026-12-01T06:30:00+01:00", "2026-12-01", "tomorrow", "2026-12-01T06:30:00"])

MEMBERS = st.one_of(
    st.fixed_dictionaries({"horn": opt({"state": maybe(st.sampled_from(["Activated", "Unactivated", "Loud"]))})}),
    st.fixed_dictionaries({"door": opt({"state": maybe(st.sampled_from(["Locked", "Unlocked", "Open"])), "forced": maybe(bools)})}),
    st.fixed_dictionaries({"immobilization": opt({"activate": maybe(bools)})}),
    st.fixed_dictionaries({"lights": opt({"on": maybe(bools)})}),
    st.fixed_dictionaries({"wakeUp": st.one_of(st.just({}), opt({"action": maybe(st.just("WakeUp"))}))}),
    st.fixed_dictionaries({"stolen": opt({"stolen": maybe(bools), "trackingPeriod": opt({"running": maybe(st.integers(0, 100)), "shutdown": maybe(st.integers(0, 200))}), "immobilization": opt({"activate": maybe(bools)})})}),
    st.fixed_dictionaries({"navigation": opt({"positions": st.lists(point, min_size=0, max_size=11)})}),
    st.fixed_dictionaries({"preconditioning": opt({"airConditioning": opt({"immediate": maybe(bools), "programs": programs_ac})})}),
    st.fixed_dictionaries(
        {"charging": opt({"immediate": maybe(bools), "schedule": opt({"nextDelayedTime": rfc3339, "programs": programs_charging}),
                          "preferences": opt({"level": maybe(st.sampled_from(["Level1", "Level5", "Level9"])), "type": maybe(st.sampled_from(["Partial", "Full", "Half"]))})})}
    ),
)


# Mostly-valid bodies, so that plenty of examples pass the layer and reach the schema check.
good_time = st.builds(lambda h, m: f"PT{h}H{m}M", st.integers(0, 23), st.integers(0, 59))
good_days = st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True)
good_slots = st.lists(st.integers(1, 4), min_size=1, max_size=4, unique=True)
ac_program = lambda slot: st.one_of(  # noqa: E731
    st.fixed_dictionaries({"slot": st.just(slot), "enabled": bools, "start": good_time, "occurence": st.fixed_dictionaries({"day": good_days})},
                          optional={"actionsType": st.just("Set"), "recurrence": st.sampled_from(["None", "Daily"])}),
    st.fixed_dictionaries({"slot": st.just(slot), "actionsType": st.just("Delete")}),
)
charge_program = lambda slot: st.fixed_dictionaries(  # noqa: E731
    {"slot": st.just(slot), "enabled": bools, "start": good_time}, optional={"end": good_time, "occurence": st.fixed_dictionaries({"day": good_days})}
)
VALIDISH = st.one_of(
    st.fixed_dictionaries({"navigation": st.fixed_dictionaries({"positions": st.lists(
        st.fixed_dictionaries({"type": st.just("Point"), "coordinates": st.one_of(
            st.tuples(st.floats(-180, 180), st.floats(-90, 90)).map(list),
            st.tuples(st.floats(-180, 180), st.floats(-90, 90), st.floats(-500, 9000)).map(list))}), min_size=1, max_size=10)},
        optional={"driverApproval": bools})}),
    st.fixed_dictionaries({"preconditioning": st.fixed_dictionaries({"airConditioning": st.one_of(
        st.fixed_dictionaries({"immediate": bools}),
        st.fixed_dictionaries({"programs": good_slots.flatmap(lambda ss: st.tuples(*[ac_program(x) for x in ss]).map(list))}, optional={"immediate": bools}),
    )})}),
    st.fixed_dictionaries({"charging": st.one_of(
        st.fixed_dictionaries({"immediate": bools}),
        st.fixed_dictionaries({"schedule": st.fixed_dictionaries({"nextDelayedTime": st.sampled_from(["2026-12-01T06:30:00Z", "2026-12-01T06:30:00+01:00"])})}),
        st.fixed_dictionaries({"schedule": st.fixed_dictionaries({"programs": good_slots.flatmap(lambda ss: st.tuples(*[charge_program(x) for x in ss]).map(list))})}),
        st.fixed_dictionaries({}, optional={"level": st.sampled_from([f"Level{i}" for i in range(1, 6)]), "type": st.sampled_from(["Partial", "Full"])}).filter(bool).map(lambda p: {"preferences": p}),
    )}),
    st.fixed_dictionaries({"stolen": st.one_of(
        st.fixed_dictionaries({"stolen": bools}),
        st.fixed_dictionaries({"immobilization": st.fixed_dictionaries({"activate": bools})}),
        st.fixed_dictionaries({}, optional={"running": st.integers(5, 600), "shutdown": st.integers(60, 3600)}).filter(bool).map(lambda t: {"trackingPeriod": t}),
    )}),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=st.one_of(MEMBERS, VALIDISH))
def test_whatever_the_layer_accepts_the_official_schema_accepts(body, reference_dir):
    try:
        command = parse_remote(body)
    except CommandInvalid as exc:
        assert exc.errors and all(isinstance(v, str) and v for v in exc.errors.values())
        return
    remote = command.as_remote(LABEL)
    assert spec.schema_errors(spec.API_FILE, "Remote", remote) == [], remote


@pytest.mark.parametrize(
    "body, field",
    [
        ({"horn": {"state": "Loud"}}, "horn.state"),
        ({"door": {"state": "Locked", "forced": "yes"}}, "door.forced"),
        ({"lights": {"on": "true"}}, "lights.on"),
        ({"immobilization": {}}, "immobilization.activate"),
        ({"stolen": {"trackingPeriod": {"running": 4}}}, "stolen.trackingPeriod.running"),
        ({"stolen": {"trackingPeriod": {"shutdown": 59}}}, "stolen.trackingPeriod.shutdown"),
        ({"stolen": {"stolen": True, "immobilization": {"activate": True}}}, "stolen"),
        ({"navigation": {"positions": []}}, "navigation.positions"),
        ({"navigation": {"positions": [{"type": "Point", "coordinates": [2.3, 48.8]}] * 11}}, "navigation.positions"),
        ({"navigation": {"positions": [{"type": "Point", "coordinates": [181, 48.8]}]}}, "navigation.positions.0.coordinates"),
        ({"navigation": {"positions": [{"type": "Point", "coordinates": [2.3, 91]}]}}, "navigation.positions.0.coordinates"),
        ({"charging": {"immediate": True, "preferences": {"level": "Level1"}}}, "charging.preferences"),
        ({"charging": {"schedule": {"nextDelayedTime": "tomorrow"}}}, "charging.schedule.nextDelayedTime"),
        ({"charging": {"schedule": {"programs": [{"slot": 1, "enabled": True, "start": "PT1H"}, {"slot": 1, "enabled": True, "start": "PT2H"}]}}}, "charging.schedule.programs"),
        ({"charging": {"schedule": {"programs": [{"slot": 5, "enabled": True, "start": "PT1H"}]}}}, "charging.schedule.programs.0.slot"),
        ({"charging": {"preferences": {"type": "Half"}}}, "charging.preferences.type"),
        ({"preconditioning": {"airConditioning": {}}}, "preconditioning.airConditioning"),
        ({"preconditioning": {"airConditioning": {"programs": [{"slot": 1, "enabled": True, "start": "PT25H", "occurence": {"day": ["Mon"]}}]}}}, "preconditioning.airConditioning.programs.0.start"),
        ({"preconditioning": {"airConditioning": {"programs": [{"slot": 1, "enabled": True, "start": "PT7H"}]}}}, "preconditioning.airConditioning.programs.0.occurence"),
        ({"preconditioning": {"airConditioning": {"programs": [{"slot": 2, "enabled": True, "start": "PT7H", "occurence": {"day": ["Funday"]}}]}}}, "preconditioning.airConditioning.programs.0.occurence.day"),
        ({"preconditioning": {"airConditioning": {"programs": [{"actionsType": "Delete"}]}}}, "preconditioning.airConditioning.programs.0.slot"),
    ],
)
def test_spec_invalid_payloads_are_rejected_naming_the_field(body, field):
    with pytest.raises(CommandInvalid) as exc:
        parse_remote(body)
    assert field in exc.value.errors, exc.value.errors


def test_the_lights_schema_reads_on_when_loaded_as_yaml_1_2(reference_dir):
    lights = spec.load(spec.API_FILE)["components"]["schemas"]["RemoteLights"]
    assert "on" in lights["properties"] and lights["required"] == ["on"]
