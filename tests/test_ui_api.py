"""The UI backend's dashboard at /ui/api (anatomy §6.1, uibackend-openapi.yaml).

Assets, findings and asset findings are created through /api; every endpoint's
numbers are checked exactly, on SQLite and PostgreSQL alike.
"""

from pathlib import Path

import pytest

from conftest import make_token

CONTRACT = Path(__file__).resolve().parents[1].parent / "shared/reference/vmclarity-api/uibackend-openapi.yaml"
NO_VULNS = {"totalCriticalVulnerabilities": 0, "totalHighVulnerabilities": 0, "totalMediumVulnerabilities": 0,
            "totalLowVulnerabilities": 0, "totalNegligibleVulnerabilities": 0}


def ok(response, code=200):
    assert response.status_code == code, response.get_data(as_text=True)
    return response.get_json()


def assert_error(response, code):
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message"} and body["message"], body
    return body


def conforms(body, schema_name):
    """Validate against the contract's schema when the reference file is present."""
    if not CONTRACT.exists():
        return
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load(CONTRACT.read_text())
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    jsonschema.validate(body, schema)


def vm(instance_id, provider, location):
    return {"objectType": "VMInfo", "instanceID": instance_id, "instanceProvider": provider, "location": location,
            "instanceType": "t3.micro", "image": "ami-1", "platform": "Linux/UNIX",
            "launchTime": "2023-01-01T00:00:00Z", "rootVolume": {"sizeGB": 8, "encrypted": "No"}}


def summary(vulns=None, **totals):
    body = {"totalPackages": 0, "totalExploits": 0, "totalMalware": 0, "totalMisconfigurations": 0,
            "totalRootkits": 0, "totalSecrets": 0, "totalInfoFinder": 0, "totalPlugins": 0}
    body.update({f"total{name[0].upper()}{name[1:]}": n for name, n in totals.items()})
    if vulns is not None:
        body["totalVulnerabilities"] = {**NO_VULNS, **vulns}
    return body


def make_asset(api, info, asset_summary, terminated=None):
    body = {"assetInfo": info, "summary": asset_summary}
    if terminated:
        body["terminatedOn"] = terminated
    return ok(api.post("/api/assets", json=body), 201)["id"]


def make_finding(api, info):
    return ok(api.post("/api/findings", json={"findingInfo": info, "firstSeen": "2023-12-01T00:00:00Z",
                                              "lastSeen": "2024-01-01T00:00:00Z"}), 201)["id"]


def link(api, asset_id, finding_id, first_seen="2023-12-01T00:00:00Z", invalidated=None):
    body = {"asset": {"id": asset_id}, "finding": {"id": finding_id}, "firstSeen": first_seen,
            "lastSeen": "2024-01-01T00:00:00Z"}
    if invalidated:
        body["invalidatedOn"] = invalidated
    return ok(api.post("/api/assetFindings", json=body), 201)["id"]


@pytest.fixture
def assets(api):
    return {
        "a1": make_asset(api, vm("i-1", "AWS", "us-east-1/vpc-1"),
                         summary({"totalCriticalVulnerabilities": 2, "totalHighVulnerabilities": 1},
                                 malware=1, secrets=2)),
        "a2": make_asset(api, vm("i-2", "AWS", "us-east-1/vpc-2"),
                         summary({"totalHighVulnerabilities": 5}, malware=3, exploits=1)),
        "a3": make_asset(api, vm("vm-3", "Azure", "westeurope"),
                         summary({"totalLowVulnerabilities": 4}, rootkits=2, misconfigurations=1)),
        "a4": make_asset(api, vm("i-4", "AWS", "eu-west-1/vpc-9"), summary(NO_VULNS, malware=10),
                         terminated="2024-01-01T00:00:00Z"),
        "a5": make_asset(api, {"objectType": "DirInfo", "dirName": "/srv/x", "location": "host-1"},
                         summary(secrets=7)),
        "a6": make_asset(api, vm("i-6", "AWS", "ap-south-1/vpc-1"), summary(NO_VULNS)),
    }


# ---- riskiest regions ------------------------------------------------------------------------

def test_riskiest_regions_sum_live_vm_summaries_per_region(api, assets):
    body = ok(api.get("/ui/api/dashboard/riskiestRegions"))
    conforms(body, "RiskiestRegions")
    # a4 is terminated, a5 is no VM, a6's region has no findings.
    assert body == {"regions": [
        {"regionName": "us-east-1", "findingsCount": {"vulnerabilities": 8, "malware": 4, "rootkits": 0,
                                                      "secrets": 2, "misconfigurations": 0, "exploits": 1}},
        {"regionName": "westeurope", "findingsCount": {"vulnerabilities": 4, "malware": 0, "rootkits": 2,
                                                       "secrets": 0, "misconfigurations": 1, "exploits": 0}},
    ]}


def test_riskiest_regions_empty(api):
    assert ok(api.get("/ui/api/dashboard/riskiestRegions")) == {"regions": []}


# ---- riskiest assets -------------------------------------------------------------------------

def test_riskiest_assets_per_type(api, assets):
    body = ok(api.get("/ui/api/dashboard/riskiestAssets"))
    conforms(body, "RiskiestAssets")
    i1 = {"name": "i-1", "location": "us-east-1/vpc-1", "type": "AWS EC2 Instance"}
    i2 = {"name": "i-2", "location": "us-east-1/vpc-2", "type": "AWS EC2 Instance"}
    vm3 = {"name": "vm-3", "location": "westeurope", "type": "Azure Instance"}

    def vulns(info, critical=0, high=0, medium=0, low=0, negligible=0):
        return {"assetInfo": info, "criticalVulnerabilitiesCount": critical, "highVulnerabilitiesCount": high,
                "mediumVulnerabilitiesCount": medium, "lowVulnerabilitiesCount": low,
                "negligibleVulnerabilitiesCount": negligible}

    assert body == {
        # critical first, then high, ... (i-2 has more in total but no critical one)
        "vulnerabilities": [vulns(i1, critical=2, high=1), vulns(i2, high=5), vulns(vm3, low=4)],
        "malware": [{"assetInfo": i2, "count": 3}, {"assetInfo": i1, "count": 1}],
        "rootkits": [{"assetInfo": vm3, "count": 2}],
        "secrets": [{"assetInfo": {"name": "/srv/x", "location": "host-1"}, "count": 7},
                    {"assetInfo": i1, "count": 2}],
        "misconfigurations": [{"assetInfo": vm3, "count": 1}],
        "exploits": [{"assetInfo": i2, "count": 1}],
    }


def test_riskiest_assets_keeps_the_top_five(api):
    for n in range(1, 8):
        make_asset(api, vm(f"i-{n}", "GCP", "us-central1"), summary(malware=n))
    body = ok(api.get("/ui/api/dashboard/riskiestAssets"))
    assert [(item["assetInfo"]["name"], item["count"]) for item in body["malware"]] == [
        ("i-7", 7), ("i-6", 6), ("i-5", 5), ("i-4", 4), ("i-3", 3)]
    assert body["malware"][0]["assetInfo"]["type"] == "GCP Instance"
    assert body["vulnerabilities"] == [] and body["secrets"] == []


# ---- findings trends -------------------------------------------------------------------------

def vulnerability(name, severity):
    return {"objectType": "Vulnerability", "vulnerabilityName": name, "severity": severity,
            "package": {"name": "flask", "version": "1.0"},
            "cvss": [{"version": "3.1", "vector": "AV:N", "metrics": {"baseScore": 9.8}}]}


def exploit(name):
    return {"objectType": "Exploit", "name": name, "title": f"{name} rce", "cveID": "CVE-1", "sourceDB": "edb",
            "urls": [f"https://x/{name}"]}


@pytest.fixture
def history(api, assets):
    a1, a2, a3, a4, a5, a6 = (assets[k] for k in ("a1", "a2", "a3", "a4", "a5", "a6"))
    f = {
        "v1": make_finding(api, vulnerability("CVE-1", "CRITICAL")),
        "v2": make_finding(api, vulnerability("CVE-2", "HIGH")),
        "m1": make_finding(api, {"objectType": "Malware", "malwareName": "m1", "malwareType": "Trojan",
                                 "ruleName": "r", "path": "/tmp/1"}),
        "m2": make_finding(api, {"objectType": "Malware", "malwareName": "m2", "malwareType": "Worm",
                                 "ruleName": "r", "path": "/tmp/2"}),
        "p1": make_finding(api, {"objectType": "Package", "name": "flask", "version": "1.0", "type": "python",
                                 "purl": "pkg:pypi/flask@1.0"}),
        "s1": make_finding(api, {"objectType": "Secret", "filePath": "/etc/env", "startLine": 1, "endLine": 1,
                                 "startColumn": 2, "endColumn": 9, "fingerprint": "fp"}),
    }
    link(api, a1, f["v1"], "2024-01-01T00:30:00Z")
    link(api, a2, f["v1"], "2024-01-01T03:00:00Z", invalidated="2024-01-01T06:00:00Z")
    link(api, a4, f["v1"], "2024-01-01T00:00:00Z")  # terminated asset: counts in trends, not in impact
    link(api, a1, f["v2"], "2024-01-01T05:30:00+02:00")  # 03:30Z
    link(api, a3, f["v2"], "2024-01-02T00:00:00Z")
    link(api, a5, f["v2"], "2024-01-02T00:00:00Z")
    link(api, a3, f["m1"], "2024-01-01T08:00:00Z", invalidated="2024-01-01T09:00:00.001Z")
    link(api, a1, f["m2"], "2024-01-02T00:00:00Z")
    link(api, a2, f["m2"], "2024-01-02T00:00:00Z")
    link(api, a1, f["p1"], "2024-01-01T12:00:00Z")
    link(api, a5, f["s1"], "2024-01-02T00:00:00Z")
    live = [a1, a2, a3, a5, a6]
    for n in range(1, 7):
        e = make_finding(api, exploit(f"E{n}"))
        for asset_id in live[:n]:
            link(api, asset_id, e, "2024-01-02T00:00:00Z")
        if n == 6:
            link(api, a4, e, "2024-01-02T00:00:00Z")
    return f


TRENDS = "/ui/api/dashboard/findingsTrends"


def test_findings_trends_count_active_asset_findings_at_ten_points(api, history):
    body = ok(api.get(TRENDS, query_string={"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-01T10:00:00Z"}))
    conforms(body, "FindingsTrends")
    assert [series["findingType"] for series in body] == [
        "PACKAGE", "VULNERABILITY", "MALWARE", "SECRET", "MISCONFIGURATION", "ROOTKIT", "EXPLOIT"]
    hours = [f"2024-01-01T{h:02d}:00:00Z" for h in range(1, 11)]
    for series in body:
        assert [point["time"] for point in series["trends"]] == hours
    counts = {series["findingType"]: [point["count"] for point in series["trends"]] for series in body}
    assert counts["VULNERABILITY"] == [2, 2, 3, 4, 4, 3, 3, 3, 3, 3]
    assert counts["MALWARE"] == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    for kind in ("PACKAGE", "SECRET", "MISCONFIGURATION", "ROOTKIT", "EXPLOIT"):
        assert counts[kind] == [0] * 10


def test_findings_trends_later_window_and_offsets(api, history):
    body = ok(api.get(TRENDS, query_string={"startTime": "2024-01-01T06:00:00+02:00",
                                            "endTime": "2024-01-02T10:00:00Z"}))
    counts = {series["findingType"]: [point["count"] for point in series["trends"]] for series in body}
    # 30 hours from 04:00Z: points every 3h from 07:00Z; what was linked at 00:00 on the 2nd shows from 01:00.
    assert [point["time"] for point in body[0]["trends"]][:3] == [
        "2024-01-01T07:00:00Z", "2024-01-01T10:00:00Z", "2024-01-01T13:00:00Z"]
    assert counts["PACKAGE"] == [0, 0] + [1] * 8
    assert counts["VULNERABILITY"] == [3] * 6 + [5] * 4
    assert counts["MALWARE"] == [0] * 6 + [2] * 4
    assert counts["EXPLOIT"] == [0] * 6 + [21] * 4
    assert counts["SECRET"] == [0] * 6 + [1] * 4


def test_findings_trends_sub_second_points_and_type_filter(api, history):
    body = ok(api.get(TRENDS, query_string={"startTime": "2024-01-01T10:00:00Z", "endTime": "2024-01-01T10:00:01Z",
                                            "findingTypes": "MALWARE,VULNERABILITY"}))
    assert [series["findingType"] for series in body] == ["VULNERABILITY", "MALWARE"]
    assert body[0]["trends"][0] == {"time": "2024-01-01T10:00:00.100Z", "count": 3}
    assert body[0]["trends"][-1] == {"time": "2024-01-01T10:00:01Z", "count": 3}


@pytest.mark.parametrize("params", [
    {},
    {"startTime": "2024-01-01T00:00:00Z"},
    {"endTime": "2024-01-01T00:00:00Z"},
    {"startTime": "yesterday", "endTime": "2024-01-01T00:00:00Z"},
    {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-13-01T00:00:00Z"},
    {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"},
    {"startTime": "2024-01-02T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"},
    {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-02T00:00:00Z", "findingTypes": "VIRUS"},
])
def test_findings_trends_rejects_bad_parameters(api, params):
    assert_error(api.get(TRENDS, query_string=params), 400)


# ---- findings impact -------------------------------------------------------------------------

def test_findings_impact_counts_valid_asset_findings_of_live_assets(api, history):
    body = ok(api.get("/ui/api/dashboard/findingsImpact"))
    conforms(body, "FindingsImpact")
    cvss = [{"version": "3.1", "vector": "AV:N", "metrics": {"baseScore": 9.8}}]
    # CVE-1 (critical) comes before CVE-2 (high) although it affects fewer assets.
    assert body["vulnerabilities"] == [
        {"vulnerability": {"vulnerabilityName": "CVE-1", "severity": "CRITICAL", "cvss": cvss},
         "affectedAssetsCount": 1},
        {"vulnerability": {"vulnerabilityName": "CVE-2", "severity": "HIGH", "cvss": cvss},
         "affectedAssetsCount": 3},
    ]
    assert body["malware"] == [{"malware": {"malwareName": "m2", "malwareType": "Worm", "ruleName": "r",
                                            "path": "/tmp/2"}, "affectedAssetsCount": 2}]
    assert body["packages"] == [{"package": {"name": "flask", "version": "1.0", "purl": "pkg:pypi/flask@1.0"},
                                 "affectedAssetsCount": 1}]
    assert body["secrets"] == [{"secret": {"filePath": "/etc/env", "startLine": 1, "endLine": 1, "startColumn": 2,
                                           "endColumn": 9, "fingerprint": "fp"}, "affectedAssetsCount": 1}]
    exploits = [(item["exploit"]["name"], item["affectedAssetsCount"]) for item in body["exploits"]]
    assert sorted(exploits[:2]) == [("E5", 5), ("E6", 5)]
    assert exploits[2:] == [("E4", 4), ("E3", 3), ("E2", 2)]
    assert body["exploits"][-1]["exploit"] == {"name": "E2", "title": "E2 rce", "cveID": "CVE-1", "sourceDB": "edb",
                                               "urls": ["https://x/E2"]}
    assert body["rootkits"] == [] and body["misconfigurations"] == []


def test_findings_impact_empty(api):
    assert ok(api.get("/ui/api/dashboard/findingsImpact")) == {
        key: [] for key in ("vulnerabilities", "malware", "rootkits", "secrets", "misconfigurations", "exploits",
                            "packages")}


# ---- auth ------------------------------------------------------------------------------------

PATHS = ["/ui/api/dashboard/riskiestRegions", "/ui/api/dashboard/riskiestAssets",
         "/ui/api/dashboard/findingsImpact",
         "/ui/api/dashboard/findingsTrends?startTime=2024-01-01T00:00:00Z&endTime=2024-01-02T00:00:00Z"]




@pytest.mark.parametrize("path", PATHS)
def test_tokens(app, client, api, path):
    assert_error(client.get(path), 401)
    assert_error(client.get(path, headers={"Authorization": "Bearer nope"}), 401)
    for role in ("viewer", "operator", "admin"):
        token = make_token(role)
        ok(client.get(path, headers={"Authorization": f"Bearer {token}"}))
    asset = ok(api.post("/api/assets", json={"assetInfo": {"objectType": "DirInfo", "dirName": "/d",
                                                           "location": "h"}}), 201)
    asset_scan = ok(api.post("/api/assetScans", json={"asset": {"id": asset["id"]}}), 201)
    token = make_token("scanner", asset_scan["id"])
    assert_error(client.get(path, headers={"Authorization": f"Bearer {token}"}), 403)


def test_unknown_route_and_method_answer_json(api):
    assert_error(api.get("/ui/api/dashboard/nothing"), 404)
    assert_error(api.post("/ui/api/dashboard/riskiestRegions"), 405)
    assert_error(api.get("/api/nothing"), 404)  # the /api blueprint still answers its own errors


# ---- edge cases of the indexed computations ----------------------------------------------------

def test_findings_trends_match_the_definition_at_every_edge(api, assets):
    """Points that fall exactly on firstSeen / invalidatedOn, offsets, an invalidation before the
    first sighting, zero-width steps: each count is #{firstSeen <= t and (invalidatedOn null or > t)}."""
    import datetime

    def millis(text):
        return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)

    finding = make_finding(api, exploit("EDGE"))
    links = [  # (asset, firstSeen, invalidatedOn)
        ("a1", "2024-03-01T00:00:00Z", None),                        # exactly on a point
        ("a2", "2024-03-01T00:00:00.001Z", "2024-03-01T02:00:00Z"),  # just after, invalidated on a point
        ("a3", "2024-03-01T03:00:00+01:00", "2024-03-01T02:59:59Z"),  # 02:00Z, gone a second before 03:00Z
        ("a4", "2024-03-01T05:00:00Z", "2024-03-01T04:00:00Z"),      # invalidated before first seen
        ("a5", "2024-02-01T00:00:00Z", "2024-03-01T05:30:00Z"),      # before the window, gone inside it
        ("a6", "2024-03-01T09:00:00Z", None),                        # after the last point
    ]
    for asset, first_seen, invalidated in links:
        link(api, assets[asset], finding, first_seen, invalidated=invalidated)

    for start, end in [("2024-02-29T23:00:00Z", "2024-03-01T09:00:00Z"),
                       ("2024-03-01T00:00:00Z", "2024-03-01T00:00:00.005Z"),  # 0 ms steps
                       ("2024-01-01T00:00:00Z", "2024-03-01T06:00:00Z")]:
        body = ok(api.get(TRENDS, query_string={"startTime": start, "endTime": end, "findingTypes": "EXPLOIT"}))
        points = [millis(point["time"]) for point in body[0]["trends"]]
        expected = [sum(1 for _, first_seen, invalidated in links
                        if millis(first_seen) <= t and (invalidated is None or millis(invalidated) > t))
                    for t in points]
        assert [point["count"] for point in body[0]["trends"]] == expected, (start, end)


def test_findings_impact_edges(api, assets):
    """Vulnerabilities without a known severity are never collected (the original asks severity by
    severity); counts tie-break on the finding key; terminated assets and invalidated links drop out."""
    nameless = {"objectType": "Vulnerability", "vulnerabilityName": "CVE-NONE",
                "package": {"name": "flask", "version": "1.0"}}
    v_none = make_finding(api, nameless)
    v_low = make_finding(api, vulnerability("CVE-LOW", "LOW"))
    for asset in ("a1", "a2", "a3"):
        link(api, assets[asset], v_none)
    link(api, assets["a4"], v_low)  # terminated: does not count
    link(api, assets["a1"], v_low, invalidated="2024-01-01T00:00:00Z")  # invalidated: does not count
    link(api, assets["a5"], v_low)
    secrets = []
    for n in range(7):  # seven secrets with one asset each: five win, always the same (key order)
        secrets.append(make_finding(api, {"objectType": "Secret", "filePath": f"/s/{6 - n}", "startLine": 1,
                                          "endLine": 1, "startColumn": 1, "endColumn": 2,
                                          "fingerprint": f"fp{6 - n}"}))
        link(api, assets["a2"], secrets[-1])
    body = ok(api.get("/ui/api/dashboard/findingsImpact"))
    conforms(body, "FindingsImpact")
    assert [(item["vulnerability"]["vulnerabilityName"], item["affectedAssetsCount"])
            for item in body["vulnerabilities"]] == [("CVE-LOW", 1)]
    winners = [item["secret"]["filePath"] for item in body["secrets"]]
    assert len(set(winners)) == 5 and all(item["affectedAssetsCount"] == 1 for item in body["secrets"])
    assert body["secrets"] == ok(api.get("/ui/api/dashboard/findingsImpact"))["secrets"]  # stable


def test_dashboard_reads_the_instants_through_their_indexes(db):
    """The trends query compares exactly the indexed expressions, so the database can use them."""
    from app import dashboard
    from app.db import is_postgres
    from app.models import AssetFinding
    for path, index in (("firstSeen", "asset_finding_first_seen_invalidated"),
                        ("invalidatedOn", "asset_finding_invalidated_first_seen")):
        instant = dashboard._indexed(AssetFinding, path)
        query = f'SELECT "finding_id" FROM "asset_finding" WHERE {instant} > 0 AND {instant} <= 1'
        if is_postgres():
            db.execute_sql("SET enable_seqscan = off")
            plan = "\n".join(row[0] for row in db.execute_sql(f"EXPLAIN {query}"))
        else:
            plan = "\n".join(str(row) for row in db.execute_sql(f"EXPLAIN QUERY PLAN {query}"))
        assert index in plan, plan
