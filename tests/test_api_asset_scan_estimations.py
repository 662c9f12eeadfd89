"""/api/assetScanEstimations: CRUD, relationships, (asset, scanEstimation) uniqueness, the state machine."""

import uuid

import pytest

URL = "/api/assetScanEstimations"
T0 = "2024-05-01T10:00:00Z"

# Anatomy §1.5, written out here rather than imported, so the test checks the app.
EDGES = {"Pending": ("Aborted", "Done", "Failed"), "Failed": ("Aborted",)}
REASONS = {
    "Pending": ("Created",),
    "Aborted": ("Cancellation",),
    "Failed": ("Aborted", "Error"),
    "Done": ("Success",),
}
ALL_REASONS = ("Created", "Cancellation", "Aborted", "Error", "Success")
STATES = tuple(REASONS)
PATHS = {"Pending": [], "Aborted": ["Aborted"], "Done": ["Done"], "Failed": ["Failed"]}


def status(state, reason=None):
    return {"state": state, "reason": reason or REASONS[state][0], "lastTransitionTime": T0}


def dir_asset(dir_name="/srv/www"):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}}


def estimate(asset_id, estimation_id, **extra):
    return {
        "asset": {"id": asset_id},
        "scanEstimation": {"id": estimation_id},
        "assetScanTemplate": {"scanFamiliesConfig": {"sbom": {"enabled": True}}},
        "estimation": {"duration": 120, "size": 8, "cost": 0.25,
                       "costBreakdown": [{"operation": "snapshot", "cost": 0.05},
                                         {"operation": "scanner", "cost": 0.2}]},
        "ttlSecondsAfterFinished": 600,
        **extra,
    }


def assert_error(response, code, *words):
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message"} and body["message"], body
    for word in words:
        assert word in body["message"], body
    return body


def create(api, body, url=URL):
    response = api.post(url, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def fetch(api, object_id, url=URL):
    response = api.get(f"{url}/{object_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def count(api, url=URL, query=""):
    response = api.get(f"{url}?$count=true{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["count"]


def walk_to(api, object_id, state):
    for step in PATHS[state]:
        response = api.patch(f"{URL}/{object_id}", json={"status": status(step)})
        assert response.status_code == 200, (step, response.get_json())
    return fetch(api, object_id)


@pytest.fixture
def asset(api):
    return create(api, dir_asset(), "/api/assets")


@pytest.fixture
def scan_estimation(api):
    return create(api, {"assetIDs": []}, "/api/scanEstimations")


@pytest.fixture
def fresh(api, asset):
    """Make a new asset scan estimation, each for a scan estimation of its own."""
    def make(**extra):
        parent = create(api, {"assetIDs": [asset["id"]]}, "/api/scanEstimations")
        return create(api, estimate(asset["id"], parent["id"], **extra))
    return make


# ---- create -----------------------------------------------------------------

def test_create_assigns_id_revision_and_a_pending_status(api, asset, scan_estimation):
    body = estimate(asset["id"], scan_estimation["id"])
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert {k: created["status"][k] for k in ("state", "reason")} == {"state": "Pending", "reason": "Created"}
    assert created == {**body, "id": created["id"], "revision": 1, "status": created["status"]}
    assert fetch(api, created["id"]) == created


def test_create_keeps_a_given_pending_status(api, asset, scan_estimation):
    body = estimate(asset["id"], scan_estimation["id"], status=status("Pending"))
    created = create(api, body)
    assert created == {**body, "id": created["id"], "revision": 1}


def test_create_with_id_is_rejected(api, asset, scan_estimation):
    body = {**estimate(asset["id"], scan_estimation["id"]), "id": str(uuid.uuid4())}
    assert_error(api.post(URL, json=body), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("change, field", [
    ({"estimation": {"cost": "cheap"}}, "cost"),
    ({"estimation": {"costBreakdown": [{"operation": "snapshot"}]}}, "cost"),
    ({"estimation": {"duration": 1.5}}, "duration"),
    ({"startTime": "now"}, "startTime"),
    ({"status": {"state": "Running", "reason": "Created", "lastTransitionTime": T0}}, "state"),
])
def test_create_breaking_the_schema_names_the_field(api, asset, scan_estimation, change, field):
    body = {**estimate(asset["id"], scan_estimation["id"]), **change}
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


def test_create_must_start_pending_with_reason_created(api, asset):
    for state in STATES:
        for reason in REASONS[state] if state != "Pending" else ALL_REASONS:
            parent = create(api, {"assetIDs": []}, "/api/scanEstimations")
            response = api.post(URL, json=estimate(asset["id"], parent["id"], status=status(state, reason)))
            if (state, reason) == ("Pending", "Created"):
                assert response.status_code == 201, response.get_json()
            else:
                assert response.status_code == 400, (state, reason)
                assert "status" in response.get_json()["message"], (state, reason)
    assert count(api) == 1


@pytest.mark.parametrize("missing", ["asset", "scanEstimation"])
def test_both_relationships_are_required(api, asset, scan_estimation, missing):
    body = estimate(asset["id"], scan_estimation["id"])
    del body[missing]
    assert_error(api.post(URL, json=body), 400, missing)
    assert count(api) == 0


@pytest.mark.parametrize("unknown", ["asset", "scanEstimation"])
def test_unknown_relationship_is_400(api, asset, scan_estimation, unknown):
    ids = {"asset": asset["id"], "scanEstimation": scan_estimation["id"], unknown: str(uuid.uuid4())}
    assert_error(api.post(URL, json=estimate(ids["asset"], ids["scanEstimation"])), 400, unknown)
    assert count(api) == 0


@pytest.mark.parametrize("unknown", ["asset", "scanEstimation"])
def test_update_to_an_unknown_relationship_is_400(api, asset, scan_estimation, unknown):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    assert_error(api.patch(f"{URL}/{created['id']}", json={unknown: {"id": str(uuid.uuid4())}}), 400, unknown)
    assert fetch(api, created["id"]) == created


# ---- uniqueness of (asset, scanEstimation) ----------------------------------

def test_one_estimate_per_asset_and_scan_estimation(api, asset, scan_estimation):
    first = create(api, estimate(asset["id"], scan_estimation["id"]))
    response = api.post(URL, json=estimate(asset["id"], scan_estimation["id"], ttlSecondsAfterFinished=5))
    assert response.status_code == 409
    body = response.get_json()
    assert set(body) == {"message", "assetScanEstimation"}
    assert body["assetScanEstimation"] == first
    assert count(api) == 1


def test_other_pairs_do_not_clash(api, asset, scan_estimation):
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    other_estimation = create(api, {"assetIDs": []}, "/api/scanEstimations")
    create(api, estimate(asset["id"], scan_estimation["id"]))
    create(api, estimate(other_asset["id"], scan_estimation["id"]))
    create(api, estimate(asset["id"], other_estimation["id"]))
    assert count(api) == 3


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_that_would_clash_is_409_and_changes_nothing(api, asset, scan_estimation, method):
    first = create(api, estimate(asset["id"], scan_estimation["id"]))
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    second = create(api, estimate(other_asset["id"], scan_estimation["id"]))
    if method == "patch":
        response = api.patch(f"{URL}/{second['id']}", json={"asset": {"id": asset["id"]}})
    else:
        response = api.put(f"{URL}/{second['id']}",
                           json={**estimate(asset["id"], scan_estimation["id"]), "status": second["status"]})
    assert response.status_code == 409
    assert response.get_json()["assetScanEstimation"] == first
    assert fetch(api, second["id"]) == second


# ---- read, list, PUT, PATCH, If-Match, delete -------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api, asset, scan_estimation):
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    mine = create(api, estimate(asset["id"], scan_estimation["id"]))
    create(api, estimate(other_asset["id"], scan_estimation["id"]))
    body = api.get(f"{URL}?$filter=asset/id eq '{asset['id']}'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [mine]
    assert count(api, URL, f"&$filter=scanEstimation/id eq '{scan_estimation['id']}'") == 2


def test_put_replaces_the_whole_document(api, asset, scan_estimation):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    body = {"asset": {"id": asset["id"]}, "scanEstimation": {"id": scan_estimation["id"]},
            "status": created["status"]}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("dropped", ["asset", "scanEstimation", "status"])
def test_put_cannot_drop_a_required_part(api, asset, scan_estimation, dropped):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    body = {k: v for k, v in created.items() if k not in ("revision", dropped)}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, dropped)
    assert fetch(api, created["id"]) == created


def test_put_with_another_id_is_rejected(api, asset, scan_estimation):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    body = {**created, "id": str(uuid.uuid4())}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api, asset, scan_estimation):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    patch = {"estimation": {"cost": 0.5, "size": None}, "ttlSecondsAfterFinished": None,
             "assetScanTemplate": {"scanFamiliesConfig": {"secrets": {"enabled": True}}}}
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {k: v for k, v in created.items() if k != "ttlSecondsAfterFinished"}
    expected.update(
        revision=2,
        estimation={"duration": 120, "cost": 0.5, "costBreakdown": created["estimation"]["costBreakdown"]},
        assetScanTemplate={"scanFamiliesConfig": {"sbom": {"enabled": True}, "secrets": {"enabled": True}}},
    )
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, asset, scan_estimation, method):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    body = {k: v for k, v in created.items() if k != "revision"} | {"ttlSecondsAfterFinished": 1}
    assert_error(getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "5"}), 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, asset, scan_estimation, method):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    body = {k: v for k, v in created.items() if k != "revision"} | {"ttlSecondsAfterFinished": 1}
    response = getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**body, "revision": 2}


def test_delete(api, asset, scan_estimation):
    created = create(api, estimate(asset["id"], scan_estimation["id"]))
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert fetch(api, asset["id"], "/api/assets") == asset
    assert fetch(api, scan_estimation["id"], "/api/scanEstimations") == scan_estimation


# ---- state machine -----------------------------------------------------------

@pytest.mark.parametrize("old", STATES)
def test_transitions_from(api, fresh, old):
    """From `old`, every allowed edge (anatomy §1.5) succeeds; every other one is a 400 that changes nothing."""
    stuck = fresh()
    stuck_before = walk_to(api, stuck["id"], old)
    for new in STATES:
        if new == old:
            continue
        if new in EDGES.get(old, ()):
            created = fresh()
            before = walk_to(api, created["id"], old)
            response = api.patch(f"{URL}/{created['id']}", json={"status": status(new)},
                                 headers={"If-Match": str(before["revision"])})
            assert response.status_code == 200, (old, new, response.get_json())
            after = fetch(api, created["id"])
            assert after["status"] == status(new), (old, new)
            assert after["revision"] == before["revision"] + 1, (old, new)
        else:
            url = f"{URL}/{stuck['id']}"
            response = api.patch(url, json={"status": status(new)})
            assert response.status_code == 400 and "status" in response.get_json()["message"], (old, new)
            body = {k: v for k, v in stuck_before.items() if k != "revision"}
            response = api.put(url, json={**body, "status": status(new)})
            assert response.status_code == 400 and "status" in response.get_json()["message"], (old, new)
            assert fetch(api, stuck["id"]) == stuck_before, (old, new)


@pytest.mark.parametrize("state", [s for s in STATES if s != "Pending"])
def test_reasons_allowed_per_state(api, fresh, state):
    entering_from = PATHS[state][-2] if len(PATHS[state]) > 1 else "Pending"
    for reason in ALL_REASONS:
        created = fresh()
        before = walk_to(api, created["id"], entering_from)
        response = api.patch(f"{URL}/{created['id']}", json={"status": status(state, reason)})
        if reason in REASONS[state]:
            assert response.status_code == 200, (reason, response.get_json())
            assert fetch(api, created["id"])["status"] == status(state, reason)
        else:
            assert response.status_code == 400, reason
            assert fetch(api, created["id"]) == before, reason


def test_failed_then_aborted(api, fresh):
    created = fresh()
    url = f"{URL}/{created['id']}"
    assert api.patch(url, json={"status": status("Failed", "Error")}).status_code == 200
    assert api.patch(url, json={"status": status("Aborted")}).status_code == 200
    assert_error(api.patch(url, json={"status": status("Failed", "Aborted")}), 400)
    assert fetch(api, created["id"])["status"] == status("Aborted")
