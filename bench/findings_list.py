"""Benchmark: list findings, asset findings and assets through the real API at scale.

Creates a fresh database (PostgreSQL by default, SQLite with --sqlite), fills it with
10,000 assets, 100,000 findings and ~200,000 asset findings shaped like the API's
documents, runs ANALYZE, then times N requests of each query below through the Flask
app (test client, admin token: the whole request path is measured) and prints
p50/p95/max, the row counts, and the plans of query (a)'s SQL statements.

    .venv/bin/python bench/findings_list.py                 # PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/findings_list.py --sqlite        # the same on SQLite
    .venv/bin/python bench/findings_list.py --pg-url postgresql://postgres@db:5432 --keep

Not a test: it prints figures. The database is dropped afterwards unless --keep.
"""

import argparse
import datetime
import logging
import os
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from app import create_app, migrations  # noqa: E402
from app.db import database, is_postgres, open_database  # noqa: E402
from app.identity import asset_key, finding_key  # noqa: E402
from app.models import Asset, AssetFinding, Finding  # noqa: E402

ADMIN_TOKEN = "bench-admin-token"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432"
BATCH = 1000

QUERIES = {
    "a": ("/api/findings", {
        "$filter": "findingInfo/objectType eq 'Vulnerability' and findingInfo/severity eq 'CRITICAL'",
        "$top": "50", "$count": "true"}),
    "b": ("/api/findings", {"$top": "50", "$count": "true"}),
    "c": ("/api/assetFindings", {
        "$filter": "finding/findingInfo/objectType eq 'Vulnerability'", "$top": "50", "$count": "true"}),
    "d": ("/api/findings", {
        "$filter": "findingInfo/objectType eq 'Package'", "$orderby": "firstSeen desc", "$top": "50"}),
    "e": ("/api/assets", {"$filter": "assetInfo/objectType eq 'VMInfo'", "$top": "50", "$count": "true"}),
}

#: objectType -> share of findings; severities -> share of vulnerabilities.
FINDING_MIX = {"Package": 0.40, "Vulnerability": 0.35, "Misconfiguration": 0.08, "Secret": 0.07,
               "Malware": 0.05, "Exploit": 0.05}
SEVERITY_MIX = {"CRITICAL": 0.05, "HIGH": 0.20, "MEDIUM": 0.40, "LOW": 0.25, "NEGLIGIBLE": 0.10}
PACKAGES = ["requests", "urllib3", "django", "flask", "jinja2", "pyyaml", "cryptography", "pillow", "numpy",
            "openssl", "glibc", "zlib", "curl", "bash", "sudo", "systemd", "log4j-core", "spring-core",
            "lodash", "express", "golang.org/x/net", "github.com/gin-gonic/gin", "nginx", "busybox"]
LANGUAGES = {"requests": "python", "urllib3": "python", "django": "python", "flask": "python", "jinja2": "python",
             "pyyaml": "python", "cryptography": "python", "pillow": "python", "numpy": "python",
             "log4j-core": "java", "spring-core": "java", "lodash": "javascript", "express": "javascript",
             "golang.org/x/net": "go", "github.com/gin-gonic/gin": "go"}
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1", "ap-south-1"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get("VMCLARITY_TEST_PG_URL", DEFAULT_PG_URL),
                        help="PostgreSQL server URL, without database (default %(default)s)")
    parser.add_argument("--sqlite", action="store_true", help="run on a SQLite file instead of PostgreSQL")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards and print its URL")
    parser.add_argument("-n", "--requests", type=int, default=200, help="timed requests per query (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per query first (default 20)")
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--asset-findings", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--explain", default="a",
                        help="queries whose SQL plans to print, e.g. a,c,d (default %(default)s; '' for none)")
    args = parser.parse_args(argv)

    run_on_fresh_database(args, run)


def run_on_fresh_database(args, run):
    """Print the command line, run `run(url, args)` on a new database, drop it unless --keep."""
    print("$ " + shlex.join([sys.executable, *sys.argv]))
    print(f"started {datetime.datetime.now().isoformat(timespec='seconds')}")
    url, drop = create_database(args)
    try:
        run(url, args)
    finally:
        if not database.is_closed():
            database.close()
        if args.keep:
            print(f"\nkept database: {url}")
        else:
            drop()


def create_database(args):
    if args.sqlite:
        directory = tempfile.mkdtemp(prefix="vmclarity-bench-")
        url = f"sqlite:///{directory}/vmclarity.db"
        return url, lambda: shutil.rmtree(directory, ignore_errors=True)
    name = f"vmclarity_bench_{os.getpid()}"
    server = args.pg_url.rstrip("/")
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop():
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()

    return f"{server}/{name}", drop


def run(url, args):
    database.initialize(open_database(url))
    database.connect()
    migrations.upgrade()
    if is_postgres():
        backend = database.execute_sql("SHOW server_version").fetchone()[0]
        backend = f"PostgreSQL {backend}"
    else:
        backend = f"SQLite {sqlite_version()}"
    print(f"database: {url} ({backend})")

    started = time.perf_counter()
    counts = populate(random.Random(args.seed), args)
    print(f"inserted {counts} in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    database.execute_sql("ANALYZE")
    print(f"ANALYZE in {time.perf_counter() - started:.1f}s")
    database.close()

    data_dir = tempfile.mkdtemp(prefix="vmclarity-bench-data-")
    try:
        app = create_app({"DATABASE_URL": url, "DATA_DIR": data_dir, "ADMIN_TOKEN": ADMIN_TOKEN})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        print(f"\n{args.requests} requests per query after {args.warmup} warm-up requests, through the Flask app\n")
        print(f"{'query':6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'items':>6} {'count':>7}  request")
        for name, (path, params) in QUERIES.items():
            timings, body = measure(client, path, params, headers, args)
            p50, p95 = percentile(timings, 50), percentile(timings, 95)
            print(f"({name})    {p50:8.1f} {p95:8.1f} {max(timings):8.1f} {len(body.get('items') or []):6} "
                  f"{str(body.get('count', '-')):>7}  {describe(path, params)}")
        for name in filter(None, (part.strip() for part in args.explain.split(","))):
            explain_query(client, name, headers)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def sqlite_version():
    import sqlite3

    return sqlite3.sqlite_version


def measure(client, path, params, headers, args):
    body = None
    for _ in range(args.warmup):
        body = checked_get(client, path, params, headers)
    timings = []
    for _ in range(args.requests):
        started = time.perf_counter()
        body = checked_get(client, path, params, headers)
        timings.append((time.perf_counter() - started) * 1000)
    return timings, body


def checked_get(client, path, params, headers):
    response = client.get(path, query_string=params, headers=headers)
    if response.status_code != 200:
        raise SystemExit(f"GET {describe(path, params)} answered {response.status_code}: {response.get_data(True)}")
    return response.get_json()


def percentile(values, pct):
    ordered = sorted(values)
    return statistics.quantiles(ordered, n=100, method="inclusive")[pct - 1] if len(ordered) > 1 else ordered[0]


def describe(path, params):
    return path + "?" + "&".join(f"{key}={value}" for key, value in params.items())


# --- the plans ------------------------------------------------------------------------------

class StatementLog(logging.Handler):
    """Collects the (sql, params) peewee logs at DEBUG for every statement it runs."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements = []

    def emit(self, record):
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            self.statements.append(record.msg)


def explain_query(client, name, headers):
    path, params = QUERIES[name]
    log = StatementLog()
    logger = logging.getLogger("peewee")
    previous = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.DEBUG)
    try:
        checked_get(client, path, params, headers)
    finally:
        logger.removeHandler(log)
        logger.setLevel(previous)

    print(f"\nSQL of query ({name}) {describe(path, params)}: {len(log.statements)} statement(s)")
    database.connect(reuse_if_open=True)
    try:
        for number, (statement, values) in enumerate(log.statements, 1):
            print(f"\n--- statement {number}:\n{statement}\n--- params: {values}")
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            if is_postgres():
                cursor = database.execute_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, values)
            else:
                cursor = database.execute_sql("EXPLAIN QUERY PLAN " + statement, values)
            print("--- plan:")
            for row in cursor.fetchall():
                print("   ", row[0] if is_postgres() else f"{row[-1]}  (id={row[0]} parent={row[1]})")
    finally:
        database.close()


# --- the data -------------------------------------------------------------------------------

def populate(rng, args):
    now = datetime.datetime(2024, 6, 1, tzinfo=datetime.timezone.utc)
    asset_ids = insert(Asset, (asset_row(rng, index, now) for index in range(args.assets)))
    finding_ids = insert(Finding, (finding_row(rng, index, now) for index in range(args.findings)))
    links = insert(AssetFinding, asset_finding_rows(rng, asset_ids, finding_ids, args.asset_findings, now))
    return {"assets": len(asset_ids), "findings": len(finding_ids), "assetFindings": len(links)}


def insert(model, rows):
    """Insert rows in batches of BATCH; return the ids inserted."""
    ids = []
    batch = []
    with database.atomic():
        for row in rows:
            batch.append(row)
            ids.append(row["id"])
            if len(batch) == BATCH:
                model.insert_many(batch).execute()
                batch = []
        if batch:
            model.insert_many(batch).execute()
    return ids


def stamp(moment):
    return moment.isoformat().replace("+00:00", "Z")


def new_id(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def asset_row(rng, index, now):
    first_seen = now - datetime.timedelta(days=rng.randint(1, 400), seconds=rng.randint(0, 86_399))
    if rng.random() < 0.6:
        info = {
            "objectType": "VMInfo",
            "instanceID": f"i-{index:017x}",
            "instanceProvider": "AWS",
            "location": f"{rng.choice(REGIONS)}/vpc-{rng.randint(1, 40):08x}/sg-{rng.randint(1, 200):08x}",
            "image": f"ami-{rng.getrandbits(64):016x}",
            "instanceType": rng.choice(["t3.micro", "t3.large", "m5.xlarge", "c6i.2xlarge", "r6g.large"]),
            "platform": rng.choice(["Linux/UNIX", "Linux/UNIX", "Linux/UNIX", "Windows"]),
            "launchTime": stamp(first_seen),
            "tags": [{"key": "Name", "value": f"web-{index}"}, {"key": "env", "value": rng.choice(["prod", "dev"])}],
            "securityGroups": [{"id": f"sg-{rng.randint(1, 200):08x}"}],
            "rootVolume": {"sizeGB": rng.choice([8, 20, 50, 100]), "encrypted": rng.choice(["Yes", "No"])},
        }
    else:
        info = {"objectType": "DirInfo", "dirName": f"/srv/data/project-{index}", "location": f"host-{index % 50}"}
    asset_id = new_id(rng)
    document = {
        "id": asset_id, "revision": 1, "assetInfo": info,
        "firstSeen": stamp(first_seen), "lastSeen": stamp(now - datetime.timedelta(hours=rng.randint(0, 72))),
        "scansCount": rng.randint(0, 30),
    }
    return {"id": asset_id, "revision": 1, "data": document, "identity": asset_key(info)}


def weighted(rng, mix):
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def finding_info(rng, object_type, index):
    package = rng.choice(PACKAGES)
    version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    if object_type == "Package":
        return {"objectType": "Package", "name": package, "version": f"{version}-{index}",
                "type": "python" if LANGUAGES.get(package) == "python" else "deb",
                "language": LANGUAGES.get(package, ""), "licenses": ["MIT"],
                "purl": f"pkg:generic/{package}@{version}-{index}", "cpes": []}
    if object_type == "Vulnerability":
        severity = weighted(rng, SEVERITY_MIX)
        score = {"CRITICAL": 9.5, "HIGH": 7.8, "MEDIUM": 5.4, "LOW": 3.1, "NEGLIGIBLE": 0.5}[severity]
        name = f"CVE-{rng.randint(2015, 2024)}-{index:05d}"
        return {"objectType": "Vulnerability", "vulnerabilityName": name, "severity": severity,
                "description": f"{package} before {version} mishandles crafted input ({name}).",
                "links": [f"https://nvd.nist.gov/vuln/detail/{name}"],
                "cvss": [{"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                          "metrics": {"baseScore": score, "exploitabilityScore": 3.9, "impactScore": 5.9}}],
                "package": {"name": package, "version": version, "language": LANGUAGES.get(package, "")},
                "fix": {"versions": [f"{version}.post1"], "state": "fixed"},
                "distro": {"name": "debian", "version": "12"}, "path": f"/usr/lib/{package}"}
    if object_type == "Misconfiguration":
        return {"objectType": "Misconfiguration", "scannerName": "lynis", "id": f"SSH-{7400 + index % 100}",
                "location": "/etc/ssh/sshd_config", "category": "SSH",
                "message": f"PermitRootLogin is enabled ({index})", "remediation": "Set PermitRootLogin no",
                "severity": rng.choice(["MisconfigurationHighSeverity", "MisconfigurationMediumSeverity",
                                        "MisconfigurationLowSeverity"])}
    if object_type == "Secret":
        line = rng.randint(1, 500)
        return {"objectType": "Secret", "description": "AWS Access Key", "filePath": f"/home/app/.env.{index}",
                "startLine": line, "endLine": line, "startColumn": 10, "endColumn": 30,
                "fingerprint": f"{index:08x}{rng.getrandbits(96):024x}"}
    if object_type == "Malware":
        return {"objectType": "Malware", "malwareName": f"Unix.Trojan.Mirai-{index}", "malwareType": "Trojan",
                "ruleName": "clamav", "path": f"/tmp/.x/{index}"}
    name = f"CVE-{rng.randint(2015, 2024)}-{index:05d}"
    return {"objectType": "Exploit", "name": f"EDB-{index}", "title": f"{package} remote code execution",
            "cveID": name, "sourceDB": "exploit-db", "urls": [f"https://www.exploit-db.com/exploits/{index}"]}


def finding_row(rng, index, now):
    object_type = weighted(rng, FINDING_MIX)
    info = finding_info(rng, object_type, index)
    first_seen = now - datetime.timedelta(days=rng.randint(0, 365), seconds=rng.randint(0, 86_399))
    finding_id = new_id(rng)
    document = {
        "id": finding_id, "revision": 1, "findingInfo": info,
        "firstSeen": stamp(first_seen), "lastSeen": stamp(now - datetime.timedelta(days=rng.randint(0, 30))),
    }
    return {"id": finding_id, "revision": 1, "data": document, "key": finding_key(info),
            "object_type": object_type, "last_seen_by": None}


def asset_finding_rows(rng, asset_ids, finding_ids, total, now):
    seen = set()
    while len(seen) < total:
        pair = (rng.randrange(len(asset_ids)), rng.randrange(len(finding_ids)))
        if pair in seen:
            continue
        seen.add(pair)
        asset_id, finding_id = asset_ids[pair[0]], finding_ids[pair[1]]
        link_id = new_id(rng)
        first_seen = now - datetime.timedelta(days=rng.randint(0, 200))
        document = {"id": link_id, "revision": 1, "asset": {"id": asset_id}, "finding": {"id": finding_id},
                    "firstSeen": stamp(first_seen), "lastSeen": stamp(now)}
        yield {"id": link_id, "revision": 1, "data": document, "asset": asset_id, "finding": finding_id}


if __name__ == "__main__":
    main()
