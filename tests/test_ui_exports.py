"""Exports of the findings table: CSV that no spreadsheet runs, and structurally valid SARIF 2.1.0."""

import csv
import datetime
import io
import json

import pytest

from app.ui import exports
from app.ui import findings_queries
from app.ui.finding_types import TYPES_BY_SLUG
from test_ui_findings import (BY_SEVERITY_ASCENDING, BY_SEVERITY_DESCENDING, HOSTILE, SAMPLES, link, make_asset,
                              make_finding, plant_mixed_severities, vulnerability)

SARIF_LEVELS = {"none", "note", "warning", "error"}
MALWARE = TYPES_BY_SLUG["malware"]


def rows_of(response):
    return list(csv.reader(io.StringIO(response.text)))


def assert_sarif_2_1_0(log):
    """The members SARIF 2.1.0 requires, with the types it requires them to have."""
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    assert isinstance(log["runs"], list) and log["runs"]
    for run in log["runs"]:
        driver = run["tool"]["driver"]
        assert driver["name"] == "VMClarity"
        rules = driver.get("rules", [])
        assert all(isinstance(rule["id"], str) and rule["id"] for rule in rules)
        for result in run["results"]:
            assert isinstance(result["ruleId"], str) and result["ruleId"]
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            assert isinstance(result["message"]["text"], str) and result["message"]["text"]
            assert result["level"] in SARIF_LEVELS
            for location in result.get("locations", []):
                physical = location["physicalLocation"]
                assert isinstance(physical["artifactLocation"]["uri"], str)
                region = physical.get("region")
                if region:
                    assert region["startLine"] >= 1


# ---- pure functions ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tcmd", "\rcmd",
                                   '=HYPERLINK("http://evil.example","click")'])
def test_formula_starts_are_defused(value):
    assert exports.defused(value) == "'" + value


@pytest.mark.parametrize("value", ["CVE-2023-1", "a=b", " =1", "", None, 7])
def test_other_cells_are_left_alone(value):
    assert exports.defused(value) == ("" if value is None else str(value))


def test_csv_chunks_defuse_every_cell_including_the_hostile_ones():
    finding = {"id": "f1", "firstSeen": "2026-01-01T00:00:00Z", "findingInfo": {
        "objectType": "Malware", "malwareName": "=cmd|' /C calc'!A0", "malwareType": "@evil",
        "ruleName": "+rule", "path": HOSTILE}}
    rows = list(csv.reader(io.StringIO("".join(exports.csv_chunks(MALWARE, [finding])))))
    assert rows[0] == ["id", "Name", "Type", "Rule", "Path", "First seen", "Last seen"]
    assert rows[1][:5] == ["f1", "'=cmd|' /C calc'!A0", "'@evil", "'+rule", HOSTILE]


@pytest.mark.parametrize("severity, level", [("CRITICAL", "error"), ("HIGH", "error"), ("MEDIUM", "warning"),
                                             ("LOW", "note"), ("NEGLIGIBLE", "note")])
def test_vulnerability_levels(severity, level):
    log = exports.sarif_document(TYPES_BY_SLUG["vulnerabilities"],
                                 [{"id": "v", "findingInfo": vulnerability("CVE-1", severity=severity)}])
    assert_sarif_2_1_0(log)
    assert log["runs"][0]["results"][0]["level"] == level


@pytest.mark.parametrize("severity, level", [("MisconfigurationHighSeverity", "error"),
                                             ("MisconfigurationMediumSeverity", "warning"),
                                             ("MisconfigurationLowSeverity", "note"),
                                             ("MisconfigurationInfoSeverity", "note")])
def test_misconfiguration_levels(severity, level):
    info = {**SAMPLES["misconfigurations"][0], "severity": severity}
    result = exports.sarif_document(TYPES_BY_SLUG["misconfigurations"], [{"id": "m", "findingInfo": info}])
    assert result["runs"][0]["results"][0]["level"] == level


def test_one_rule_per_distinct_finding_and_indexes_that_point_at_it():
    findings = [{"id": str(index), "findingInfo": vulnerability(name, package=f"p{index}")}
                for index, name in enumerate(["CVE-1", "CVE-2", "CVE-1"])]
    log = exports.sarif_document(TYPES_BY_SLUG["vulnerabilities"], findings)
    assert_sarif_2_1_0(log)
    run = log["runs"][0]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == ["CVE-1", "CVE-2"]
    assert [result["ruleIndex"] for result in run["results"]] == [0, 1, 0]
    assert "p2" in run["results"][2]["message"]["text"]


def test_locations_of_secrets_malware_and_misconfigurations():
    secret = exports.sarif_document(TYPES_BY_SLUG["secrets"], [{"id": "s", "findingInfo": SAMPLES["secrets"][0]}])
    physical = secret["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "/home/a/.env"
    assert physical["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 45}
    misconfiguration = exports.sarif_document(TYPES_BY_SLUG["misconfigurations"],
                                              [{"id": "m", "findingInfo": SAMPLES["misconfigurations"][0]}])
    location = misconfiguration["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "/etc/ssh/sshd_config"}}
    rootkit = exports.sarif_document(TYPES_BY_SLUG["rootkits"], [{"id": "r", "findingInfo": SAMPLES["rootkits"][0]}])
    assert "locations" not in rootkit["runs"][0]["results"][0]
    assert rootkit["runs"][0]["results"][0]["level"] == "error"


def test_a_hostile_path_becomes_an_encoded_uri():
    log = exports.sarif_document(MALWARE, [{"id": "x", "findingInfo": {
        "objectType": "Malware", "malwareName": "Eicar", "path": f"/tmp/{HOSTILE}"}}])
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "/tmp/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"


def test_an_empty_export_is_still_a_valid_log():
    log = exports.sarif_document(MALWARE, [])
    assert_sarif_2_1_0(log)
    assert log["runs"][0]["results"] == [] and log["runs"][0]["tool"]["driver"]["rules"] == []


# ---- the export views ----------------------------------------------------------------------

def test_viewer_exports_the_current_view_as_csv(viewer):
    for index in range(30):  # more than one page of the table
        make_finding(vulnerability(f"CVE-{index:02d}", package="urllib3" if index % 2 else "requests"))
    response = viewer.get("/findings/export.csv?type=vulnerabilities&q=urllib3&sort=vulnerabilityName&dir=desc"
                          "&page=1")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    today = datetime.date.today().strftime("%Y%m%d")
    assert response.headers["Content-Disposition"] == f'attachment; filename="vmclarity-vulnerabilities-{today}.csv"'
    rows = rows_of(response)
    assert rows[0][:3] == ["id", "Vulnerability", "Severity"]
    assert [row[1] for row in rows[1:]] == [f"CVE-{index:02d}" for index in range(29, 0, -2)]
    assert response.headers["X-Total-Count"] == "15"


def test_exports_follow_history_and_first_seen_filters(viewer):
    asset = make_asset("/srv/a")
    link(asset, make_finding(vulnerability("CVE-live"), first_seen="2026-01-05T00:00:00Z"))
    link(asset, make_finding(vulnerability("CVE-gone")), invalidated="2026-01-21T00:00:00Z")
    make_finding(vulnerability("CVE-old-live"), first_seen="2025-06-01T00:00:00Z")
    current = rows_of(viewer.get("/findings/export.csv?hide_history=1"))
    assert [row[1] for row in current[1:]] == ["CVE-live"]
    recent = viewer.get("/findings/export.sarif?first_seen_from=2026-01-01")
    assert sorted(result["ruleId"] for result in recent.json["runs"][0]["results"]) == ["CVE-gone", "CVE-live"]


def test_viewer_exports_sarif(viewer):
    make_finding(SAMPLES["secrets"][0])
    make_finding({"objectType": "Malware", "malwareName": "Eicar", "malwareType": "VIRUS", "ruleName": "clam",
                  "path": "/tmp/eicar.com"})
    response = viewer.get("/findings/export.sarif?type=secrets")
    assert response.status_code == 200 and response.mimetype == "application/sarif+json"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Disposition"].endswith('.sarif"')
    log = json.loads(response.text)
    assert_sarif_2_1_0(log)
    [result] = log["runs"][0]["results"]
    assert result["level"] == "error" and result["ruleId"] == "AWS access key"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3


@pytest.mark.parametrize("slug", ["malware", "secrets"])
def test_hostile_values_export_as_plain_data(viewer, slug):
    info = ({"objectType": "Malware", "malwareName": HOSTILE, "malwareType": "VIRUS", "ruleName": "r",
             "path": HOSTILE} if slug == "malware" else
            {"objectType": "Secret", "filePath": HOSTILE, "startLine": 2, "startColumn": 1, "endColumn": 4,
             "fingerprint": "f" * 32, "description": "key"})
    make_finding(info)
    rows = rows_of(viewer.get(f"/findings/export.csv?type={slug}"))
    assert HOSTILE in rows[1]  # CSV is data, not markup: the value exactly as found
    sarif = viewer.get(f"/findings/export.sarif?type={slug}")
    assert sarif.mimetype == "application/sarif+json" and sarif.headers["X-Content-Type-Options"] == "nosniff"
    assert_sarif_2_1_0(sarif.json)
    assert HOSTILE in sarif.json["runs"][0]["results"][0]["message"]["text"]


def test_an_export_stops_at_the_cap_and_says_so(viewer, monkeypatch):
    monkeypatch.setattr(findings_queries, "EXPORT_CAP", 5)
    monkeypatch.setattr(findings_queries, "EXPORT_BATCH", 2)
    for index in range(7):
        make_finding(vulnerability(f"CVE-{index}"))
    csv_rows = rows_of(viewer.get("/findings/export.csv?sort=vulnerabilityName&dir=asc"))
    assert [row[1] for row in csv_rows[1:]] == [f"CVE-{index}" for index in range(5)]
    log = viewer.get("/findings/export.sarif").json
    assert len(log["runs"][0]["results"]) == 5
    assert log["runs"][0]["properties"] == {"truncated": True, "limit": 5}


def test_exports_follow_the_severity_order_and_filter_across_batches(viewer, monkeypatch):
    monkeypatch.setattr(findings_queries, "EXPORT_BATCH", 3)
    plant_mixed_severities()
    descending = rows_of(viewer.get("/findings/export.csv?sort=severity&dir=desc"))
    assert [row[1] for row in descending[1:]] == BY_SEVERITY_DESCENDING
    assert [row[2].split()[0] for row in descending[1:4]] == ["CRITICAL", "HIGH", "HIGH"]
    log = viewer.get("/findings/export.sarif?sort=severity&dir=asc").json
    assert [result["ruleId"] for result in log["runs"][0]["results"]] == BY_SEVERITY_ASCENDING
    high = viewer.get("/findings/export.csv?severity=HIGH&sort=severity&dir=desc")
    assert [row[1] for row in rows_of(high)[1:]] == ["v-high-1", "v-high-2"]
    assert high.headers["X-Total-Count"] == "2"


def test_a_bad_filter_is_an_error_page_not_a_broken_download(viewer):
    response = viewer.get("/findings/export.csv?first_seen_to=soon")
    assert response.status_code == 400 and "first_seen_to" in response.text
    assert "Content-Disposition" not in response.headers
