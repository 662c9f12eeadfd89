"""Findings processing (anatomy §2.4): asset scan results become Findings and AssetFindings with history.

Asset scans are created and finished through the API, as the orchestrator and
the scanner would; the processing runs in-process and is checked through the API.
"""

import importlib
import time

import pytest

from app.findings import process_asset_scan
from app.models import Asset, AssetFinding, AssetScan, Finding
from conftest import race

T1 = "2024-05-01T10:00:00Z"
T2 = "2024-05-02T10:00:00Z"
T3 = "2024-05-03T10:00:00Z"
T4 = "2024-05-04T10:00:00Z"

#: family api key -> its results list (anatomy §1.3).
RESULTS_KEYS = {"sbom": "packages", "vulnerabilities": "vulnerabilities", "exploits": "exploits",
                "secrets": "secrets", "malware": "malware", "rootkits": "rootkits",
                "misconfigurations": "misconfigurations", "infoFinder": "infos", "plugins": "findingInfos"}
NO_VULNERABILITIES = {"totalCriticalVulnerabilities": 0, "totalHighVulnerabilities": 0,
                      "totalMediumVulnerabilities": 0, "totalLowVulnerabilities": 0,
                      "totalNegligibleVulnerabilities": 0}


# ---- results, as the scanner reports them ----------------------------------------------------

def package(name, version="1.0"):
    return {"name": name, "version": version, "type": "python", "language": "python",
            "purl": f"pkg:pypi/{name}@{version}"}


def vulnerability(name, package_name, version="1.0", severity="HIGH"):
    return {"vulnerabilityName": name, "severity": severity, "description": f"{name} in {package_name}",
            "package": package(package_name, version)}


def secret(fingerprint):
    return {"fingerprint": fingerprint, "filePath": "/etc/app.env", "startLine": 1, "endLine": 1,
            "startColumn": 5, "endColumn": 40, "description": "AWS key"}


def everything():
    """One result of every family, plus a second package and vulnerability."""
    return {
        "sbom": [package("flask"), package("requests", "2.0")],
        "vulnerabilities": [vulnerability("CVE-1", "flask", severity="CRITICAL"),
                            vulnerability("CVE-2", "requests", "2.0", severity="LOW")],
        "exploits": [{"name": "e1", "cveID": "CVE-1", "sourceDB": "exploitdb", "urls": ["https://x/1"]}],
        "secrets": [secret("fp-1")],
        "malware": [{"malwareName": "Eicar", "malwareType": "TEST", "ruleName": "eicar", "path": "/tmp/eicar"}],
        "rootkits": [{"rootkitName": "r1", "rootkitType": "KERNEL", "message": "found"}],
        "misconfigurations": [{"scannerName": "lynis", "id": "SSH-7408", "message": "weak ssh",
                               "severity": "MisconfigurationHighSeverity"}],
        "infoFinder": [{"scannerName": "sshTopology", "type": "SSHDaemonKeyFingerprint", "path": "/etc/ssh",
                        "data": "2048 SHA256:abc"}],
    }


# ---- API helpers -----------------------------------------------------------------------------

def ok(response, code=200):
    assert response.status_code == code, response.get_data(as_text=True)
    return response.get_json()


def make_asset(api, name):
    body = {"assetInfo": {"objectType": "DirInfo", "dirName": f"/srv/{name}", "location": "host-1"}}
    return ok(api.post("/api/assets", json=body), 201)["id"]


def scanner_status(state, t, reason=None):
    return {"state": state, "reason": reason or {"Done": "Success", "Failed": "Error"}[state], "lastTransitionTime": t}


def finished_scan(api, asset_id, t, results, failed=(), state="Done", incomplete=()):
    """An asset scan walked to `state` at time `t` with `results`; families in `failed` Failed,
    those in `incomplete` Done but with reason Error (a scanner of theirs could not scan)."""
    scan_id = ok(api.post("/api/assetScans", json={"asset": {"id": asset_id}}), 201)["id"]
    steps = [("Scheduled", "Provisioning"), ("ReadyToScan", "ResourcesReady"), ("InProgress", "ScannerIsRunning")]
    for step, reason in steps:
        status = {"state": step, "reason": reason, "lastTransitionTime": t}
        ok(api.patch(f"/api/assetScans/{scan_id}", json={"status": status}))
    body = {"status": {"state": state, "reason": "Success" if state == "Done" else "Error", "lastTransitionTime": t}}
    for family, items in results.items():
        reason = "Error" if family in incomplete else None
        body[family] = {"status": scanner_status("Done", t, reason), RESULTS_KEYS[family]: items}
    for family in failed:
        body[family] = {"status": scanner_status("Failed", t)}
    ok(api.patch(f"/api/assetScans/{scan_id}", json=body))
    return scan_id


def items(api, url, **query):
    return ok(api.get(url, query_string=query))["items"]


def findings(api, filter_text=None):
    return items(api, "/api/findings", **({"$filter": filter_text} if filter_text else {}))


def one_finding(api, filter_text):
    found = findings(api, filter_text)
    assert len(found) == 1, found
    return found[0]


def package_finding(api, name, version="1.0"):
    return one_finding(api, f"findingInfo/objectType eq 'Package' and findingInfo/name eq '{name}' "
                            f"and findingInfo/version eq '{version}'")


def asset_findings(api, asset_id):
    """{(type, identifying name): asset finding} of the asset, findings expanded."""
    found = items(api, "/api/assetFindings", **{"$filter": f"asset/id eq '{asset_id}'", "$expand": "finding"})
    return {label(af["finding"]["findingInfo"]): af for af in found}


def label(info):
    for name in ("name", "vulnerabilityName", "fingerprint", "malwareName", "rootkitName", "data"):
        if name in info:
            return info["objectType"], info[name]
    return info["objectType"], info.get("id")


def asset_summary(api, asset_id):
    return ok(api.get(f"/api/assets/{asset_id}"))["summary"]


def database_state():
    """Every findings-related row, columns and documents, in a stable order."""
    def rows(model):
        return [(row.id, row.revision, row.data, row.__data__) for row in model.select().order_by(model.id)]
    return {"findings": rows(Finding), "assetFindings": rows(AssetFinding), "assets": rows(Asset)}


# ---- Findings and AssetFindings ---------------------------------------------------------------

def test_one_finding_per_identity_key_across_assets(api):
    web, db = make_asset(api, "web"), make_asset(api, "db")
    web_scan = finished_scan(api, web, T1, everything())
    db_results = everything()
    db_results["sbom"].append(package("django", "4.2"))
    db_scan = finished_scan(api, db, T2, db_results)

    counts = process_asset_scan(web_scan)
    assert counts["findings"] == {"vulnerabilities": 2, "sbom": 2, "exploits": 1, "secrets": 1, "malware": 1,
                                  "rootkits": 1, "misconfigurations": 1, "infoFinder": 1}
    assert counts["created"] == 10 and counts["invalidated"] == 0
    assert process_asset_scan(db_scan)["created"] == 1  # only django is new

    assert len(findings(api)) == 11
    for object_type, total in [("Package", 3), ("Vulnerability", 2), ("Exploit", 1), ("Secret", 1), ("Malware", 1),
                               ("Rootkit", 1), ("Misconfiguration", 1), ("InfoFinder", 1)]:
        assert len(findings(api, f"findingInfo/objectType eq '{object_type}'")) == total, object_type
    flask = package_finding(api, "flask")
    assert flask["findingInfo"] == {**package("flask"), "objectType": "Package"}
    assert (flask["firstSeen"], flask["lastSeen"], flask["lastSeenBy"]) == (T1, T2, {"id": db_scan})
    django = package_finding(api, "django", "4.2")
    assert (django["firstSeen"], django["lastSeen"], django["lastSeenBy"]) == (T2, T2, {"id": db_scan})

    on_web, on_db = asset_findings(api, web), asset_findings(api, db)
    assert len(on_web) == 10 and len(on_db) == 11
    assert on_web[("Package", "flask")]["finding"]["id"] == on_db[("Package", "flask")]["finding"]["id"]
    assert {(af["firstSeen"], af["lastSeen"]) for af in on_web.values()} == {(T1, T1)}
    assert all("invalidatedOn" not in af for af in list(on_web.values()) + list(on_db.values()))
    for scan_id in (web_scan, db_scan):
        scan = ok(api.get(f"/api/assetScans/{scan_id}"))
        assert scan["findingsProcessed"] is True
    # Documents, revision and columns agree, as the store keeps them.
    for row in Finding.select():
        assert row.data["id"] == row.id and row.data["revision"] == row.revision
        assert row.last_seen_by_id == row.data["lastSeenBy"]["id"]


def test_duplicate_results_in_one_scan_are_one_finding(api):
    asset = make_asset(api, "web")
    dup = vulnerability("CVE-9", "flask")
    scan = finished_scan(api, asset, T1, {"sbom": [package("flask"), package("flask")],
                                          "vulnerabilities": [dup, {**dup, "path": "/other"}]})
    assert process_asset_scan(scan)["findings"] == {"vulnerabilities": 1, "sbom": 1}
    assert len(findings(api)) == 2 and len(asset_findings(api, asset)) == 2
    # The first result of a key is the one kept.
    assert "path" not in one_finding(api, "findingInfo/objectType eq 'Vulnerability'")["findingInfo"]


def test_last_seen_moves_forward_and_never_back(api):
    a, b, c = make_asset(api, "a"), make_asset(api, "b"), make_asset(api, "c")
    results = {"sbom": [package("flask")]}
    middle, late, early = (finished_scan(api, a, T2, results), finished_scan(api, b, T3, results),
                           finished_scan(api, c, T1, results))
    process_asset_scan(middle)
    process_asset_scan(late)
    flask = package_finding(api, "flask")
    assert (flask["firstSeen"], flask["lastSeen"], flask["lastSeenBy"]) == (T2, T3, {"id": late})

    process_asset_scan(early)  # an older scan, processed late
    flask = package_finding(api, "flask")
    assert (flask["lastSeen"], flask["lastSeenBy"]) == (T3, {"id": late})
    assert flask["firstSeen"] == T1  # history starts at the earliest sighting
    on_c = asset_findings(api, c)[("Package", "flask")]
    assert (on_c["firstSeen"], on_c["lastSeen"]) == (T1, T1)


def test_times_compare_as_instants_not_text(api):
    asset = make_asset(api, "web")
    first = finished_scan(api, asset, "2024-05-01T12:00:00+02:00", {"sbom": [package("flask")]})
    second = finished_scan(api, asset, "2024-05-01T10:30:00.5Z", {"sbom": [package("flask")]})
    process_asset_scan(first)
    process_asset_scan(second)
    flask = package_finding(api, "flask")
    assert (flask["lastSeen"], flask["lastSeenBy"]) == ("2024-05-01T10:30:00.5Z", {"id": second})


def test_missing_finding_is_invalidated_and_revalidated_when_it_returns(api):
    asset = make_asset(api, "web")
    both = {"sbom": [package("flask"), package("requests")], "secrets": [secret("fp-1")]}
    process_asset_scan(finished_scan(api, asset, T1, both))
    counts = process_asset_scan(finished_scan(api, asset, T2, {"sbom": [package("flask")],
                                                               "secrets": [secret("fp-1")]}))
    assert counts["invalidated"] == 1

    on_asset = asset_findings(api, asset)
    assert on_asset[("Package", "requests")]["invalidatedOn"] == T2
    assert on_asset[("Package", "requests")]["lastSeen"] == T1
    assert "invalidatedOn" not in on_asset[("Package", "flask")]
    assert on_asset[("Package", "flask")]["lastSeen"] == T2
    assert "invalidatedOn" not in on_asset[("Secret", "fp-1")]
    assert asset_summary(api, asset)["totalPackages"] == 1
    # The finding itself stays: another asset may still have it, and it is history.
    assert package_finding(api, "requests")["lastSeen"] == T1

    process_asset_scan(finished_scan(api, asset, T3, both))
    requests = asset_findings(api, asset)[("Package", "requests")]
    assert "invalidatedOn" not in requests
    assert (requests["firstSeen"], requests["lastSeen"]) == (T1, T3)
    assert asset_summary(api, asset)["totalPackages"] == 2


def test_older_scan_processed_late_keeps_later_history(api):
    asset = make_asset(api, "web")
    process_asset_scan(finished_scan(api, asset, T1, {"sbom": [package("flask"), package("requests")]}))
    process_asset_scan(finished_scan(api, asset, T3, {"sbom": [package("flask")]}))
    # A T2 scan that saw requests again but not flask arrives after the T3 one.
    process_asset_scan(finished_scan(api, asset, T2, {"sbom": [package("requests")]}))

    on_asset = asset_findings(api, asset)
    flask, requests = on_asset[("Package", "flask")], on_asset[("Package", "requests")]
    assert "invalidatedOn" not in flask and flask["lastSeen"] == T3  # seen after T2
    assert requests["lastSeen"] == T2 and requests["invalidatedOn"] == T3  # gone again at T3
    assert asset_summary(api, asset)["totalPackages"] == 1


def test_failed_family_is_skipped_and_does_not_invalidate(api):
    asset = make_asset(api, "web")
    process_asset_scan(finished_scan(api, asset, T1, {"sbom": [package("flask")], "secrets": [secret("fp-1")]}))
    second = finished_scan(api, asset, T2, {"sbom": [package("flask")]}, failed=("secrets",), state="Failed")
    counts = process_asset_scan(second)
    assert counts["findings"] == {"sbom": 1} and counts["invalidated"] == 0

    secret_finding = asset_findings(api, asset)[("Secret", "fp-1")]
    assert "invalidatedOn" not in secret_finding and secret_finding["lastSeen"] == T1
    assert asset_summary(api, asset)["totalSecrets"] == 1
    assert ok(api.get(f"/api/assetScans/{second}"))["findingsProcessed"] is True


def test_family_done_with_no_results_invalidates_its_findings(api):
    asset = make_asset(api, "web")
    process_asset_scan(finished_scan(api, asset, T1, {"secrets": [secret("fp-1"), secret("fp-2")]}))
    process_asset_scan(finished_scan(api, asset, T2, {"secrets": []}))
    assert {af["invalidatedOn"] for af in asset_findings(api, asset).values()} == {T2}
    assert asset_summary(api, asset)["totalSecrets"] == 0


def test_incomplete_family_adds_its_findings_but_invalidates_nothing(api):
    """malware Done/Error: yara scanned, clam could not; what clam found before is not gone."""
    asset = make_asset(api, "web")
    process_asset_scan(finished_scan(api, asset, T1, {"secrets": [secret("fp-1")]}))
    counts = process_asset_scan(finished_scan(api, asset, T2, {"secrets": [secret("fp-2")]}, incomplete=("secrets",)))
    assert counts["invalidated"] == 0
    on_asset = asset_findings(api, asset)
    assert "invalidatedOn" not in on_asset[("Secret", "fp-1")] and on_asset[("Secret", "fp-1")]["lastSeen"] == T1
    assert on_asset[("Secret", "fp-2")]["lastSeen"] == T2
    assert asset_summary(api, asset)["totalSecrets"] == 2
    assert asset_summary(api, asset)["totalPlugins"] == 0
    # A later complete run that sees neither is what ends them.
    process_asset_scan(finished_scan(api, asset, T3, {"secrets": []}))
    assert {af["invalidatedOn"] for af in asset_findings(api, asset).values()} == {T3}


def test_a_later_incomplete_scan_processed_first_does_not_end_history(api):
    asset = make_asset(api, "web")
    process_asset_scan(finished_scan(api, asset, T3, {"secrets": []}, incomplete=("secrets",)))
    process_asset_scan(finished_scan(api, asset, T1, {"secrets": [secret("fp-1")]}))
    finding = asset_findings(api, asset)[("Secret", "fp-1")]
    assert "invalidatedOn" not in finding and finding["lastSeen"] == T1


def test_unfinished_or_missing_scan_is_not_processed(api):
    asset = make_asset(api, "web")
    scan_id = ok(api.post("/api/assetScans", json={"asset": {"id": asset}}), 201)["id"]
    assert process_asset_scan(scan_id) == {"skipped": "not finished"}
    assert process_asset_scan("no-such-scan") == {"skipped": "not found"}
    assert findings(api) == []


# ---- summaries -------------------------------------------------------------------------------

def test_package_summary_counts_vulnerabilities_of_the_same_package(api):
    web, db = make_asset(api, "web"), make_asset(api, "db")
    process_asset_scan(finished_scan(api, web, T1, {
        "sbom": [package("flask"), package("flask", "2.0"), package("requests")],
        "vulnerabilities": [vulnerability("CVE-1", "flask", severity="CRITICAL"),
                            vulnerability("CVE-2", "flask", severity="HIGH"),
                            vulnerability("CVE-3", "flask", severity="HIGH"),
                            vulnerability("CVE-4", "flask", "2.0", severity="LOW")],
    }))
    assert package_finding(api, "flask")["summary"] == {
        "updatedAt": T1,
        "totalVulnerabilities": {**NO_VULNERABILITIES, "totalCriticalVulnerabilities": 1,
                                 "totalHighVulnerabilities": 2},
    }
    assert package_finding(api, "flask", "2.0")["summary"]["totalVulnerabilities"] == {
        **NO_VULNERABILITIES, "totalLowVulnerabilities": 1}
    assert package_finding(api, "requests")["summary"] == {"updatedAt": T1,
                                                           "totalVulnerabilities": NO_VULNERABILITIES}

    # Another asset's scan finds one more vulnerability in flask 1.0: the count is global.
    process_asset_scan(finished_scan(api, db, T2, {
        "sbom": [package("flask")],
        "vulnerabilities": [vulnerability("CVE-1", "flask", severity="CRITICAL"),
                            vulnerability("CVE-5", "flask", severity="MEDIUM")],
    }))
    assert package_finding(api, "flask")["summary"] == {
        "updatedAt": T2,
        "totalVulnerabilities": {**NO_VULNERABILITIES, "totalCriticalVulnerabilities": 1,
                                 "totalHighVulnerabilities": 2, "totalMediumVulnerabilities": 1},
    }


def test_asset_summary_counts_only_valid_findings(api):
    asset = make_asset(api, "web")
    process_asset_scan(finished_scan(api, asset, T1, everything()))
    assert asset_summary(api, asset) == {
        "totalPackages": 2, "totalExploits": 1, "totalMalware": 1, "totalMisconfigurations": 1,
        "totalRootkits": 1, "totalSecrets": 1, "totalInfoFinder": 1, "totalPlugins": 0,
        "totalVulnerabilities": {**NO_VULNERABILITIES, "totalCriticalVulnerabilities": 1,
                                 "totalLowVulnerabilities": 1},
    }
    later = everything()
    later["vulnerabilities"] = [vulnerability("CVE-1", "flask", severity="CRITICAL"),
                                vulnerability("CVE-7", "flask", severity="HIGH"),
                                vulnerability("CVE-8", "flask", severity="HIGH")]
    later["malware"] = []
    process_asset_scan(finished_scan(api, asset, T2, later))
    summary = asset_summary(api, asset)
    assert summary["totalMalware"] == 0 and summary["totalPackages"] == 2
    assert summary["totalVulnerabilities"] == {**NO_VULNERABILITIES, "totalCriticalVulnerabilities": 1,
                                               "totalHighVulnerabilities": 2}
    assert ok(api.get(f"/api/assets/{asset}"))["revision"] == 3  # created, then one change per scan


def test_plugin_findings_carry_their_type_and_are_never_invalidated(api):
    asset = make_asset(api, "web")
    plugin_package = {**package("left-pad", "1.3"), "objectType": "Package"}
    counts = process_asset_scan(finished_scan(api, asset, T1, {"plugins": [plugin_package]}))
    assert counts["findings"] == {"plugins": 1}
    assert asset_summary(api, asset)["totalPlugins"] == 1
    process_asset_scan(finished_scan(api, asset, T2, {"plugins": [], "sbom": [package("flask")]}))
    # The sbom family invalidates every package it did not see, plugin ones included;
    # the plugins family itself invalidates nothing.
    left_pad = asset_findings(api, asset)[("Package", "left-pad")]
    assert left_pad["invalidatedOn"] == T2
    process_asset_scan(finished_scan(api, asset, T3, {"plugins": [plugin_package]}))
    assert "invalidatedOn" not in asset_findings(api, asset)[("Package", "left-pad")]
    process_asset_scan(finished_scan(api, asset, T4, {"plugins": []}))
    assert "invalidatedOn" not in asset_findings(api, asset)[("Package", "left-pad")]
    assert asset_summary(api, asset)["totalPlugins"] == 0


def test_plugin_results_of_unknown_type_are_skipped(api):
    asset = make_asset(api, "web")
    scan = finished_scan(api, asset, T1, {"plugins": [{**package("a"), "objectType": "Package"}]})
    # Results are validated by the API, so an unknown type can only come from a stored document.
    row = AssetScan.get(AssetScan.id == scan)
    row.data["plugins"]["findingInfos"].append({"objectType": "Nothing", "name": "x"})
    AssetScan.update(data=row.data).where(AssetScan.id == scan).execute()
    assert process_asset_scan(scan)["findings"] == {"plugins": 1}
    assert len(findings(api)) == 1


# ---- idempotency, crash safety, concurrency, speed -------------------------------------------

def test_processing_twice_changes_nothing(api):
    asset, other = make_asset(api, "web"), make_asset(api, "db")
    process_asset_scan(finished_scan(api, other, T1, everything()))
    scan = finished_scan(api, asset, T2, everything())
    process_asset_scan(scan)
    before = database_state()

    assert process_asset_scan(scan) == {"skipped": "already processed"}
    assert database_state() == before

    # Even when told to redo it (as after a crash between commit and acknowledgement).
    ok(api.patch(f"/api/assetScans/{scan}", json={"findingsProcessed": False}))
    counts = process_asset_scan(scan)
    assert counts["created"] == 0 and counts["invalidated"] == 0
    assert database_state() == before


def test_failure_midway_leaves_the_scan_unprocessed(api, monkeypatch):
    from app import findings as service

    asset = make_asset(api, "web")
    scan = finished_scan(api, asset, T1, everything())

    def crash(plan):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(service, "_invalidate", crash)
    with pytest.raises(RuntimeError):
        process_asset_scan(scan)
    assert findings(api) == [] and not ok(api.get(f"/api/assetScans/{scan}")).get("findingsProcessed")
    assert [row.id for row in AssetScan.awaiting_findings()] == [scan]

    monkeypatch.undo()
    assert process_asset_scan(scan)["created"] == 10
    assert list(AssetScan.awaiting_findings()) == []


def test_awaiting_findings_lists_finished_unprocessed_scans(api):
    asset = make_asset(api, "web")
    running = ok(api.post("/api/assetScans", json={"asset": {"id": asset}}), 201)["id"]
    done = finished_scan(api, asset, T1, {"sbom": [package("flask")]})
    failed = finished_scan(api, asset, T2, {}, state="Failed")
    assert [row.id for row in AssetScan.awaiting_findings()] == [done, failed]  # not `running`
    assert process_asset_scan(running) == {"skipped": "not finished"}
    process_asset_scan(done)
    process_asset_scan(failed)
    assert list(AssetScan.awaiting_findings()) == []




@pytest.mark.parametrize("round_", range(3))
def test_concurrent_scans_of_different_assets_share_findings(api, round_):
    shared = [package(f"shared-{i}") for i in range(150)]
    vulnerabilities = [vulnerability(f"CVE-{i}", f"shared-{i}") for i in range(0, 150, 3)]
    times = [T1, T2, T3, T4]
    assets = [make_asset(api, f"host-{i}") for i in range(len(times))]
    scans = []
    for i, (asset, t) in enumerate(zip(assets, times)):
        own = [package(f"own-{i}-{j}") for j in range(20)]
        # Each asset lists the shared packages in a different order.
        order = shared[i * 37 % 150:] + shared[:i * 37 % 150]
        scans.append(finished_scan(api, asset, t, {"sbom": own + order, "vulnerabilities": vulnerabilities}))

    # Newest first, so the older scans race against finished newer ones too.
    results = race([lambda s=s: process_asset_scan(s) for s in reversed(scans)])
    assert sum(r["created"] for r in results) == 150 + 50 + 4 * 20

    rows = list(Finding.select())
    assert len(rows) == 150 + 50 + 4 * 20
    for row in rows:
        if row.data["findingInfo"].get("name", "").startswith("own-"):
            continue
        assert (row.data["firstSeen"], row.data["lastSeen"]) == (T1, T4), row.data
        assert row.data["lastSeenBy"] == {"id": scans[-1]} and row.last_seen_by_id == scans[-1]
        assert row.data["revision"] == row.revision
    for asset in assets:
        assert AssetFinding.select().where(AssetFinding.asset == asset).count() == 150 + 50 + 20
        assert asset_summary(api, asset)["totalPackages"] == 170
    assert package_finding(api, "shared-0")["summary"]["totalVulnerabilities"]["totalHighVulnerabilities"] == 1


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_scans_count_every_vulnerability_of_a_shared_package(api, round_):
    # Each asset's scan adds its own vulnerability of one package that all of them have: whichever
    # commits last must count the others' too (the counts are read once the package is locked).
    severities = ("CRITICAL", "HIGH", "LOW")
    times = [T1, T2, T3, T4] * 2
    scans = []
    for i, t in enumerate(times):
        asset = make_asset(api, f"host-{i}")
        scans.append(finished_scan(api, asset, t, {
            "sbom": [package("flask"), package(f"own-{i}")],
            "vulnerabilities": [vulnerability(f"CVE-{i}", "flask", severity=severities[i % 3])]}))
    race([lambda s=s: process_asset_scan(s) for s in scans])
    assert package_finding(api, "flask")["summary"]["totalVulnerabilities"] == {
        **NO_VULNERABILITIES, "totalCriticalVulnerabilities": 3, "totalHighVulnerabilities": 3,
        "totalLowVulnerabilities": 2}
    flask = package_finding(api, "flask")
    assert (flask["firstSeen"], flask["lastSeen"]) == (T1, T4)


def test_two_scans_of_one_asset_at_once(api):
    asset = make_asset(api, "web")
    older = finished_scan(api, asset, T1, {"sbom": [package("flask"), package("requests")]})
    newer = finished_scan(api, asset, T2, {"sbom": [package("flask")]})
    race([lambda: process_asset_scan(newer), lambda: process_asset_scan(older)])
    on_asset = asset_findings(api, asset)
    # Whichever ran first, the outcome is the one of processing them in order.
    assert on_asset[("Package", "requests")]["invalidatedOn"] == T2
    assert on_asset[("Package", "flask")]["lastSeen"] == T2
    assert asset_summary(api, asset)["totalPackages"] == 1


def test_two_thousand_findings_are_processed_quickly(api):
    asset = make_asset(api, "big")
    packages = [package(f"pkg-{i}", f"1.{i % 7}") for i in range(1000)]
    severities = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE")
    vulnerabilities = [vulnerability(f"CVE-2024-{i}", f"pkg-{i}", f"1.{i % 7}", severities[i % 5])
                       for i in range(1000)]
    first = finished_scan(api, asset, T1, {"sbom": packages, "vulnerabilities": vulnerabilities})
    second = finished_scan(api, asset, T2, {"sbom": packages[:900], "vulnerabilities": vulnerabilities})

    started = time.perf_counter()
    counts = process_asset_scan(first)
    new_seconds = time.perf_counter() - started
    started = time.perf_counter()
    again = process_asset_scan(second)
    seen_seconds = time.perf_counter() - started
    print(f"\n2,000 findings: {new_seconds:.2f}s new, {seen_seconds:.2f}s seen again "
          f"({again['invalidated']} invalidated)")

    assert counts["created"] == 2000 and again["created"] == 0 and again["invalidated"] == 100
    assert asset_summary(api, asset)["totalVulnerabilities"] == {
        f"total{s.capitalize()}Vulnerabilities": 200 for s in severities}


def test_actor_processes_and_logs(api, monkeypatch, caplog):
    from app.signals import document_changed

    monkeypatch.setenv("VMCLARITY_REDIS_URL", "redis://127.0.0.1:6379/15")
    receivers = len(document_changed.receivers)
    actor = importlib.import_module("tasks.findings").process_findings
    if len(document_changed.receivers) > receivers:  # importing `tasks` hooked the orchestrator in
        importlib.import_module("tasks.triggers").disconnect()
    assert actor.queue_name == "orchestrator"
    assert actor.options["max_retries"] == 5 and actor.options["time_limit"] == 600_000
    asset = make_asset(api, "web")
    scan = finished_scan(api, asset, T1, {"sbom": [package("flask")]})
    with caplog.at_level("INFO"):
        actor.fn(scan)
        actor.fn(scan)
    assert f"asset scan {scan}: {{'findings': {{'sbom': 1}}, 'created': 1" in caplog.text
    assert "already processed" in caplog.text
    assert ok(api.get(f"/api/assetScans/{scan}"))["findingsProcessed"] is True
    assert len(findings(api)) == 1


def test_newer_scan_processed_first_still_invalidates_what_the_older_one_adds(api):
    asset = make_asset(api, "web")
    older = finished_scan(api, asset, T1, {"sbom": [package("flask"), package("requests")], "secrets": []})
    newer = finished_scan(api, asset, T3, {"sbom": [package("flask")]})
    process_asset_scan(newer)
    process_asset_scan(older)
    on_asset = asset_findings(api, asset)
    assert on_asset[("Package", "requests")]["invalidatedOn"] == T3
    assert (on_asset[("Package", "requests")]["firstSeen"], on_asset[("Package", "requests")]["lastSeen"]) == (T1, T1)
    assert "invalidatedOn" not in on_asset[("Package", "flask")]
    assert asset_summary(api, asset)["totalPackages"] == 1

    # A T2 scan processed last sees requests again: still gone at T3, its last sighting moves.
    process_asset_scan(finished_scan(api, asset, T2, {"sbom": [package("requests")]}))
    requests = asset_findings(api, asset)[("Package", "requests")]
    assert (requests["lastSeen"], requests["invalidatedOn"]) == (T2, T3)
