"""/api/assets: create, read, list, replace, merge-patch, If-Match, delete, uniqueness, cascades."""

import uuid

import pytest

URL = "/api/assets"
T0 = "2024-05-01T10:00:00Z"


def dir_asset(dir_name="/srv/www", location="host-1", **extra):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": location}, **extra}


def vm_asset(instance_id="i-0abc", location="eu-west-1/vpc-1", **extra):
    return {
        "assetInfo": {
            "objectType": "VMInfo",
            "instanceID": instance_id,
            "instanceProvider": "AWS",
            "location": location,
            "image": "ami-0123",
            "instanceType": "t3.micro",
            "platform": "Linux",
            "launchTime": T0,
            "rootVolume": {"sizeGB": 8, "encrypted": "No"},
            "tags": [{"key": "env", "value": "prod"}],
        },
        **extra,
    }


def container_asset(container_id="c0ffee", name="web", **extra):
    return {
        "assetInfo": {"objectType": "ContainerInfo", "containerID": container_id, "containerName": name,
                      "location": "node-1"},
        **extra,
    }


def image_asset(image_id="sha256:aaaa", tags=("nginx:1",), **extra):
    return {"assetInfo": {"objectType": "ContainerImageInfo", "imageID": image_id, "repoTags": list(tags)}, **extra}


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


# ---- create -----------------------------------------------------------------

@pytest.mark.parametrize("body", [
    dir_asset(),
    vm_asset(),
    container_asset(),
    image_asset(),
    dir_asset(firstSeen=T0, lastSeen=T0, scansCount=3, annotations=[{"key": "team", "value": "blue"}],
              summary={"totalPackages": 4, "totalVulnerabilities": {"totalCriticalVulnerabilities": 1}}),
], ids=["dir", "vm", "container", "image", "dir-with-extras"])
def test_create_assigns_id_and_first_revision(api, body):
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created == {**body, "id": created["id"], "revision": 1}
    assert fetch(api, created["id"]) == created


def test_create_ignores_a_client_revision(api):
    created = create(api, dir_asset(revision=7))
    assert created["revision"] == 1
    assert fetch(api, created["id"])["revision"] == 1


def test_create_with_id_is_rejected(api):
    assert_error(api.post(URL, json={**dir_asset(), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("body, field", [
    ({"assetInfo": {"objectType": "DirInfo", "dirName": 5, "location": "h"}}, "dirName"),
    ({**dir_asset(), "scansCount": "many"}, "scansCount"),
    ({**dir_asset(), "firstSeen": "yesterday"}, "firstSeen"),
    ({**dir_asset(), "summary": {"totalSecrets": "x"}}, "totalSecrets"),
    ({**dir_asset(), "annotations": [{"key": 1, "value": "v"}]}, "annotations"),
    ({"assetInfo": {**vm_asset()["assetInfo"], "rootVolume": {"sizeGB": 8, "encrypted": "Maybe"}}}, "encrypted"),
    ({"assetInfo": {k: v for k, v in vm_asset()["assetInfo"].items() if k != "location"}}, "location"),
    ({"assetInfo": {"objectType": "ContainerImageInfo", "imageID": "x", "size": "big"}}, "size"),
])
def test_create_breaking_the_schema_names_the_field(api, body, field):
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


@pytest.mark.parametrize("kwargs", [
    {"json": [dir_asset()]},
    {"json": "asset"},
    {"data": "{not json", "content_type": "application/json"},
    {"data": "", "content_type": "application/json"},
], ids=["list", "string", "broken-json", "empty"])
def test_create_needs_a_json_object(api, kwargs):
    assert_error(api.post(URL, **kwargs), 400)
    assert count(api) == 0


# ---- read -------------------------------------------------------------------

def test_get_unknown_is_404(api):
    create(api, dir_asset())
    for object_id in (str(uuid.uuid4()), "not-a-uuid"):
        assert_error(api.get(f"{URL}/{object_id}"), 404)


def test_unknown_collection_is_404(api):
    assert_error(api.get("/api/nothings"), 404)
    assert_error(api.post("/api/nothings", json=dir_asset()), 404)


def test_method_without_a_route_is_a_json_405(api):
    created = create(api, dir_asset())
    assert_error(api.post(f"{URL}/{created['id']}", json=dir_asset()), 405)
    assert_error(api.delete(URL), 405)
    assert fetch(api, created["id"]) == created


def test_list_filters_and_counts(api):
    a = create(api, dir_asset("/a", location="host-1"))
    b = create(api, dir_asset("/b", location="host-2"))
    c = create(api, dir_asset("/c", location="host-2"))
    create(api, vm_asset())
    response = api.get(f"{URL}?$filter=assetInfo/location eq 'host-2'&$count=true")
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 2
    assert sorted(item["id"] for item in body["items"]) == sorted([b["id"], c["id"]])
    assert {item["id"]: item for item in body["items"]}[b["id"]] == b
    everything = api.get(f"{URL}?$count=true").get_json()
    assert everything["count"] == 4
    assert a["id"] in {item["id"] for item in everything["items"]}


def test_list_of_an_empty_collection(api):
    body = api.get(f"{URL}?$count=true").get_json()
    assert body["count"] == 0
    assert body.get("items", []) == []


# ---- replace (PUT) -----------------------------------------------------------

def test_put_replaces_the_whole_document(api):
    created = create(api, dir_asset(lastSeen=T0, scansCount=2, summary={"totalPackages": 3}))
    body = dir_asset(terminatedOn="2024-06-01T00:00:00Z")
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    stored = fetch(api, created["id"])
    assert stored == expected
    assert "lastSeen" not in stored and "summary" not in stored and "scansCount" not in stored


def test_put_with_the_same_id_in_the_body(api):
    created = create(api, dir_asset())
    response = api.put(f"{URL}/{created['id']}", json={**dir_asset(scansCount=1), "id": created["id"]})
    assert response.status_code == 200
    assert response.get_json()["revision"] == 2


def test_put_with_another_id_is_rejected(api):
    created = create(api, dir_asset(scansCount=1))
    other = str(uuid.uuid4())
    assert_error(api.put(f"{URL}/{created['id']}", json={**dir_asset(), "id": other}), 400, "id")
    assert fetch(api, created["id"]) == created
    assert gone(api, URL, other)


def test_put_breaking_the_schema_keeps_the_stored_object(api):
    created = create(api, dir_asset(scansCount=1))
    assert_error(api.put(f"{URL}/{created['id']}", json={**dir_asset(), "scansCount": "x"}), 400, "scansCount")
    assert fetch(api, created["id"]) == created


def test_put_unknown_is_404(api):
    assert_error(api.put(f"{URL}/{uuid.uuid4()}", json=dir_asset()), 404)
    assert count(api) == 0


# ---- merge patch (PATCH) -----------------------------------------------------

def test_patch_merges_nested_objects_and_null_removes(api):
    created = create(api, dir_asset(
        lastSeen=T0, scansCount=1,
        summary={"totalPackages": 3, "totalSecrets": 1,
                 "totalVulnerabilities": {"totalHighVulnerabilities": 2, "totalLowVulnerabilities": 5}},
    ))
    patch = {
        "scansCount": 2,
        "lastSeen": None,
        "summary": {"totalSecrets": None, "totalMalware": 4, "totalVulnerabilities": {"totalLowVulnerabilities": 6}},
        "annotations": [{"key": "k", "value": "v"}],
    }
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {
        "id": created["id"],
        "revision": 2,
        "assetInfo": created["assetInfo"],
        "scansCount": 2,
        "summary": {"totalPackages": 3, "totalMalware": 4,
                    "totalVulnerabilities": {"totalHighVulnerabilities": 2, "totalLowVulnerabilities": 6}},
        "annotations": [{"key": "k", "value": "v"}],
    }
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_patch_replaces_arrays_whole(api):
    created = create(api, vm_asset())
    tags = [{"key": "owner", "value": "ops"}]
    response = api.patch(f"{URL}/{created['id']}", json={"assetInfo": {"tags": tags}})
    assert response.status_code == 200
    assert fetch(api, created["id"])["assetInfo"] == {**created["assetInfo"], "tags": tags}


def test_patch_with_an_empty_object_bumps_the_revision_only(api):
    created = create(api, dir_asset())
    response = api.patch(f"{URL}/{created['id']}", json={})
    assert response.status_code == 200
    assert response.get_json() == {**created, "revision": 2}


def test_patch_with_another_id_is_rejected(api):
    created = create(api, dir_asset())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"id": str(uuid.uuid4())}), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_breaking_the_schema_keeps_the_stored_object(api):
    created = create(api, dir_asset())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"assetInfo": {"dirName": 7}}), 400, "dirName")
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("body", [[{"scansCount": 1}], "x", 3])
def test_patch_needs_a_json_object(api, body):
    created = create(api, dir_asset())
    assert_error(api.patch(f"{URL}/{created['id']}", json=body), 400)
    assert fetch(api, created["id"]) == created


def test_patch_unknown_is_404(api):
    assert_error(api.patch(f"{URL}/{uuid.uuid4()}", json={"scansCount": 1}), 404)


# ---- If-Match ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, method):
    created = create(api, dir_asset(scansCount=1))
    for if_match in ("0", "2", "99", '"2"'):
        response = getattr(api, method)(f"{URL}/{created['id']}", json=dir_asset(scansCount=9),
                                        headers={"If-Match": if_match})
        assert_error(response, 412)
        assert fetch(api, created["id"]) == created, if_match


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, method):
    created = create(api, dir_asset(scansCount=1))
    url = f"{URL}/{created['id']}"
    response = getattr(api, method)(url, json=dir_asset(scansCount=9), headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**dir_asset(scansCount=9), "id": created["id"], "revision": 2}
    # The header may also be sent quoted, like an ETag.
    response = getattr(api, method)(url, json=dir_asset(scansCount=10), headers={"If-Match": '"2"'})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**dir_asset(scansCount=10), "id": created["id"], "revision": 3}


def test_a_stale_if_match_loses_after_another_write(api):
    created = create(api, dir_asset(scansCount=1))
    url = f"{URL}/{created['id']}"
    assert api.patch(url, json={"scansCount": 2}, headers={"If-Match": "1"}).status_code == 200
    assert_error(api.patch(url, json={"scansCount": 3}, headers={"If-Match": "1"}), 412)
    assert api.patch(url, json={"scansCount": 3}, headers={"If-Match": "2"}).status_code == 200
    assert fetch(api, created["id"])["scansCount"] == 3
    assert fetch(api, created["id"])["revision"] == 3


def test_if_match_that_is_not_a_number_is_400(api):
    created = create(api, dir_asset(scansCount=1))
    assert_error(api.patch(f"{URL}/{created['id']}", json={"scansCount": 2}, headers={"If-Match": "abc"}), 400)
    assert fetch(api, created["id"]) == created


# ---- delete ------------------------------------------------------------------

def test_delete(api):
    created = create(api, dir_asset())
    kept = create(api, dir_asset("/kept"))
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert_error(api.patch(f"{URL}/{created['id']}", json={}), 404)
    assert count(api) == 1
    assert fetch(api, kept["id"]) == kept


def test_delete_unknown_is_404(api):
    assert_error(api.delete(f"{URL}/{uuid.uuid4()}"), 404)


def test_a_deleted_identity_can_be_created_again(api):
    first = create(api, dir_asset())
    assert api.delete(f"{URL}/{first['id']}").status_code == 200
    again = create(api, dir_asset())
    assert again["id"] != first["id"]


# ---- uniqueness --------------------------------------------------------------

UNIQUE = {
    # kind: (first, same identity with other details, different identity)
    "vm": (vm_asset("i-1", "eu/vpc-1"), vm_asset("i-1", "eu/vpc-1", scansCount=4), vm_asset("i-1", "us/vpc-1")),
    "vm-other-instance": (vm_asset("i-1", "eu/vpc-1"), vm_asset("i-1", "eu/vpc-1"), vm_asset("i-2", "eu/vpc-1")),
    "dir": (dir_asset("/a", "h1"), dir_asset("/a", "h1", lastSeen=T0), dir_asset("/a", "h2")),
    "dir-other-name": (dir_asset("/a", "h1"), dir_asset("/a", "h1"), dir_asset("/b", "h1")),
    "container": (container_asset("c1", "web"), container_asset("c1", "renamed"), container_asset("c2", "web")),
    "image": (image_asset("sha256:1", ["a:1"]), image_asset("sha256:1", ["b:2"]), image_asset("sha256:2", ["a:1"])),
}


@pytest.mark.parametrize("kind", UNIQUE)
def test_same_identity_conflicts_with_the_existing_asset(api, kind):
    first_body, duplicate, distinct = UNIQUE[kind]
    first = create(api, first_body)
    response = api.post(URL, json=duplicate)
    assert response.status_code == 409
    body = response.get_json()
    assert set(body) == {"message", "asset"}
    assert body["asset"] == first
    assert count(api) == 1
    create(api, distinct)
    assert count(api) == 2


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_that_would_clash_is_409_and_changes_nothing(api, method):
    first = create(api, dir_asset("/a"))
    second = create(api, dir_asset("/b", scansCount=1))
    body = dir_asset("/a", scansCount=2) if method == "put" else {"assetInfo": {"dirName": "/a"}}
    response = getattr(api, method)(f"{URL}/{second['id']}", json=body)
    assert response.status_code == 409
    assert response.get_json()["asset"] == first
    assert fetch(api, second["id"]) == second
    assert fetch(api, first["id"]) == first


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_keeping_its_own_identity_is_no_clash(api, method):
    created = create(api, dir_asset("/a"))
    body = dir_asset("/a", scansCount=5) if method == "put" else {"scansCount": 5}
    response = getattr(api, method)(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    assert fetch(api, created["id"])["scansCount"] == 5


# ---- cascade -----------------------------------------------------------------

def test_delete_removes_asset_scans_asset_findings_and_estimations(api):
    asset = create(api, dir_asset("/doomed"))
    other = create(api, dir_asset("/kept"))
    config = create(api, {"name": "cfg", "scheduled": {"operationTime": T0}}, "/api/scanConfigs")
    scan = create(api, {"name": "s", "scanConfig": {"id": config["id"]}}, "/api/scans")
    doomed_scan = create(api, {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}}, "/api/assetScans")
    kept_scan = create(api, {"asset": {"id": other["id"]}, "scan": {"id": scan["id"]}}, "/api/assetScans")
    seen_by_doomed = create(api, {"findingInfo": {"objectType": "Package", "name": "a", "version": "1"},
                                  "lastSeenBy": {"id": doomed_scan["id"]}}, "/api/findings")
    seen_by_kept = create(api, {"findingInfo": {"objectType": "Package", "name": "b", "version": "1"},
                                "lastSeenBy": {"id": kept_scan["id"]}}, "/api/findings")
    doomed_links = [create(api, {"asset": {"id": asset["id"]}, "finding": {"id": f["id"]}}, "/api/assetFindings")
                    for f in (seen_by_doomed, seen_by_kept)]
    kept_link = create(api, {"asset": {"id": other["id"]}, "finding": {"id": seen_by_doomed["id"]}},
                       "/api/assetFindings")
    estimation = create(api, {"assetIDs": [asset["id"], other["id"]]}, "/api/scanEstimations")
    doomed_estimate = create(api, {"asset": {"id": asset["id"]}, "scanEstimation": {"id": estimation["id"]}},
                             "/api/assetScanEstimations")
    kept_estimate = create(api, {"asset": {"id": other["id"]}, "scanEstimation": {"id": estimation["id"]}},
                           "/api/assetScanEstimations")

    assert api.delete(f"{URL}/{asset['id']}").status_code == 200

    assert gone(api, URL, asset["id"])
    assert gone(api, "/api/assetScans", doomed_scan["id"])
    assert all(gone(api, "/api/assetFindings", link["id"]) for link in doomed_links)
    assert gone(api, "/api/assetScanEstimations", doomed_estimate["id"])
    # Everything else is still there, unchanged.
    assert fetch(api, other["id"]) == other
    assert fetch(api, kept_scan["id"], "/api/assetScans") == kept_scan
    assert fetch(api, kept_link["id"], "/api/assetFindings") == kept_link
    assert fetch(api, kept_estimate["id"], "/api/assetScanEstimations") == kept_estimate
    assert fetch(api, scan["id"], "/api/scans") == scan
    assert fetch(api, estimation["id"], "/api/scanEstimations") == estimation
    assert fetch(api, seen_by_kept["id"], "/api/findings") == seen_by_kept
    # The finding keeps its history but no longer points at the deleted asset scan.
    survivor = fetch(api, seen_by_doomed["id"], "/api/findings")
    assert "lastSeenBy" not in survivor
    assert survivor["findingInfo"] == seen_by_doomed["findingInfo"]
    # Nothing in the lists points at the deleted asset any more.
    for url in ("/api/assetScans", "/api/assetFindings", "/api/assetScanEstimations"):
        assert count(api, url, f"&$filter=asset/id eq '{asset['id']}'") == 0
        assert count(api, url) == 1
