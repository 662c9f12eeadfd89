"""Concurrent writers on a real threaded HTTP server: If-Match picks one winner, nothing is lost,
uniqueness holds under races, and SQLite writers wait for each other instead of failing."""

import http.client
import json
from urllib.parse import quote

import pytest
from conftest import race

ADMIN_TOKEN = "test-admin-token"  # what conftest configures
ROUNDS = 20
T0 = "2024-05-01T10:00:00Z"


def dir_asset(dir_name="/srv/www", **extra):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}, **extra}


class Client:
    """Requests to the live server, a fresh connection each, so threads never share one."""

    def __init__(self, base_url):
        self.host, port = base_url.removeprefix("http://").split(":")
        self.port = int(port)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            payload = None if body is None else json.dumps(body)
            all_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json",
                           **(headers or {})}
            conn.request(method, quote(path, safe="/?&=$'"), body=payload, headers=all_headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()


@pytest.fixture
def server(live_server):
    return Client(live_server)




def create(server, path, body):
    code, created = server.request("POST", path, body)
    assert code == 201, created
    return created


def fetch(server, path):
    code, body = server.request("GET", path)
    assert code == 200, body
    return body


@pytest.mark.parametrize("writers", [2, 4])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_same_if_match_exactly_one_writer_wins(server, writers, method):
    asset = create(server, "/api/assets", dir_asset(annotations=[]))
    path = f"/api/assets/{asset['id']}"
    wins = 0
    for round_no in range(ROUNDS):
        current = fetch(server, path)

        def write(writer, current=current, round_no=round_no):
            annotations = current["annotations"] + [{"key": f"round-{round_no}", "value": f"writer-{writer}"}]
            body = ({"annotations": annotations} if method == "PATCH"
                    else {"assetInfo": current["assetInfo"], "annotations": annotations})
            return server.request(method, path, body, {"If-Match": str(current["revision"])})

        results = race([lambda w=w: write(w) for w in range(writers)])
        codes = sorted(code for code, _ in results)
        assert codes == [200] + [412] * (writers - 1), (round_no, results)
        winner = next(body for code, body in results if code == 200)
        for code, body in results:
            if code == 412:
                assert set(body) == {"message"}
        wins += 1
        stored = fetch(server, path)
        assert stored == winner
        assert stored["revision"] == current["revision"] + 1
    stored = fetch(server, path)
    assert stored["revision"] == 1 + wins == 1 + ROUNDS
    # Every round's winner is still there: no update was lost.
    assert [a["key"] for a in stored["annotations"]] == [f"round-{r}" for r in range(ROUNDS)]


def test_same_if_match_on_findings(server):
    finding = create(server, "/api/findings", {"findingInfo": {"objectType": "Package", "name": "a", "version": "1"}})
    path = f"/api/findings/{finding['id']}"
    for round_no in range(ROUNDS // 2):
        current = fetch(server, path)
        results = race([
            lambda w=w, current=current: server.request(
                "PATCH", path, {"lastSeen": f"2024-05-{w + 1:02d}T00:00:00Z"}, {"If-Match": str(current["revision"])})
            for w in range(3)
        ])
        assert sorted(code for code, _ in results) == [200, 412, 412], results
    assert fetch(server, path)["revision"] == 1 + ROUNDS // 2


def test_patches_without_if_match_all_apply(server):
    """With no If-Match there is no precondition: concurrent merge patches of different fields all land."""
    asset = create(server, "/api/assets", dir_asset(summary={}))
    path = f"/api/assets/{asset['id']}"
    fields = ["totalPackages", "totalExploits", "totalMalware", "totalSecrets"]
    for round_no in range(5):
        results = race([
            lambda f=f: server.request("PATCH", path, {"summary": {f: round_no}}) for f in fields
        ])
        assert [code for code, _ in results] == [200] * len(fields), results
        assert fetch(server, path)["summary"] == {f: round_no for f in fields}
    assert fetch(server, path)["revision"] == 1 + 5 * len(fields)


@pytest.mark.parametrize("writers", [2, 4, 8])
def test_concurrent_creates_of_one_asset_make_exactly_one(server, writers):
    for round_no in range(ROUNDS // 2):
        body = dir_asset(f"/race/{round_no}")
        results = race([lambda: server.request("POST", "/api/assets", body) for _ in range(writers)])
        codes = sorted(code for code, _ in results)
        assert codes == [201] + [409] * (writers - 1), (round_no, results)
        created = next(b for code, b in results if code == 201)
        for code, conflict in results:
            if code == 409:
                assert conflict["asset"] == created
    listing = fetch(server, "/api/assets?$count=true")
    assert listing["count"] == ROUNDS // 2


def test_concurrent_creates_of_one_finding_make_exactly_one(server):
    for round_no in range(ROUNDS // 2):
        body = {"findingInfo": {"objectType": "Vulnerability", "vulnerabilityName": f"CVE-2024-{round_no:04d}",
                                "package": {"name": "openssl", "version": "3.0.1"}}}
        results = race([lambda: server.request("POST", "/api/findings", body) for _ in range(4)])
        assert sorted(code for code, _ in results) == [201, 409, 409, 409], results
    assert fetch(server, "/api/findings?$count=true")["count"] == ROUNDS // 2


def test_concurrent_running_scans_of_one_config_make_exactly_one(server):
    config = create(server, "/api/scanConfigs", {"name": "c", "scheduled": {"operationTime": T0}})
    results = race([
        lambda i=i: server.request("POST", "/api/scans", {"name": f"s{i}", "scanConfig": {"id": config["id"]}})
        for i in range(4)
    ])
    assert sorted(code for code, _ in results) == [201, 409, 409, 409], results
    assert fetch(server, "/api/scans?$count=true")["count"] == 1


def test_many_writers_never_fail(server):
    """Creates, patches and deletes from many threads at once: no 500, no 'database is locked'."""
    assets = [create(server, "/api/assets", dir_asset(f"/base/{i}", scansCount=0)) for i in range(8)]

    def worker(index):
        seen = []
        for step in range(6):
            seen.append(server.request("POST", "/api/assets", dir_asset(f"/w{index}/{step}")))
            target = assets[index]  # one asset per worker: no precondition can fail
            seen.append(server.request("PATCH", f"/api/assets/{target['id']}", {"lastSeen": T0}))
            seen.append(server.request("GET", "/api/assets?$filter=assetInfo/location eq 'host-1'&$count=true"))
        created = [body for code, body in seen if code == 201]
        for body in created[:2]:
            seen.append(server.request("DELETE", f"/api/assets/{body['id']}"))
        return seen

    results = race([lambda i=i: worker(i) for i in range(8)])
    for seen in results:
        for code, body in seen:
            assert code < 500, body
            assert "locked" not in json.dumps(body)
            assert code in (200, 201), body
    listing = fetch(server, "/api/assets?$count=true")
    assert listing["count"] == 8 + 8 * 6 - 8 * 2
