"""The partner API of bulk requests, over real HTTP: shapes kept stable, refusals naming the field."""

import pytest

from accounts.models import Role, Scope
from bulk.models import BulkRequest
from remotes.models import RemoteAction

pytestmark = pytest.mark.django_db(transaction=True)

HORN = {"horn": {"state": "Activated"}}
STABLE_COUNTS = {"queued", "submitted", "success", "failed"}


@pytest.fixture
def fleet(sim_fleet):
    return sim_fleet("API fleet", 6, seed=23)


@pytest.fixture
def partner(api, make_member, make_token):
    return api(make_token(make_member("pat", Role.APPROVER)))


def post(session, body):
    return session.post(f"{session.base_url}/api/v1/bulk/", json=body)


def test_a_bulk_request_answers_202_with_its_url_and_then_its_counts_by_status(partner, fleet, drive):
    vins = list(fleet.vehicles.order_by("vin").values_list("vin", flat=True)[:4])

    answer = post(partner, {"command": HORN, "vins": vins, "reason": "fleet check"})

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert answer.headers["Location"] == body["url"] and body["url"].endswith(f"/api/v1/bulk/{body['id']}/")
    assert body["total"] == 4 and body["status"] == "expanding"
    assert STABLE_COUNTS <= set(body["counts"]) and body["counts"]["queued"] == 4

    drive(BulkRequest.objects.get(pk=body["id"]))
    state = partner.get(body["url"]).json()
    assert {"status", "total", "counts"} <= set(state)
    assert state["total"] == 4 and state["status"] in ("sent", "finished")
    assert state["counts"]["queued"] == 0
    assert state["counts"]["submitted"] + state["counts"]["success"] + state["counts"]["failed"] == 4
    assert {"refused", "cancelled", "awaiting_approval"} <= set(state["counts"])

    listed = partner.get(f"{partner.base_url}/api/v1/bulk/").json()
    assert [b["id"] for b in listed["results"]] == [body["id"]]


def test_a_whole_fleet_by_its_vendor_id_and_a_dry_run_that_stores_nothing(partner, fleet):
    answer = post(partner, {"command": HORN, "fleet": fleet.external_id, "dry_run": True})

    assert answer.status_code == 200, answer.text
    forecast = answer.json()
    assert forecast["dry_run"] is True and forecast["total"] == 6
    assert forecast["to_send"] + forecast["refused"] == 6
    assert forecast["estimated_seconds"] >= 0 and forecast["estimated_duration"]
    assert not BulkRequest.objects.exists() and not RemoteAction.objects.exists()

    real = post(partner, {"command": HORN, "fleet": fleet.external_id})
    assert real.status_code == 202 and real.json()["total"] == 6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"vins": ["X"]}, "command"),
        ({"command": {"door": {"state": "Sideways"}}, "vins": None}, "command.door.state"),
        ({"command": HORN}, "vins"),
        ({"command": HORN, "vins": ["VF3NOSUCHVIN00001"]}, "vins"),
        ({"command": HORN, "fleet": "no-such-fleet"}, "fleet"),
        ({"command": {"door": {"state": "Unlocked"}}, "vins": None}, "reason"),
        ({"command": HORN, "vins": None, "not_after": "2020-01-01T00:00:00Z"}, "not_after"),
    ],
)
def test_a_wrong_payload_is_a_400_naming_the_field(partner, fleet, body, field):
    if body.get("vins", "") is None:
        body = {**body, "vins": [fleet.vehicles.first().vin]}

    answer = post(partner, body)

    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert field in answer.json()["errors"], answer.json()
    assert not BulkRequest.objects.exists()


def test_a_viewer_token_cannot_create_one(api, fleet, make_member, make_token):
    viewer = api(make_token(make_member("vic", Role.VIEWER), scopes=[Scope.READ]))

    answer = post(viewer, {"command": HORN, "fleet": fleet.external_id})

    assert answer.status_code == 403
    assert not BulkRequest.objects.exists()


def test_another_organisations_bulk_request_is_not_found(api, partner, fleet, make_organisation, make_member, make_token):
    created = post(partner, {"command": HORN, "fleet": fleet.external_id}).json()
    other_org = make_organisation("Other Co")
    stranger = api(make_token(make_member("sid", Role.ADMIN, org=other_org), org=other_org))

    assert stranger.get(created["url"]).status_code == 404
    assert stranger.post(f"{created['url']}cancel/").status_code == 404
    assert stranger.post(f"{created['url']}retry-failed/").status_code == 404
    assert stranger.get(f"{stranger.base_url}/api/v1/bulk/").json()["results"] == []
    assert BulkRequest.objects.get(pk=created["id"]).status == "expanding"  # untouched


def test_cancel_and_retry_failed_through_the_api(partner, fleet):
    created = post(partner, {"command": HORN, "fleet": fleet.external_id}).json()

    nothing = partner.post(f"{created['url']}retry-failed/")
    assert nothing.status_code == 409 and nothing.json()["code"] == "nothing_to_retry"

    cancelled = partner.post(f"{created['url']}cancel/")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
