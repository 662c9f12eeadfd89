"""Crash safety with real processes: kill -9 the worker, the scheduler or Redis in the middle of a scan.

Every piece runs as its own process, as in production: the API under gunicorn, the
workers (`python -m dramatiq tasks`), the scheduler (`python -m tasks.scheduler`)
and a private `redis-server` on a unix socket in a temporary directory. The API is
not served in-process: the test process's broker is bound to the shared Redis
(database 15, see conftest) at `import tasks` time, and a worker of another test
run on that Redis would take our messages (and ours theirs). The private server
isolates each test completely and can be killed and restarted at will.

The scanner runs for real (local provider, sbom + vulnerabilities + exploits); a
local exploit-db server that answers after EXPLOIT_DELAY seconds keeps each asset
scan InProgress long enough to kill things in the middle of it. Each test then
proves principle 1 (ARCHITECTURE.md): the scan still finishes Done, there is
exactly one asset scan per asset, exactly one scanner process was ever started
per asset scan, and cleanup leaves no scanner process and no provider directory.
"""

import contextlib
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from app.db import database
from app.models import ApiToken, Asset, AssetScan, Scan, ScanConfig
from conftest import ADMIN_TOKEN, OSV_RECORD, SlowExploitHandler, plant_python_package, write_osv

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="needs redis-server to run a private, killable Redis")

PROJECT = Path(__file__).resolve().parent.parent
FAMILIES = {"sbom": {"enabled": True, "analyzers": ["native"]},
            "vulnerabilities": {"enabled": True, "scanners": ["osv"]},
            "exploits": {"enabled": True, "scanners": ["exploitdb"]}}
#: Seconds the exploit-db server takes per answer: how long each asset scan stays InProgress.
EXPLOIT_DELAY = SlowExploitHandler.delay
ASSETS = 2
SCAN_TIMEOUT = 90
#: Long enough for a scan held up by a dead worker's object lock (tasks.locks.LOCK_TTL, 120 s):
#: tests that check only safety wait that long; the stall itself is checked separately.
STALL_TOLERANT_TIMEOUT = 180
#: Seconds a scan may take to finish after its worker was killed and restarted.
RECOVERY_BOUND = 45
STARTED = re.compile(r"asset scan (\S+): scanner started, pid (\d+)")
SWEEP = re.compile(r"^(\S+ \S+) scheduler INFO sweep: (\d+) reconciles enqueued", re.M)


# ---- the pieces ---------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on a unix socket, without persistence: a restart loses everything."""

    def __init__(self):
        # Short path: a unix socket path must fit in 108 bytes.
        self.directory = tempfile.mkdtemp(prefix="vmc-redis-")
        self.socket = os.path.join(self.directory, "redis.sock")
        self.url = f"unix://{self.socket}"
        self.process = None

    def start(self):
        with open(os.path.join(self.directory, "redis.log"), "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", self.directory],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with self.client() as client:
            wait_until(lambda: _pings(client), timeout=10, what="the private redis-server to answer")
        return self

    def kill(self):
        _kill_group(self.process)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)

    def client(self):
        return redis.Redis(unix_socket_path=self.socket)

    def close(self):
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _pings(client):
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


class Cluster:
    """The control plane as separate processes, all on one database and one private Redis."""

    def __init__(self, tmp_path, database_url, redis_server, roots, osv, exploit_url):
        self.tmp = tmp_path
        self.redis = redis_server
        self.data_dir = tmp_path / "data"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VMCLARITY_")},
            "VMCLARITY_DATABASE_URL": database_url,
            "VMCLARITY_REDIS_URL": redis_server.url,
            "VMCLARITY_DATA_DIR": str(self.data_dir),
            "VMCLARITY_ADMIN_TOKEN": ADMIN_TOKEN,
            "VMCLARITY_API_URL": f"{self.url}/api",
            "VMCLARITY_LOCAL_ASSETS": ":".join(str(root) for root in roots),
            "VMCLARITY_SCANNER_OSV_DB_PATH": str(osv),
            "VMCLARITY_SCANNER_EXPLOITDB_URL": exploit_url,
            "VMCLARITY_SWEEP_INTERVAL": "1",
            "VMCLARITY_ABORT_TIMEOUT": "30",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes = []
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

    # processes

    def spawn(self, name, argv):
        log = open(self.logs / f"{name}.log", "ab")
        process = subprocess.Popen(argv, cwd=PROJECT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        process.name = name
        self.processes.append(process)
        return process

    def start_api(self):
        process = self.spawn("api", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                                     "--workers", "2", "--threads", "4", "app:create_app()"])
        wait_until(lambda: _answers(self.http, f"{self.url}/api/scans"), timeout=30, what="the API to answer",
                   alive=process)
        return process

    def start_worker(self, name="worker"):
        return self.spawn(name, [sys.executable, "-m", "dramatiq", "tasks", "--processes", "1", "--threads", "4",
                                 "--queues", "orchestrator", "default"])

    def start_scheduler(self, name="scheduler"):
        return self.spawn(name, [sys.executable, "-m", "tasks.scheduler"])

    def kill(self, process):
        _kill_group(process)

    def close(self):
        for process in self.processes:
            _kill_group(process)
        # Scanners are in sessions of their own: stop any that our provider directory still owns.
        for pid in _scanner_pids(self.data_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        self.http.close()

    def log(self, name):
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self):
        return {path.stem: path.read_text(errors="replace")[-4000:] for path in sorted(self.logs.glob("*.log"))}

    # API

    def api(self, method, path, **kwargs):
        response = self.http.request(method, f"{self.url}/api{path}", timeout=30, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def discovered(self, count):
        """Wait until discovery (the scheduler's first tick) has created `count` assets."""
        wait_until(lambda: _count(Asset) >= count, timeout=30, what=f"{count} discovered assets", cluster=self)

    def create_scan_config(self, max_parallel=1):
        return self.api("POST", "/scanConfigs", json={
            "name": f"crash-{time.monotonic_ns()}",
            "scheduled": {"operationTime": "2000-01-01T00:00:00Z"},
            "scanTemplate": {"scope": "assetInfo/objectType eq 'DirInfo'", "maxParallelScanners": max_parallel,
                             "assetScanTemplate": {"scanFamiliesConfig": FAMILIES}}})

    def finished_scan(self, config_id, timeout=SCAN_TIMEOUT):
        def finished():
            with database.connection_context():
                row = Scan.get_or_none(Scan.scan_config == config_id)
                return row and row.data["status"]["state"] in ("Done", "Failed") and row.data

        return wait_until(finished, timeout=timeout, what="the scan to finish", cluster=self)


class ScannerWatch(threading.Thread):
    """Samples /proc every 20 ms: which scanner processes (by pid) ran for which asset scan."""

    def __init__(self, data_dir):
        super().__init__(name="scanner-watch", daemon=True)
        self.data_dir = str(data_dir)
        self.seen = {}  # asset scan id -> {pids}
        self.most_at_once = {}  # asset scan id -> largest number alive together
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.02):
            alive = {}
            for pid, asset_scan_id in _scanners(self.data_dir):
                alive.setdefault(asset_scan_id, set()).add(pid)
            for asset_scan_id, pids in alive.items():
                self.seen.setdefault(asset_scan_id, set()).update(pids)
                self.most_at_once[asset_scan_id] = max(self.most_at_once.get(asset_scan_id, 0), len(pids))

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


def _scanners(data_dir):
    """(pid, asset scan id) of every living scanner main process whose state is under `data_dir`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except OSError:
            continue
        if "--asset-scan-id" in argv and any(arg.startswith(data_dir) for arg in argv):
            found.append((int(entry), argv[argv.index("--asset-scan-id") + 1]))
    return found


def _scanner_pids(data_dir):
    return [pid for pid, _ in _scanners(str(data_dir))]


def _kill_group(process):
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(session, url):
    try:
        return session.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _count(model, *conditions):
    with database.connection_context():
        query = model.select()
        if conditions:
            query = query.where(*conditions)
        return query.count()


def _asset_scan_states():
    with database.connection_context():
        return [row.data["status"]["state"] for row in AssetScan.select().order_by(AssetScan.pk)]


def wait_until(condition, timeout, what, cluster=None, alive=None, poll=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            break
        time.sleep(poll)
    logs = cluster.all_logs() if cluster else {}
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; asset scans "
                         f"{_safe(_asset_scan_states)}\n" + "\n".join(f"--- {n}\n{t}" for n, t in logs.items()))


def _safe(function):
    try:
        return function()
    except Exception as error:  # noqa: BLE001 - only for a failure message
        return f"<{error}>"


# ---- fixtures -----------------------------------------------------------------------


@pytest.fixture
def cluster(database_url, tmp_path):
    roots = []
    for index in range(ASSETS):
        root = tmp_path / f"machine{index}"
        (root / "etc").mkdir(parents=True)
        (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
        plant_python_package(root, "vmclarity-demo", "1.0")  # one CVE: one slow exploit-db question
        roots.append(root)
    osv = write_osv(tmp_path / "osv", [OSV_RECORD])
    exploits = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowExploitHandler)
    exploits.daemon_threads = True
    threading.Thread(target=exploits.serve_forever, daemon=True).start()
    redis_server = PrivateRedis().start()
    cluster = Cluster(tmp_path, database_url, redis_server, roots, osv,
                      f"http://127.0.0.1:{exploits.server_port}")
    cluster.exploits = exploits
    watch = ScannerWatch(cluster.data_dir)
    watch.start()
    cluster.watch = watch
    try:
        yield cluster
    finally:
        watch.stop()
        cluster.close()
        redis_server.close()
        exploits.shutdown()
        exploits.server_close()


# ---- what every crash test proves ---------------------------------------------------


def assert_finished_cleanly(cluster, config_id, timeout=SCAN_TIMEOUT):
    scan = cluster.finished_scan(config_id, timeout=timeout)
    assert (scan["status"]["state"], scan["status"]["reason"]) == ("Done", "Success"), scan["status"]
    assert scan["status"]["message"] == f"{ASSETS} succeeded, 0 failed out of {ASSETS} total asset scans"
    assert _count(Scan, Scan.scan_config == config_id) == 1, "one scan for the config"

    # Exactly one asset scan per (asset, scan), each processed and cleaned up.
    def settled():
        with database.connection_context():
            rows = [row.data for row in AssetScan.select()]
        return all(r.get("findingsProcessed") and r["resourceCleanupStatus"]["state"] == "Done" for r in rows) \
            and rows

    rows = wait_until(settled, timeout=timeout, what="findings processed and cleanup done", cluster=cluster)
    assert len(rows) == ASSETS
    assert len({(r["asset"]["id"], r["scan"]["id"]) for r in rows}) == ASSETS
    assert all(r["status"]["state"] == "Done" for r in rows)
    assert all(r["exploits"]["status"]["state"] == "Done" for r in rows), [r["exploits"] for r in rows]
    assert scan["summary"]["totalVulnerabilities"]["totalCriticalVulnerabilities"] == ASSETS, scan["summary"]

    # Exactly one scanner process ever started per asset scan: what /proc showed meanwhile,
    # the provider's own log lines in the workers' logs (a kill -9 may lose the last lines of
    # a log, never double one), and the scanner's log kept by cleanup (one run in it).
    ids = {r["id"] for r in rows}
    cluster.watch.stop()
    seen = cluster.watch.seen
    assert set(seen) == ids, f"scanners seen running: {seen}"
    assert all(len(pids) == 1 for pids in seen.values()), f"more than one scanner process per asset scan: {seen}"
    starts = {}
    for path in cluster.logs.glob("worker*.log"):
        for asset_scan_id, pid in STARTED.findall(path.read_text(errors="replace")):
            starts.setdefault(asset_scan_id, set()).add(int(pid))
    assert set(starts) <= ids, starts
    assert all(pids == seen[i] for i, pids in starts.items()), f"started {starts}, seen {seen}"
    for asset_scan_id in ids:
        kept = cluster.data_dir / "local-provider" / "logs" / f"{asset_scan_id}.log"
        assert kept.exists(), f"no kept scanner log for {asset_scan_id}"
        assert kept.read_text().count("sbom: started") == 1, kept.read_text()

    # Nothing left behind: no scanner process, no provider directory or lock, no token.
    wait_until(lambda: not _scanner_pids(cluster.data_dir), timeout=15, what="no scanner process",
               cluster=cluster)
    left = sorted(entry.name for entry in (cluster.data_dir / "local-provider").iterdir())
    assert left == ["logs"], left
    assert _count(ApiToken, ApiToken.asset_scan.in_(list(ids))) == 0, "scanner tokens outlived cleanup"
    return scan, rows


def wait_for_state(cluster, state, index=0, timeout=60):
    """Wait until the `index`-th asset scan (creation order) is in `state`; return its id."""
    def reached():
        with database.connection_context():
            rows = list(AssetScan.select().order_by(AssetScan.pk))
        return len(rows) > index and rows[index].data["status"]["state"] == state and rows[index].id

    return wait_until(reached, timeout=timeout, what=f"asset scan #{index} {state}", cluster=cluster)


# ---- the tests ----------------------------------------------------------------------


def first_scanner_running(cluster, scheduler="scheduler"):
    """API, worker-1 and a scheduler up, the assets discovered, a one-scanner-at-a-time scan
    started and its first asset scan InProgress; (worker, scheduler, scan config)."""
    cluster.start_api()
    worker = cluster.start_worker("worker-1")
    scheduler = cluster.start_scheduler(scheduler)
    cluster.discovered(ASSETS)
    config = cluster.create_scan_config(max_parallel=1)
    wait_for_state(cluster, "InProgress", index=0)
    return worker, scheduler, config


def test_killing_the_worker_mid_scan_loses_nothing_and_starts_no_second_scanner(cluster):
    worker, _, config = first_scanner_running(cluster)

    # 1. While the first scanner runs: the scanner outlives the worker (its own session).
    cluster.kill(worker)
    time.sleep(1.0)
    worker = cluster.start_worker("worker-2")

    # 2. In the provider's most dangerous window: the second scanner has just been started
    #    and recorded (state.json), but the worker may not have recorded ReadyToScan yet.
    with database.connection_context():
        second = AssetScan.select().order_by(AssetScan.pk)[1].id  # all exist since the scan was Discovered
    record = cluster.data_dir / "local-provider" / second / "state.json"
    wait_until(record.exists, timeout=60, what="the second scanner to start", cluster=cluster, poll=0.001)
    cluster.kill(worker)
    time.sleep(0.5)
    cluster.start_worker("worker-3")

    # Safety only here (the time a restart takes is test_a_worker_killed_holding_a_lock...'s).
    assert_finished_cleanly(cluster, config["id"], timeout=STALL_TOLERANT_TIMEOUT)


def test_a_worker_killed_holding_a_reconcile_lock_does_not_stall_the_scan(cluster):
    """A dead worker's object lock must not hold up its object for long (it expires, or is broken)."""
    worker, _, config = first_scanner_running(cluster)

    # Kill the worker the moment it holds a lock (the sweep re-drives the scan and its
    # unfinished asset scans every second, each under its lock); retry until it did.
    with cluster.redis.client() as client:
        held = []
        for attempt in range(2, 12):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not client.keys("vmclarity:lock:*"):
                time.sleep(0.0005)
            cluster.kill(worker)
            held = {key.decode(): client.pttl(key) for key in client.keys("vmclarity:lock:*")}
            worker = cluster.start_worker(f"worker-{attempt}")
            if held:
                break
    assert held, "never caught the worker holding a lock"

    # The rest of the scan takes ~10 s (one exploit-db answer per asset scan, startup);
    # a lock left by the dead worker may cost a little more, not minutes.
    def finished():
        with database.connection_context():
            rows = [row.data for row in AssetScan.select()]
            scan = Scan.get(Scan.scan_config == config["id"]).data
        return scan["status"]["state"] == "Done" and all(
            r.get("findingsProcessed") and r["resourceCleanupStatus"]["state"] == "Done" for r in rows)

    deadline = time.monotonic() + RECOVERY_BOUND
    while time.monotonic() < deadline and not finished():
        time.sleep(0.1)
    with cluster.redis.client() as client:
        still = {key.decode(): client.pttl(key) for key in client.keys("vmclarity:lock:*")}
        queued = client.hlen("vmclarity:orchestrator.msgs")
    assert finished(), (
        f"the scan did not finish within {RECOVERY_BOUND}s of restarting a worker that was killed holding "
        f"{held} (lock key: ms it had left); {RECOVERY_BOUND}s later locks {still} remain, {queued} messages "
        f"queued, asset scans {_asset_scan_states()}: the dead worker's lock stalls its object until it expires")
    assert_finished_cleanly(cluster, config["id"])


def test_killing_the_scheduler_mid_scan_a_second_one_takes_over_and_only_one_sweeps(cluster):
    cluster.start_api()
    cluster.start_worker()
    first = cluster.start_scheduler("scheduler-1")
    cluster.discovered(ASSETS)
    standby = cluster.start_scheduler("scheduler-2")
    config = cluster.create_scan_config(max_parallel=1)

    wait_for_state(cluster, "InProgress", index=0)
    # The standby has been up for a while and never swept: the first holds the lock.
    assert standby.poll() is None
    assert SWEEP.findall(cluster.log("scheduler-1"))
    assert not SWEEP.findall(cluster.log("scheduler-2")), cluster.log("scheduler-2")
    with cluster.redis.client() as client:
        assert client.exists("vmclarity:scheduler")
    cluster.kill(first)
    killed_at = time.time()

    # The standby takes over once the dead one's lock expires (max(3 * interval, 10) s).
    wait_until(lambda: SWEEP.findall(cluster.log("scheduler-2")), timeout=30, what="the standby to sweep",
               cluster=cluster)
    # A third copy started now stays idle while the second holds the lock.
    cluster.start_scheduler("scheduler-3")
    assert_finished_cleanly(cluster, config["id"])
    time.sleep(2.5)  # a few more sweep intervals with both copies up

    first_sweeps = [_epoch(t) for t, _ in SWEEP.findall(cluster.log("scheduler-1"))]
    second_sweeps = [_epoch(t) for t, _ in SWEEP.findall(cluster.log("scheduler-2"))]
    assert max(first_sweeps) < killed_at < min(second_sweeps)
    assert not SWEEP.findall(cluster.log("scheduler-3")), cluster.log("scheduler-3")
    with cluster.redis.client() as client:
        # The live lock has a bounded life: a killed holder cannot keep it.
        assert 0 < client.pttl("vmclarity:scheduler") <= 10_000


def test_restarting_redis_mid_scan_the_sweep_redrives_everything(cluster):
    worker, scheduler, config = first_scanner_running(cluster, "scheduler-1")
    later = cluster.api("POST", "/scanConfigs", json={
        "name": "later", "scheduled": {"operationTime": "2099-01-01T00:00:00Z"},
        "scanTemplate": {"scope": "assetInfo/objectType eq 'DirInfo'"}})

    # With no worker consuming, the first asset scan finishes: the messages its end sets in
    # motion (reconcile the asset scan and the scan: process findings, clean up, start the
    # next asset scan) wait in Redis...
    cluster.kill(worker)
    wait_for_state(cluster, "Done", index=0)
    with cluster.redis.client() as client:
        wait_until(lambda: client.hlen("vmclarity:orchestrator.msgs"), timeout=10, what="queued messages",
                   cluster=cluster)
        queued = set(client.hkeys("vmclarity:orchestrator.msgs"))

    # ...and die with Redis. An API write meanwhile cannot send its message either.
    cluster.redis.kill()
    response = cluster.http.patch(f"{cluster.url}/api/scanConfigs/{later['id']}",
                                  json={"scheduled": {"operationTime": "2098-01-01T00:00:00Z"}}, timeout=30)
    with database.connection_context():
        committed = ScanConfig.get(ScanConfig.id == later["id"]).data["scheduled"]["operationTime"].startswith("2098")
    time.sleep(1.5)
    cluster.redis.start()
    with cluster.redis.client() as client:
        # The scheduler may already be sweeping again: only the messages queued before must be gone.
        assert not queued & set(client.hkeys("vmclarity:orchestrator.msgs")), "a restarted Redis lost them"
    cluster.start_worker("worker-2")
    time.sleep(1.0)
    scheduler_died = scheduler.poll() is not None
    if scheduler_died:  # go on with a new one, to check the rest of the recovery; fail below
        cluster.start_scheduler("scheduler-2")

    # Only the sweep knows what is left to do now.
    assert_finished_cleanly(cluster, config["id"])
    problems = []
    if scheduler_died:
        lines = cluster.log("scheduler-1").splitlines()
        where = [line.strip() for line in lines if "/tasks/" in line] + lines[-1:]
        problems.append("the scheduler exited when Redis went away: " + " | ".join(where))
    if response.status_code >= 300 and committed:
        problems.append(f"a PATCH the API committed while Redis was down answered {response.status_code}: "
                        f"the client is told it failed, yet it happened")
    assert not problems, "\n".join(problems)


def _epoch(text):
    """Seconds since the epoch of a `logging` asctime (local time, `YYYY-mm-dd HH:MM:SS,mmm`)."""
    moment, millis = text.split(",")
    return time.mktime(time.strptime(moment, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
