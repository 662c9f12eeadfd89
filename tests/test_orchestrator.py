"""The orchestrator end to end on the local provider, with real Redis and a real worker.

The API is served over HTTP for the scanner processes the local provider starts;
the Dramatiq worker runs in this process on the same database.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import warnings

import pytest

import tasks
from app.db import database
from app.models import ApiToken
from conftest import (ADMIN_TOKEN, CVE, DROPPER, EICAR, OSV_RECORD, AuthedClient, ext4_image, github_token,
                      loops_of, mounts_of, need, orchestrated, plant_python_package, rootkits_unavailable,
                      write_file, write_osv)
import tasks.asset_scans
import tasks.scheduler
from tasks.providers import get_provider
from tasks.providers.local import LocalProvider
from tasks.settings import orchestrator_settings

FAMILIES = {"sbom": {"enabled": True, "analyzers": ["native"]},
            "vulnerabilities": {"enabled": True, "scanners": ["osv"]}}


@pytest.fixture
def roots(tmp_path):
    roots = []
    for index in range(3):
        root = tmp_path / f"machine{index}"
        (root / "etc").mkdir(parents=True)
        (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
        plant_python_package(root, "vmclarity-safe", "2.0")
        roots.append(root)
    plant_python_package(roots[0], "vmclarity-demo", "1.0")
    return roots


@pytest.fixture
def orchestrator(database_url, tmp_path, roots, monkeypatch):
    """The whole system on the local provider over `roots`; an admin API client of it."""
    osv = write_osv(tmp_path / "osv", [OSV_RECORD])
    with orchestrated(database_url, tmp_path, monkeypatch, roots, SCANNER_OSV_DB_PATH=osv, ABORT_TIMEOUT=30) as (app, _):
        yield AuthedClient(app.test_client(), ADMIN_TOKEN)


def discover(api):
    tasks.discover_assets.fn()
    return {a["assetInfo"]["dirName"]: a for a in api.get("/api/assets").get_json()["items"]}


def scan_config(api, scope, **template):
    body = {"name": f"config-{time.monotonic_ns()}",
            "scheduled": {"operationTime": "2000-01-01T00:00:00Z"},
            "scanTemplate": {"scope": scope, "maxParallelScanners": template.pop("maxParallelScanners", 2),
                             "assetScanTemplate": {"scanFamiliesConfig": template.pop("families", FAMILIES)},
                             **template}}
    response = api.post("/api/scanConfigs", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def wait_for_scan(api, config_id, done=("Done", "Failed"), timeout=90, watch=None, after=None):
    """The config's newest scan (other than `after`) once it reaches a state in `done`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scans = api.get(f"/api/scans?$filter=scanConfig/id eq '{config_id}'&$orderby=startTime desc").get_json()
        if watch:
            watch()
        newest = scans["items"][0] if scans["items"] else None
        if newest and newest["id"] != after and newest["status"]["state"] in done:
            return newest
        time.sleep(0.2)
    raise AssertionError(f"no scan of {config_id} reached {done} in {timeout}s: {scans}")


def start_now(api, config):
    current = api.get(f"/api/scanConfigs/{config['id']}").get_json()
    response = api.patch(f"/api/scanConfigs/{config['id']}", json={
        "disabled": False, "scheduled": {"operationTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}},
        headers={"If-Match": str(current["revision"])})
    assert response.status_code == 200, response.get_json()


def test_scan_finds_planted_findings_then_invalidates_a_removed_one(orchestrator, roots):
    api = orchestrator
    assets = discover(api)
    config = scan_config(api, f"assetInfo/dirName eq '{roots[0]}'")
    scan = wait_for_scan(api, config["id"])
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Done", "Success"), scan
    assert scan["status"]["message"] == "1 succeeded, 0 failed out of 1 total asset scans"
    assert scan["summary"]["totalVulnerabilities"]["totalCriticalVulnerabilities"] == 1

    asset_id = assets[str(roots[0])]["id"]
    wait_until(lambda: api.get(f"/api/assetScans?$filter=scan/id eq '{scan['id']}'").get_json()["items"][0]
               .get("findingsProcessed"))
    vulnerable = api.get(f"/api/assetFindings?$filter=asset/id eq '{asset_id}' and "
                         f"finding/findingInfo/objectType eq 'Vulnerability'&$expand=finding").get_json()["items"]
    assert [f["finding"]["findingInfo"]["vulnerabilityName"] for f in vulnerable] == [CVE]
    assert "invalidatedOn" not in vulnerable[0]

    shutil.rmtree(next((roots[0] / "usr/lib/python3/dist-packages").glob("vmclarity_demo-*")))
    start_now(api, config)
    second = wait_for_scan(api, config["id"], after=scan["id"])
    assert second["status"]["state"] == "Done"
    wait_until(lambda: "invalidatedOn" in api.get(f"/api/assetFindings/{vulnerable[0]['id']}").get_json())
    packages = api.get(f"/api/assetFindings?$filter=asset/id eq '{asset_id}' and "
                       "finding/findingInfo/objectType eq 'Package' and invalidatedOn eq null"
                       "&$expand=finding").get_json()["items"]
    assert [p["finding"]["findingInfo"]["name"] for p in packages] == ["vmclarity-safe"]
    assert_no_scanners_left(api)


def test_scope_matching_nothing_is_done_with_nothing_to_scan(orchestrator):
    api = orchestrator
    discover(api)
    scan = wait_for_scan(api, scan_config(api, "assetInfo/dirName eq '/nowhere'")["id"])
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Done", "NothingToScan")


def test_max_parallel_scanners_is_respected(orchestrator, roots):
    api = orchestrator
    discover(api)
    config = scan_config(api, "assetInfo/objectType eq 'DirInfo'", maxParallelScanners=1)
    peak = []

    def watch():
        items = api.get("/api/assetScans?$filter=status/state eq 'Scheduled' or status/state eq 'ReadyToScan' "
                        "or status/state eq 'InProgress'&$count=true").get_json()
        peak.append(items["count"])

    scan = wait_for_scan(api, config["id"], watch=watch, timeout=120)
    assert scan["status"]["state"] == "Done", scan
    assert scan["status"]["message"] == "3 succeeded, 0 failed out of 3 total asset scans"
    assert max(peak) == 1


def test_abort_fails_the_scan_with_cancellation(orchestrator, roots, monkeypatch, hanging_server):
    api = orchestrator
    # The first asset scan (roots[0]'s) waits on an exploit lookup that hangs: it cannot finish
    # Done before the abort reaches it.
    monkeypatch.setenv("VMCLARITY_SCANNER_EXPLOITDB_URL", hanging_server)
    discover(api)
    config = scan_config(api, "assetInfo/objectType eq 'DirInfo'", maxParallelScanners=1,
                         families={**FAMILIES, "exploits": {"enabled": True}})
    running = wait_for_scan(api, config["id"], done=("InProgress",))
    wait_until(lambda: any((a.get("exploits") or {}).get("status", {}).get("state") == "InProgress" for a in
                           api.get(f"/api/assetScans?$filter=scan/id eq '{running['id']}'").get_json()["items"]))
    response = api.patch(f"/api/scans/{running['id']}", json={"status": {
        "state": "Aborted", "reason": "Cancellation", "lastTransitionTime": "2099-01-01T00:00:00Z"}})
    assert response.status_code == 200, response.get_json()
    scan = wait_for_scan(api, config["id"])
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Failed", "Cancellation")
    wait_until(lambda: all(a["status"]["state"] == "Failed" and a["resourceCleanupStatus"]["state"] == "Done"
                           for a in api.get(f"/api/assetScans?$filter=scan/id eq '{scan['id']}'")
                           .get_json()["items"]), timeout=60)
    assert_no_scanners_left(api)


def test_short_timeout_fails_the_scan_with_timeout(orchestrator, roots, monkeypatch, hanging_server):
    api = orchestrator
    monkeypatch.setenv("VMCLARITY_SCANNER_EXPLOITDB_URL", hanging_server)
    discover(api)
    # The exploit lookup of the vulnerable package outlasts the one-second timeout.
    families = {**FAMILIES, "exploits": {"enabled": True}}
    config = scan_config(api, f"assetInfo/dirName eq '{roots[0]}'", families=families, timeoutSeconds=1)
    scan = wait_for_scan(api, config["id"])
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Failed", "Timeout")
    assert_no_scanners_left(api)  # the aborted scanner stops, and its asset scan is cleaned up


@pytest.mark.parametrize("kind", ["directory", "disk image", "directory, found by the sweep"])
def test_a_scanner_killed_mid_scan_fails_its_asset_scan_and_leaves_nothing(
        orchestrator, roots, tmp_path, monkeypatch, hanging_server, request, kind):
    api = orchestrator
    monkeypatch.setenv("VMCLARITY_SCANNER_EXPLOITDB_URL", hanging_server)
    monkeypatch.setenv("VMCLARITY_SCANNER_EXIT_GRACE", "1")
    sweeps = []
    if kind.endswith("sweep"):
        # As when the worker that started the scanner died: nobody is told of its exit, and only
        # the scheduler's sweep (played here once a second) finds it gone, without an exit code.
        monkeypatch.setattr(tasks.asset_scans, "provider_of",
                            lambda settings: get_provider(settings["provider"], settings))
        monkeypatch.setattr(LocalProvider, "_reap", lambda self, asset_scan_id, process: process.wait())
        sweeps.append(0.0)
    assets = discover(api)
    healthy = assets[str(roots[1])]
    if kind.startswith("directory"):
        victim = assets[str(roots[0])]
    else:
        request.getfixturevalue("loop_devices")  # skips only this case where loop devices are refused
        image = ext4_image(tmp_path / "disk.img", roots[0])
        [info] = LocalProvider({"data_dir": str(tmp_path), "local_assets": [str(image)]}).discover_assets()
        victim = api.post("/api/assets", json={"assetInfo": info}).get_json()
    # The exploit lookup of the victim's vulnerable package hangs: its scanner stays mid-scan.
    families = {**FAMILIES, "exploits": {"enabled": True}}
    config = scan_config(api, f"id eq '{victim['id']}' or id eq '{healthy['id']}'", families=families)
    running = wait_for_scan(api, config["id"], done=("InProgress",))

    def victim_scan():
        items = api.get(f"/api/assetScans?$filter=scan/id eq '{running['id']}' and "
                        f"asset/id eq '{victim['id']}'").get_json()["items"]
        return items[0] if items and (items[0].get("exploits") or {}).get("status", {}).get(
            "state") == "InProgress" else None

    wait_until(victim_scan)
    asset_scan_id = victim_scan()["id"]
    assert tokens_of(asset_scan_id) == 1
    record = json.loads((tmp_path / "data/local-provider" / asset_scan_id / "state.json").read_text())
    if kind == "disk image":
        assert mounts_of(record["loop"])  # the scanner has the snapshot mounted
    os.kill(record["pid"], signal.SIGKILL)

    def sweep():
        if sweeps and time.monotonic() - sweeps[-1] > 1:
            sweeps.append(time.monotonic())
            with database.connection_context():
                tasks.scheduler.sweep(orchestrator_settings())

    scan = wait_for_scan(api, config["id"], watch=sweep)
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Failed", "Error"), scan["status"]
    assert scan["status"]["message"] == "1 succeeded, 1 failed out of 2 total asset scans"
    failed = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    assert failed["status"]["reason"] == "Error"
    assert failed["status"]["message"] == ("scanner exited without reporting (exit code unknown)" if sweeps else
                                           "scanner exited with code -9 (killed by SIGKILL) without reporting")
    assert_no_scanners_left(api)
    assert tokens_of(asset_scan_id) == 0
    if kind == "disk image":
        assert mounts_of(record["loop"]) == [] and loops_of(image) == []
    left = sorted(p.name for p in (tmp_path / "data/local-provider").iterdir())
    assert set(left) <= {"logs", "attach.lock"}, left  # the kept logs and the provider's own lock


def tokens_of(asset_scan_id):
    with database.connection_context():
        return ApiToken.select().where(ApiToken.asset_scan == asset_scan_id).count()


#: Every family, as a scan template enables it through the API.
EVERY_FAMILY = {"sbom": {"enabled": True, "analyzers": ["native"]},
                "vulnerabilities": {"enabled": True, "scanners": ["osv"]},
                "exploits": {"enabled": True}, "secrets": {"enabled": True}, "malware": {"enabled": True},
                "rootkits": {"enabled": True}, "misconfigurations": {"enabled": True},
                "infoFinder": {"enabled": True}}


def test_every_family_end_to_end_through_the_orchestrator(
        orchestrator, tmp_path, monkeypatch, vulnerability_data, signatures, rules):
    """The original's "full" e2e case: one directory asset, every family on, findings of every type."""
    need("ssh-keygen")
    api = orchestrator
    osv, csv = vulnerability_data
    for name, value in (("OSV_DB_PATH", osv), ("EXPLOITDB_CSV_PATH", csv), ("CLAM_DATABASE_DIR", signatures),
                        ("YARA_RULE_PATHS", rules)):
        monkeypatch.setenv(f"VMCLARITY_SCANNER_{name}", str(value))
    root = tmp_path / "full"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    plant_python_package(root, "vmclarity-demo", "1.0")  # a critical CVE with an exploit (conftest's vulnerability_data)
    write_file(root, "/etc/deploy.env", f"GITHUB_TOKEN={github_token('Zq3v8Xk2Lm9Pw4Rt7Yb1Nc6Hd5Js0F')}\n")
    write_file(root, "/etc/ssh/sshd_config", "PermitRootLogin yes\nPermitEmptyPasswords yes\n")
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", root / "etc/ssh/ssh_host_ed25519_key"],
                   check=True)
    (root / "home/user").mkdir(parents=True)
    (root / "home/user/eicar.com").write_bytes(EICAR)
    (root / "bin").mkdir()
    (root / "bin/dropper").write_bytes(DROPPER)
    for directory in ("proc", "dev", "var/tmp", "root"):  # an empty /proc, as on a snapshot
        (root / directory).mkdir(parents=True)
    write_file(root, "/tmp/kdevtmpfsi", "x")  # Kinsing, to chkrootkit
    families = dict(EVERY_FAMILY)
    expected = {"Package", "Vulnerability", "Exploit", "Secret", "Malware", "Rootkit", "Misconfiguration",
                "InfoFinder"}
    if reason := rootkits_unavailable():  # chkrootkit needs root for its private read-only view
        warnings.warn(reason)
        families["rootkits"] = {"enabled": False}
        expected.discard("Rootkit")

    asset = api.post("/api/assets", json={"assetInfo": {
        "objectType": "DirInfo", "dirName": str(root), "location": "test"}}).get_json()
    config = scan_config(api, f"id eq '{asset['id']}'", families=families)
    scan = wait_for_scan(api, config["id"], timeout=240)
    [asset_scan] = api.get(f"/api/assetScans?$filter=scan/id eq '{scan['id']}'").get_json()["items"]
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Done", "Success"), (scan, asset_scan)
    states = {key: asset_scan[key]["status"]["state"] for key in EVERY_FAMILY}
    assert states == {key: "Done" if families[key]["enabled"] else "Skipped" for key in EVERY_FAMILY}, states

    wait_until(lambda: api.get(f"/api/assetScans/{asset_scan['id']}").get_json().get("findingsProcessed"))
    found = {}
    for item in api.get("/api/findings?$top=1000").get_json()["items"]:
        found.setdefault(item["findingInfo"]["objectType"], []).append(item["findingInfo"])
    assert set(found) == expected, sorted(found)
    assert [v["vulnerabilityName"] for v in found["Vulnerability"]] == [CVE]
    assert [e["cveID"] for e in found["Exploit"]] == [CVE]
    assert {(m["malwareName"], m["path"]) for m in found["Malware"]} >= {
        ("EICAR_HDB-1", "/home/user/eicar.com"), ("VmclarityDropper-1", "/bin/dropper"),
        ("PlantedMarker", "/bin/dropper")}
    assert "/etc/deploy.env" in {s["filePath"] for s in found["Secret"]}
    assert any("PermitRootLogin" in m["message"] for m in found["Misconfiguration"])
    assert [i["type"] for i in found["InfoFinder"]] == ["SSHDaemonKeyFingerprint"]
    if "Rootkit" in expected:
        assert [r["rootkitName"] for r in found["Rootkit"]] == ["Kinsing.a backdoor"], found["Rootkit"]
    assert_no_scanners_left(api)


def wait_until(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def assert_no_scanners_left(api):
    """Every asset scan cleaned up, and no scanner process of any of them alive."""
    asset_scans = api.get("/api/assetScans").get_json()["items"]
    wait_until(lambda: all(a["resourceCleanupStatus"]["state"] in ("Done", "Skipped")
                           for a in api.get("/api/assetScans").get_json()["items"]))
    ours = {f"VMCLARITY_LOCAL_ASSET_SCAN={a['id']}".encode() for a in asset_scans}
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = set(handle.read().split(b"\0"))
        except OSError:
            continue
        if environ & ours:
            leftovers.append(pid)
    assert not leftovers
