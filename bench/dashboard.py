"""Benchmark: the dashboard API (/ui/api) and the UI's pages at 100,000 findings and 10,000 assets.

Reuses bench/findings_list.py's data builder (10,000 assets, 100,000 findings,
~200,000 asset findings), then makes the data dashboard-shaped: 20% of the asset
findings invalidated 10 days after they were first seen, 5% of the assets
terminated, and every asset's summary computed from its valid findings. After
ANALYZE it times N requests of each endpoint through the Flask test client (admin
token: the whole request path is measured) and prints p50/p95/max for each of the four
endpoints (findingsTrends twice: the UI's default last week, and a year). Then, signed in to
the UI as an admin (through /login with its CSRF token), it times the UI's server answers the
same way: the dashboard page, each of its widgets (htmx partials), the findings page (first
page, default sort), its htmx partial, and the findings page hiding history. The UI's trends
end at the real now, after all the data (dated up to 2024-06-01): every row then falls before
the first point, the trends query's widest range.

    .venv/bin/python bench/dashboard.py                  # PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/dashboard.py --sqlite         # the same on a SQLite file
    .venv/bin/python bench/dashboard.py -n 50 --pg-url postgresql://postgres@db:5432 --keep

Not a test: it prints figures. The database is dropped afterwards unless --keep.
"""

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the project, after bench/ itself

import findings_list  # noqa: E402
from app import create_app, migrations, users  # noqa: E402
from app.db import database, is_postgres, open_database  # noqa: E402
from scanner.vocabulary import FAMILIES, VULNERABILITY_SEVERITIES  # noqa: E402

ADMIN_TOKEN = "bench-admin-token"
QUERIES = {
    "regions": ("/ui/api/dashboard/riskiestRegions", {}),
    "assets": ("/ui/api/dashboard/riskiestAssets", {}),
    "impact": ("/ui/api/dashboard/findingsImpact", {}),
    "trends-week": ("/ui/api/dashboard/findingsTrends",
                    {"startTime": "2024-05-25T00:00:00Z", "endTime": "2024-06-01T00:00:00Z"}),
    "trends-year": ("/ui/api/dashboard/findingsTrends",
                    {"startTime": "2023-06-01T00:00:00Z", "endTime": "2024-06-01T00:00:00Z"}),
}
UI_USER, UI_PASSWORD = "bench-admin", "bench-admin-password"
#: name -> (path, query, as htmx), timed with a signed-in UI session.
UI_PAGES = {
    "dashboard": ("/", {}, False),
    "w-regions": ("/dashboard/regions", {}, True),
    "w-trends": ("/dashboard/trends", {"range": "week"}, True),
    "w-trends-y": ("/dashboard/trends", {"range": "year"}, True),
    "w-assets": ("/dashboard/assets", {}, True),
    "w-impact": ("/dashboard/impact", {}, True),
    "findings": ("/findings", {"type": "vulnerabilities"}, False),
    "findings-hx": ("/findings", {"type": "vulnerabilities"}, True),
    "findings-live": ("/findings", {"type": "vulnerabilities", "hide_history": "1"}, False),
    "by-severity": ("/findings", {"type": "vulnerabilities", "sort": "severity", "dir": "desc"}, False),
    "only-critical": ("/findings", {"type": "vulnerabilities", "severity": "CRITICAL"}, False),
}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", default=os.environ.get("VMCLARITY_TEST_PG_URL", findings_list.DEFAULT_PG_URL))
    parser.add_argument("--sqlite", action="store_true", help="run on a SQLite file instead of PostgreSQL")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("-n", "--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--asset-findings", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    findings_list.run_on_fresh_database(args, run)


def run(url, args):
    database.initialize(open_database(url))
    database.connect()
    migrations.upgrade()
    if is_postgres():
        print(f"database: {url} (PostgreSQL {database.execute_sql('SHOW server_version').fetchone()[0]})")
    else:
        print(f"database: {url} (SQLite {findings_list.sqlite_version()})")
    started = time.perf_counter()
    counts = findings_list.populate(random.Random(args.seed), args)
    print(f"inserted {counts} in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    shape(random.Random(args.seed))
    database.execute_sql("ANALYZE")
    print(f"invalidations, terminations, summaries and ANALYZE in {time.perf_counter() - started:.1f}s")
    database.close()

    data_dir = tempfile.mkdtemp(prefix="vmclarity-bench-data-")
    try:
        app = create_app({"DATABASE_URL": url, "DATA_DIR": data_dir, "ADMIN_TOKEN": ADMIN_TOKEN, "EXTENSIONS": ()})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        print(f"\n{args.requests} requests per endpoint after {args.warmup} warm-up requests, through the Flask app\n")
        print(f"{'endpoint':12} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  request")
        for name, (path, params) in QUERIES.items():
            timings, body = findings_list.measure(client, path, params, headers, args)
            p50, p95 = findings_list.percentile(timings, 50), findings_list.percentile(timings, 95)
            print(f"{name:12} {p50:8.1f} {p95:8.1f} {max(timings):8.1f}  {findings_list.describe(path, params)}")
            print(f"{'':12} {summarize(name, body)}")
        time_ui_pages(app, args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def time_ui_pages(app, args):
    """p50/p95/max of each of UI_PAGES through a session signed in as a new admin."""
    client = ui_session(app)
    print(f"\nUI pages, signed in as an admin: {args.requests} requests each after {args.warmup} warm-up requests\n")
    print(f"{'page':13} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'kB':>6}  request")
    for name, (path, params, htmx) in UI_PAGES.items():
        headers = {"HX-Request": "true"} if htmx else {}
        timings, html = [], ""
        for attempt in range(args.warmup + args.requests):
            started = time.perf_counter()
            response = client.get(path, query_string=params, headers=headers)
            if attempt >= args.warmup:
                timings.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} {params} answered {response.status_code}: {response.text[:500]}")
            html = response.text
        p50, p95 = findings_list.percentile(timings, 50), findings_list.percentile(timings, 95)
        print(f"{name:13} {p50:8.1f} {p95:8.1f} {max(timings):8.1f} {len(html.encode()) / 1024:6.1f}  "
              f"{findings_list.describe(path, params)}{' (htmx)' if htmx else ''}")


def ui_session(app):
    """A test client signed in through the login form, as tests/conftest.py's sign_in does."""
    with app.app_context(), database.connection_context():
        users.create_user(UI_USER, UI_PASSWORD, "admin")
    client = app.test_client()
    token = CSRF_INPUT.search(client.get("/login").text).group(1)
    response = client.post("/login", data={"username": UI_USER, "password": UI_PASSWORD, "csrf_token": token})
    if response.status_code != 302:
        raise SystemExit(f"signing in answered {response.status_code}: {response.text[:500]}")
    return client


def summarize(name, body):
    if name == "regions":
        return f"{len(body['regions'])} regions, e.g. {json.dumps(body['regions'][:1])}"
    if name == "assets":
        return "top counts: " + json.dumps({k: [i.get("count", i.get("criticalVulnerabilitiesCount")) for i in v]
                                            for k, v in body.items()})
    if name == "impact":
        return "affected: " + json.dumps({k: [i["affectedAssetsCount"] for i in v] for k, v in body.items()})
    return "; ".join(f"{s['findingType']} {[p['count'] for p in s['trends']][::3]}" for s in body)


#: The shaping statements per backend: invalidate 20% of the asset findings 10 days after they were
#: first seen, terminate 5% of the assets, read the valid counts per asset, write one summary.
SHAPE_SQL = {
    "postgresql": {
        "invalidate": "UPDATE asset_finding SET data = jsonb_set(data, '{invalidatedOn}', to_jsonb(to_char("
                      "((data->>'firstSeen')::timestamptz + interval '10 days') AT TIME ZONE 'UTC',"
                      " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))) WHERE mod(pk, 5) = 0",
        "terminate": "UPDATE asset SET data = jsonb_set(data, '{terminatedOn}', '\"2024-05-30T00:00:00Z\"') "
                     "WHERE mod(pk, 20) = 0",
        "counts": "SELECT af.asset_id, f.object_type, f.data #>> '{findingInfo,severity}', count(*) "
                  "FROM asset_finding af JOIN finding f ON f.id = af.finding_id "
                  "WHERE af.data ->> 'invalidatedOn' IS NULL GROUP BY 1, 2, 3",
        "summary": "UPDATE asset SET data = jsonb_set(data, '{summary}', %s::jsonb) WHERE id = %s",
    },
    "sqlite": {
        "invalidate": "UPDATE asset_finding SET data = json_set(data, '$.invalidatedOn', "
                      "strftime('%Y-%m-%dT%H:%M:%SZ', json_extract(data, '$.firstSeen'), '+10 days')) "
                      "WHERE pk % 5 = 0",
        "terminate": "UPDATE asset SET data = json_set(data, '$.terminatedOn', '2024-05-30T00:00:00Z') "
                     "WHERE pk % 20 = 0",
        "counts": "SELECT af.asset_id, f.object_type, json_extract(f.data, '$.findingInfo.severity'), count(*) "
                  "FROM asset_finding af JOIN finding f ON f.id = af.finding_id "
                  "WHERE json_extract(af.data, '$.invalidatedOn') IS NULL GROUP BY 1, 2, 3",
        "summary": "UPDATE asset SET data = json_set(data, '$.summary', json(?)) WHERE id = ?",
    },
}


def shape(rng):
    """Invalidate 20% of the asset findings, terminate 5% of the assets, compute every summary."""
    statements = SHAPE_SQL["postgresql" if is_postgres() else "sqlite"]
    with database.atomic():
        database.execute_sql(statements["invalidate"])
        database.execute_sql(statements["terminate"])
        counts = {}
        for asset_id, object_type, severity, n in database.execute_sql(statements["counts"]).fetchall():
            counts.setdefault(asset_id, {})[(object_type, severity)] = n
        asset_ids = [row[0] for row in database.execute_sql("SELECT id FROM asset").fetchall()]
        updates = []
        for asset_id in asset_ids:
            mine = counts.get(asset_id, {})
            summary = {family.summary_key: sum(n for (kind, _), n in mine.items() if kind == family.finding_type)
                       for family in FAMILIES if family.finding_type and family.finding_type != "Vulnerability"}
            summary["totalPlugins"] = 0
            summary["totalVulnerabilities"] = {
                f"total{s.capitalize()}Vulnerabilities": mine.get(("Vulnerability", s), 0)
                for s in VULNERABILITY_SEVERITIES}
            updates.append((json.dumps(summary), asset_id))
        cursor = database.cursor()
        cursor.executemany(statements["summary"], updates)


if __name__ == "__main__":
    main()
