"""Authentication and roles on /api: 401 without a valid bearer token, 403 for what a role may not do."""

import json
import uuid

import pytest

from app import auth, create_app
from app.db import database
from app.models import ApiToken
from conftest import make_token

ADMIN_TOKEN = "test-admin-token"  # what conftest configures
T0 = "2024-05-01T10:00:00Z"
COLLECTIONS = ("assets", "assetScans", "scans", "scanConfigs", "findings", "assetFindings", "scanEstimations",
               "assetScanEstimations", "providers")
SOME_ID = "6b0bd6a4-5d3b-4c6e-9d0c-3a1f5b7e2c11"
ROUTES = [("GET", "/api/openapi.json")] + [
    route for c in COLLECTIONS for route in (
        ("GET", f"/api/{c}"), ("POST", f"/api/{c}"), ("GET", f"/api/{c}/{SOME_ID}"),
        ("PUT", f"/api/{c}/{SOME_ID}"), ("PATCH", f"/api/{c}/{SOME_ID}"), ("DELETE", f"/api/{c}/{SOME_ID}"),
    )
]
ROUTE_GROUPS = {"openapi.json": [ROUTES[0]], **{c: [r for r in ROUTES if r[1].split("/")[2] == c] for c in COLLECTIONS}}
BAD_HEADERS = {
    "missing": None,
    "empty": "",
    "no-scheme": ADMIN_TOKEN,
    "basic": "Basic YWRtaW46YWRtaW4=",
    "token-scheme": f"Token {ADMIN_TOKEN}",
    "bearer-without-token": "Bearer",
    "bearer-blank": "Bearer    ",
    "wrong-token": "Bearer not-the-token",
    "admin-token-prefix": f"Bearer {ADMIN_TOKEN[:-1]}",
    "admin-token-longer": f"Bearer {ADMIN_TOKEN}x",
    "admin-token-and-more": f"Bearer {ADMIN_TOKEN} {ADMIN_TOKEN}",
}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def dir_asset(dir_name="/srv/www"):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}}


def status(state, reason):
    return {"state": state, "reason": reason, "lastTransitionTime": T0}




def assert_error(response, code):
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message"} and isinstance(body["message"], str) and body["message"], body
    return body


def send(client, method, url, headers, body=None):
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = dir_asset()
    return client.open(url, method=method, headers=headers, json=body)


def create(api, url, body):
    response = api.post(url, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def fetch(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def count(api, collection):
    return fetch(api, f"/api/{collection}?$count=true")["count"]


# ---- 401 ---------------------------------------------------------------------

@pytest.mark.parametrize("group", ROUTE_GROUPS)
def test_every_route_needs_a_valid_bearer_token(client, api, group):
    for method, url in ROUTE_GROUPS[group]:
        for name, value in BAD_HEADERS.items():
            headers = {} if value is None else {"Authorization": value}
            response = send(client, method, url, headers)
            assert response.status_code == 401, (method, url, name, response.get_data(as_text=True))
            body = response.get_json()
            assert set(body) == {"message"} and body["message"], (method, url, name)
    if group != "openapi.json":
        assert count(api, group) == 0


def test_a_rejected_write_stores_nothing(client, api):
    asset = create(api, "/api/assets", dir_asset())
    url = f"/api/assets/{asset['id']}"
    for method in ("PUT", "PATCH", "DELETE"):
        assert_error(send(client, method, url, bearer("wrong"), {"scansCount": 5}), 401)
    assert fetch(api, url) == asset


def test_the_scheme_is_case_insensitive(client):
    assert client.get("/api/assets", headers={"Authorization": f"bearer {ADMIN_TOKEN}"}).status_code == 200


def test_admin_token_from_the_environment(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("VMCLARITY_ADMIN_TOKEN", "env-admin-secret")
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path)})
    client = app.test_client()
    assert client.get("/api/assets", headers=bearer("env-admin-secret")).status_code == 200
    response = client.post("/api/assets", json=dir_asset(), headers=bearer("env-admin-secret"))
    assert response.status_code == 201
    asset_id = response.get_json()["id"]
    assert client.delete(f"/api/assets/{asset_id}", headers=bearer("env-admin-secret")).status_code == 200
    assert_error(client.get("/api/assets", headers=bearer(ADMIN_TOKEN)), 401)


def test_no_admin_token_configured_accepts_no_empty_token(database_url, tmp_path, monkeypatch):
    monkeypatch.delenv("VMCLARITY_ADMIN_TOKEN", raising=False)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path)})
    client = app.test_client()
    for value in ("Bearer ", "Bearer", f"Bearer {ADMIN_TOKEN}", "Bearer ''"):
        assert_error(client.get("/api/assets", headers={"Authorization": value}), 401)


# ---- stored tokens -------------------------------------------------------------

def test_tokens_are_stored_hashed(app, client):
    secrets = [make_token(role) for role in ("admin", "operator", "viewer")]
    database.connect(reuse_if_open=True)
    try:
        rows = database.execute_sql(f"SELECT * FROM {ApiToken._meta.table_name}").fetchall()
    finally:
        database.close()
    assert len(rows) == 3
    dump = json.dumps([[str(value) for value in row] for row in rows])
    for secret in secrets:
        assert secret not in dump
        assert secret.split("_", 1)[-1] not in dump
        assert client.get("/api/assets", headers=bearer(secret)).status_code == 200


def test_tokens_are_distinct(app):
    assert len({make_token("viewer") for _ in range(5)}) == 5


# ---- viewer ------------------------------------------------------------------

def test_viewer_may_read_every_route(app, client):
    token = make_token("viewer")
    for method, url in ROUTES:
        if method != "GET":
            continue
        response = client.open(url, method=method, headers=bearer(token))
        if url.endswith(SOME_ID):
            assert response.status_code == 404 and set(response.get_json()) == {"message"}, url
        else:
            assert response.status_code == 200, url


def test_viewer_reads_stored_objects(app, client, api):
    asset = create(api, "/api/assets", dir_asset())
    token = make_token("viewer")
    response = client.get(f"/api/assets/{asset['id']}", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == asset
    body = client.get("/api/assets?$count=true", headers=bearer(token)).get_json()
    assert body["count"] == 1 and body["items"] == [asset]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_viewer_may_not_write(app, client, api, collection):
    token = make_token("viewer")
    for method, url in ROUTE_GROUPS[collection]:
        if method == "GET":
            continue
        response = send(client, method, url, bearer(token))
        assert response.status_code == 403, (method, url, response.get_data(as_text=True))
        assert set(response.get_json()) == {"message"} and response.get_json()["message"], (method, url)
    assert count(api, collection) == 0


def test_viewer_cannot_change_a_stored_object(app, client, api):
    asset = create(api, "/api/assets", dir_asset())
    token = make_token("viewer")
    url = f"/api/assets/{asset['id']}"
    for method, body in (("PUT", dir_asset("/changed")), ("PATCH", {"scansCount": 3}), ("DELETE", None)):
        assert_error(send(client, method, url, bearer(token), body), 403)
    assert fetch(api, url) == asset


# ---- operator and admin tokens -------------------------------------------------

@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operator_and_admin_tokens_read_and_write(app, client, role):
    headers = bearer(make_token(role))
    response = client.post("/api/assets", json=dir_asset(), headers=headers)
    assert response.status_code == 201
    asset = response.get_json()
    url = f"/api/assets/{asset['id']}"
    assert client.patch(url, json={"scansCount": 1}, headers=headers).status_code == 200
    assert client.put(url, json=dir_asset(), headers=headers).status_code == 200
    assert client.get(url, headers=headers).get_json()["revision"] == 3
    assert client.get("/api/openapi.json", headers=headers).status_code == 200
    assert client.delete(url, headers=headers).status_code == 200
    assert client.get(url, headers=headers).status_code == 404


# ---- scanner token -------------------------------------------------------------

@pytest.fixture
def scanner(app, api):
    """An asset scan ready to scan, its scanner token, and a neighbour asset scan."""
    asset = create(api, "/api/assets", dir_asset())
    other_asset = create(api, "/api/assets", dir_asset("/other"))
    scan = create(api, "/api/scans", {"name": "scan"})
    own = create(api, "/api/assetScans", {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}})
    other = create(api, "/api/assetScans", {"asset": {"id": other_asset["id"]}, "scan": {"id": scan["id"]}})
    for step in (status("Scheduled", "Provisioning"), status("ReadyToScan", "ResourcesReady")):
        for target in (own, other):
            assert api.patch(f"/api/assetScans/{target['id']}", json={"status": step}).status_code == 200
    return {
        "token": make_token("scanner", own["id"]),
        "own": fetch(api, f"/api/assetScans/{own['id']}"),
        "other": fetch(api, f"/api/assetScans/{other['id']}"),
        "asset": asset,
        "other_asset": other_asset,
        "scan": scan,
    }


def test_scanner_reads_its_asset_scan(client, scanner):
    response = client.get(f"/api/assetScans/{scanner['own']['id']}", headers=bearer(scanner["token"]))
    assert response.status_code == 200
    assert response.get_json() == scanner["own"]


def test_scanner_patches_status_and_results(client, api, scanner):
    url = f"/api/assetScans/{scanner['own']['id']}"
    headers = bearer(scanner["token"])
    steps = [
        {"status": status("InProgress", "ScannerIsRunning"), "stats": {"general": {"scanTime": {"startTime": T0}}}},
        {"sbom": {"status": {"state": "Done", "reason": "Success", "lastTransitionTime": T0},
                  "packages": [{"name": "zlib", "version": "1.3"}]},
         "vulnerabilities": {"status": {"state": "Done", "reason": "Success", "lastTransitionTime": T0},
                             "vulnerabilities": []},
         "summary": {"totalPackages": 1}},
        {"status": status("Done", "Success")},
    ]
    for revision, step in enumerate(steps, start=scanner["own"]["revision"]):
        response = client.patch(url, json=step, headers={**headers, "If-Match": str(revision)})
        assert response.status_code == 200, response.get_json()
    stored = fetch(api, url)
    assert stored["status"] == status("Done", "Success")
    assert stored["sbom"]["packages"] == [{"name": "zlib", "version": "1.3"}]
    assert stored["summary"] == {"totalPackages": 1}
    assert stored["asset"] == scanner["own"]["asset"] and stored["scan"] == scanner["own"]["scan"]


def test_scanner_is_still_held_to_the_state_machine(client, api, scanner):
    url = f"/api/assetScans/{scanner['own']['id']}"
    response = client.patch(url, json={"status": status("Pending", "Created")}, headers=bearer(scanner["token"]))
    assert_error(response, 400)
    assert fetch(api, url) == scanner["own"]


def _forbidden_requests(s):
    own, other = f"/api/assetScans/{s['own']['id']}", f"/api/assetScans/{s['other']['id']}"
    running = {"status": status("InProgress", "ScannerIsRunning")}
    requests = {
        "get-other": ("GET", other, None),
        "patch-other": ("PATCH", other, running),
        "put-other": ("PUT", other, running),
        "list-asset-scans": ("GET", "/api/assetScans", None),
        "create-asset-scan": ("POST", "/api/assetScans", {"asset": {"id": s["asset"]["id"]}}),
        "put-own": ("PUT", own, {k: v for k, v in s["own"].items() if k != "revision"}),
        "delete-own": ("DELETE", own, None),
        "patch-own-asset": ("PATCH", own, {"asset": {"id": s["other_asset"]["id"]}}),
        "patch-own-scan": ("PATCH", own, {"scan": None}),
        "patch-own-findings-processed": ("PATCH", own, {"findingsProcessed": True}),
        "patch-own-cleanup": ("PATCH", own, {"resourceCleanupStatus": status("Skipped", "NotApplicable")}),
        "patch-own-families-config": ("PATCH", own, {"scanFamiliesConfig": {"malware": {"enabled": True}}}),
        "patch-own-annotations": ("PATCH", own, {"annotations": [{"key": "k", "value": "v"}]}),
        "patch-own-id": ("PATCH", own, {"id": s["own"]["id"]}),
        "patch-own-status-and-asset": ("PATCH", own, {**running, "asset": {"id": s["other_asset"]["id"]}}),
    }
    for collection in COLLECTIONS:
        if collection != "assetScans":
            requests[f"list-{collection}"] = ("GET", f"/api/{collection}", None)
            requests[f"create-{collection}"] = ("POST", f"/api/{collection}", dir_asset())
    requests["get-own-asset"] = ("GET", f"/api/assets/{s['asset']['id']}", None)
    requests["patch-own-asset-object"] = ("PATCH", f"/api/assets/{s['asset']['id']}", {"scansCount": 1})
    requests["delete-own-asset"] = ("DELETE", f"/api/assets/{s['asset']['id']}", None)
    requests["get-own-scan"] = ("GET", f"/api/scans/{s['scan']['id']}", None)
    requests["patch-own-scan-object"] = ("PATCH", f"/api/scans/{s['scan']['id']}", {"name": "x"})
    return requests


FORBIDDEN_GROUPS = {
    "other-asset-scan": ["get-other", "patch-other", "put-other"],
    "asset-scan-collection": ["list-asset-scans", "create-asset-scan"],
    "own-asset-scan-methods": ["put-own", "delete-own"],
    "own-asset-scan-fields": [
        "patch-own-asset", "patch-own-scan", "patch-own-findings-processed", "patch-own-cleanup",
        "patch-own-families-config", "patch-own-annotations", "patch-own-id", "patch-own-status-and-asset",
    ],
    "other-collections": [f"{verb}-{c}" for c in COLLECTIONS if c != "assetScans" for verb in ("list", "create")],
    "own-asset-and-scan": ["get-own-asset", "patch-own-asset-object", "delete-own-asset", "get-own-scan",
                           "patch-own-scan-object"],
}


@pytest.mark.parametrize("group", FORBIDDEN_GROUPS)
def test_scanner_may_do_nothing_else(client, api, scanner, group):
    requests = _forbidden_requests(scanner)
    for name in FORBIDDEN_GROUPS[group]:
        method, url, body = requests[name]
        response = send(client, method, url, bearer(scanner["token"]), body)
        assert response.status_code == 403, (name, response.get_data(as_text=True))
        assert set(response.get_json()) == {"message"} and response.get_json()["message"], name
    for path, stored in ((f"/api/assetScans/{scanner['own']['id']}", scanner["own"]),
                         (f"/api/assetScans/{scanner['other']['id']}", scanner["other"]),
                         (f"/api/assets/{scanner['asset']['id']}", scanner["asset"]),
                         (f"/api/scans/{scanner['scan']['id']}", scanner["scan"])):
        assert fetch(api, path) == stored
    expected = {"assets": 2, "assetScans": 2, "scans": 1}
    for collection in COLLECTIONS:
        assert count(api, collection) == expected.get(collection, 0), collection


def test_scanner_cannot_smuggle_fields_past_the_check_with_another_content_type(client, api, scanner):
    """The field check must see the same body the store applies, whatever the Content-Type says."""
    url = f"/api/assetScans/{scanner['own']['id']}"
    body = json.dumps({"findingsProcessed": True, "resourceCleanupStatus": status("Skipped", "NotApplicable")})
    response = client.patch(url, data=body, content_type="text/plain", headers=bearer(scanner["token"]))
    assert response.status_code in (400, 403, 415), response.get_data(as_text=True)
    assert fetch(api, url) == scanner["own"]


def test_scanner_token_of_another_asset_scan_is_useless_here(app, client, api, scanner):
    other_token = make_token("scanner", scanner["other"]["id"])
    url = f"/api/assetScans/{scanner['own']['id']}"
    assert_error(client.get(url, headers=bearer(other_token)), 403)
    assert_error(client.patch(url, json={"status": status("InProgress", "ScannerIsRunning")},
                              headers=bearer(other_token)), 403)
    assert fetch(api, url) == scanner["own"]


def test_scanner_token_dies_with_its_asset_scan(client, api, scanner):
    url = f"/api/assetScans/{scanner['own']['id']}"
    assert client.get(url, headers=bearer(scanner["token"])).status_code == 200
    assert api.delete(f"/api/scans/{scanner['scan']['id']}").status_code == 200
    assert_error(client.get(url, headers=bearer(scanner["token"])), 401)


def test_minting_needs_an_asset_scan(app):
    with pytest.raises(ValueError):
        make_token("scanner", None)
    with pytest.raises(ValueError):
        database.connect(reuse_if_open=True)
        try:
            auth.create_token("x", "superuser")
        finally:
            database.close()


def test_unknown_token_after_valid_ones(app, client):
    make_token("admin")
    assert_error(client.get("/api/assets", headers=bearer("vmc_" + uuid.uuid4().hex)), 401)
