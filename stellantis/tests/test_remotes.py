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
