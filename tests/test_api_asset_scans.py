"""/api/assetScans: CRUD (no DELETE), start states, both state machines, (asset, scan) uniqueness."""

import uuid
from collections import deque

import pytest

URL = "/api/assetScans"
T0 = "2024-05-01T10:00:00Z"

# Anatomy §1.5, written out here rather than imported, so the test checks the app.
MACHINES = {
    "status": {
        "edges": {
            "Pending": ("Scheduled", "Aborted"),
            "Scheduled": ("ReadyToScan", "Failed", "Aborted"),
            "ReadyToScan": ("InProgress", "Failed", "Aborted"),
            "InProgress": ("Done", "Failed", "Aborted"),
            "Aborted": ("Failed",),
        },
        "reasons": {
            "Pending": ("Created",),
            "Scheduled": ("Provisioning",),
            "ReadyToScan": ("UnSupervised", "ResourcesReady"),
            "InProgress": ("ScannerIsRunning",),
            "Aborted": ("Cancellation",),
            "Failed": ("Error", "AbortTimedOut"),
            "Done": ("Success",),
        },
        "enum": ("Created", "Provisioning", "UnSupervised", "ResourcesReady", "ScannerIsRunning", "Cancellation",
                 "Timeout", "Error", "AbortTimedOut", "Success"),
        "start": "Pending",
    },
    "resourceCleanupStatus": {
        "edges": {"Pending": ("Skipped", "Failed", "Done")},
        "reasons": {
            "Pending": ("AssetScanCreated",),
            "Skipped": ("NotApplicable", "DeletePolicy"),
            "Failed": ("ProviderError", "InternalError"),
            "Done": ("Success",),
        },
        "enum": ("AssetScanCreated", "NotApplicable", "DeletePolicy", "ProviderError", "InternalError", "Success"),
        "start": "Pending",
    },
}


def status(state, reason=None, key="status"):
    return {"state": state, "reason": reason or MACHINES[key]["reasons"][state][0], "lastTransitionTime": T0}


def dir_asset(dir_name="/srv/www"):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}}


def asset_scan(asset_id, scan_id=None, **extra):
    body = {
        "asset": {"id": asset_id},
        "scanFamiliesConfig": {"sbom": {"enabled": True, "analyzers": ["syft"]},
                               "secrets": {"enabled": False}},
        "scannerInstanceCreationConfig": {"useSpotInstances": False, "retryMaxAttempts": 3},
        **extra,
    }
    if scan_id:
        body["scan"] = {"id": scan_id}
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


def path_to(key, state):
    machine = MACHINES[key]
    queue, seen = deque([(machine["start"], [])]), {machine["start"]}
    while queue:
        current, path = queue.popleft()
        if current == state:
            return path
        for nxt in machine["edges"].get(current, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, path + [nxt]))
    raise AssertionError(f"{key} {state} is unreachable")


def walk_to(api, object_id, key, state):
    for step in path_to(key, state):
        response = api.patch(f"{URL}/{object_id}", json={key: status(step, key=key)})
        assert response.status_code == 200, (step, response.get_json())
    return fetch(api, object_id)


@pytest.fixture
def asset(api):
    return create(api, dir_asset(), "/api/assets")


@pytest.fixture
def scan(api):
    return create(api, {"name": "scan-1"}, "/api/scans")


# ---- create -----------------------------------------------------------------

def test_create_assigns_id_revision_and_pending_statuses(api, asset, scan):
    body = asset_scan(asset["id"], scan["id"])
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created["revision"] == 1
    assert {k: created["status"][k] for k in ("state", "reason")} == {"state": "Pending", "reason": "Created"}
    assert {k: created["resourceCleanupStatus"][k] for k in ("state", "reason")} == \
        {"state": "Pending", "reason": "AssetScanCreated"}
    assert created["status"]["lastTransitionTime"] and created["resourceCleanupStatus"]["lastTransitionTime"]
    assert created == {**body, "id": created["id"], "revision": 1, "status": created["status"],
                       "resourceCleanupStatus": created["resourceCleanupStatus"]}
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("cleanup", [
    status("Pending", key="resourceCleanupStatus"),
    status("Skipped", "NotApplicable", key="resourceCleanupStatus"),
    status("Skipped", "DeletePolicy", key="resourceCleanupStatus"),
])
def test_create_keeps_given_start_statuses(api, asset, cleanup):
    body = asset_scan(asset["id"], status=status("Pending"), resourceCleanupStatus=cleanup)
    created = create(api, body)
    assert created == {**body, "id": created["id"], "revision": 1}


def test_create_must_start_pending_with_reason_created(api, asset):
    machine = MACHINES["status"]
    for state in machine["reasons"]:
        for reason in machine["reasons"][state] if state != "Pending" else machine["enum"]:
            response = api.post(URL, json=asset_scan(asset["id"], status=status(state, reason)))
            if (state, reason) == ("Pending", "Created"):
                assert response.status_code == 201, response.get_json()
            else:
                assert response.status_code == 400, (state, reason)
                assert "status" in response.get_json()["message"], (state, reason)
    assert count(api) == 1


@pytest.mark.parametrize("cleanup", [
    status("Done", key="resourceCleanupStatus"),
    status("Failed", key="resourceCleanupStatus"),
    status("Pending", "Success", key="resourceCleanupStatus"),
    status("Skipped", "ProviderError", key="resourceCleanupStatus"),
], ids=["done", "failed", "pending-bad-reason", "skipped-bad-reason"])
def test_create_cleanup_must_start_pending_or_skipped(api, asset, cleanup):
    assert_error(api.post(URL, json=asset_scan(asset["id"], resourceCleanupStatus=cleanup)), 400,
                 "resourceCleanupStatus")
    assert count(api) == 0


def test_create_with_id_is_rejected(api, asset):
    assert_error(api.post(URL, json={**asset_scan(asset["id"]), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("change, field", [
    ({"findingsProcessed": "yes"}, "findingsProcessed"),
    ({"scannerInstanceCreationConfig": {"retryMaxAttempts": 1}}, "useSpotInstances"),
    ({"sbom": {"packages": [{"name": 1}]}}, "name"),
    ({"vulnerabilities": {"vulnerabilities": [{"severity": "TERRIBLE"}]}}, "severity"),
    ({"stats": {"general": {"scanTime": {"startTime": "noon"}}}}, "startTime"),
    ({"asset": {"id": 5}}, "id"),
])
def test_create_breaking_the_schema_names_the_field(api, asset, change, field):
    assert_error(api.post(URL, json={**asset_scan(asset["id"]), **change}), 400, field)
    assert count(api) == 0


def test_create_needs_an_asset(api):
    body = asset_scan("x")
    del body["asset"]
    assert_error(api.post(URL, json=body), 400, "asset")
    assert count(api) == 0


@pytest.mark.parametrize("missing", ["asset", "scan"])
def test_unknown_relationship_is_400(api, asset, scan, missing):
    ids = {"asset": asset["id"], "scan": scan["id"], missing: str(uuid.uuid4())}
    assert_error(api.post(URL, json=asset_scan(ids["asset"], ids["scan"])), 400, missing)
    assert count(api) == 0


@pytest.mark.parametrize("missing", ["asset", "scan"])
def test_update_to_an_unknown_relationship_is_400(api, asset, scan, missing):
    created = create(api, asset_scan(asset["id"], scan["id"]))
    assert_error(api.patch(f"{URL}/{created['id']}", json={missing: {"id": str(uuid.uuid4())}}), 400, missing)
    assert fetch(api, created["id"]) == created


# ---- uniqueness of (asset, scan) --------------------------------------------

def test_one_asset_scan_per_asset_and_scan(api, asset, scan):
    first = create(api, asset_scan(asset["id"], scan["id"]))
    response = api.post(URL, json=asset_scan(asset["id"], scan["id"], findingsProcessed=True))
    assert response.status_code == 409
    body = response.get_json()
    assert set(body) == {"message", "assetScan"}
    assert body["assetScan"] == first
    assert count(api) == 1


def test_other_pairs_do_not_clash(api, asset, scan):
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    other_scan = create(api, {"name": "scan-2"}, "/api/scans")
    create(api, asset_scan(asset["id"], scan["id"]))
    create(api, asset_scan(other_asset["id"], scan["id"]))
    create(api, asset_scan(asset["id"], other_scan["id"]))
    assert count(api) == 3


def test_without_a_scan_there_is_no_uniqueness(api, asset):
    create(api, asset_scan(asset["id"]))
    create(api, asset_scan(asset["id"]))
    assert count(api) == 2


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_that_would_clash_is_409_and_changes_nothing(api, asset, scan, method):
    first = create(api, asset_scan(asset["id"], scan["id"]))
    other_scan = create(api, {"name": "scan-2"}, "/api/scans")
    second = create(api, asset_scan(asset["id"], other_scan["id"]))
    if method == "patch":
        response = api.patch(f"{URL}/{second['id']}", json={"scan": {"id": scan["id"]}})
    else:
        body = {k: v for k, v in second.items() if k != "revision"}
        response = api.put(f"{URL}/{second['id']}", json={**body, "scan": {"id": scan["id"]}})
    assert response.status_code == 409
    assert response.get_json()["assetScan"] == first
    assert fetch(api, second["id"]) == second


# ---- read, list, PUT, PATCH, If-Match, no DELETE ----------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api, asset, scan):
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    a = create(api, asset_scan(asset["id"], scan["id"]))
    create(api, asset_scan(other_asset["id"], scan["id"]))
    body = api.get(f"{URL}?$filter=asset/id eq '{asset['id']}'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [a]
    assert count(api, URL, f"&$filter=scan/id eq '{scan['id']}'") == 2


def test_put_replaces_the_whole_document(api, asset, scan):
    created = create(api, asset_scan(asset["id"], scan["id"], findingsProcessed=False,
                                     summary={"totalPackages": 2}))
    body = {"asset": {"id": asset["id"]}, "status": created["status"],
            "resourceCleanupStatus": created["resourceCleanupStatus"]}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("dropped", ["status", "resourceCleanupStatus", "asset"])
def test_put_cannot_drop_a_required_part(api, asset, dropped):
    created = create(api, asset_scan(asset["id"]))
    body = {k: v for k, v in created.items() if k not in ("revision", dropped)}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, dropped)
    assert fetch(api, created["id"]) == created


def test_put_with_another_id_is_rejected(api, asset):
    created = create(api, asset_scan(asset["id"]))
    body = {**created, "id": str(uuid.uuid4())}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api, asset):
    created = create(api, asset_scan(asset["id"]))
    patch = {
        "scanFamiliesConfig": {"sbom": {"analyzers": ["syft", "trivy"]}, "secrets": None,
                               "malware": {"enabled": True}},
        "scannerInstanceCreationConfig": {"retryMaxAttempts": None},
        "sbom": {"status": {"state": "Done", "reason": "Success", "lastTransitionTime": T0},
                 "packages": [{"name": "openssl", "version": "3.0.1"}]},
        "summary": {"totalPackages": 1},
    }
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {
        **created,
        "revision": 2,
        "scanFamiliesConfig": {"sbom": {"enabled": True, "analyzers": ["syft", "trivy"]},
                               "malware": {"enabled": True}},
        "scannerInstanceCreationConfig": {"useSpotInstances": False},
        "sbom": patch["sbom"],
        "summary": {"totalPackages": 1},
    }
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("key", ["status", "resourceCleanupStatus", "asset"])
def test_patch_cannot_remove_a_required_part(api, asset, key):
    created = create(api, asset_scan(asset["id"]))
    assert_error(api.patch(f"{URL}/{created['id']}", json={key: None}), 400, key)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, asset, method):
    created = create(api, asset_scan(asset["id"]))
    body = {k: v for k, v in created.items() if k != "revision"} | {"findingsProcessed": True}
    assert_error(getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "3"}), 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, asset, method):
    created = create(api, asset_scan(asset["id"]))
    body = {k: v for k, v in created.items() if k != "revision"} | {"findingsProcessed": True}
    response = getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**body, "revision": 2}


def test_there_is_no_delete(api, asset):
    created = create(api, asset_scan(asset["id"]))
    assert_error(api.delete(f"{URL}/{created['id']}"), 405)
    assert fetch(api, created["id"]) == created


# ---- state machines ----------------------------------------------------------

@pytest.mark.parametrize("key, old", [(key, state) for key, machine in MACHINES.items() for state in machine["reasons"]])
def test_transitions_from(api, asset, key, old):
    """From `old`, every allowed edge (anatomy §1.5) succeeds; every other one is a 400 that changes nothing."""
    machine = MACHINES[key]
    stuck = create(api, asset_scan(asset["id"]))
    stuck_before = walk_to(api, stuck["id"], key, old)
    for new in machine["reasons"]:
        if new == old:
            continue
        if new in machine["edges"].get(old, ()):
            created = create(api, asset_scan(asset["id"]))
            before = walk_to(api, created["id"], key, old)
            response = api.patch(f"{URL}/{created['id']}", json={key: status(new, key=key)},
                                 headers={"If-Match": str(before["revision"])})
            assert response.status_code == 200, (old, new, response.get_json())
            after = fetch(api, created["id"])
            assert after[key] == status(new, key=key), (old, new)
            assert after["revision"] == before["revision"] + 1, (old, new)
        else:
            url = f"{URL}/{stuck['id']}"
            response = api.patch(url, json={key: status(new, key=key)})
            assert response.status_code == 400 and key in response.get_json()["message"], (old, new)
            body = {k: v for k, v in stuck_before.items() if k != "revision"}
            response = api.put(url, json={**body, key: status(new, key=key)})
            assert response.status_code == 400 and key in response.get_json()["message"], (old, new)
            assert fetch(api, stuck["id"]) == stuck_before, (old, new)


@pytest.mark.parametrize("key, state", [
    (key, state) for key, machine in MACHINES.items() for state in machine["reasons"] if state != machine["start"]
])
def test_reasons_allowed_per_state(api, asset, key, state):
    """Entering `state` with each reason of the enum: only the state's own reasons pass."""
    path = path_to(key, state)
    entering_from = path[-2] if len(path) > 1 else MACHINES[key]["start"]
    for reason in MACHINES[key]["enum"]:
        created = create(api, asset_scan(asset["id"]))
        before = walk_to(api, created["id"], key, entering_from)
        response = api.patch(f"{URL}/{created['id']}", json={key: status(state, reason, key=key)})
        if reason in MACHINES[key]["reasons"][state]:
            assert response.status_code == 200, (reason, response.get_json())
            assert fetch(api, created["id"])[key] == status(state, reason, key=key)
        else:
            assert response.status_code == 400, reason
            assert fetch(api, created["id"]) == before, reason


def test_aborted_with_reason_timeout_is_rejected(api, asset):
    created = create(api, asset_scan(asset["id"]))
    before = walk_to(api, created["id"], "status", "InProgress")
    assert_error(api.patch(f"{URL}/{created['id']}", json={"status": status("Aborted", "Timeout")}), 400, "Timeout")
    assert fetch(api, created["id"]) == before


def test_the_two_machines_are_independent(api, asset):
    created = create(api, asset_scan(asset["id"]))
    walk_to(api, created["id"], "status", "Done")
    response = api.patch(f"{URL}/{created['id']}", json={
        "resourceCleanupStatus": status("Done", key="resourceCleanupStatus")})
    assert response.status_code == 200
    stored = fetch(api, created["id"])
    assert stored["status"] == status("Done")
    assert stored["resourceCleanupStatus"] == status("Done", key="resourceCleanupStatus")


def test_a_scanner_run_end_to_end(api, asset, scan):
    """The path an asset scan takes in a real run, as the orchestrator and scanner write it."""
    created = create(api, asset_scan(asset["id"], scan["id"]))
    url = f"{URL}/{created['id']}"
    steps = [
        {"status": status("Scheduled")},
        {"status": status("ReadyToScan", "ResourcesReady")},
        {"status": status("InProgress"), "stats": {"general": {"scanTime": {"startTime": T0}}}},
        {"sbom": {"status": {"state": "Done", "reason": "Success", "lastTransitionTime": T0},
                  "packages": [{"name": "zlib", "version": "1.3"}]}},
        {"status": status("Done"), "summary": {"totalPackages": 1}},
        {"findingsProcessed": True, "resourceCleanupStatus": status("Done", key="resourceCleanupStatus")},
    ]
    for revision, step in enumerate(steps, start=1):
        response = api.patch(url, json=step, headers={"If-Match": str(revision)})
        assert response.status_code == 200, (step, response.get_json())
    stored = fetch(api, created["id"])
    assert stored["revision"] == len(steps) + 1
    assert stored["status"]["state"] == "Done" and stored["findingsProcessed"] is True
    assert stored["sbom"]["packages"] == [{"name": "zlib", "version": "1.3"}]
    assert stored["stats"] == {"general": {"scanTime": {"startTime": T0}}}
