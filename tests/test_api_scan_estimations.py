"""/api/scanEstimations: CRUD, start state, the state machine and the cascade to asset scan estimations."""

import uuid
from collections import deque

import pytest

URL = "/api/scanEstimations"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T11:00:00Z"

# Anatomy §1.5, written out here rather than imported, so the test checks the app.
EDGES = {
    "Pending": ("Discovered", "Aborted", "Failed", "Done"),
    "Discovered": ("InProgress", "Aborted", "Failed"),
    "InProgress": ("Aborted", "Failed", "Done"),
    "Aborted": ("Failed",),
}
REASONS = {
    "Pending": ("Created",),
    "Discovered": ("SuccessfulDiscovery",),
    "InProgress": ("EstimationsRunning",),
    "Aborted": ("Cancellation",),
    "Failed": ("Aborted", "Error", "TimeOut"),
    "Done": ("NothingToEstimate", "Success"),
}
ALL_REASONS = ("Created", "SuccessfulDiscovery", "EstimationsRunning", "Cancellation", "Aborted", "Error",
               "TimeOut", "NothingToEstimate", "Success")
STATES = tuple(REASONS)


def status(state, reason=None):
    return {"state": state, "reason": reason or REASONS[state][0], "lastTransitionTime": T0}


def estimation(**extra):
    return {
        "assetIDs": [],
        "scanTemplate": {"scope": "assetInfo/objectType eq 'VMInfo'", "maxParallelScanners": 2},
        "ttlSecondsAfterFinished": 3600,
        **extra,
    }


def dir_asset(dir_name="/srv/www"):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}}


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


def gone(api, url, object_id):
    return api.get(f"{url}/{object_id}").status_code == 404


def path_to(state):
    queue, seen = deque([("Pending", [])]), {"Pending"}
    while queue:
        current, path = queue.popleft()
        if current == state:
            return path
        for nxt in EDGES.get(current, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, path + [nxt]))
    raise AssertionError(f"{state} is unreachable")


def walk_to(api, object_id, state):
    for step in path_to(state):
        response = api.patch(f"{URL}/{object_id}", json={"status": status(step)})
        assert response.status_code == 200, (step, response.get_json())
    return fetch(api, object_id)


# ---- create -----------------------------------------------------------------

def test_create_assigns_id_revision_and_a_pending_status(api):
    body = estimation()
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert {k: created["status"][k] for k in ("state", "reason")} == {"state": "Pending", "reason": "Created"}
    assert created["status"]["lastTransitionTime"]
    assert created == {**body, "id": created["id"], "revision": 1, "status": created["status"]}
    assert fetch(api, created["id"]) == created


def test_create_keeps_a_given_pending_status(api):
    body = estimation(status=status("Pending"), startTime=T0)
    created = create(api, body)
    assert created == {**body, "id": created["id"], "revision": 1}


def test_there_is_no_uniqueness_rule(api):
    create(api, estimation())
    create(api, estimation())
    assert count(api) == 2


def test_create_with_id_is_rejected(api):
    assert_error(api.post(URL, json={**estimation(), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("body, field", [
    (estimation(ttlSecondsAfterFinished="hour"), "ttlSecondsAfterFinished"),
    (estimation(assetIDs=[1, 2]), "assetIDs"),
    (estimation(summary={"totalScanCost": "cheap"}), "totalScanCost"),
    (estimation(scanTemplate={"maxParallelScanners": 100}), "maxParallelScanners"),
    (estimation(endTime="later"), "endTime"),
    (estimation(status={"state": "Waiting", "reason": "Created", "lastTransitionTime": T0}), "state"),
])
def test_create_breaking_the_schema_names_the_field(api, body, field):
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


def test_create_must_start_pending_with_reason_created(api):
    for state in STATES:
        for reason in REASONS[state] if state != "Pending" else ALL_REASONS:
            response = api.post(URL, json=estimation(status=status(state, reason)))
            if (state, reason) == ("Pending", "Created"):
                assert response.status_code == 201, response.get_json()
            else:
                assert response.status_code == 400, (state, reason)
                assert "status" in response.get_json()["message"], (state, reason)
    assert count(api) == 1


# ---- read, list, PUT, PATCH, If-Match ---------------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api):
    pending = create(api, estimation())
    done = create(api, estimation())
    walk_to(api, done["id"], "Done")
    body = api.get(f"{URL}?$filter=status/state eq 'Pending'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [pending]
    assert count(api, URL, "&$filter=status/state eq 'Done'") == 1


def test_put_replaces_the_whole_document(api):
    created = create(api, estimation(summary={"jobsLeftToRun": 2}))
    body = {"status": created["status"], "assetIDs": ["a"]}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_put_without_a_status_is_400(api):
    created = create(api, estimation())
    assert_error(api.put(f"{URL}/{created['id']}", json=estimation()), 400, "status")
    assert fetch(api, created["id"]) == created


def test_put_with_another_id_is_rejected(api):
    created = create(api, estimation())
    body = {**estimation(), "status": created["status"], "id": str(uuid.uuid4())}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api):
    created = create(api, estimation(summary={"jobsLeftToRun": 2, "jobsCompleted": 0, "totalScanCost": 0.5}))
    patch = {"summary": {"jobsLeftToRun": 1, "jobsCompleted": 1, "totalScanCost": None},
             "scanTemplate": {"maxParallelScanners": 4}, "ttlSecondsAfterFinished": None}
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {k: v for k, v in created.items() if k != "ttlSecondsAfterFinished"}
    expected.update(revision=2, summary={"jobsLeftToRun": 1, "jobsCompleted": 1},
                    scanTemplate={**created["scanTemplate"], "maxParallelScanners": 4})
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_patch_cannot_remove_the_status(api):
    created = create(api, estimation())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"status": None}), 400, "status")
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, method):
    created = create(api, estimation())
    body = {**estimation(assetIDs=["x"]), "status": created["status"]}
    assert_error(getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "0"}), 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, method):
    created = create(api, estimation())
    body = {**estimation(assetIDs=["x"]), "status": created["status"]}
    response = getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**body, "id": created["id"], "revision": 2}


# ---- state machine -----------------------------------------------------------

@pytest.mark.parametrize("old", STATES)
def test_transitions_from(api, old):
    """From `old`, every allowed edge (anatomy §1.5) succeeds; every other one is a 400 that changes nothing."""
    stuck = create(api, estimation())
    stuck_before = walk_to(api, stuck["id"], old)
    for new in STATES:
        if new == old:
            continue
        if new in EDGES.get(old, ()):
            created = create(api, estimation())
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
            response = api.put(url, json={**estimation(), "status": status(new)})
            assert response.status_code == 400 and "status" in response.get_json()["message"], (old, new)
            assert fetch(api, stuck["id"]) == stuck_before, (old, new)


@pytest.mark.parametrize("state", [s for s in STATES if s != "Pending"])
def test_reasons_allowed_per_state(api, state):
    path = path_to(state)
    entering_from = path[-2] if len(path) > 1 else "Pending"
    for reason in ALL_REASONS:
        created = create(api, estimation())
        before = walk_to(api, created["id"], entering_from)
        response = api.patch(f"{URL}/{created['id']}", json={"status": status(state, reason)})
        if reason in REASONS[state]:
            assert response.status_code == 200, (reason, response.get_json())
            assert fetch(api, created["id"])["status"] == status(state, reason)
        else:
            assert response.status_code == 400, reason
            assert fetch(api, created["id"]) == before, reason


# ---- delete and cascade -----------------------------------------------------

def test_delete(api):
    created = create(api, estimation())
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert count(api) == 0


def test_delete_removes_its_asset_scan_estimations(api):
    assets = [create(api, dir_asset(f"/a{i}"), "/api/assets") for i in range(2)]
    doomed = create(api, estimation(assetIDs=[a["id"] for a in assets]))
    kept = create(api, estimation(assetIDs=[assets[0]["id"]]))
    doomed_children = [create(api, {"asset": {"id": a["id"]}, "scanEstimation": {"id": doomed["id"]}},
                              "/api/assetScanEstimations") for a in assets]
    kept_child = create(api, {"asset": {"id": assets[0]["id"]}, "scanEstimation": {"id": kept["id"]}},
                        "/api/assetScanEstimations")

    assert api.delete(f"{URL}/{doomed['id']}").status_code == 200

    assert gone(api, URL, doomed["id"])
    assert all(gone(api, "/api/assetScanEstimations", child["id"]) for child in doomed_children)
    assert count(api, "/api/assetScanEstimations", f"&$filter=scanEstimation/id eq '{doomed['id']}'") == 0
    assert fetch(api, kept_child["id"], "/api/assetScanEstimations") == kept_child
    assert fetch(api, kept["id"]) == kept
    assert [fetch(api, a["id"], "/api/assets") for a in assets] == assets
