"""/api/findings: CRUD, identity keys per finding type (409), If-Match, lastSeenBy, cascade."""

import uuid

import pytest

URL = "/api/findings"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-02T10:00:00Z"

# objectType -> (finding info, fields that are not part of its identity key, a key field to vary)
KINDS = {
    "Package": (
        {"name": "openssl", "version": "3.0.1", "type": "deb", "purl": "pkg:deb/openssl@3.0.1"},
        {"licenses": ["Apache-2.0"], "language": "c"},
        ("version", "3.0.2"),
    ),
    "Vulnerability": (
        {"vulnerabilityName": "CVE-2024-0001", "severity": "HIGH",
         "package": {"name": "openssl", "version": "3.0.1"}},
        {"description": "longer text", "severity": "CRITICAL", "links": ["https://example.org"]},
        ("package", {"name": "openssl", "version": "3.0.2"}),
    ),
    "Malware": (
        {"malwareName": "Eicar-Signature", "malwareType": "Virus", "path": "/tmp/eicar", "ruleName": "eicar"},
        {},
        ("path", "/home/eicar"),
    ),
    "Secret": (
        {"fingerprint": "abc:aws-key:3", "startColumn": 5, "endColumn": 45, "filePath": "/etc/app.env",
         "startLine": 3, "endLine": 3},
        {"description": "AWS key", "filePath": "/elsewhere.env", "startLine": 9, "endLine": 9},
        ("endColumn", 46),
    ),
    "Misconfiguration": (
        {"scannerName": "lynis", "id": "SSH-7408", "message": "PermitRootLogin yes",
         "severity": "MisconfigurationHighSeverity"},
        {"remediation": "set it to no", "location": "/etc/ssh/sshd_config"},
        ("id", "SSH-7409"),
    ),
    "Rootkit": (
        {"rootkitName": "Adore", "rootkitType": "KERNEL", "message": "found"},
        {},
        ("rootkitType", "MEMORY"),
    ),
    "Exploit": (
        {"sourceDB": "exploitdb", "cveID": "CVE-2024-0001", "urls": ["https://exploit-db.com/1"],
         "name": "1", "title": "RCE"},
        {"title": "Remote code execution", "description": "bad"},
        ("urls", ["https://exploit-db.com/1", "https://exploit-db.com/2"]),
    ),
    "InfoFinder": (
        {"scannerName": "sshTopology", "type": "SSHAuthorizedKeyFingerprint", "data": "SHA256:abc",
         "path": "/root/.ssh/authorized_keys"},
        {},
        ("data", "SHA256:def"),
    ),
}


def info(kind, **changes):
    return {"objectType": kind, **KINDS[kind][0], **changes}


def finding(kind="Package", **extra):
    return {"findingInfo": info(kind), "firstSeen": T0, "lastSeen": T0, **extra}


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


@pytest.fixture
def asset_scan(api):
    asset = create(api, dir_asset(), "/api/assets")
    return create(api, {"asset": {"id": asset["id"]}}, "/api/assetScans")


# ---- create -----------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_create_assigns_id_and_first_revision(api, kind):
    body = finding(kind, summary={"updatedAt": T0})
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created == {**body, "id": created["id"], "revision": 1}
    assert fetch(api, created["id"]) == created


def test_create_with_last_seen_by(api, asset_scan):
    created = create(api, finding(lastSeenBy={"id": asset_scan["id"]}))
    assert fetch(api, created["id"])["lastSeenBy"] == {"id": asset_scan["id"]}


def test_unknown_last_seen_by_is_400(api):
    assert_error(api.post(URL, json=finding(lastSeenBy={"id": str(uuid.uuid4())})), 400, "lastSeenBy")
    assert count(api) == 0


def test_update_to_an_unknown_last_seen_by_is_400(api, asset_scan):
    created = create(api, finding(lastSeenBy={"id": asset_scan["id"]}))
    assert_error(api.patch(f"{URL}/{created['id']}", json={"lastSeenBy": {"id": str(uuid.uuid4())}}), 400,
                 "lastSeenBy")
    assert fetch(api, created["id"]) == created


def test_create_with_id_is_rejected(api):
    assert_error(api.post(URL, json={**finding(), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("body, field", [
    ({"firstSeen": T0}, "findingInfo"),
    ({"findingInfo": {"name": "no type"}}, "findingInfo"),
    ({"findingInfo": info("Package", version=3)}, "version"),
    ({"findingInfo": info("Vulnerability", severity="SEVERE")}, "severity"),
    ({"findingInfo": info("Secret", startColumn="five")}, "startColumn"),
    ({"findingInfo": info("Rootkit", rootkitType="USERSPACE")}, "rootkitType"),
    ({**finding(), "lastSeen": "today"}, "lastSeen"),
    ({**finding(), "summary": {"totalVulnerabilities": {"totalHighVulnerabilities": "2"}}}, "totalHighVulnerabilities"),
])
def test_create_breaking_the_schema_names_the_field(api, body, field):
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


# ---- identity keys (anatomy §1.4) ---------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_identity_key(api, kind):
    """Same key fields (other fields differing) -> 409 carrying the existing finding; another key -> 201."""
    first = create(api, finding(kind))
    duplicate = {"findingInfo": info(kind, **KINDS[kind][1]), "firstSeen": T1, "lastSeen": T1}
    response = api.post(URL, json=duplicate)
    assert response.status_code == 409
    body = response.get_json()
    assert set(body) == {"message", "finding"}
    assert body["finding"] == first
    assert count(api) == 1
    field, value = KINDS[kind][2]
    create(api, {"findingInfo": info(kind, **{field: value})})
    assert count(api) == 2


def test_same_fields_of_another_type_do_not_clash(api):
    create(api, {"findingInfo": {"objectType": "Package", "name": "x", "version": "1"}})
    create(api, {"findingInfo": {"objectType": "Vulnerability", "vulnerabilityName": "x",
                                 "package": {"name": "x", "version": "1"}}})
    assert count(api) == 2


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_that_would_clash_is_409_and_changes_nothing(api, method):
    first = create(api, finding("Package"))
    second = create(api, {"findingInfo": info("Package", version="9.9")})
    if method == "patch":
        response = api.patch(f"{URL}/{second['id']}", json={"findingInfo": {"version": "3.0.1"}})
    else:
        response = api.put(f"{URL}/{second['id']}", json=finding("Package"))
    assert response.status_code == 409
    assert response.get_json()["finding"] == first
    assert fetch(api, second["id"]) == second


def test_updating_non_key_fields_keeps_the_identity(api):
    created = create(api, finding("Vulnerability"))
    response = api.patch(f"{URL}/{created['id']}", json={"findingInfo": {"severity": "CRITICAL"}, "lastSeen": T1})
    assert response.status_code == 200
    stored = fetch(api, created["id"])
    assert stored["findingInfo"]["severity"] == "CRITICAL" and stored["lastSeen"] == T1
    assert api.post(URL, json=finding("Vulnerability")).get_json()["finding"] == stored


# ---- read, list, PUT, PATCH, If-Match ---------------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api):
    package = create(api, finding("Package"))
    create(api, finding("Vulnerability"))
    create(api, finding("Secret"))
    body = api.get(f"{URL}?$filter=findingInfo/objectType eq 'Package'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [package]
    assert count(api) == 3


def test_put_replaces_the_whole_document(api, asset_scan):
    created = create(api, finding("Package", lastSeenBy={"id": asset_scan["id"]}, summary={"updatedAt": T0}))
    body = {"findingInfo": info("Package")}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_put_with_another_id_is_rejected(api):
    created = create(api, finding())
    assert_error(api.put(f"{URL}/{created['id']}", json={**finding(), "id": str(uuid.uuid4())}), 400, "id")
    assert fetch(api, created["id"]) == created


def test_put_without_finding_info_is_400(api):
    created = create(api, finding())
    assert_error(api.put(f"{URL}/{created['id']}", json={"firstSeen": T0}), 400, "findingInfo")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api, asset_scan):
    created = create(api, finding("Vulnerability", lastSeenBy={"id": asset_scan["id"]},
                                  summary={"updatedAt": T0,
                                           "totalVulnerabilities": {"totalHighVulnerabilities": 1}}))
    patch = {
        "findingInfo": {"package": {"language": "c"}, "links": ["https://nvd.nist.gov"]},
        "summary": {"updatedAt": None, "totalVulnerabilities": {"totalLowVulnerabilities": 2}},
        "lastSeenBy": None,
    }
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {k: v for k, v in created.items() if k != "lastSeenBy"}
    expected.update(
        revision=2,
        findingInfo={**created["findingInfo"], "links": ["https://nvd.nist.gov"],
                     "package": {"name": "openssl", "version": "3.0.1", "language": "c"}},
        summary={"totalVulnerabilities": {"totalHighVulnerabilities": 1, "totalLowVulnerabilities": 2}},
    )
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, method):
    """Unlike the original, findings honour If-Match too."""
    created = create(api, finding())
    response = getattr(api, method)(f"{URL}/{created['id']}", json=finding(lastSeen=T1), headers={"If-Match": "2"})
    assert_error(response, 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, method):
    created = create(api, finding())
    response = getattr(api, method)(f"{URL}/{created['id']}", json=finding(lastSeen=T1), headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**finding(lastSeen=T1), "id": created["id"], "revision": 2}


# ---- delete and cascade -----------------------------------------------------

def test_delete(api):
    created = create(api, finding())
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert count(api) == 0
    create(api, finding())  # its identity is free again


def test_delete_removes_its_asset_findings(api):
    assets = [create(api, dir_asset(f"/a{i}"), "/api/assets") for i in range(2)]
    doomed = create(api, finding("Package"))
    kept = create(api, finding("Secret"))
    doomed_links = [create(api, {"asset": {"id": a["id"]}, "finding": {"id": doomed["id"]}, "firstSeen": T0},
                           "/api/assetFindings") for a in assets]
    kept_links = [create(api, {"asset": {"id": a["id"]}, "finding": {"id": kept["id"]}, "firstSeen": T0},
                         "/api/assetFindings") for a in assets]

    assert api.delete(f"{URL}/{doomed['id']}").status_code == 200

    assert all(gone(api, "/api/assetFindings", link["id"]) for link in doomed_links)
    assert count(api, "/api/assetFindings", f"&$filter=finding/id eq '{doomed['id']}'") == 0
    assert [fetch(api, link["id"], "/api/assetFindings") for link in kept_links] == kept_links
    assert [fetch(api, a["id"], "/api/assets") for a in assets] == assets
    assert fetch(api, kept["id"]) == kept
