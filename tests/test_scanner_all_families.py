"""Every family at once, through the CLI, on part 1's hostile tree (issue 6: "the hostile tree
of part 1 still finishes, with every family enabled").

The tree (tests/test_walker.py's `hostile` fixture) has symlinks escaping the root and loops,
a FIFO, a socket, a device node (as root), a 5 GB sparse file, 200 nested directories (a path
over PATH_MAX), names with a newline and undecodable bytes; this test adds unreadable files
and planted items with known answers: the EICAR string and a dropper (ClamAV database built
with sigtool, YARA rule: conftest's fixtures), a token in GitHub's format, a bad
sshd_config, an ssh host key, a Python package with a vulnerability that has an exploit. Beside
the root, where only symlinks point, lie more of the same: none of it may be reported.
"""

import json
import os
import subprocess
import time
import warnings

import pytest
import yaml

from conftest import CVE, DROPPER, EICAR, github_token, need, plant_python_package, rootkits_unavailable
from test_malware import plant_at_the_bottom
from test_scanner_cli import assert_valid, scanner
from test_walker import OUTSIDE_MARKER, hostile  # noqa: F401 - part 1's hostile tree fixture

TIMEOUT = 180
def test_hostile_tree_finishes_with_every_family_enabled(tmp_path, hostile, signatures, rules,  # noqa: F811
                                                         vulnerability_data):  # noqa: F811
    need("ssh-keygen")
    root, outside = hostile["root"], hostile["outside"]
    token = github_token("Zq3v8Xk2Lm9Pw4Rt7Yb1Nc6Hd5Js0F")
    outside_token = github_token("Outside0Root0Token0Abcdefghijk")

    # Planted in the root: known answers.
    (root / "etc/deploy.env").write_text(f"GITHUB_TOKEN={token}\n")
    (root / "etc/ssh").mkdir()
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\nPermitEmptyPasswords yes\n")
    host_key = root / "etc/ssh/ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", host_key], check=True)
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", host_key], check=True, capture_output=True,
                                 text=True).stdout.split()[1]
    (root / "home/user").mkdir(parents=True)
    (root / "home/user/eicar.com").write_bytes(EICAR)
    (root / "bin").mkdir()
    (root / "bin/dropper").write_bytes(DROPPER)
    deep_dropper = "/nest" + plant_at_the_bottom(root / "nest", "deep-dropper", DROPPER)
    plant_python_package(root, "vmclarity-demo", "1.0")
    unreadable = root / "data/unreadable"
    unreadable.mkdir()
    (unreadable / "locked.env").write_text(f"GITHUB_TOKEN={token}\n")
    (unreadable / "locked.env").chmod(0)
    unreadable.chmod(0)  # root reads through it anyway; as another user the walk skips it

    # Beside the root (links/out-abs and links/out-rel point here): never to be reported.
    (outside / "eicar.com").write_bytes(EICAR)
    (outside / "dropper").write_bytes(DROPPER)
    (outside / "deploy.env").write_text(f"GITHUB_TOKEN={outside_token}\n")
    (outside / "sshd_config").write_text("PermitRootLogin yes\n")
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", outside / "ssh_host_rsa_key"], check=True)

    osv, csv = vulnerability_data
    document = {
        "sbom": {"enabled": True, "analyzers_list": ["native"]},
        "vulnerabilities": {"enabled": True, "scanners_list": ["osv"],
                            "scanners_config": {"osv": {"db_path": str(osv)}}},
        "exploits": {"enabled": True, "scanners_config": {"exploit_db": {"csv_path": str(csv)}}},
        "secrets": {"enabled": True, "scanners_list": ["secrets"]},
        "malware": {"enabled": True, "scanners_list": ["clam", "yara"], "scanners_config": {
            "clam": {"database_dir": str(signatures)}, "yara": {"rule_paths": [str(rules)]}}},
        "rootkits": {"enabled": True, "scanners_list": ["chkrootkit"]},
        "misconfiguration": {"enabled": True, "scanners_list": ["native"]},
        "infofinder": {"enabled": True, "scanners_list": ["sshTopology"]},
    }
    if reason := rootkits_unavailable():
        if os.environ.get("CI"):
            pytest.fail(reason)
        warnings.warn(reason)
        del document["rootkits"]
    config = tmp_path / "families.yaml"
    config.write_text(yaml.safe_dump(document))

    started = time.monotonic()
    try:
        result = scanner("scan", "--config", config, "--input", f"rootfs:{root}", "--output", tmp_path / "out",
                         "--state-dir", tmp_path / "state", timeout=TIMEOUT)
    finally:
        unreadable.chmod(0o755)  # so that tmp_path can be cleaned up
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-5000:]
    assert elapsed < TIMEOUT

    text = (tmp_path / "out/assetscan.json").read_text()
    scan = json.loads(text)
    assert_valid("AssetScan", scan)
    states = {key: scan[key]["status"]["state"] for key in
              ("sbom", "vulnerabilities", "exploits", "secrets", "malware", "rootkits", "misconfigurations",
               "infoFinder")}
    expected_states = {key: "Done" for key in states}
    if "rootkits" not in document:
        expected_states["rootkits"] = "Skipped"
    assert states == expected_states, {key: scan[key]["status"] for key in states}

    # The planted items are found.
    assert [p["name"] for p in scan["sbom"]["packages"]] == ["vmclarity-demo"]  # nothing of the host's
    [vulnerability] = scan["vulnerabilities"]["vulnerabilities"]
    assert vulnerability["vulnerabilityName"] == CVE
    [exploit] = scan["exploits"]["exploits"]
    assert exploit["cveID"] == CVE
    secrets = scan["secrets"]["secrets"]
    assert "/etc/deploy.env" in {s["filePath"] for s in secrets}
    assert {s["filePath"] for s in secrets} <= {"/etc/deploy.env", "/data/unreadable/locked.env",
                                                "/etc/ssh/ssh_host_ed25519_key"}
    malware = {(m["malwareName"], m["path"]) for m in scan["malware"]["malware"]}
    assert malware == {
        ("EICAR_HDB-1", "/home/user/eicar.com"),
        ("VmclarityDropper-1", "/bin/dropper"), ("VmclarityDropper-1", deep_dropper),  # clam
        ("PlantedMarker", "/bin/dropper"), ("PlantedMarker", deep_dropper),  # yara
    }
    misconfigurations = scan["misconfigurations"]["misconfigurations"]
    assert any(m["location"].startswith("/etc/ssh/sshd_config") and "PermitRootLogin" in m["message"]
               for m in misconfigurations)
    infos = scan["infoFinder"]["infos"]
    assert [(i["type"], i["path"]) for i in infos] == [("SSHDaemonKeyFingerprint", "/etc/ssh/ssh_host_ed25519_key")]
    assert fingerprint in infos[0]["data"]

    # Nothing from outside the root, nor any secret itself.
    for forbidden in (token, outside_token, OUTSIDE_MARKER.decode(), str(outside), "ssh_host_rsa_key"):
        assert forbidden not in text, forbidden
    for item in misconfigurations + scan["rootkits"]["rootkits"] + secrets:
        where = item.get("location") or item.get("path") or item.get("filePath") or ""
        assert not where.startswith(str(tmp_path)), item
    walks = json.loads((tmp_path / "out/walk-stats.json").read_text())
    assert len(walks) == 1  # one walk for every content family
    assert walks[0]["skipped"].get("fifo") == 1 and walks[0]["skipped"].get("symlink", 0) >= hostile["links"]
    assert "visitor-error" not in walks[0]["skipped"], walks[0]["examples"].get("visitor-error")
