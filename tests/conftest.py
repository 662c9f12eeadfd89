"""Fixtures: a real database (SQLite file, or PostgreSQL when asked) and the app on it.

The suite runs once per backend: `VMCLARITY_TEST_DATABASE=postgresql` selects a
fresh PostgreSQL database on 127.0.0.1 (VMCLARITY_TEST_PG_URL to override).
"""

import contextlib
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

import psycopg2
from peewee import sort_models
import pytest
from psycopg2 import sql
from werkzeug.serving import WSGIRequestHandler, make_server

from app import auth, create_app
from app import migrations
from app.db import database, open_database
from app.models import ALL_MODELS
from scanner.run import walk_with_scanners

# The orchestrator's broker (imported whenever an app loads its extension) uses the
# local Redis, database 15, never an embedded server in a temporary directory.
os.environ.setdefault("VMCLARITY_REDIS_URL", "redis://127.0.0.1:6379/15")

ADMIN_TOKEN = "test-admin-token"
MiB = 1024 * 1024
PG_SERVER_URL = os.environ.get("VMCLARITY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
PG_TEST_DB = f"vmclarity_test_{os.getpid()}"


def backend():
    return os.environ.get("VMCLARITY_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def pg_url():
    """Create a throwaway PostgreSQL database for this test session."""
    admin = psycopg2.connect(f"{PG_SERVER_URL}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(PG_TEST_DB)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_TEST_DB)))
    yield f"{PG_SERVER_URL}/{PG_TEST_DB}"
    database.close()
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_TEST_DB)))
    admin.close()


def fresh_database(url):
    """Bind the proxy to `url`, empty it, bring its schema up to date; return `url`."""
    database.initialize(open_database(url))
    if url.startswith("postgresql"):
        _empty_postgres()
    migrations.upgrade()
    database.close()
    return url


def _empty_postgres():
    # DELETE is much faster than TRUNCATE on tables this small; children go first.
    database.connect(reuse_if_open=True)
    if migrations.current_version() != migrations.target_version():
        tables = [f'"{name}"' for name in database.get_tables()]
        if tables:
            database.execute_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return
    with database.atomic():
        for model in reversed(sort_models(ALL_MODELS)):
            model.delete().execute()


def database_url_for(request, directory):
    """A fresh database of the selected backend (SQLite files go in `directory`)."""
    if backend() == "postgresql":
        return fresh_database(request.getfixturevalue("pg_url"))
    return fresh_database(f"sqlite:///{directory / 'vmclarity.db'}")


@pytest.fixture
def database_url(request, tmp_path):
    """URL of an empty, migrated database of the selected backend."""
    return database_url_for(request, tmp_path)


@pytest.fixture
def db(database_url):
    """The database proxy, connected and bound to a fresh database."""
    database.connect(reuse_if_open=True)
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def app(database_url, tmp_path):
    return create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "EXTENSIONS": (),
    })


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client):
    """A client that sends the admin bearer token on every request."""
    return AuthedClient(client, ADMIN_TOKEN)


class AuthedClient:
    """Thin wrapper that adds an Authorization header to the Flask test client."""

    def __init__(self, client, token):
        self.client = client
        self.token = token

    def open(self, method, url, headers=None, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url, **kwargs):
        return self.open("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.open("POST", url, **kwargs)

    def put(self, url, **kwargs):
        return self.open("PUT", url, **kwargs)

    def patch(self, url, **kwargs):
        return self.open("PATCH", url, **kwargs)

    def delete(self, url, **kwargs):
        return self.open("DELETE", url, **kwargs)


class QuietHandler(WSGIRequestHandler):
    """Keeps the access log out of test output; errors are still logged."""

    def log_request(self, *args, **kwargs):
        pass


@contextlib.contextmanager
def serving(app):
    """Serve `app` over real HTTP on 127.0.0.1 (threaded); yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    """Base URL of the app served over real HTTP."""
    with serving(app) as url:
        yield url


def run_scanners(*scanners):
    """Run content scanners over their root exactly as the scanner CLI does; return their results.

    One result for one scanner, else a list; what a run() raised is raised here.
    """
    _, errors = walk_with_scanners(scanners[0].root, scanners)
    for error in errors.values():
        if error is not None:
            raise error
    results = [scanner.finish() for scanner in scanners]
    return results[0] if len(results) == 1 else results


def write_file(root, path, text, mode=0o644):
    """Write `text` at the in-root `path` under `root`, with `mode`; return the file."""
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def make_token(role, asset_scan_id=None):
    """A stored API token of `role` (a scanner token for `asset_scan_id`); the database must be bound."""
    database.connect(reuse_if_open=True)
    try:
        if role == "scanner":
            return auth.mint_scanner_token(asset_scan_id)
        return auth.create_token(f"test {role}", role)
    finally:
        database.close()


def race(calls):
    """Run every call at once, each in its own thread with its own database connection.

    Returns their results in order; what a call raised is re-raised here.
    """
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(index, call):
        try:
            database.connect(reuse_if_open=True)
            barrier.wait(timeout=30)
            results[index] = call()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)
        finally:
            if not database.is_closed():
                database.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


@contextlib.contextmanager
def http_server(handler):
    """Serve an http.server handler on 127.0.0.1 in a thread; yield the server, with its `url`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class HangingHandler(http.server.BaseHTTPRequestHandler):
    """A helper server that answers nothing for half a minute (a slow exploit DB, say)."""

    def do_GET(self):
        time.sleep(30)

    def log_message(self, *args):
        pass


class SlowExploitHandler(http.server.BaseHTTPRequestHandler):
    """An exploit-db server (`GET /cves/<CVE>`) that knows no exploit and thinks `delay` seconds per question:
    it keeps a scanner's exploits family, and so its asset scan, busy for that long."""

    delay = 3.0

    def do_GET(self):  # noqa: N802 - the stdlib's name
        time.sleep(self.delay)
        body = b"null"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hanging_server():
    """URL of a helper server that answers nothing for half a minute."""
    with http_server(HangingHandler) as server:
        yield server.url


# ---- disk images on loop devices (the local provider's VMInfo assets) ----------------


def ext4_image(path, tree, size=32 * MiB):
    """An ext4 disk image of `size` bytes at `path` holding a copy of the directory `tree`."""
    with open(path, "wb") as image:
        image.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(path)], check=True, capture_output=True)
    return path


def loops_of(image):
    """The loop devices attached to `image`."""
    out = subprocess.run(["losetup", "--associated", str(image)], capture_output=True, text=True, check=True)
    return [line.split(":")[0] for line in out.stdout.splitlines()]


def mounts_of(device):
    """Where `device` (or a partition of it) is mounted."""
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[0].startswith(device)]


@pytest.fixture(scope="session")
def loop_devices(tmp_path_factory):
    """Skip unless this machine attaches loop devices and mounts them (found by trying)."""
    if os.geteuid() != 0:
        pytest.skip("loop devices need root")
    workdir = tmp_path_factory.mktemp("probe")
    (workdir / "tree").mkdir()
    image = ext4_image(workdir / "probe.img", workdir / "tree")
    attach = subprocess.run(["losetup", "--find", "--show", "--read-only", str(image)], capture_output=True, text=True)
    if attach.returncode != 0:
        pytest.skip(f"the kernel refuses loop devices here: {attach.stderr.strip()}")
    loop = attach.stdout.strip()
    (workdir / "mnt").mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "ext4", "-o", "ro", loop, str(workdir / "mnt")],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"mounting is not allowed here: {mounted.stderr.strip()}")
        subprocess.run(["umount", str(workdir / "mnt")], check=True)
    finally:
        subprocess.run(["losetup", "--detach", loop], capture_output=True)


# ---- the web UI ------------------------------------------------------------------------------

UI_PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html):
    """The CSRF token a page carries in its forms."""
    return CSRF_INPUT.search(html).group(1)


class Browser:
    """A test client signed in to the UI as a user of some role; writes carry the CSRF token."""

    def __init__(self, client, csrf):
        self.client = client
        self.csrf = csrf

    def get(self, url, htmx=False, **kwargs):
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.get(url, headers=headers, **kwargs)

    def post(self, url, data=None, htmx=False, **kwargs):
        data = {"csrf_token": self.csrf, **(data or {})}
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(url, data=data, headers=headers, **kwargs)


def sign_in(client, username, password=UI_PASSWORD):
    """Sign `client` in through the login form; return the login response."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def browser_as(app, db):
    """browser_as(role) -> a Browser signed in as a new user with that role."""
    from app import users

    def make(role):
        client = app.test_client()
        users.create_user(f"{role}-user", UI_PASSWORD, role)
        response = sign_in(client, f"{role}-user")
        assert response.status_code == 302, response.text
        return Browser(client, csrf_of(client.get("/").text))
    return make


@pytest.fixture
def admin_browser(browser_as):
    return browser_as("admin")


@pytest.fixture
def operator(browser_as):
    return browser_as("operator")


@pytest.fixture
def viewer(browser_as):
    return browser_as("viewer")


# ---- planted findings with known answers (the scanner's families) ------------------------

# Built from parts so that this file is not itself detected as the EICAR test file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MARKER = b"VMCLARITY-TEST-MARKER"
DROPPER = b"#!/bin/sh\n# planted test payload " + MARKER + b"\nexit 0\n"
YARA_RULE = """
rule PlantedMarker {
    meta:
        malware_type = "Backdoor"
    strings:
        $marker = "VMCLARITY-TEST-MARKER"
    condition:
        $marker
}
"""

CVE = "CVE-2099-0001"
OSV_RECORD = {
    "id": "PYSEC-2099-1",
    "aliases": [CVE],
    "modified": "2099-01-01T00:00:00Z",
    "summary": "Remote code execution in vmclarity-demo",
    "affected": [{
        "package": {"ecosystem": "PyPI", "name": "vmclarity-demo"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}],
    }],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
}
EXPLOITS_CSV = (
    "id,file,description,date_published,author,type,platform,port,date_added,date_updated,verified,codes,"
    "tags,aliases,screenshot_url,application_url,source_url\n"
    f"4242,exploits/python/remote/4242.py,vmclarity-demo 1.0 - RCE,2099-01-02,someone,remote,python,,"
    f"2099-01-02,2099-01-02,1,{CVE},,,,,\n"
)


def github_token(body):
    """A token in GitHub's format: 30 base62 characters and their CRC32 in 6 base62 digits."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    value, digits = zlib.crc32(body.encode()), ""
    for _ in range(6):
        value, digit = divmod(value, 62)
        digits = alphabet[digit] + digits
    return f"ghp_{body}{digits}"


def need(*tools):
    """Skip when a tool is missing, except on CI, where a missing tool is a setup bug to see."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        message = f"needs {', '.join(missing)} (./bootstrap.sh test installs every tool the tests use)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


CACHE = Path(os.environ.get("VMCLARITY_TEST_CACHE", Path.home() / ".cache/vmclarity-tests"))


def debian_mirror():
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), else deb.debian.org."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    for line in (sources.read_text(errors="replace").splitlines() if sources.exists() else []):
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
            return parts[2] if parts[1].startswith("[") else parts[1]
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="session")
def bookworm_root():
    """A debootstrap'ed Debian 12 minbase, built once into a temp dir then renamed into the cache.

    Every test that scans a real Debian root takes this fixture, so none of them can skip
    for want of a root that another test file would have built.
    """
    root = CACHE / "bookworm-minbase"
    if (root / "var/lib/dpkg/status").exists():
        return root
    need("debootstrap")
    CACHE.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="bookworm-minbase.", dir=CACHE))
    try:
        proc = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(building), debian_mirror()],
                              capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            message = f"debootstrap failed ({proc.returncode}): {proc.stderr[-2000:] or proc.stdout[-2000:]}"
            pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
        building.chmod(0o755)  # mkdtemp made it 0700; a root filesystem's / is 0755
        building.rename(root)  # atomic: a half-built root is never seen as the cache
    except OSError:
        if not (root / "var/lib/dpkg/status").exists():  # another run won the rename; else a real error
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


@pytest.fixture(scope="session")
def signatures(tmp_path_factory):
    """A ClamAV database built with sigtool: MD5 of the dropper, hex of EICAR."""
    need("sigtool", "clamd", "clamscan")
    work = tmp_path_factory.mktemp("sigs")
    (work / "dropper").write_bytes(DROPPER)
    md5 = subprocess.run(["sigtool", "--md5", str(work / "dropper")], check=True, capture_output=True, text=True)
    digest, size, _ = md5.stdout.strip().split(":")
    hexed = subprocess.run(["sigtool", "--hex-dump"], input=EICAR, check=True, capture_output=True).stdout
    database = work / "db"
    database.mkdir()
    (database / "planted.hdb").write_text(f"{digest}:{size}:Unix.Trojan.VmclarityDropper-1\n")
    (database / "eicar.ndb").write_text(f"Win.Test.EICAR_HDB-1:0:*:{hexed.decode().strip()}\n")
    return database


@pytest.fixture
def rules(tmp_path):
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "planted.yar").write_text(YARA_RULE)
    return directory


def write_osv(root, records, zipped=True):
    """Write records in OSV's export layout: <Ecosystem>/all.zip or loose <Ecosystem>/<id>.json; return root."""
    by_ecosystem = {}
    for item in records:
        base = item["affected"][0]["package"]["ecosystem"].split(":")[0]
        by_ecosystem.setdefault(base, []).append(item)
    for base, items in by_ecosystem.items():
        folder = root / base
        folder.mkdir(parents=True, exist_ok=True)
        if zipped:
            with zipfile.ZipFile(folder / "all.zip", "w") as archive:
                for item in items:
                    archive.writestr(f"{item['id']}.json", json.dumps(item))
        else:
            for item in items:
                (folder / f"{item['id']}.json").write_text(json.dumps(item))
    return root


def plant_python_package(root, name, version):
    """Install a Python distribution's metadata in the machine at `root`; return its folder."""
    folder = root / "usr/lib/python3/dist-packages" / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder


@pytest.fixture
def vulnerability_data(tmp_path):
    """(OSV database directory, exploit-db CSV) of one critical CVE of vmclarity-demo 1.0, with an exploit."""
    osv = write_osv(tmp_path / "vulnerability-data/osv", [OSV_RECORD])
    csv = tmp_path / "vulnerability-data/files_exploits.csv"
    csv.write_text(EXPLOITS_CSV)
    return osv, csv


CHKROOTKIT = shutil.which("chkrootkit", path="/usr/sbin:/usr/bin:/sbin:/bin")


@contextlib.contextmanager
def orchestrated(database_url, data_dir, monkeypatch, local_assets, **environment):
    """The whole system in this process: the app with the orchestrator hooked in, served over
    HTTP for the scanners the local provider starts, and a Dramatiq worker consuming.

    `local_assets` are the provider's paths; `environment` sets more VMCLARITY_* variables.
    Yields (app, base URL).
    """
    import dramatiq
    from dramatiq import Worker
    from tasks import triggers

    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "DATA_DIR": str(data_dir),
                      "ADMIN_TOKEN": ADMIN_TOKEN, "EXTENSIONS": ("orchestrator",)})
    broker = dramatiq.get_broker()
    broker.flush_all()
    with serving(app) as url:
        monkeypatch.setenv("VMCLARITY_DATA_DIR", str(data_dir / "data"))
        monkeypatch.setenv("VMCLARITY_API_URL", f"{url}/api")
        monkeypatch.setenv("VMCLARITY_LOCAL_ASSETS", ":".join(str(path) for path in local_assets))
        for name, value in environment.items():
            monkeypatch.setenv(f"VMCLARITY_{name}", str(value))
        worker = Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        try:
            yield app, url
        finally:
            worker.stop()
            broker.flush_all()
            triggers.disconnect()


def rootkits_unavailable():
    """Why chkrootkit cannot run here (None when it can): it needs root, unshare and chkrootkit."""
    missing = [what for what, ok in (("root", os.geteuid() == 0), ("chkrootkit", CHKROOTKIT),
                                     ("unshare", shutil.which("unshare"))) if not ok]
    return f"rootkits family left out: needs {', '.join(missing)}" if missing else None
