"""The local provider: discovery, and real scanner processes against a live API.

The scanner runs as the provider starts it (a separate process in its own session,
reporting with a scanner token); the tests watch the asset scan through the API and
then check that removal leaves no process, loop device, mount or directory behind.
Loop-device cases skip only when this machine refuses loop devices (found by trying).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from app import auth
from app.db import database
from app.validation import schema_validator
from conftest import OSV_RECORD, MiB, ext4_image, loops_of, mounts_of, need, plant_python_package, write_osv
from tasks.providers import FatalError, RetryableError, ScanJob
from tasks.providers import local
from tasks.providers.local import LocalProvider
from tasks.scanner_config import scanner_config

SBOM_ONLY = scanner_config({"sbom": {"enabled": True, "analyzers": ["native"]}}, {})


# ---- fixtures and helpers -----------------------------------------------------------


def make_root(path):
    (path / "etc").mkdir(parents=True)
    (path / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    for name, version in [("vmclarity-demo", "1.0"), ("vmclarity-safe", "2.0")]:
        plant_python_package(path, name, version)
    return path


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "root")


@pytest.fixture
def provider(tmp_path, live_server):
    """A provider on a fresh data directory; whatever a test leaves running is removed afterwards."""
    provider = LocalProvider({"data_dir": str(tmp_path / "data"), "api_url": f"{live_server}/api"})
    yield provider
    for asset_scan_id in provider.leftovers(set()):
        remove(provider, asset_scan_id)


def remove(provider, asset_scan_id, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return provider.remove_asset_scan(asset_scan_id)
        except RetryableError:
            assert time.monotonic() < deadline, "the provider never finished removing"
            time.sleep(0.2)


def wait_for(predicate, timeout=60, message="condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.1)
    return value


def new_asset_scan(app, api, asset_info):
    """An asset and its asset scan, moved to Scheduled as the orchestrator would; (asset, id, token)."""
    asset = api.post("/api/assets", json={"assetInfo": asset_info}).get_json()
    asset_scan_id = api.post("/api/assetScans", json={"asset": {"id": asset["id"]}}).get_json()["id"]
    move(api, asset_scan_id, "Scheduled")
    with app.app_context():
        database.connect(reuse_if_open=True)
        token = auth.mint_scanner_token(asset_scan_id)
    return asset, asset_scan_id, token


def move(api, asset_scan_id, *states):
    reasons = {"Scheduled": "Provisioning", "ReadyToScan": "ResourcesReady"}
    for state in states:
        response = api.patch(f"/api/assetScans/{asset_scan_id}", json={"status": {
            "state": state, "reason": reasons[state], "lastTransitionTime": "2099-01-01T00:00:00Z"}})
        assert response.status_code == 200, response.get_json()


def job(asset, asset_scan_id, token, config=SBOM_ONLY, minted=None):
    """The ScanJob; its token "minted" (appended to `minted`) each time the provider asks for one."""
    def mint():
        if minted is not None:
            minted.append(token)
        return token

    return ScanJob(asset_scan_id=asset_scan_id, asset=asset, scanner_config=config, api_url=None, mint_token=mint)


def asset_scan(api, asset_scan_id):
    return api.get(f"/api/assetScans/{asset_scan_id}").get_json()


def wait_finished(api, asset_scan_id, provider, timeout=120):
    def finished():
        state = asset_scan(api, asset_scan_id)["status"]["state"]
        return state if state in ("Done", "Failed") else None

    try:
        return wait_for(finished, timeout, "the asset scan to finish")
    except AssertionError:
        print(scanner_log(provider, asset_scan_id))
        raise


def scanner_log(provider, asset_scan_id):
    for path in (provider.root / asset_scan_id / "scanner.log", provider.root / "logs" / f"{asset_scan_id}.log"):
        if path.exists():
            return path.read_text()
    return ""


def state_of(provider, asset_scan_id):
    return json.loads((provider.root / asset_scan_id / "state.json").read_text())


def group_gone(pgid):
    """No live process left in the group (a zombie waiting for its parent to reap it is dead)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


def assert_valid(schema_name, document):
    schema_validator(schema_name).validate(document)


@pytest.fixture
def slow_scan_config(tmp_path, hanging_server):
    """sbom -> vulnerabilities (a local OSV record for vmclarity-demo) -> exploits from a server that hangs."""
    osv = write_osv(tmp_path / "osv", [OSV_RECORD])
    families = {name: {"enabled": True} for name in ("sbom", "vulnerabilities", "exploits")}
    return scanner_config(families, {"osv_db_path": str(osv), "exploitdb_url": hanging_server})


def exploits_running(api, asset_scan_id):
    return (asset_scan(api, asset_scan_id).get("exploits") or {}).get("status", {}).get("state") == "InProgress"


# ---- discovery ----------------------------------------------------------------------


def test_discovery_reports_directories_and_disk_images(tmp_path, caplog):
    (tmp_path / "dir").mkdir()
    image = tmp_path / "disk.img"
    with open(image, "wb") as file:
        file.truncate(3 * 1024 ** 3 // 2)  # 1.5 GiB, sparse
    os.utime(image, (0, 1_700_000_000))
    paths = [str(tmp_path / "dir"), str(image), str(tmp_path / "missing"), "relative/path"]
    provider = LocalProvider({"data_dir": str(tmp_path / "data"), "local_assets": ":".join(paths)})

    directory, vm = list(provider.discover_assets())

    host = socket.gethostname()
    assert directory == {"objectType": "DirInfo", "dirName": str(tmp_path / "dir"), "location": host}
    assert vm == {
        "objectType": "VMInfo", "instanceID": str(image), "instanceProvider": "External", "location": host,
        "image": str(image), "instanceType": "disk-image", "platform": "Linux",
        "launchTime": "2023-11-14T22:13:20Z", "rootVolume": {"sizeGB": 2, "encrypted": "Unknown"},
        "tags": [], "securityGroups": [],
    }
    for asset_info in (directory, vm):
        assert_valid("AssetType", asset_info)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("missing" in w for w in warnings) and any("relative/path" in w for w in warnings)
    assert list(LocalProvider({"data_dir": str(tmp_path), "local_assets": [str(image)]}).discover_assets()) == [vm]


@pytest.mark.parametrize("asset_info, message", [
    ({"objectType": "DirInfo", "dirName": "/no/such/dir", "location": "x"}, "no such directory on this host"),
    ({"objectType": "DirInfo", "dirName": "relative", "location": "x"}, "not an absolute path"),
    ({"objectType": "VMInfo", "instanceID": "i-0123456789", "location": "eu-west-1"}, "disk image files"),
    ({"objectType": "PodInfo", "podName": "p", "location": "x"}, "not PodInfo"),
])
def test_what_cannot_be_scanned_here_is_a_fatal_error(tmp_path, asset_info, message):
    provider = LocalProvider({"data_dir": str(tmp_path), "api_url": "http://127.0.0.1:9/api"})
    with pytest.raises(FatalError, match=message):
        provider.run_asset_scan(job({"id": "a", "assetInfo": asset_info}, "as-1", "token"))
    assert not (provider.root / "as-1").exists()
    with pytest.raises(FatalError, match="unusable asset scan id"):
        provider.remove_asset_scan("../escape")


# ---- directories --------------------------------------------------------------------


def test_a_directory_is_scanned_by_a_real_scanner_process_and_nothing_is_left(
        app, api, provider, root, monkeypatch):
    monkeypatch.setenv("VMCLARITY_DATABASE_URL", "postgresql://control-plane-secret@db/vmclarity")
    asset, asset_scan_id, token = new_asset_scan(
        app, api, {"objectType": "DirInfo", "dirName": str(root), "location": "test"})

    provider.run_asset_scan(job(asset, asset_scan_id, token))

    record = state_of(provider, asset_scan_id)
    pid = record["pid"]
    assert record["pgid"] == pid == os.getpgid(pid) and record["started"].endswith("Z")
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        argv = cmdline.read().decode().split("\0")
    assert f"rootfs:{root}" in argv and token not in " ".join(argv)  # `ps` never shows the token
    with open(f"/proc/{pid}/environ", "rb") as environ:
        env = environ.read().decode()
    assert f"VMCLARITY_SCANNER_TOKEN={token}" in env and "control-plane-secret" not in env

    move(api, asset_scan_id, "ReadyToScan")  # what the orchestrator does after run_asset_scan
    assert wait_finished(api, asset_scan_id, provider) == "Done", scanner_log(provider, asset_scan_id)
    stored = asset_scan(api, asset_scan_id)
    assert [p["name"] for p in stored["sbom"]["packages"]] == ["vmclarity-demo", "vmclarity-safe"]
    assert (provider.root / asset_scan_id / "output/assetscan.json").exists()
    assert provider.leftovers(set()) == [asset_scan_id]
    assert provider.leftovers({asset_scan_id}) == []

    wait_for(lambda: group_gone(pid), 30, "the scanner to exit")
    provider.run_asset_scan(job(asset, asset_scan_id, token))  # exited: nothing new is started
    assert state_of(provider, asset_scan_id)["pid"] == pid and group_gone(pid)

    provider.remove_asset_scan(asset_scan_id)
    assert not (provider.root / asset_scan_id).exists()
    assert not (provider.root / f"{asset_scan_id}.lock").exists()
    assert (provider.root / "logs" / f"{asset_scan_id}.log").exists()  # kept for the user to read
    assert provider.leftovers(set()) == []
    provider.remove_asset_scan(asset_scan_id)  # nothing recorded: done


def test_two_concurrent_runs_start_one_scanner(app, api, provider, root):
    asset, asset_scan_id, token = new_asset_scan(
        app, api, {"objectType": "DirInfo", "dirName": str(root), "location": "test"})
    barrier = threading.Barrier(4)
    errors, minted = [], []

    def run():
        barrier.wait()
        try:
            provider.run_asset_scan(job(asset, asset_scan_id, token, minted=minted))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert minted == [token]  # a token only for the scanner that was started

    # Still waiting for ReadyToScan, so every scanner started would still be alive.
    [pid] = local._processes(asset_scan_id, None)
    assert state_of(provider, asset_scan_id)["pid"] == pid
    assert scanner_log(provider, asset_scan_id).count("Traceback") == 0
    remove(provider, asset_scan_id)
    assert group_gone(pid)
    assert local._processes(asset_scan_id, None) == []


def test_remove_kills_a_running_scanner_and_retries_until_it_is_dead(
        app, api, tmp_path, live_server, root, slow_scan_config):
    # The scanner ignores SIGTERM here, so removal must wait for the grace and SIGKILL it.
    stubborn = ["sh", "-c", 'trap "" TERM; exec "$0" "$@"', *local.DEFAULT_SCANNER]
    provider = LocalProvider({"data_dir": str(tmp_path / "data"), "api_url": f"{live_server}/api",
                              "scanner_command": stubborn, "stop_grace": 1.5})
    asset, asset_scan_id, token = new_asset_scan(
        app, api, {"objectType": "DirInfo", "dirName": str(root), "location": "test"})
    provider.run_asset_scan(job(asset, asset_scan_id, token, slow_scan_config))
    move(api, asset_scan_id, "ReadyToScan")
    wait_for(lambda: exploits_running(api, asset_scan_id), 60, "the exploits lookup to start")
    pgid = state_of(provider, asset_scan_id)["pgid"]

    started = time.monotonic()
    with pytest.raises(RetryableError) as raised:
        provider.remove_asset_scan(asset_scan_id)
    assert raised.value.after == 1
    assert not group_gone(pgid) and state_of(provider, asset_scan_id)["stopping"]
    remove(provider, asset_scan_id)
    assert time.monotonic() - started >= 1.5
    assert group_gone(pgid)
    assert local._processes(asset_scan_id, pgid) == []
    assert not (provider.root / asset_scan_id).exists()
    # The scanner never got to report: the asset scan is as the kill left it.
    assert asset_scan(api, asset_scan_id)["status"]["state"] == "InProgress"


def test_a_killed_scanner_is_gone_with_its_exit_code_and_the_orchestrator_is_told(
        app, api, tmp_path, live_server, root, slow_scan_config):
    told = []
    provider = LocalProvider({"data_dir": str(tmp_path / "data"), "api_url": f"{live_server}/api",
                              "on_scanner_exit": told.append})
    asset, asset_scan_id, token = new_asset_scan(
        app, api, {"objectType": "DirInfo", "dirName": str(root), "location": "test"})
    minted = []
    try:
        assert provider.scanner_exit(asset_scan_id) is None  # nothing started
        provider.run_asset_scan(job(asset, asset_scan_id, token, slow_scan_config, minted))
        move(api, asset_scan_id, "ReadyToScan")
        wait_for(lambda: exploits_running(api, asset_scan_id), 60, "the exploits lookup to start")
        assert provider.scanner_exit(asset_scan_id) is None  # running
        pid = state_of(provider, asset_scan_id)["pid"]

        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        # Found gone at once; its exit code follows as soon as its reaper has recorded it.
        wait_for(lambda: provider.scanner_exit(asset_scan_id), 10, "the scanner to be gone")
        gone = wait_for(lambda: (provider.scanner_exit(asset_scan_id).code is not None
                                 and provider.scanner_exit(asset_scan_id)), 10, "its exit code")
        assert gone.code == -signal.SIGKILL and killed <= gone.at <= time.time()
        assert gone.message() == "scanner exited with code -9 (killed by SIGKILL) without reporting"
        wait_for(lambda: told == [asset_scan_id], 10, "the exit to be told")

        provider.run_asset_scan(job(asset, asset_scan_id, token, slow_scan_config, minted))  # not restarted
        assert minted == [token] and provider.scanner_exit(asset_scan_id) == gone
        assert asset_scan(api, asset_scan_id)["status"]["state"] == "InProgress"  # the orchestrator's to fail
    finally:
        remove(provider, asset_scan_id)
    assert provider.scanner_exit(asset_scan_id) is None  # removed: nothing started any more
    assert sorted(p.name for p in provider.root.iterdir()) == ["logs"]  # no lock file left by the reaper


def test_a_scanner_that_exited_unwatched_is_gone_without_a_code(tmp_path):
    # Its worker died first: nobody reaped it with its exit code.
    provider = LocalProvider({"data_dir": str(tmp_path)})
    exited = subprocess.Popen(["true"])
    exited.wait()
    (provider.root / "as-1").mkdir(parents=True)
    (provider.root / "as-1.lock").touch()
    (provider.root / "as-1" / "state.json").write_text(json.dumps({"pid": exited.pid, "pgid": exited.pid}))

    gone = provider.scanner_exit("as-1")
    assert gone.code is None and gone.message() == "scanner exited without reporting (exit code unknown)"
    time.sleep(0.05)
    assert provider.scanner_exit("as-1") == gone  # noticed once: the grace runs from then
    provider.remove_asset_scan("as-1")
    assert provider.scanner_exit("as-1") is None


def test_a_scanner_whose_start_was_never_recorded_is_found_by_its_tag(app, api, provider, root):
    # A worker that died between starting the scanner and recording it.
    asset, asset_scan_id, token = new_asset_scan(
        app, api, {"objectType": "DirInfo", "dirName": str(root), "location": "test"})
    provider.run_asset_scan(job(asset, asset_scan_id, token))
    record = state_of(provider, asset_scan_id)
    (provider.root / asset_scan_id / "state.json").write_text(json.dumps({"asset_scan_id": asset_scan_id}))

    provider.run_asset_scan(job(asset, asset_scan_id, token))
    assert local._processes(asset_scan_id, None) == [record["pid"]]  # not a second scanner
    remove(provider, asset_scan_id)
    assert group_gone(record["pgid"])


# ---- disk images --------------------------------------------------------------------


def image_asset(app, api, image):
    [vm] = LocalProvider({"data_dir": "/nonexistent", "local_assets": [str(image)]}).discover_assets()
    return new_asset_scan(app, api, vm)


def test_a_disk_image_is_scanned_through_a_read_only_loop_device(app, api, provider, tmp_path, loop_devices):
    image = ext4_image(tmp_path / "disk.img", make_root(tmp_path / "tree"))
    asset, asset_scan_id, token = image_asset(app, api, image)

    provider.run_asset_scan(job(asset, asset_scan_id, token))

    loop = state_of(provider, asset_scan_id)["loop"]
    assert loops_of(image) == [loop]
    with open(f"/sys/block/{os.path.basename(loop)}/ro") as read_only:
        assert read_only.read().strip() == "1"
    move(api, asset_scan_id, "ReadyToScan")
    assert wait_finished(api, asset_scan_id, provider) == "Done", scanner_log(provider, asset_scan_id)
    stored = asset_scan(api, asset_scan_id)
    assert [p["name"] for p in stored["sbom"]["packages"]] == ["vmclarity-demo", "vmclarity-safe"]
    assert stored["stats"]["sbom"][0]["path"].endswith("/" + os.path.basename(loop))
    assert mounts_of(loop) == []  # the scanner unmounted; the device stays until removal
    assert loops_of(image) == [loop]

    remove(provider, asset_scan_id)
    assert loops_of(image) == []
    assert not (provider.root / asset_scan_id).exists()


def test_a_partitioned_image_is_scanned_through_its_partition(app, api, provider, tmp_path, loop_devices):
    need("sfdisk")
    filesystem = ext4_image(tmp_path / "fs.img", make_root(tmp_path / "tree"))
    image = tmp_path / "disk.img"
    with open(image, "wb") as disk:
        disk.truncate(40 * MiB)
    subprocess.run(["sfdisk", "--quiet", str(image)], input="label: dos\nstart=2048, type=83\n", text=True,
                   check=True, capture_output=True)
    with open(filesystem, "rb") as source, open(image, "r+b") as disk:
        disk.seek(MiB)
        shutil.copyfileobj(source, disk)
    asset, asset_scan_id, token = image_asset(app, api, image)

    provider.run_asset_scan(job(asset, asset_scan_id, token))
    move(api, asset_scan_id, "ReadyToScan")
    assert wait_finished(api, asset_scan_id, provider) == "Done", scanner_log(provider, asset_scan_id)
    loop = state_of(provider, asset_scan_id)["loop"]
    [stats] = asset_scan(api, asset_scan_id)["stats"]["sbom"]
    assert stats["type"] == "ROOTFS" and stats["path"].endswith(f"/{os.path.basename(loop)}p1")
    assert len(asset_scan(api, asset_scan_id)["sbom"]["packages"]) == 2

    remove(provider, asset_scan_id)
    assert loops_of(image) == []
    assert not os.path.exists(f"/sys/block/{os.path.basename(loop)}/{os.path.basename(loop)}p1")


def test_removing_a_killed_image_scan_unmounts_and_detaches(
        app, api, provider, tmp_path, loop_devices, slow_scan_config):
    image = ext4_image(tmp_path / "disk.img", make_root(tmp_path / "tree"))
    asset, asset_scan_id, token = image_asset(app, api, image)
    provider.run_asset_scan(job(asset, asset_scan_id, token, slow_scan_config))
    move(api, asset_scan_id, "ReadyToScan")
    wait_for(lambda: exploits_running(api, asset_scan_id), 60, "the exploits lookup to start")
    loop = state_of(provider, asset_scan_id)["loop"]
    [mountpoint] = mounts_of(loop)  # the scanner is in the middle of its scan

    remove(provider, asset_scan_id)  # SIGTERM: the scanner dies without unmounting

    assert mounts_of(loop) == []
    assert not os.path.exists(mountpoint)
    assert loops_of(image) == []
    assert not (provider.root / asset_scan_id).exists()


def test_a_loop_device_attached_but_not_recorded_is_adopted_and_released(
        app, api, provider, tmp_path, loop_devices):
    # A worker that died between `losetup` and recording the device it got.
    image = ext4_image(tmp_path / "disk.img", make_root(tmp_path / "tree"))
    asset, asset_scan_id, token = image_asset(app, api, image)
    directory = provider.root / asset_scan_id
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(json.dumps(
        {"kind": "image", "path": str(image), "image": str(image), "attaching": True}))
    loop = subprocess.run(["losetup", "--find", "--show", "--read-only", "--partscan", str(image)],
                          capture_output=True, text=True, check=True).stdout.strip()

    provider.run_asset_scan(job(asset, asset_scan_id, token))
    assert state_of(provider, asset_scan_id)["loop"] == loop
    assert loops_of(image) == [loop]
    remove(provider, asset_scan_id)
    assert loops_of(image) == []

    # Removal adopts it too, when the crash left no scanner to run.
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(json.dumps({"image": str(image), "attaching": True}))
    subprocess.run(["losetup", "--find", "--read-only", str(image)], check=True)
    remove(provider, asset_scan_id)
    assert loops_of(image) == []


def test_lynis_never_runs_on_the_control_plane_host():
    both = {"sbom": {"enabled": True}, "misconfiguration": {"enabled": True, "scanners_list": ["native", "lynis"]}}
    assert local._for_this_host(both) == {"sbom": {"enabled": True},
                                          "misconfiguration": {"enabled": True, "scanners_list": ["native"]}}
    only = {"misconfiguration": {"enabled": True, "scanners_list": ["lynis"], "scanners_config": {"x": {}}}}
    assert local._for_this_host(only) == {"misconfiguration": {"enabled": True, "scanners_config": {"x": {}}}}
    assert only["misconfiguration"]["scanners_list"] == ["lynis"]  # the job's own config is left alone
    assert local._for_this_host(SBOM_ONLY) is SBOM_ONLY


# ---- bookkeeping --------------------------------------------------------------------


def test_leftovers_are_the_recorded_asset_scans_not_live(tmp_path):
    provider = LocalProvider({"data_dir": str(tmp_path)})
    assert provider.leftovers({"a"}) == []
    for name in ("a", "b", "logs"):
        (provider.root / name).mkdir(parents=True)
    (provider.root / "c.lock").touch()
    assert provider.leftovers({"a"}) == ["b"]
    assert provider.leftovers(set()) == ["a", "b"]


def test_estimates_are_honest_and_free(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"x" * 3 * MiB)
    (tree / "sub/b").write_bytes(b"y" * MiB)
    os.symlink("/usr", tree / "link")  # not followed
    provider = LocalProvider({"data_dir": str(tmp_path), "estimate_throughput": MiB})
    directory = {"assetInfo": {"objectType": "DirInfo", "dirName": str(tree), "location": "h"}}

    estimate = provider.estimate({}, directory, {})
    assert estimate == {"duration": 4, "size": 1, "cost": 0.0, "costBreakdown": []}
    assert_valid("Estimation", estimate)

    earlier = {"general": {"scanTime": {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-01T00:01:30Z"}}}
    assert provider.estimate(earlier, directory, {})["duration"] == 90
    per_family = {"sbom": [{"scanTime": {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-01T00:00:10Z"}}],
                  "vulnerabilities": [{"scanTime": {"startTime": "2024-01-01T00:00:10Z",
                                                    "endTime": "2024-01-01T00:00:15Z"}}]}
    assert provider.estimate(per_family, directory, {})["duration"] == 15

    image = tmp_path / "disk.img"
    with open(image, "wb") as file:
        file.truncate(5 * 1024 ** 3)
    vm = {"assetInfo": {"objectType": "VMInfo", "instanceID": str(image)}}
    assert provider.estimate(None, vm, {})["size"] == 5
    with pytest.raises(FatalError):
        provider.estimate({}, {"assetInfo": {"objectType": "DirInfo", "dirName": "/no/such"}}, {})


def test_the_default_scanner_is_this_interpreters():
    assert local.DEFAULT_SCANNER[0] == sys.executable
    result = subprocess.run([*local.DEFAULT_SCANNER, "scan", "--help"], capture_output=True, text=True,
                            cwd="/", timeout=60)
    assert result.returncode == 0 and "--mount-device" in result.stdout
