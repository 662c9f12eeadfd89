"""/api/scans: CRUD, the one-running-scan rule, scanConfig rules, the state machine and cascades."""

import uuid
from collections import deque

import pytest

URL = "/api/scans"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T11:00:00Z"

# Anatomy §1.5, written out here rather than imported, so the test checks the app.
EDGES = {
    "Pending": ("Discovered", "Aborted", "Failed", "Done"),
    "Discovered": ("InProgress", "Aborted"),
    "InProgress": ("Aborted", "Failed", "Done"),
    "Aborted": ("Failed",),
}
REASONS = {
    "Pending": ("Created",),
    "Discovered": ("AssetsDiscovered",),
    "InProgress": ("AssetScansRunning",),
    "Aborted": ("Cancellation",),
    "Failed": ("Cancellation", "Error", "Timeout"),
    "Done": ("NothingToScan", "Success"),
}
ALL_REASONS = ("Created", "AssetsDiscovered", "AssetScansRunning", "Cancellation", "Error", "Timeout",
               "NothingToScan", "Success")
STATES = tuple(REASONS)


def status(state, reason=None, message=None):
    result = {"state": state, "reason": reason or REASONS[state][0], "lastTransitionTime": T0}
    if message:
        result["message"] = message
    return result


def scan_config(name="nightly"):
    return {"name": name, "scheduled": {"operationTime": "2031-01-01T00:00:00Z"}}


def scan(config_id=None, name="scan-1", **extra):
    body = {"name": name, "assetIDs": [], "startTime": T0, "maxParallelScanners": 2, **extra}
    if config_id:
        body["scanConfig"] = {"id": config_id}
    return body


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
    """States to pass through, by allowed edges, from Pending to `state`."""
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


@pytest.fixture
def config(api):
    return create(api, scan_config(), "/api/scanConfigs")


# ---- create -----------------------------------------------------------------

def test_create_assigns_id_revision_and_a_pending_status(api, config):
    body = scan(config["id"])
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created["status"]["state"] == "Pending" and created["status"]["reason"] == "Created"
    assert created["status"]["lastTransitionTime"]
    assert created == {**body, "id": created["id"], "revision": 1, "status": created["status"]}
    assert fetch(api, created["id"]) == created


def test_create_keeps_a_given_pending_status(api):
    body = scan(status=status("Pending", message="queued"))
    created = create(api, body)
    assert created == {**body, "id": created["id"], "revision": 1}


def test_create_without_a_scan_config(api):
    created = create(api, scan())
    assert "scanConfig" not in fetch(api, created["id"])


def test_create_with_id_is_rejected(api):
    assert_error(api.post(URL, json={**scan(), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("body, field", [
    (scan(startTime="soon"), "startTime"),
    (scan(assetIDs="a"), "assetIDs"),
    (scan(maxParallelScanners=0), "maxParallelScanners"),
    (scan(status={"state": "Running", "reason": "Created", "lastTransitionTime": T0}), "state"),
    (scan(status={"state": "Pending", "reason": "Created"}), "lastTransitionTime"),
    (scan(summary={"jobsCompleted": "two"}), "jobsCompleted"),
    (scan(scanConfig={"name": "no id"}), "id"),
])
def test_create_breaking_the_schema_names_the_field(api, body, field):
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


def test_create_must_start_pending_with_reason_created(api):
    for state in STATES:
        for reason in REASONS[state] if state != "Pending" else ALL_REASONS:
            response = api.post(URL, json=scan(status=status(state, reason)))
            if (state, reason) == ("Pending", "Created"):
                assert response.status_code == 201, response.get_json()
            else:
                assert response.status_code == 400, (state, reason)
                assert "status" in response.get_json()["message"], (state, reason)
    assert count(api) == 1


def test_unknown_scan_config_is_400(api):
    assert_error(api.post(URL, json=scan(str(uuid.uuid4()))), 400, "scanConfig")
    assert count(api) == 0


# ---- one running scan per scan config ---------------------------------------

def test_a_second_running_scan_of_a_config_conflicts(api, config):
    first = create(api, scan(config["id"], "first"))
    response = api.post(URL, json=scan(config["id"], "second"))
    assert response.status_code == 409
    body = response.get_json()
    assert set(body) == {"message", "scan"}
    assert body["scan"] == first
    assert count(api) == 1


def test_a_new_scan_is_allowed_once_the_running_one_has_ended(api, config):
    first = create(api, scan(config["id"], "first"))
    assert api.patch(f"{URL}/{first['id']}", json={"endTime": T1}).status_code == 200
    second = create(api, scan(config["id"], "second"))
    assert api.post(URL, json=scan(config["id"], "third")).get_json()["scan"] == second
    assert count(api) == 2


def test_ended_scans_do_not_count_as_running(api, config):
    create(api, scan(config["id"], "old-1", endTime=T1))
    create(api, scan(config["id"], "old-2", endTime=T1))
    create(api, scan(config["id"], "now"))
    assert count(api) == 3


def test_running_scans_of_different_configs_or_no_config_coexist(api, config):
    other = create(api, scan_config("other"), "/api/scanConfigs")
    create(api, scan(config["id"], "a"))
    create(api, scan(other["id"], "b"))
    create(api, scan(None, "c"))
    create(api, scan(None, "d"))
    assert count(api) == 4


@pytest.mark.parametrize("method", ["put", "patch"])
def test_reopening_an_ended_scan_beside_a_running_one_is_409(api, config, method):
    ended = create(api, scan(config["id"], "ended", endTime=T1))
    running = create(api, scan(config["id"], "running"))
    url = f"{URL}/{ended['id']}"
    if method == "patch":
        response = api.patch(url, json={"endTime": None})
    else:
        body = {k: v for k, v in ended.items() if k not in ("endTime", "revision")}
        response = api.put(url, json=body)
    assert response.status_code == 409
    assert response.get_json()["scan"] == running
    assert fetch(api, ended["id"]) == ended


def test_a_running_scan_may_be_updated_while_it_runs(api, config):
    running = create(api, scan(config["id"]))
    response = api.patch(f"{URL}/{running['id']}", json={"summary": {"jobsLeftToRun": 3, "jobsCompleted": 1}})
    assert response.status_code == 200
    assert fetch(api, running["id"])["summary"] == {"jobsLeftToRun": 3, "jobsCompleted": 1}


# ---- the scan config cannot change ------------------------------------------

@pytest.mark.parametrize("change", ["patch-other", "put-other", "put-without", "patch-null"])
def test_scan_config_cannot_change(api, config, change):
    other = create(api, scan_config("other"), "/api/scanConfigs")
    created = create(api, scan(config["id"]))
    url = f"{URL}/{created['id']}"
    if change == "patch-other":
        response = api.patch(url, json={"scanConfig": {"id": other["id"]}})
    elif change == "patch-null":
        response = api.patch(url, json={"scanConfig": None})
    elif change == "put-other":
        response = api.put(url, json={**scan(other["id"]), "status": created["status"]})
    else:
        response = api.put(url, json={**scan(), "status": created["status"]})
    assert_error(response, 400, "scanConfig")
    assert fetch(api, created["id"]) == created


def test_a_scan_without_config_cannot_gain_one(api, config):
    created = create(api, scan())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"scanConfig": {"id": config["id"]}}), 400, "scanConfig")
    assert fetch(api, created["id"]) == created


def test_put_keeping_the_same_scan_config(api, config):
    created = create(api, scan(config["id"]))
    body = {**scan(config["id"], "renamed"), "status": created["status"]}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**body, "id": created["id"], "revision": 2}


# ---- read, list, PUT, PATCH, If-Match ---------------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api, config):
    a = create(api, scan(config["id"], "a"))
    b = create(api, scan(None, "b"))
    walk_to(api, b["id"], "Done")
    body = api.get(f"{URL}?$filter=status/state eq 'Pending'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [a]
    body = api.get(f"{URL}?$filter=scanConfig/id eq '{config['id']}'&$count=true").get_json()
    assert [item["id"] for item in body["items"]] == [a["id"]]


def test_put_replaces_the_whole_document(api, config):
    created = create(api, scan(config["id"], summary={"jobsCompleted": 1}, annotations=[{"key": "k", "value": "v"}]))
    body = {"name": "only", "scanConfig": {"id": config["id"]}, "status": created["status"]}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_put_without_a_status_is_400(api, config):
    created = create(api, scan(config["id"]))
    assert_error(api.put(f"{URL}/{created['id']}", json=scan(config["id"])), 400, "status")
    assert fetch(api, created["id"]) == created


def test_put_with_another_id_is_rejected(api):
    created = create(api, scan())
    body = {**scan(), "status": created["status"], "id": str(uuid.uuid4())}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api):
    created = create(api, scan(summary={"jobsLeftToRun": 4, "jobsCompleted": 0, "totalPackages": 7}))
    patch = {"summary": {"jobsLeftToRun": 3, "jobsCompleted": 1, "totalPackages": None}, "startTime": None}
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {k: v for k, v in created.items() if k != "startTime"}
    expected.update(revision=2, summary={"jobsLeftToRun": 3, "jobsCompleted": 1})
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_patch_cannot_remove_the_status(api):
    created = create(api, scan())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"status": None}), 400, "status")
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, method):
    created = create(api, scan())
    body = {**scan("renamed"), "status": created["status"]}
    assert_error(getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "7"}), 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, method):
    created = create(api, scan())
    body = {**scan(name="renamed"), "status": created["status"]}
    response = getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**body, "id": created["id"], "revision": 2}


# ---- state machine -----------------------------------------------------------

@pytest.mark.parametrize("old", STATES)
def test_transitions_from(api, old):
    """From `old`, every allowed edge (anatomy §1.5) succeeds; every other one is a 400 that changes nothing."""
    stuck = create(api, scan(name=f"{old}-stuck"))
    stuck_before = walk_to(api, stuck["id"], old)
    for new in STATES:
        if new == old:
            continue
        if new in EDGES.get(old, ()):
            created = create(api, scan(name=f"{old}-{new}"))
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
            response = api.put(url, json={**scan(name=f"{old}-stuck"), "status": status(new)})
            assert response.status_code == 400 and "status" in response.get_json()["message"], (old, new)
            assert fetch(api, stuck["id"]) == stuck_before, (old, new)


@pytest.mark.parametrize("state", [s for s in STATES if s != "Pending"])
def test_reasons_allowed_per_state(api, state):
    """Entering `state` with each reason of the enum: only the state's own reasons pass."""
    entering_from = path_to(state)[-2] if len(path_to(state)) > 1 else "Pending"
    for reason in ALL_REASONS:
        created = create(api, scan(name=f"{state}-{reason}"))
        before = walk_to(api, created["id"], entering_from)
        response = api.patch(f"{URL}/{created['id']}", json={"status": status(state, reason)})
        if reason in REASONS[state]:
            assert response.status_code == 200, (reason, response.get_json())
            assert fetch(api, created["id"])["status"] == status(state, reason)
        else:
            assert response.status_code == 400, reason
            assert fetch(api, created["id"]) == before, reason


def test_unchanged_status_is_always_accepted(api):
    created = create(api, scan())
    done = walk_to(api, created["id"], "Done")
    response = api.patch(f"{URL}/{created['id']}", json={"status": done["status"], "name": "again"})
    assert response.status_code == 200
    assert fetch(api, created["id"])["name"] == "again"


def test_the_ui_stop_action(api, config):
    """Stop = PATCH status Aborted/Cancellation, later Failed/Cancellation."""
    created = create(api, scan(config["id"]))
    walk_to(api, created["id"], "InProgress")
    url = f"{URL}/{created['id']}"
    assert api.patch(url, json={"status": status("Aborted", "Cancellation")}).status_code == 200
    assert api.patch(url, json={"status": status("Failed", "Cancellation"), "endTime": T1}).status_code == 200
    assert_error(api.patch(url, json={"status": status("InProgress")}), 400)
    assert fetch(api, created["id"])["status"]["state"] == "Failed"


# ---- delete and cascade -----------------------------------------------------

def test_delete(api, config):
    created = create(api, scan(config["id"]))
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    # The scan config stays, and a new running scan is allowed.
    assert fetch(api, config["id"], "/api/scanConfigs") == config
    create(api, scan(config["id"]))


def test_delete_removes_its_asset_scans_and_findings_forget_them(api, config):
    asset = create(api, {"assetInfo": {"objectType": "DirInfo", "dirName": "/a", "location": "h"}}, "/api/assets")
    doomed = create(api, scan(config["id"], "doomed"))
    kept = create(api, scan(None, "kept"))
    doomed_asset_scan = create(api, {"asset": {"id": asset["id"]}, "scan": {"id": doomed["id"]}}, "/api/assetScans")
    kept_asset_scan = create(api, {"asset": {"id": asset["id"]}, "scan": {"id": kept["id"]}}, "/api/assetScans")
    forgotten = create(api, {"findingInfo": {"objectType": "Secret", "fingerprint": "f", "startColumn": 1,
                                             "endColumn": 9},
                             "lastSeenBy": {"id": doomed_asset_scan["id"]}}, "/api/findings")
    remembered = create(api, {"findingInfo": {"objectType": "Secret", "fingerprint": "g", "startColumn": 1,
                                              "endColumn": 9},
                              "lastSeenBy": {"id": kept_asset_scan["id"]}}, "/api/findings")

    assert api.delete(f"{URL}/{doomed['id']}").status_code == 200

    assert gone(api, URL, doomed["id"])
    assert gone(api, "/api/assetScans", doomed_asset_scan["id"])
    assert count(api, "/api/assetScans", f"&$filter=scan/id eq '{doomed['id']}'") == 0
    survivor = fetch(api, forgotten["id"], "/api/findings")
    assert "lastSeenBy" not in survivor and survivor["findingInfo"] == forgotten["findingInfo"]
    assert fetch(api, remembered["id"], "/api/findings") == remembered
    assert fetch(api, kept_asset_scan["id"], "/api/assetScans") == kept_asset_scan
    assert fetch(api, asset["id"], "/api/assets") == asset
    assert fetch(api, config["id"], "/api/scanConfigs") == config
