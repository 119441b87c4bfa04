"""The command validation layer, checked against the vendor's own `Remote` schema."""

import pytest

from stellantis import spec
from stellantis.remotes import CommandInvalid, parse_remote

VALID = [
    {"horn": {"state": "Activated"}},
    {"door": {"state": "Locked"}},
    {"door": {"state": "Unlocked"}},
]


@pytest.mark.parametrize("body", VALID)
def test_accepted_commands_validate_against_the_official_remote_schema(body, reference_dir):
    command = parse_remote(body)
    remote = command.as_remote(label="3f1c2a4e-0000-4000-8000-000000000001")
    assert spec.schema_errors(spec.API_FILE, "Remote", remote) == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"horn": {"state": "Activated"}, "door": {"state": "Locked"}}, "non_field_errors"),
        ({}, "non_field_errors"),
        ({"horn": {}}, "horn.state"),
        ({"horn": "Activated"}, "horn"),
        ({"door": {"state": "Open"}}, "door.state"),
        ({"door": {"state": "Locked", "speed": 3}}, "door.speed"),
        ("horn", "non_field_errors"),
    ],
)
def test_it_names_the_field_that_is_wrong(body, field):
    with pytest.raises(CommandInvalid) as exc:
        parse_remote(body)
    assert field in exc.value.errors


def test_the_label_is_ignored_on_input():
    assert parse_remote({"label": "x", "horn": {"state": "Activated"}}).as_dict() == {"horn": {"state": "Activated"}}


def test_navigation_keeps_altitude_and_driver_approval_as_the_spec_allows(reference_dir):
    body = {"navigation": {"driverApproval": True, "positions": [
        {"type": "Point", "coordinates": [2.35, 48.85, 35.0]},
        {"type": "Point", "coordinates": [4.83, 45.76]},
    ]}}
    command = parse_remote(body)

    assert command.body == {"driverApproval": True, "positions": [
        {"type": "Point", "coordinates": [2.35, 48.85, 35.0]},
        {"type": "Point", "coordinates": [4.83, 45.76]},
    ]}
    assert spec.schema_errors(spec.API_FILE, "Remote", command.as_remote(label="3f1c2a4e-0000-4000-8000-000000000001")) == []


@pytest.mark.parametrize(
    "navigation, field",
    [
        ({"driverApproval": "yes", "positions": [{"type": "Point", "coordinates": [2.3, 48.8]}]}, "navigation.driverApproval"),
        ({"positions": [{"type": "Point", "coordinates": [2.3, 48.8, 35.0, 1.0]}]}, "navigation.positions.0.coordinates"),
        ({"positions": [{"type": "Point", "coordinates": [2.3, 48.8, "high"]}]}, "navigation.positions.0.coordinates"),
    ],
)
def test_navigation_checks_the_approval_flag_and_the_altitude(navigation, field):
    with pytest.raises(CommandInvalid) as exc:
        parse_remote({"navigation": navigation})
    assert field in exc.value.errors
