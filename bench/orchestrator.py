"""Benchmark: the orchestrator's own overhead (issue 4, "Measure").

(a) One-asset scan on the local provider with the real scanner (sbom + vulnerabilities over a
    small directory tree), real Dramatiq worker threads in this process, the API served over
    HTTP for the scanner: wall time from "scan config created" to "scan Done and findings
    processed", minus the scanner's own time (the asset scan's stats.general.scanTime) = the
    control-plane overhead. Target < 2 s. Repeated --runs times; the median is printed, with
    a per-step timeline of the median run.
(b) A 1,000-asset scan through `InstantProvider` (below): a provider whose "scanner" reports
    InProgress and then Done with a small SBOM at once, through app.store as a scanner does
    through the API. Wall time until the scan is Done and every asset scan has its findings
    processed and its cleanup Done, per maxParallelScanners limit (--limits, default 50 and
    1000), with the phases. Target < 60 s on 2 cores.

Every transition is timed where it happens: a receiver of app.signals.document_changed (every
write of the store, in this process) and a wrapper of app.findings.process_asset_scan.

    .venv/bin/python bench/orchestrator.py                  # both parts, SQLite
    .venv/bin/python bench/orchestrator.py --pg             # both parts, PostgreSQL on 127.0.0.1
    .venv/bin/python bench/orchestrator.py --part b --assets 1000 --limits 50,1000 --threads 8

Redis: a private `redis-server` on a unix socket in a temporary directory (never the shared
one), or --redis-url. Not a test: it prints figures. Everything it made is removed afterwards.
"""

import argparse
import contextlib
import datetime
import importlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

ADMIN_TOKEN = "bench-admin-token"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432"
SHARED_OSV = PROJECT.parent / "shared" / "data" / "osv"
#: A tiny OSV database for when ../shared is absent: one advisory for the planted package.
FALLBACK_OSV_RECORD = {
    "id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"], "modified": "2099-01-01T00:00:00Z",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "django"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.0"}]}]}],
}
CANNED_PACKAGES = [
    {"name": "flask", "version": "2.0.1", "type": "python", "language": "python", "purl": "pkg:pypi/flask@2.0.1"},
    {"name": "requests", "version": "2.19.0", "type": "python", "language": "python",
     "purl": "pkg:pypi/requests@2.19.0"},
    {"name": "jinja2", "version": "3.0.0", "type": "python", "language": "python", "purl": "pkg:pypi/jinja2@3.0.0"},
]


# ---- environment --------------------------------------------------------------------


class Environment:
    """Temporary data directory, private Redis and a fresh database; set up before `import tasks`."""

    def __init__(self, args):
        self.args = args
        self.directory = Path(tempfile.mkdtemp(prefix="vmc-bench-"))
        self.redis = None
        self.pg_database = None
        os.environ["VMCLARITY_DATA_DIR"] = str(self.directory / "data")
        os.environ["VMCLARITY_REDIS_URL"] = args.redis_url or self._start_redis()
        self.database_url = self._create_database()

    def _start_redis(self):
        socket_path = self.directory / "redis.sock"
        self.redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            if time.monotonic() > deadline or self.redis.poll() is not None:
                raise SystemExit("redis-server did not start (is it installed?); or pass --redis-url")
            time.sleep(0.02)
        return f"unix://{socket_path}"

    def _create_database(self):
        from app import migrations
        from app.db import database, open_database

        if self.args.pg:
            import psycopg2
            from psycopg2 import sql

            self.pg_database = f"vmclarity_bench_{os.getpid()}"
            admin = psycopg2.connect(f"{self.args.pg_url}/postgres")
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.pg_database)))
            admin.close()
            url = f"{self.args.pg_url}/{self.pg_database}"
        else:
            url = f"sqlite:///{self.directory / 'vmclarity.db'}"
        database.initialize(open_database(url))
        migrations.upgrade()
        database.close()
        return url

    def close(self):
        from app.db import database

        with contextlib.suppress(Exception):
            database.close()
        if self.pg_database:
            import psycopg2
            from psycopg2 import sql

            admin = psycopg2.connect(f"{self.args.pg_url}/postgres")
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.pg_database)))
            admin.close()
        if self.redis and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class Recorder:
    """When each asset scan and scan reached each state, from the store's own change signal."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.first = {}      # (kind, id, what) -> perf_counter of its first occurrence
            self.asset_scans = set()
            self.done = set()
            self.cleaned = set()
            self.processed = set()
            self.scan_done = {}  # scan id -> perf_counter
            self.changed = threading.Event()

    def on_change(self, schema_name, object_id, document, previous):
        if document is None:
            return
        moment = time.perf_counter()
        state = (document.get("status") or {}).get("state")
        with self.lock:
            self.first.setdefault((schema_name, object_id, state), moment)
            if schema_name == "AssetScan":
                self.asset_scans.add(object_id)
                if state in ("Done", "Failed"):
                    self.done.add(object_id)
                if (document.get("resourceCleanupStatus") or {}).get("state") == "Done":
                    if object_id not in self.cleaned:
                        self.first[("AssetScan", object_id, "cleanup Done")] = moment
                    self.cleaned.add(object_id)
            elif schema_name == "Scan" and state in ("Done", "Failed"):
                self.scan_done.setdefault(object_id, moment)
        self.changed.set()

    def on_processed(self, asset_scan_id, counts):
        if "skipped" in counts:
            return
        with self.lock:
            self.first.setdefault(("AssetScan", asset_scan_id, "findings processed"), time.perf_counter())
            self.processed.add(asset_scan_id)
        self.changed.set()

    def times(self, kind, what):
        """perf_counter of every first occurrence of `what` for objects of `kind`."""
        with self.lock:
            return sorted(t for (k, _, w), t in self.first.items() if k == kind and w == what)

    def wait(self, condition, timeout):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out after {timeout}s; asset scans {len(self.asset_scans)}, "
                                 f"done {len(self.done)}, processed {len(self.processed)}, "
                                 f"cleaned {len(self.cleaned)}, scans done {len(self.scan_done)}")
            self.changed.wait(0.05)
            self.changed.clear()


class ActorTimes:
    """Messages each actor processed and the worker-thread time they took (a Dramatiq middleware)."""

    def __init__(self):
        from dramatiq.middleware import Middleware

        times = self
        self.lock = threading.Lock()
        self.local = threading.local()
        self.stats = {}

        class Timing(Middleware):
            def before_process_message(self, broker, message):
                times.local.started = time.perf_counter()

            def after_process_message(self, broker, message, *, result=None, exception=None):
                took = time.perf_counter() - times.local.started
                name = message.actor_name + (" (raised)" if exception else "")
                with times.lock:
                    count, total = times.stats.get(name, (0, 0.0))
                    times.stats[name] = (count + 1, total + took)

            after_skip_message = after_process_message

        self.middleware = Timing()

    def reset(self):
        with self.lock:
            self.stats = {}

    def report(self, indent="    "):
        with self.lock:
            stats = sorted(self.stats.items(), key=lambda item: -item[1][1])
        print(f"{indent}worker time per actor (messages, thread-seconds, mean ms):")
        for name, (count, total) in stats:
            print(f"{indent}  {name:28s} {count:7d} {total:9.1f} {1000 * total / count:9.1f}")


def start_orchestrator(env, threads, recorder):
    """The app with the orchestrator, a Worker in this process; returns (app, worker)."""
    import dramatiq
    from dramatiq import Worker

    from app import create_app, findings, signals

    importlib.import_module("tasks")  # binds the broker to VMCLARITY_REDIS_URL: after Environment()

    app = create_app({"DATABASE_URL": env.database_url, "DATA_DIR": os.environ["VMCLARITY_DATA_DIR"],
                      "ADMIN_TOKEN": ADMIN_TOKEN, "EXTENSIONS": ("orchestrator",)})
    signals.document_changed.connect(recorder.on_change, weak=False)
    original = findings.process_asset_scan

    def process_asset_scan(asset_scan_id):
        counts = original(asset_scan_id)
        recorder.on_processed(asset_scan_id, counts)
        return counts

    findings.process_asset_scan = process_asset_scan
    broker = dramatiq.get_broker()
    broker.flush_all()
    app.actor_times = ActorTimes()
    broker.add_middleware(app.actor_times.middleware)
    worker = Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return app, worker


def scan_config_body(name, scope, families, max_parallel):
    return {"name": name, "scheduled": {"operationTime": "2000-01-01T00:00:00Z"},
            "scanTemplate": {"scope": scope, "maxParallelScanners": max_parallel,
                             "assetScanTemplate": {"scanFamiliesConfig": families}}}


def seconds(start, end):
    parse = lambda text: datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


# ---- (a) one asset, real scanner ----------------------------------------------------


def plant(root, name, version):
    folder = root / "usr/lib/python3/dist-packages" / f"{name}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def one_asset(env, args):
    from werkzeug.serving import WSGIRequestHandler, make_server

    from app.db import database
    from app.models import Asset, AssetScan, Scan
    from tasks.objects import create

    root = env.directory / "machine"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    for name, version in (("django", "3.2.0"), ("requests", "2.19.0"), ("flask", "2.0.1")):
        plant(root, name, version)
    if (SHARED_OSV / "PyPI" / "all.zip").exists():
        osv = SHARED_OSV
    else:
        osv = env.directory / "osv"
        (osv / "PyPI").mkdir(parents=True)
        with zipfile.ZipFile(osv / "PyPI/all.zip", "w") as archive:
            archive.writestr("record.json", json.dumps(FALLBACK_OSV_RECORD))
    os.environ["VMCLARITY_SCANNER_OSV_DB_PATH"] = str(osv)

    class Quiet(WSGIRequestHandler):
        def log_request(self, *a, **k):
            pass

    recorder = Recorder()
    app, worker = start_orchestrator(env, args.threads, recorder)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["VMCLARITY_API_URL"] = f"http://127.0.0.1:{server.server_port}/api"
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    families = {"sbom": {"enabled": True, "analyzers": ["native"]},
                "vulnerabilities": {"enabled": True, "scanners": ["osv"]}}
    with database.connection_context():
        asset = create(Asset, {"assetInfo": {"objectType": "DirInfo", "dirName": str(root), "location": "bench"}})
    runs = []
    try:
        for run in range(args.runs):
            recorder.reset()
            t0 = time.perf_counter()
            response = client.post("/api/scanConfigs", headers=headers, json=scan_config_body(
                f"one-asset-{run}", f"id eq '{asset['id']}'", families, 1))
            assert response.status_code == 201, response.get_json()
            recorder.wait(lambda: recorder.scan_done and recorder.processed, timeout=120)
            t_end = max(max(recorder.scan_done.values()), max(recorder.times("AssetScan", "findings processed")))
            recorder.wait(lambda: recorder.cleaned, timeout=60)
            with database.connection_context():
                scan = Scan.get(Scan.id == next(iter(recorder.scan_done))).data
                asset_scan = AssetScan.get(AssetScan.scan == scan["id"]).data
            assert scan["status"]["state"] == "Done", scan["status"]
            scan_time = asset_scan["stats"]["general"]["scanTime"]
            scanner = seconds(scan_time["startTime"], scan_time["endTime"])
            timeline = _one_asset_timeline(recorder, t0, scan["id"], asset_scan["id"])
            at = {key[2]: moment - t0 for key, moment in recorder.first.items() if key[1] == asset_scan["id"]}
            parts = {"before the scanner (config -> ReadyToScan)": at["ReadyToScan"],
                     "scanner start-up and reporting (wall - scanTime - the rest)":
                         (at["Done"] - at["ReadyToScan"]) - scanner,
                     "after the scanner (Done -> scan Done and findings processed)": t_end - t0 - at["Done"]}
            runs.append({"wall": t_end - t0, "scanner": scanner, "overhead": t_end - t0 - scanner, "parts": parts,
                         "cleanup": max(recorder.times("AssetScan", "cleanup Done")) - t0, "timeline": timeline})
            print(f"  run {run + 1}: wall {t_end - t0:6.3f} s, scanner {scanner:6.3f} s, "
                  f"overhead {t_end - t0 - scanner:6.3f} s")
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()
    overheads = [r["overhead"] for r in runs]
    median_run = sorted(runs, key=lambda r: r["overhead"])[len(runs) // 2]
    print(f"(a) one-asset scan, {args.runs} runs ({'PostgreSQL' if args.pg else 'SQLite'}, "
          f"{args.threads} worker threads, OSV data: {osv})")
    print(f"    wall median {statistics.median(r['wall'] for r in runs):.3f} s, scanner's own time median "
          f"{statistics.median(r['scanner'] for r in runs):.3f} s")
    print(f"    CONTROL-PLANE OVERHEAD median {statistics.median(overheads):.3f} s "
          f"(min {min(overheads):.3f}, max {max(overheads):.3f}); target < 2 s")
    print("    overhead, medians of its parts:")
    for part in runs[0]["parts"]:
        print(f"      {statistics.median(r['parts'][part] for r in runs):6.3f} s  {part}")
    print("    timeline of the median run (seconds after the scan config was created):")
    for label, moment in median_run["timeline"]:
        print(f"      {moment:7.3f}  {label}")
    app.actor_times.report()
    return runs


def _one_asset_timeline(recorder, t0, scan_id, asset_scan_id):
    points = [
        ("scan created (Pending)", ("Scan", scan_id, "Pending")),
        ("scan Discovered", ("Scan", scan_id, "Discovered")),
        ("asset scan created (Pending)", ("AssetScan", asset_scan_id, "Pending")),
        ("scan InProgress", ("Scan", scan_id, "InProgress")),
        ("asset scan Scheduled", ("AssetScan", asset_scan_id, "Scheduled")),
        ("asset scan ReadyToScan (scanner process started)", ("AssetScan", asset_scan_id, "ReadyToScan")),
        ("asset scan InProgress (reported by the scanner)", ("AssetScan", asset_scan_id, "InProgress")),
        ("asset scan Done (reported by the scanner)", ("AssetScan", asset_scan_id, "Done")),
        ("scan Done", ("Scan", scan_id, "Done")),
        ("findings processed", ("AssetScan", asset_scan_id, "findings processed")),
        ("cleanup Done (scanner gone)", ("AssetScan", asset_scan_id, "cleanup Done")),
    ]
    found = [(label, recorder.first[key] - t0) for label, key in points if key in recorder.first]
    return sorted(found, key=lambda item: item[1])


# ---- (b) 1,000 assets, a scanner that finishes at once ------------------------------


def make_instant_provider(recorder_threads):
    from app import signals, store
    from app.models import AssetScan
    from app.resources import RESOURCES_BY_MODEL
    from tasks.objects import status, timestamp
    from tasks.providers import Provider

    resource = RESOURCES_BY_MODEL[AssetScan]

    class InstantProvider(Provider):
        """Every asset scan's "scanner" starts at once and reports Done at once, through the store.

        run_asset_scan only records the job: like a real scanner, the fake one may report
        InProgress only once the orchestrator has recorded ReadyToScan, so it reacts to that
        change (app.signals) and PATCHes InProgress, then Done with a 3-package SBOM, on a
        small pool of its own ("the scanner VMs"). remove_asset_scan has nothing to remove.
        """

        kind = "instant"
        started = set()
        lock = threading.Lock()
        fleet = ThreadPoolExecutor(max_workers=recorder_threads, thread_name_prefix="instant-scanner")

        def __init__(self, settings=None):
            pass

        def run_asset_scan(self, job):
            with self.lock:
                self.started.add(job.asset_scan_id)

        def remove_asset_scan(self, asset_scan_id):
            return None

        @classmethod
        def on_change(cls, schema_name, object_id, document, previous):
            if schema_name != "AssetScan" or document is None or object_id not in cls.started:
                return
            if (document.get("status") or {}).get("state") == "ReadyToScan" and \
                    ((previous or {}).get("status") or {}).get("state") != "ReadyToScan":
                cls.fleet.submit(cls._scan, object_id)

        @staticmethod
        def _scan(asset_scan_id):
            from app.db import database

            with database.connection_context():
                store.patch(resource, asset_scan_id, {"status": status("InProgress", "ScannerIsRunning")}, None)
                started = timestamp()
                store.patch(resource, asset_scan_id, {
                    "sbom": {"status": {"state": "Done", "reason": "Success", "lastTransitionTime": timestamp()},
                             "packages": CANNED_PACKAGES},
                    "stats": {"general": {"scanTime": {"startTime": started, "endTime": timestamp()}}},
                    "summary": {"totalPackages": len(CANNED_PACKAGES)},
                    "status": status("Done", "Success")}, None)

    signals.document_changed.connect(InstantProvider.on_change, weak=False)
    return InstantProvider


def many_assets(env, args):
    import tasks.asset_scans
    import tasks.discovery
    import tasks.providers
    import tasks.scheduler
    from app.db import database
    from app.models import Asset, AssetScan, Scan, ScanConfig
    from tasks.objects import create

    recorder = Recorder()
    app, worker = start_orchestrator(env, args.threads, recorder)
    InstantProvider = make_instant_provider(args.scanner_threads)  # noqa: N806
    real_get_provider = tasks.providers.get_provider

    def get_provider(name, settings):
        return InstantProvider(settings) if name == "instant" else real_get_provider(name, settings)

    # Every module that looks providers up imported the function by name.
    for module in (tasks.providers, tasks.asset_scans, tasks.discovery, tasks.scheduler):
        module.get_provider = get_provider
    os.environ["VMCLARITY_PROVIDER"] = "instant"

    t = time.perf_counter()
    with database.connection_context():
        for index in range(args.assets):
            create(Asset, {"assetInfo": {"objectType": "DirInfo", "dirName": f"/bench/asset-{index:05d}",
                                         "location": "bench"}})
    print(f"(b) {args.assets} DirInfo assets created through app.store in {time.perf_counter() - t:.1f} s")
    results = []
    try:
        for limit in args.limits:
            recorder.reset()
            app.actor_times.reset()
            InstantProvider.started.clear()
            t0 = time.perf_counter()
            with database.connection_context():
                create(ScanConfig, scan_config_body(f"many-{limit}", "assetInfo/objectType eq 'DirInfo'",
                                                    {"sbom": {"enabled": True}}, limit))
            n = args.assets
            recorder.wait(lambda: recorder.scan_done and len(recorder.processed) >= n and len(recorder.cleaned) >= n,
                          timeout=args.timeout)
            t_end = time.perf_counter()
            scan_id = next(iter(recorder.scan_done))
            with database.connection_context():
                scan = Scan.get(Scan.id == scan_id).data
                count = AssetScan.select().where(AssetScan.scan == scan_id).count()
                unprocessed = AssetScan.select().where(AssetScan.scan == scan_id,
                                                       AssetScan.findings_processed == False).count()  # noqa: E712
            phases = [
                ("scan created", recorder.times("Scan", "Pending")[0]),
                ("scan Discovered (1000 asset ids)", recorder.times("Scan", "Discovered")[0]),
                ("all asset scans created", max(recorder.times("AssetScan", "Pending"))),
                ("first asset scan Done", min(recorder.times("AssetScan", "Done"))),
                ("all asset scans Done", max(recorder.times("AssetScan", "Done"))),
                ("scan Done", recorder.scan_done[scan_id]),
                ("all findings processed", max(recorder.times("AssetScan", "findings processed"))),
                ("all cleanups Done", max(recorder.times("AssetScan", "cleanup Done"))),
            ]
            wall = t_end - t0
            results.append({"limit": limit, "wall": wall})
            print(f"  maxParallelScanners {limit}: {count} asset scans, scan {scan['status']['state']} "
                  f"({scan['status'].get('message')}), unprocessed {unprocessed}")
            print(f"    WALL {wall:.1f} s to scan Done + all findings processed + all cleanups Done "
                  f"({n / wall:.0f} asset scans/s); target < 60 s")
            for label, moment in phases:
                print(f"      {moment - t0:7.2f}  {label}")
            app.actor_times.report()
    finally:
        worker.stop()
        InstantProvider.fleet.shutdown(wait=False)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (a throwaway database) instead of SQLite")
    parser.add_argument("--pg-url", default=os.environ.get("VMCLARITY_TEST_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    parser.add_argument("--runs", type=int, default=5, help="(a) repetitions")
    parser.add_argument("--assets", type=int, default=1000, help="(b) assets")
    parser.add_argument("--limits", default="20,2",
                        help="(b) maxParallelScanners values, comma-separated (the API allows 1 to 20; unset means 2)")
    parser.add_argument("--threads", type=int, default=8, help="Dramatiq worker threads")
    parser.add_argument("--scanner-threads", type=int, default=4, help="(b) threads of the instant 'scanners'")
    parser.add_argument("--timeout", type=float, default=600, help="(b) give up after this many seconds")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    args.limits = [int(x) for x in args.limits.split(",") if x]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.verbose:  # messages that raised are counted in the per-actor table instead
        logging.getLogger("dramatiq").setLevel(logging.CRITICAL)

    if args.part == "both":  # each part in a process, database and Redis of its own
        for part in ("a", "b"):
            code = subprocess.call([sys.executable, __file__, *sys.argv[1:], "--part", part])
            if code:
                raise SystemExit(code)
        return

    env = Environment(args)
    print(f"database {'PostgreSQL' if args.pg else 'SQLite'}, Redis {os.environ['VMCLARITY_REDIS_URL']}, "
          f"{os.cpu_count()} CPUs, {args.threads} worker threads", flush=True)
    try:
        (one_asset if args.part == "a" else many_assets)(env, args)
    finally:
        env.close()


if __name__ == "__main__":
    main()
