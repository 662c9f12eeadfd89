"""`vmclarity up`: the whole system on one machine, scanning a directory, stopped by SIGTERM."""

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url, token, body=None):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def wait_for(probe, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except OSError as error:  # not up yet; an HTTP error holds a response to close
            getattr(error, "close", lambda: None)()
        time.sleep(0.5)
    pytest.fail("timed out")


# While `up` boots, a refused or reset connection can leave urllib's socket to the
# garbage collector; this test is about processes, so that is not a failure here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_up_runs_a_scan_and_stops_everything_on_sigterm(tmp_path):
    site = tmp_path / "www/usr/lib/python3/dist-packages/demo_pkg-1.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
    port = free_port()
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("VMCLARITY_") or key == "VMCLARITY_TEST_DATABASE"}
    environ.update(VMCLARITY_LOCAL_ASSETS=str(tmp_path / "www"), VMCLARITY_SWEEP_INTERVAL="2")
    up = subprocess.Popen([sys.executable, "-c", "from app.cli import main; main()", "up",
                           "--data-dir", str(tmp_path / "data"), "--port", str(port)],
                          env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api = f"http://127.0.0.1:{port}/api"
        token = wait_for(lambda: (tmp_path / "data/admin-token").read_text().strip(), 60)
        wait_for(lambda: call(f"{api}/assets", token)["items"], 120)  # discovered by the scheduler
        call(f"{api}/scanConfigs", token, {
            "name": "first", "scheduled": {"operationTime": "2000-01-01T00:00:00Z"},
            "scanTemplate": {"scope": "assetInfo/objectType eq 'DirInfo'",
                             "assetScanTemplate": {"scanFamiliesConfig": {"sbom": {"enabled": True}}}}})
        scan = wait_for(lambda: [s for s in call(f"{api}/scans", token)["items"]
                                 if s["status"]["state"] in ("Done", "Failed")], 120)[0]
        assert (scan["status"]["state"], scan["status"]["reason"]) == ("Done", "Success"), scan
        packages = call(f"{api}/findings?$filter=findingInfo/objectType%20eq%20'Package'", token)["items"]
        assert [p["findingInfo"]["name"] for p in packages] == ["demo-pkg"]
    finally:
        children = subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split()
        up.send_signal(signal.SIGTERM)
        output, _ = up.communicate(timeout=60)
    gc.collect()  # collect those sockets now, under this test's warning filters, not in a later test
    assert up.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output and "admin API token: vmc_" in output
    assert children and not [pid for pid in children if os.path.exists(f"/proc/{pid}")]
