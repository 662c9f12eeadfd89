"""/api/assetFindings: CRUD, (asset, finding) uniqueness, relationship checks, If-Match."""

import uuid

import pytest

URL = "/api/assetFindings"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-02T10:00:00Z"


def dir_asset(dir_name="/srv/www"):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}}


def package(name="openssl", version="3.0.1"):
    return {"findingInfo": {"objectType": "Package", "name": name, "version": version}}


def asset_finding(asset_id, finding_id, **extra):
    return {"asset": {"id": asset_id}, "finding": {"id": finding_id}, "firstSeen": T0, "lastSeen": T0, **extra}


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


@pytest.fixture
def asset(api):
    return create(api, dir_asset(), "/api/assets")


@pytest.fixture
def finding(api):
    return create(api, package(), "/api/findings")


# ---- create -----------------------------------------------------------------

def test_create_assigns_id_and_first_revision(api, asset, finding):
    body = asset_finding(asset["id"], finding["id"], annotations=[{"key": "k", "value": "v"}])
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created == {**body, "id": created["id"], "revision": 1}
    assert fetch(api, created["id"]) == created


def test_create_with_id_is_rejected(api, asset, finding):
    body = {**asset_finding(asset["id"], finding["id"]), "id": str(uuid.uuid4())}
    assert_error(api.post(URL, json=body), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("change, field", [
    ({"invalidatedOn": "never"}, "invalidatedOn"),
    ({"firstSeen": 12}, "firstSeen"),
    ({"finding": {"id": 12}}, "id"),
    ({"asset": "some-id"}, "asset"),
])
def test_create_breaking_the_schema_names_the_field(api, asset, finding, change, field):
    assert_error(api.post(URL, json={**asset_finding(asset["id"], finding["id"]), **change}), 400, field)
    assert count(api) == 0


@pytest.mark.parametrize("missing", ["asset", "finding"])
def test_both_relationships_are_required(api, asset, finding, missing):
    body = asset_finding(asset["id"], finding["id"])
    del body[missing]
    assert_error(api.post(URL, json=body), 400, missing)
    assert count(api) == 0


@pytest.mark.parametrize("unknown", ["asset", "finding"])
def test_unknown_relationship_is_400(api, asset, finding, unknown):
    ids = {"asset": asset["id"], "finding": finding["id"], unknown: str(uuid.uuid4())}
    assert_error(api.post(URL, json=asset_finding(ids["asset"], ids["finding"])), 400, unknown)
    assert count(api) == 0


@pytest.mark.parametrize("unknown", ["asset", "finding"])
def test_update_to_an_unknown_relationship_is_400(api, asset, finding, unknown):
    created = create(api, asset_finding(asset["id"], finding["id"]))
    assert_error(api.patch(f"{URL}/{created['id']}", json={unknown: {"id": str(uuid.uuid4())}}), 400, unknown)
    assert fetch(api, created["id"]) == created


# ---- uniqueness of (asset, finding) -----------------------------------------

def test_one_link_per_asset_and_finding(api, asset, finding):
    first = create(api, asset_finding(asset["id"], finding["id"]))
    response = api.post(URL, json=asset_finding(asset["id"], finding["id"], lastSeen=T1))
    assert response.status_code == 409
    body = response.get_json()
    # The original names the property `finding` although it carries the asset finding.
    assert set(body) == {"message", "finding"}
    assert body["finding"] == first
    assert count(api) == 1


def test_other_pairs_do_not_clash(api, asset, finding):
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    other_finding = create(api, package(version="9"), "/api/findings")
    create(api, asset_finding(asset["id"], finding["id"]))
    create(api, asset_finding(other_asset["id"], finding["id"]))
    create(api, asset_finding(asset["id"], other_finding["id"]))
    assert count(api) == 3


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_that_would_clash_is_409_and_changes_nothing(api, asset, finding, method):
    first = create(api, asset_finding(asset["id"], finding["id"]))
    other_finding = create(api, package(version="9"), "/api/findings")
    second = create(api, asset_finding(asset["id"], other_finding["id"]))
    if method == "patch":
        response = api.patch(f"{URL}/{second['id']}", json={"finding": {"id": finding["id"]}})
    else:
        response = api.put(f"{URL}/{second['id']}", json=asset_finding(asset["id"], finding["id"]))
    assert response.status_code == 409
    assert response.get_json()["finding"] == first
    assert fetch(api, second["id"]) == second


# ---- read, list, PUT, PATCH, If-Match, delete -------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api, asset, finding):
    other_asset = create(api, dir_asset("/other"), "/api/assets")
    other_finding = create(api, package(version="9"), "/api/findings")
    mine = create(api, asset_finding(asset["id"], finding["id"]))
    create(api, asset_finding(other_asset["id"], other_finding["id"]))
    create(api, asset_finding(other_asset["id"], finding["id"], invalidatedOn=T1))
    body = api.get(f"{URL}?$filter=asset/id eq '{asset['id']}'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [mine]
    assert count(api, URL, f"&$filter=finding/id eq '{finding['id']}'") == 2
    assert count(api, URL, "&$filter=invalidatedOn eq null") == 2


def test_put_replaces_the_whole_document(api, asset, finding):
    created = create(api, asset_finding(asset["id"], finding["id"], invalidatedOn=T1))
    body = {"asset": {"id": asset["id"]}, "finding": {"id": finding["id"]}, "lastSeen": T1}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("dropped", ["asset", "finding"])
def test_put_cannot_drop_a_relationship(api, asset, finding, dropped):
    created = create(api, asset_finding(asset["id"], finding["id"]))
    body = {k: v for k, v in created.items() if k not in ("revision", dropped)}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, dropped)
    assert fetch(api, created["id"]) == created


def test_put_with_another_id_is_rejected(api, asset, finding):
    created = create(api, asset_finding(asset["id"], finding["id"]))
    body = {**asset_finding(asset["id"], finding["id"]), "id": str(uuid.uuid4())}
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_and_null_removes(api, asset, finding):
    created = create(api, asset_finding(asset["id"], finding["id"], annotations=[{"key": "a", "value": "1"}]))
    response = api.patch(f"{URL}/{created['id']}", json={"invalidatedOn": T1, "lastSeen": None,
                                                          "annotations": None})
    assert response.status_code == 200
    expected = {"id": created["id"], "revision": 2, "asset": {"id": asset["id"]},
                "finding": {"id": finding["id"]}, "firstSeen": T0, "invalidatedOn": T1}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, asset, finding, method):
    created = create(api, asset_finding(asset["id"], finding["id"]))
    body = asset_finding(asset["id"], finding["id"], invalidatedOn=T1)
    assert_error(getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "4"}), 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, asset, finding, method):
    created = create(api, asset_finding(asset["id"], finding["id"]))
    body = asset_finding(asset["id"], finding["id"], invalidatedOn=T1)
    response = getattr(api, method)(f"{URL}/{created['id']}", json=body, headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**body, "id": created["id"], "revision": 2}


def test_delete(api, asset, finding):
    created = create(api, asset_finding(asset["id"], finding["id"]))
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    # Deleting the link leaves both ends alone, and the pair may be linked again.
    assert fetch(api, asset["id"], "/api/assets") == asset
    assert fetch(api, finding["id"], "/api/findings") == finding
    create(api, asset_finding(asset["id"], finding["id"]))
