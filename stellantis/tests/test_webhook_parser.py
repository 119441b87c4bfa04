"""The RemoteEvents parser: event by event, never raises, returns only what a database can store."""

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from stellantis.webhook import attributes_of_broken_body, parse_remote_events


def event(status="Accepted", kind="Pending", rid="r1", date="2026-11-25T10:00:00Z", **extra):
    return {"remoteActionId": rid, "vin": "VF3TEST0000000001", "eventDate": date, "remoteType": "Horn",
            "eventStatus": {"type": kind, "status": status, **extra}}


def parse(*events, **top):
    return parse_remote_events(json.dumps({"callbackId": "cb1", "attributes": [], "events": list(events), **top}).encode())


def test_a_good_body_gives_its_events_and_attributes():
    parsed = parse(event(), event("Success", "Done", date="2026-11-25T10:00:05+01:00"), attributes=[{"key": "k", "value": "v"}])

    assert parsed.error == "" and parsed.bad_events == []
    assert [(e.event_type, e.status) for e in parsed.events] == [("Pending", "Accepted"), ("Done", "Success")]
    assert parsed.events[1].event_date == dt.datetime(2026, 11, 25, 9, 0, 5, tzinfo=dt.UTC)
    assert parsed.attributes == [("k", "v")]


def test_a_bad_event_is_refused_alone_with_its_position_reason_and_content():
    bad = event("Exploded", "Done")
    parsed = parse(event(), bad, event("SentToVehicle"))

    assert [e.status for e in parsed.events] == ["Accepted", "SentToVehicle"]
    assert parsed.bad_events == [{"index": 1, "error": "eventStatus.status 'Exploded' is not a Done status", "event": bad}]
    assert parsed.event_count == 3
    assert parsed.summary() == "1 of 3 events refused; the first, events[1]: eventStatus.status 'Exploded' is not a Done status"


def test_type_failed_is_read_as_done_failed_unless_it_contradicts_itself():
    parsed = parse(
        event("Failed", "Failed", failureCause="DoorsOpen"),
        event(None, "Failed", failureCause="VehicleInUse"),
        event("MissingRights", "Failed"),
        event("Success", "Failed"),
        event("Accepted", "Failed"),
    )

    assert [(e.event_type, e.status, e.failure_cause) for e in parsed.events] == [
        ("Done", "Failed", "DoorsOpen"), ("Done", "Failed", "VehicleInUse"), ("Done", "Failed", "MissingRights"),
    ]
    assert [b["index"] for b in parsed.bad_events] == [3, 4]
    assert "contradicts itself" in parsed.bad_events[0]["error"]


def test_what_no_database_stores_is_refused_where_we_would_store_it_and_ignored_elsewhere():
    parsed = parse(event(vin="x"), {**event(), "vin": "VF3\x00"}, {**event(), "remoteActionId": "\ud800"}, {**event(), "note": "\udc00\x00"})

    assert [b["index"] for b in parsed.bad_events] == [1, 2]
    assert len(parsed.events) == 2  # "note" is not ours to store
    # The refused events are kept as escaped text: jsonb refuses \u0000 and lone surrogates.
    assert parsed.bad_events[0]["event"] == json.dumps({**event(), "vin": "VF3\x00"})
    assert "\\u0000" in parsed.bad_events[0]["event"]


def test_a_big_or_deep_refused_event_is_kept_as_its_text_cut_short():
    big = {**event(), "eventDate": None, "blob": "x" * 5000}
    deep = {**event(), "eventDate": None, "deep": json.loads("[" * 200 + "]" * 200)}
    parsed = parse(big, deep)

    kept_big, kept_deep = (b["event"] for b in parsed.bad_events)
    assert isinstance(kept_big, str) and len(kept_big) == 2000 and kept_big.endswith("...")
    assert isinstance(kept_deep, str) and kept_deep.startswith('{"remoteActionId"')


def test_bodies_that_are_not_remote_events_at_all():
    assert "not UTF-8" in parse_remote_events(b'{"events": ["\xe9"]}').error
    assert "not JSON" in parse_remote_events(b"{nope").error
    assert "nested too deeply" in parse_remote_events(b"[" * 100_000 + b"]" * 100_000).error
    assert "not a JSON object" in parse_remote_events(b"[]").error
    assert "events list" in parse_remote_events(b'{"events": "all of them"}').error
    assert "not UTF-8" in parse_remote_events("\ud800").error  # a str with a lone surrogate, as a caller may hold


def test_attributes_are_strings_only_and_found_in_a_body_cut_short():
    parsed = parse(event(), attributes=[{"key": "a", "value": 1}, {"key": "b", "value": "2"}, "c", {"key": "d"}])
    assert parsed.attributes == [("b", "2")]

    whole = json.dumps({"callbackId": "cb1", "attributes": [{"key": "X-S", "value": "k.s"}], "events": [event()] * 20}).encode()
    cut = parse_remote_events(whole[:300])
    assert cut.error and cut.attributes == [("X-S", "k.s")]
    assert attributes_of_broken_body(b'{"attributes": [{"key": "X-S", "val') == []


def test_dates_out_of_range_once_in_utc_are_refused():
    parsed = parse(event(date="9999-12-31T23:59:59-01:00"), event(date="0001-01-01T00:00:00+00:30"), event(date="9999-12-31T22:00:00-01:00"))
    assert [b["index"] for b in parsed.bad_events] == [0, 1]
    assert len(parsed.events) == 1


# Any text, lone surrogates and NUL included; any JSON value, deep or odd.
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=8) | st.sampled_from(["Accepted", "Done", "Pending", "Failed", "Success", "\x00", "\ud800"])
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=12)
dates = st.sampled_from(["2026-11-25T10:00:00Z", "9999-12-31T23:59:59-01:00", "2026-13-01", "", "0001-01-01T00:00:00+01:00"]) | values
statuses = st.fixed_dictionaries(
    {}, optional={"type": st.sampled_from(["Pending", "Done", "Failed"]) | values, "status": st.sampled_from(["Accepted", "Success", "Failed", "DoorsOpen"]) | values,
                  "failureCause": values, "feedbackDetail": values},
)
events = st.fixed_dictionaries(
    {}, optional={"remoteActionId": text | values, "vin": text | values, "eventDate": dates, "remoteType": text | values, "eventStatus": statuses | values, "x": values},
) | values


def strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)


@settings(max_examples=400, deadline=None)
@given(evs=st.lists(events, max_size=6), attributes=values)
def test_whatever_the_events_the_parser_returns_only_what_sqlite_and_postgresql_store(evs, attributes):
    parsed = parse_remote_events(json.dumps({"attributes": attributes, "events": evs}).encode())

    assert parsed.event_count == len(evs)
    json.dumps(parsed.bad_events, allow_nan=False)  # a JSON column takes it (no NaN, no Infinity)
    for string in strings(parsed.bad_events):  # and jsonb takes every string in it
        assert "\x00" not in string
        string.encode("utf-8")  # no lone surrogate
    for e in parsed.events:
        for value in (e.remote_action_id, e.vin, e.remote_type, e.status, e.failure_cause, e.feedback_detail):
            assert "\x00" not in value
            value.encode("utf-8")  # no lone surrogate
        e.event_date.astimezone(dt.UTC)

