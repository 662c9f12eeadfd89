"""The scanner CLI end to end: standalone output files, config errors, and server mode
against a live API with a scanner token (statuses, results round-trip, abort, resend)."""

import json
import os
import pty
import subprocess
import sys
import time
import zipfile

import pytest
import yaml

from app.findings import process_asset_scan
from app.validation import schema_validator
from conftest import CVE, DROPPER, EXPLOITS_CSV, OSV_RECORD, github_token, make_token, plant_python_package
from scanner.api_client import ApiClient, ApiError
from scanner.reporter import Reporter
from scanner.run import Outcome
from scanner.vocabulary import scanner_status
from test_malware import clamd_that_starts_once
from test_walker import make_deep

@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    plant_python_package(root, "vmclarity-demo", "1.0")
    plant_python_package(root, "vmclarity-safe", "2.0")
    return root


@pytest.fixture
def config_file(tmp_path):
    osv = tmp_path / "osv"
    (osv / "PyPI").mkdir(parents=True)
    with zipfile.ZipFile(osv / "PyPI/all.zip", "w") as archive:
        archive.writestr("PYSEC-2099-1.json", json.dumps(OSV_RECORD))
    (tmp_path / "files_exploits.csv").write_text(EXPLOITS_CSV)

    def write(**families):
        document = {
            "sbom": {"enabled": True, "analyzers_list": ["native"]},
            "vulnerabilities": {"enabled": True, "scanners_list": ["osv"],
                                "scanners_config": {"osv": {"db_path": str(osv)}}},
            "exploits": {"enabled": True, "scanners_config": {
                "exploit_db": {"csv_path": str(tmp_path / "files_exploits.csv")}}},
        }
        document.update(families)
        path = tmp_path / "families.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    return write


def scanner(*args, timeout=120):
    return subprocess.run([sys.executable, "-c", "from scanner.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def assert_valid(schema_name, document):
    schema_validator(schema_name).validate(document)


def test_standalone_scan_writes_results_in_the_api_schema(tmp_path, root, config_file):
    result = scanner("scan", "--config", config_file(), "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state")
    assert result.returncode == 0, result.stderr

    document = json.loads((tmp_path / "out/assetscan.json").read_text())
    assert_valid("AssetScan", document)
    purls = [p["purl"] for p in document["sbom"]["packages"]]
    assert purls == ["pkg:pypi/vmclarity-demo@1.0", "pkg:pypi/vmclarity-safe@2.0"]
    [vulnerability] = document["vulnerabilities"]["vulnerabilities"]
    assert (vulnerability["vulnerabilityName"], vulnerability["severity"]) == (CVE, "CRITICAL")
    assert vulnerability["package"]["name"] == "vmclarity-demo"
    [exploit] = document["exploits"]["exploits"]
    assert exploit["cveID"] == CVE
    assert {document[f]["status"]["state"] for f in ("sbom", "vulnerabilities", "exploits")} == {"Done"}
    assert document["malware"]["status"]["state"] == "Skipped"
    assert document["summary"]["totalPackages"] == 2
    assert document["summary"]["totalVulnerabilities"]["totalCriticalVulnerabilities"] == 1
    assert document["summary"]["totalExploits"] == 1
    assert document["stats"]["sbom"][0]["path"] == str(root)

    sbom = json.loads((tmp_path / "out/sbom.cdx.json").read_text())
    assert sbom["specVersion"] == "1.6"
    assert {c.get("purl") for c in sbom["components"]} >= set(purls)


@pytest.mark.parametrize("families, inputs, message", [
    ({"sbom": {"enabled": True, "analyzers_list": ["trivy"]}}, [], "unknown scanner 'trivy'"),
    ({"vulnerabilities": {"enabled": True, "scanners_list": ["grype"]}}, [], "available: osv"),
    ({"viruses": {"enabled": True}}, [], "unknown family 'viruses'"),
    ({}, ["image:alpine"], "unsupported input type 'image'"),
    ({}, ["/no/type"], "expected TYPE:PATH"),
])
def test_bad_configuration_is_a_clear_error(tmp_path, config_file, families, inputs, message):
    args = ["scan", "--config", config_file(**families), "--output", tmp_path / "out"]
    for text in inputs:
        args += ["--input", text]
    result = scanner(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_failed_family_fails_the_ones_that_need_it(tmp_path, root, config_file):
    config = config_file(vulnerabilities={"enabled": True})  # no OSV data configured
    result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state")
    assert result.returncode == 1
    document = json.loads((tmp_path / "out/assetscan.json").read_text())
    assert document["sbom"]["status"]["state"] == "Done"
    assert document["vulnerabilities"]["status"]["state"] == "Failed"
    assert "db_path" in document["vulnerabilities"]["status"]["message"]
    assert document["exploits"]["status"]["state"] == "Failed"


# Server mode

def ready_asset_scan(api):
    asset = api.post("/api/assets", json={"assetInfo": {"objectType": "DirInfo", "dirName": "/srv",
                                                        "location": "test"}}).get_json()
    asset_scan = api.post("/api/assetScans", json={"asset": {"id": asset["id"]}}).get_json()
    return asset_scan["id"]


def move(api, asset_scan_id, *states):
    reasons = {"Scheduled": "Provisioning", "ReadyToScan": "ResourcesReady", "Aborted": "Cancellation"}
    for state in states:
        response = api.patch(f"/api/assetScans/{asset_scan_id}", json={"status": {
            "state": state, "reason": reasons[state], "lastTransitionTime": "2099-01-01T00:00:00Z"}})
        assert response.status_code == 200, response.get_json()


def scanner_token(app, asset_scan_id):
    return make_token("scanner", asset_scan_id)


def start_scanner(*args):
    return subprocess.Popen([sys.executable, "-c", "from scanner.cli import main; main()", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_server_mode_reports_statuses_and_results_unchanged(tmp_path, app, api, live_server, root, config_file):
    asset_scan_id = ready_asset_scan(api)
    move(api, asset_scan_id, "Scheduled")
    token = scanner_token(app, asset_scan_id)
    process = start_scanner("scan", "--config", config_file(), "--input", f"rootfs:{root}",
                            "--output", tmp_path / "out", "--state-dir", tmp_path / "state",
                            "--server", f"{live_server}/api", "--asset-scan-id", asset_scan_id, "--token", token)
    time.sleep(1)
    assert api.get(f"/api/assetScans/{asset_scan_id}").get_json()["status"]["state"] == "Scheduled"
    move(api, asset_scan_id, "ReadyToScan")  # the scanner waits for this
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr

    stored = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    assert (stored["status"]["state"], stored["status"]["reason"]) == ("Done", "Success")
    written = json.loads((tmp_path / "out/assetscan.json").read_text())
    for family in ("sbom", "vulnerabilities", "exploits"):
        assert stored[family] == written[family]
    assert stored["summary"] == written["summary"]
    assert stored["asset"] == {"id": stored["asset"]["id"]}  # untouched by the scanner
    assert not list((tmp_path / "state/spool" / asset_scan_id).glob("*.json"))


def test_server_mode_stops_within_seconds_of_an_abort(tmp_path, app, api, live_server, root, config_file,
                                                     hanging_server):
    asset_scan_id = ready_asset_scan(api)
    move(api, asset_scan_id, "Scheduled", "ReadyToScan")
    config = config_file(exploits={"enabled": True, "scanners_config": {
        "exploit_db": {"base_url": hanging_server}}})
    process = start_scanner("scan", "--config", config, "--input", f"rootfs:{root}",
                            "--state-dir", tmp_path / "state", "--server", f"{live_server}/api",
                            "--asset-scan-id", asset_scan_id, "--token", scanner_token(app, asset_scan_id))
    try:
        deadline = time.monotonic() + 60
        while api.get(f"/api/assetScans/{asset_scan_id}").get_json().get("exploits", {}).get(
                "status", {}).get("state") != "InProgress":
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.2)
        move(api, asset_scan_id, "Aborted")
        aborted_at = time.monotonic()
        _, stderr = process.communicate(timeout=30)
        assert time.monotonic() - aborted_at < 10
        assert process.returncode == 3, stderr
        assert "aborted" in stderr
        final = api.get(f"/api/assetScans/{asset_scan_id}").get_json()["status"]
        assert (final["state"], final["reason"]) == ("Failed", "Error")  # no need to wait out the grace
    finally:
        process.kill()


def test_results_survive_an_api_outage_and_are_resent(tmp_path, app, api, live_server):
    asset_scan_id = ready_asset_scan(api)
    move(api, asset_scan_id, "Scheduled", "ReadyToScan")
    token = scanner_token(app, asset_scan_id)
    spool = tmp_path / "spool"
    down = Reporter(ApiClient("http://127.0.0.1:9/api", token, retry_for=0.5), asset_scan_id, spool)
    down.spool.mkdir(parents=True)
    block = {"status": {"state": "Done", "reason": "Success", "lastTransitionTime": "2099-01-01T00:00:00Z"},
             "packages": [{"name": "kept", "version": "1", "purl": "pkg:pypi/kept@1"}]}
    assert down.family_finished("sbom", block, []) is None
    assert len(list((spool / asset_scan_id).glob("*.json"))) == 1

    up = Reporter(ApiClient(f"{live_server}/api", token), asset_scan_id, spool)
    up.start()
    up.close()
    stored = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    assert stored["sbom"]["packages"] == block["packages"]
    assert stored["status"]["state"] == "InProgress"
    assert not list((spool / asset_scan_id).glob("*.json"))


def test_hostile_tree_finishes_and_reports_nothing_from_outside(tmp_path, root, config_file):
    host_packages = next(p for p in sys.path if p.endswith("site-packages"))
    (root / "escape").symlink_to(host_packages)
    (root / "loop").symlink_to("loop")
    os.mkfifo(root / "fifo")
    deep = root
    for _ in range(80):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (root / "bad\nname\udcff").write_bytes(b"x")
    result = scanner("scan", "--config", config_file(), "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state", timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out/assetscan.json").read_text())
    assert [p["name"] for p in document["sbom"]["packages"]] == ["vmclarity-demo", "vmclarity-safe"]
    assert "symlink" in document["sbom"]["status"]["message"]
    walks = json.loads((tmp_path / "out/walk-stats.json").read_text())
    assert walks[0]["skipped"] == {"symlink": 2, "fifo": 1}  # and no visitor failed anywhere


def test_progress_is_a_live_line_on_a_terminal(tmp_path, root, config_file):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", "from scanner.cli import main; main()", "scan", "--config", str(config_file()),
         "--input", f"rootfs:{root}", "--state-dir", str(tmp_path / "state")],
        stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the scanner exited
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    assert b"\r\x1b[K" in output
    assert f"walking {root}".encode() in output


def test_server_mode_reports_a_bad_configuration_as_failed(tmp_path, app, api, live_server, root, config_file):
    asset_scan_id = ready_asset_scan(api)
    move(api, asset_scan_id, "Scheduled", "ReadyToScan")
    result = scanner("scan", "--config", config_file(sbom={"enabled": True, "analyzers_list": ["trivy"]}),
                     "--input", f"rootfs:{root}", "--state-dir", tmp_path / "state", "--server", f"{live_server}/api",
                     "--asset-scan-id", asset_scan_id, "--token", scanner_token(app, asset_scan_id))
    assert result.returncode == 2
    status = api.get(f"/api/assetScans/{asset_scan_id}").get_json()["status"]
    assert (status["state"], status["reason"]) == ("Failed", "Error")
    assert "unknown scanner 'trivy'" in status["message"]


def test_content_families_share_one_walk_and_report_in_the_api_schema(tmp_path, root, config_file):
    token = github_token("Zq3v8Xk2Lm9Pw4Rt7Yb1Nc6Hd5Js0F")
    (root / "etc/deploy.env").write_text(f"GITHUB_TOKEN={token}\n")
    (root / "etc/ssh").mkdir()
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\n")
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", root / "etc/ssh/ssh_host_ed25519_key"],
                   check=True)
    config = config_file(secrets={"enabled": True}, misconfiguration={"enabled": True},
                         infofinder={"enabled": True})
    result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state")
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "out/assetscan.json").read_text())
    assert_valid("AssetScan", document)
    [secret] = document["secrets"]["secrets"]
    assert secret["filePath"] == "/etc/deploy.env" and token not in json.dumps(document)
    assert any(m["location"].startswith("/etc/ssh/sshd_config") and "PermitRootLogin" in m["message"]
               for m in document["misconfigurations"]["misconfigurations"])
    assert [i["type"] for i in document["infoFinder"]["infos"]] == ["SSHDaemonKeyFingerprint"]
    assert len(json.loads((tmp_path / "out/walk-stats.json").read_text())) == 1  # one walk for all
    assert document["summary"]["totalSecrets"] == 1


def scan_through_the_api(tmp_path, app, api, live_server, root, config):
    """Run the scanner CLI on `root` against the live API (and --output); return (process, asset scan id)."""
    asset_scan_id = ready_asset_scan(api)
    move(api, asset_scan_id, "Scheduled", "ReadyToScan")
    result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state", "--server", f"{live_server}/api",
                     "--asset-scan-id", asset_scan_id, "--token", scanner_token(app, asset_scan_id))
    return result, asset_scan_id


def test_nul_bytes_in_target_files_reach_the_api_escaped(tmp_path, app, api, live_server, root, config_file):
    # A hostile target hides its backdoor account behind a NUL, which neither database stores.
    (root / "etc/passwd").write_bytes(b"root:x:0:0:root:/root:/bin/bash\nback\x00door:x:0:0::/root:/bin/sh\n")
    (root / "etc/sudoers").write_bytes(b"evil\x00user ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/bad\udcffname.conf").write_bytes(b"x")  # an undecodable file name too
    config = config_file(misconfiguration={"enabled": True})
    result, asset_scan_id = scan_through_the_api(tmp_path, app, api, live_server, root, config)
    assert result.returncode == 0, result.stderr

    assert not (tmp_path / "state/spool" / asset_scan_id / "rejected").exists()
    stored = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    assert (stored["status"]["state"], stored["misconfigurations"]["status"]["state"]) == ("Done", "Done")
    messages = {m["message"] for m in stored["misconfigurations"]["misconfigurations"]}
    assert "account back\\x00door has UID 0" in messages
    assert "evil\\x00user may run any command as ALL without a password" in messages
    written = json.loads((tmp_path / "out/assetscan.json").read_text())
    assert written["misconfigurations"] == stored["misconfigurations"]
    assert "\\u0000" not in (tmp_path / "out/assetscan.json").read_text()

    process_asset_scan(asset_scan_id)
    findings = api.get("/api/findings", query_string={
        "$filter": "findingInfo/objectType eq 'Misconfiguration'"}).get_json()["items"]
    assert {"account back\\x00door has UID 0", "evil\\x00user may run any command as ALL without a password"} <= {
        finding["findingInfo"]["message"] for finding in findings}


def test_a_family_the_api_refuses_ends_failed_with_the_reason(tmp_path, app, api, live_server):
    asset_scan_id = ready_asset_scan(api)
    move(api, asset_scan_id, "Scheduled", "ReadyToScan")
    reporter = Reporter(ApiClient(f"{live_server}/api", scanner_token(app, asset_scan_id)), asset_scan_id,
                        tmp_path / "spool")
    reporter.start()
    refused = {"status": scanner_status("Done", "1 found"), "misconfigurations": [{
        "scannerName": "native", "id": "X-1", "message": "m", "severity": "NoSuchSeverity"}]}
    reporter.family_finished("misconfiguration", refused, [])
    accepted = {"status": scanner_status("Done", "0 found"), "secrets": []}
    reporter.family_finished("secrets", accepted, [])
    outcome = Outcome(blocks={"misconfigurations": refused, "secrets": accepted})
    with pytest.raises(ApiError, match="refused 1 update"):
        reporter.finish(outcome)

    stored = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    family = stored["misconfigurations"]["status"]
    assert family["state"] == "Failed"
    assert "the API refused the results" in family["message"] and "NoSuchSeverity" in family["message"]
    assert stored["secrets"]["status"]["state"] == "Done"
    assert (stored["status"]["state"], stored["status"]["message"]) == ("Failed", "families failed: misconfigurations")
    assert stored["summary"]["totalMisconfigurations"] == 0
    assert len(list((tmp_path / "spool" / asset_scan_id / "rejected").glob("*.json"))) == 1


def test_a_scanner_that_cannot_scan_leaves_its_family_incomplete_not_clean(tmp_path, app, api, live_server, root,
                                                                           config_file, rules):
    # No ClamAV signatures: clam cannot scan at all; yara still finds the planted file.
    (root / "bin").mkdir()
    (root / "bin/dropper").write_bytes(DROPPER)
    (tmp_path / "no-signatures").mkdir()
    config = config_file(malware={"enabled": True, "scanners_list": ["clam", "yara"], "scanners_config": {
        "clam": {"database_dir": str(tmp_path / "no-signatures")}, "yara": {"rule_paths": [str(rules)]}}})
    result, asset_scan_id = scan_through_the_api(tmp_path, app, api, live_server, root, config)
    assert result.returncode == 1, result.stderr
    assert "failed families: malware" in result.stderr

    written = json.loads((tmp_path / "out/assetscan.json").read_text())
    stored = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    assert written["malware"] == stored["malware"]
    status = stored["malware"]["status"]
    # Done so that yara's finding becomes a finding; reason Error so clam's earlier ones stay valid.
    assert (status["state"], status["reason"]) == ("Done", "Error")
    assert status["message"].startswith("clam failed; 1 found; clam: no ClamAV signature database in ")
    assert [(m["malwareName"], m["path"]) for m in stored["malware"]["malware"]] == [("PlantedMarker", "/bin/dropper")]
    assert (stored["status"]["state"], stored["status"]["message"]) == (
        "Failed", "families incomplete: malware (clam failed)")
    assert stored["summary"]["totalMalware"] == 1

    assert process_asset_scan(asset_scan_id)["findings"]["malware"] == 1
    [finding] = api.get("/api/findings", query_string={
        "$filter": "findingInfo/objectType eq 'Malware'"}).get_json()["items"]
    assert finding["findingInfo"]["path"] == "/bin/dropper"


def test_a_family_whose_scanners_all_fail_is_failed(tmp_path, root, config_file):
    (tmp_path / "no-signatures").mkdir()
    config = config_file(malware={"enabled": True, "scanners_list": ["clam", "yara"], "scanners_config": {
        "clam": {"database_dir": str(tmp_path / "no-signatures")}, "yara": {"rule_paths": [str(tmp_path / "none")]}}})
    result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state")
    assert result.returncode == 1
    status = json.loads((tmp_path / "out/assetscan.json").read_text())["malware"]["status"]
    assert status["state"] == "Failed"
    assert "no ClamAV signature database" in status["message"] and "does not exist" in status["message"]


def test_a_partial_clam_error_on_a_clean_host_leaves_the_scan_successful(tmp_path, app, api, live_server, root,
                                                                        config_file, signatures, rules):
    # clamd scans the clean tree, but the second clamd (for the paths too long for the first) does not
    # start: an error about some files, not a scanner that could not scan.
    (root / "nest").mkdir()
    make_deep(root / "nest", 140)
    config = config_file(malware={"enabled": True, "scanners_list": ["clam", "yara"], "scanners_config": {
        "clam": {"database_dir": str(signatures), "clam_daemon_binary_path": str(clamd_that_starts_once(tmp_path))},
        "yara": {"rule_paths": [str(rules)]}}})
    result, asset_scan_id = scan_through_the_api(tmp_path, app, api, live_server, root, config)
    assert result.returncode == 0, result.stderr

    stored = api.get(f"/api/assetScans/{asset_scan_id}").get_json()
    status = stored["malware"]["status"]
    assert (status["state"], status["reason"]) == ("Done", "Success")
    assert status["message"].startswith("0 found; clam: files with very long paths: clamd exited with status 3: ")
    assert stored["malware"]["malware"] == []
    assert (stored["status"]["state"], stored["status"]["reason"]) == ("Done", "Success")
    assert "message" not in stored["status"]


def test_a_yara_rule_file_that_does_not_compile_beside_one_that_does_is_a_partial_error(tmp_path, root, config_file,
                                                                                         rules):
    (rules / "broken.yara").write_text("rule Broken { condition: $missing }\n")
    config = config_file(malware={"enabled": True, "scanners_list": ["yara"],
                                  "scanners_config": {"yara": {"rule_paths": [str(rules)]}}})
    result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state")
    assert result.returncode == 0, result.stderr
    block = json.loads((tmp_path / "out/assetscan.json").read_text())["malware"]
    assert (block["status"]["state"], block["status"]["reason"]) == ("Done", "Success")
    assert block["status"]["message"].startswith(f"0 found; yara: cannot compile {rules / 'broken.yara'}: ")
    assert block["malware"] == []


@pytest.mark.parametrize("listed, ran", [(["native", "cisdocker"], ["native"]), (["cisdocker"], ["native"])])
def test_an_original_scanner_we_lack_is_a_note_not_a_failed_scan(tmp_path, root, config_file, listed, ran):
    (root / "etc/ssh").mkdir()
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\n")
    config = config_file(misconfiguration={"enabled": True, "scanners_list": listed,
                                           "scanners_config": {"cisdocker": {"timeout": "2m"}}})
    result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                     "--state-dir", tmp_path / "state")
    assert result.returncode == 0, result.stderr
    block = json.loads((tmp_path / "out/assetscan.json").read_text())["misconfigurations"]
    assert block["status"]["state"] == "Done" and block["scanners"] == ran
    assert "cisdocker: not available in this scanner" in block["status"]["message"]
    assert any("PermitRootLogin" in m["message"] for m in block["misconfigurations"])
