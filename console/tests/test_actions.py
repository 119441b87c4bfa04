"""The portal's action list: each filter of contracts.md, keyset pages, scoping, constant queries."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from remotes.models import ActionStatus, RemoteAction

H = dt.timedelta(hours=1)


def listed(client, query=""):
    response = client.get(f"/actions/?{query}")
    assert response.status_code == 200, response.content[:500]
    return [str(a.pk) for a in response.context["actions"]]


@pytest.fixture
def actions(make_fleet, make_vehicle, make_callback, action, other_org):
    f1, f2 = make_fleet(), make_fleet()
    v1, v2 = make_vehicle(fleet=f1), make_vehicle(fleet=f2)
    cb1, cb2 = make_callback(f1), make_callback(f2)
    return {
        "horn_ok": action(v1, cb1, ago=H),
        "doors_failed": action(v1, cb1, remote_type="Doors", command={"door": {"state": "Locked"}}, status=ActionStatus.FAILED, failure_cause="DoorsOpen", ago=2 * H),
        "lights_failed": action(v2, cb2, remote_type="Lights", command={"lights": {"on": True}}, status=ActionStatus.FAILED, failure_cause="VehicleInUse", ago=3 * H),
        "old_pending": action(v2, cb2, status=ActionStatus.PENDING, ago=dt.timedelta(days=3)),
        "f1": f1, "v2": v2,
    }


def ids(actions, *names):
    return [str(actions[n].pk) for n in names]


def test_each_filter_selects_what_it_names(client, viewer, actions):
    client.force_login(viewer)
    assert listed(client) == ids(actions, "horn_ok", "doors_failed", "lights_failed", "old_pending")  # newest first, no Org B
    assert listed(client, "status=failed") == ids(actions, "doors_failed", "lights_failed")
    assert listed(client, "status=failed&status=pending") == ids(actions, "doors_failed", "lights_failed", "old_pending")
    assert listed(client, "remote_type=Doors") == ids(actions, "doors_failed")
    assert listed(client, "cause=VehicleInUse") == ids(actions, "lights_failed")
    assert listed(client, "since=24h") == ids(actions, "horn_ok", "doors_failed", "lights_failed")
    since = (timezone.now() - 2.5 * H).isoformat()
    assert listed(client, f"since={since.replace('+', '%2B')}") == ids(actions, "horn_ok", "doors_failed")
    assert listed(client, f"fleet={actions['f1'].external_id}") == ids(actions, "horn_ok", "doors_failed")
    assert listed(client, f"vin={actions['v2'].vin.lower()}") == ids(actions, "lights_failed", "old_pending")
    assert listed(client, "fleet=fleet-b") == []  # another organisation's fleet: nothing, not theirs


def test_the_rows_speak_in_words_and_link_each_action(client, viewer, actions):
    client.force_login(viewer)
    html = client.get("/actions/?status=failed").content.decode()
    assert "Lock doors" in html
    assert "Failed: Doors open" in html
    assert f'href="/actions/{actions["doors_failed"].pk}/"' in html


def test_a_bad_filter_says_which_and_lists_nothing(client, viewer, actions):
    client.force_login(viewer)
    response = client.get("/actions/?status=exploded")
    assert response.status_code == 400
    assert "status: “exploded” is not a status." in response.content.decode()
    assert client.get("/actions/?since=yesterday-ish").status_code == 400
    assert client.get("/actions/?cursor=%%%").status_code == 400
    assert client.get("/actions/?verification=maybe").status_code == 400


def test_keyset_pages_cover_every_action_once_in_constant_queries(client, viewer, make_vehicle, make_callback, action):
    vehicle = make_vehicle()
    cb = make_callback(vehicle.fleet)
    base = timezone.now()
    made = [action(vehicle, cb) for _ in range(120)]
    for i, a in enumerate(made):  # three actions per instant: the keyset must break ties on the id
        RemoteAction.objects.filter(pk=a.pk).update(created_at=base - dt.timedelta(minutes=i // 3))
    client.force_login(viewer)
    seen, url, counts = [], "/actions/?since=24h", []
    while url:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        counts.append(len(ctx.captured_queries))
        seen += [str(a.pk) for a in response.context["actions"]]
        url = f"/actions/?since=24h&cursor={response.context['next_cursor']}" if response.context["next_cursor"] else ""
    assert len(seen) == 120 and set(seen) == {str(a.pk) for a in made}
    assert len(counts) == 3 and len(set(counts)) == 1


def test_the_verification_filter_lists_commands_whose_outcome_was_read_back(client, viewer, actions):
    RemoteAction.objects.filter(pk=actions["horn_ok"].pk).update(verification="not_confirmed")
    client.force_login(viewer)
    assert listed(client, "verification=not_confirmed") == ids(actions, "horn_ok")
    assert listed(client, "verification=verified") == []
    html = client.get("/actions/?verification=not_confirmed").content.decode()
    assert '<option value="not_confirmed" selected>Not confirmed</option>' in html
    assert "· not confirmed</span>" in html  # the status says the read-back did not confirm it
