"""Dashboard queries of the UI backend (anatomy §6.1), computed in SQL.

Every widget is one or a few GROUP BY / window queries over the tables; only the
aggregated rows (and at most 35 finding documents for the impact widget) reach
Python. JSON paths and date-time instants are read with the OData dialect helpers
(app/odata/dialect.py), so SQLite and PostgreSQL give identical answers.

Parsing a date-time in SQL costs microseconds per row, so no query parses those of
every asset finding: findingsTrends reads them through their indexes (app/indexes.py).
"""

import contextlib
import datetime

from peewee import SQL, fn

from app.db import database, is_postgres
from app.models import Asset, AssetFinding, Finding
from app.odata import dialect as dialects
from app.odata import json_path_sql
from scanner.vocabulary import VULNERABILITY_SEVERITIES

#: FindingsCount / RiskiestAssets key -> ScanFindingsSummary counter (vulnerabilities apart).
SUMMARY_TOTALS = {
    "malware": "totalMalware",
    "rootkits": "totalRootkits",
    "secrets": "totalSecrets",
    "misconfigurations": "totalMisconfigurations",
    "exploits": "totalExploits",
}
SEVERITY_TOTALS = tuple(f"total{s.capitalize()}Vulnerabilities" for s in VULNERABILITY_SEVERITIES)
#: VulnerabilityRiskyAsset counters, in the order the original sorts by.
SEVERITY_COUNTS = tuple(f"{s.lower()}VulnerabilitiesCount" for s in VULNERABILITY_SEVERITIES)

#: FindingType (trends) -> FindingInfo objectType, in the contract's enum order.
FINDING_TYPES = {
    "PACKAGE": "Package",
    "VULNERABILITY": "Vulnerability",
    "MALWARE": "Malware",
    "SECRET": "Secret",
    "MISCONFIGURATION": "Misconfiguration",
    "ROOTKIT": "Rootkit",
    "EXPLOIT": "Exploit",
}
TREND_POINTS = 10

#: FindingsImpact key -> (objectType, item key, the FindingInfo fields the contract shows).
IMPACT = {
    "vulnerabilities": ("Vulnerability", "vulnerability", ("vulnerabilityName", "severity", "cvss")),
    "malware": ("Malware", "malware", ("malwareName", "malwareType", "ruleName", "path")),
    "rootkits": ("Rootkit", "rootkit", ("rootkitName", "rootkitType", "message")),
    "secrets": ("Secret", "secret", ("filePath", "startLine", "endLine", "startColumn", "endColumn", "fingerprint")),
    "misconfigurations": ("Misconfiguration", "misconfiguration",
                          ("scannerName", "id", "location", "category", "message", "description", "remediation",
                           "severity")),
    "exploits": ("Exploit", "exploit", ("name", "title", "description", "cveID", "sourceDB", "urls")),
    "packages": ("Package", "package", ("name", "version", "purl")),
}
TOP = 5

#: CloudProvider -> AssetType of a VM.
VM_TYPES = {"AWS": "AWS EC2 Instance", "Azure": "Azure Instance", "GCP": "GCP Instance",
            "Docker": "Docker Instance", "External": "External Instance"}


# ---- JSON access through the OData dialect -------------------------------------------------

def _ref(model, path):
    dialect = dialects.current()
    ref = dialect.ref(model.data)
    for name in path:
        ref = ref.child(name)
    return ref


def _text(model, *path):
    return dialects.current().text(_ref(model, path))


def _number(model, *path):
    return dialects.current().number(_ref(model, path))


def _live_assets():
    """The original's `terminatedOn eq null`."""
    return _text(Asset, "terminatedOn").is_null()


def _vulnerability_total():
    return dialects.sql(
        "(" + " + ".join(["coalesce({}, 0)"] * len(SEVERITY_TOTALS)) + ")",
        *[_number(Asset, "summary", "totalVulnerabilities", name) for name in SEVERITY_TOTALS])


def _indexed(model, path):
    """SQL of the value a `$filter` on `path` compares, the column unqualified (`"data"`): exactly
    the expression of the JSON index on `path` (app/indexes.py), so that index serves it. Only for
    queries whose FROM has this one table."""
    return json_path_sql(model, path)[0]


@contextlib.contextmanager
def _aggregate_session(*settings):
    """On PostgreSQL, run a widget's queries in one transaction without JIT compilation (the JSON
    and date-time expressions are large: compiling them costs more than the query saves) and
    with enough work_mem to hash the asset findings in memory."""
    if not is_postgres():
        yield
        return
    with database.atomic():
        database.execute_sql("SET LOCAL jit = off")
        database.execute_sql("SET LOCAL work_mem = '64MB'")
        for setting in settings:
            database.execute_sql(f"SET LOCAL {setting}")
        yield


def _run(sql_text, params):
    return database.execute_sql(sql_text, params).fetchall()


def _materialized(select):
    """(sql, params) of `select` as a materialized CTE body: its expressions are computed once per row."""
    query, params = select.sql()
    return f"AS MATERIALIZED ({query})", list(params)


# ---- Riskiest regions ----------------------------------------------------------------------

def _region():
    """For AWS the region part of `region/vpc/...`, otherwise the location."""
    location = _text(Asset, "assetInfo", "location")
    provider = _text(Asset, "assetInfo", "instanceProvider")
    if is_postgres():
        first = fn.split_part(location, "/", 1)
    else:
        first = fn.substr(location, 1, fn.instr(location.concat("/"), "/") - 1)
    return dialects.sql("CASE WHEN {} = 'AWS' THEN {} ELSE {} END", provider, first, location)


def riskiest_regions():
    """RiskiestRegions: the summaries of live VMs summed per region (regions with no findings left out)."""
    region = _region()
    totals = [fn.COALESCE(fn.SUM(_vulnerability_total()), 0)]
    totals += [fn.COALESCE(fn.SUM(_number(Asset, "summary", name)), 0) for name in SUMMARY_TOTALS.values()]
    query = (Asset.select(region, *totals)
             .where(_live_assets(), _text(Asset, "assetInfo", "objectType") == "VMInfo", region.is_null(False))
             .group_by(region)
             .order_by(region))
    with _aggregate_session():
        rows = list(query.tuples())
    regions = []
    for name, vulnerabilities, *counts in rows:
        counts = dict(zip(SUMMARY_TOTALS, (int(n) for n in counts)))
        findings = {"vulnerabilities": int(vulnerabilities), **counts}
        if any(findings.values()):
            regions.append({"regionName": name, "findingsCount": {
                key: findings[key] for key in
                ("vulnerabilities", "malware", "rootkits", "secrets", "misconfigurations", "exploits")}})
    return {"regions": regions}


# ---- Riskiest assets -----------------------------------------------------------------------

_INFO_PATHS = ("objectType", "instanceProvider", "instanceID", "containerName", "imageID", "podName", "dirName",
               "location")


def _asset_info(values):
    """AssetInfo {name, location, type} from the selected assetInfo fields."""
    info = dict(zip(_INFO_PATHS, values))
    kind = info["objectType"]
    if kind == "VMInfo":
        name, asset_type = info["instanceID"], VM_TYPES.get(info["instanceProvider"])
    elif kind == "ContainerInfo":
        name, asset_type = info["containerName"], "Container"
    elif kind == "ContainerImageInfo":
        name, asset_type = info["imageID"], "Container Image"
    elif kind == "PodInfo":
        name, asset_type = info["podName"], None
    else:
        name, asset_type = info["dirName"], None
    result = {"name": name, "location": info["location"], "type": asset_type}
    return {key: value for key, value in result.items() if value is not None}


def riskiest_assets(top=TOP):
    """RiskiestAssets: per type the `top` live assets with the highest summary counter.

    One pass over the assets: their counters are read once (materialized CTE) and
    ranked per type with window functions; assetInfo is read for the winners only."""
    severities = [_number(Asset, "summary", "totalVulnerabilities", name) for name in SEVERITY_TOTALS]
    totals = [_number(Asset, "summary", total) for total in SUMMARY_TOTALS.values()]
    columns = [fn.COALESCE(n, 0).alias(f"c{i}") for i, n in enumerate(severities + totals)]
    counters = Asset.select(Asset.id.alias("aid"), *columns).where(_live_assets())
    body, params = _materialized(counters)
    nsev = len(severities)
    vuln_order = ", ".join(f'"c{i}" DESC' for i in range(nsev))
    ranks = [f'CASE WHEN {" + ".join(f"{chr(34)}c{i}{chr(34)}" for i in range(nsev))} > 0 THEN '
             f'ROW_NUMBER() OVER (ORDER BY {vuln_order}, "aid") END']
    for j in range(len(totals)):
        column = f'"c{nsev + j}"'
        ranks.append(f"CASE WHEN {column} > 0 THEN ROW_NUMBER() OVER (ORDER BY {column} DESC, \"aid\") END")
    rank_columns = ", ".join(f'{rank} AS "r{k}"' for k, rank in enumerate(ranks))
    all_columns = ", ".join(f'"c{i}"' for i in range(nsev + len(totals)))
    p = database.param
    text = (f'WITH "counters" {body} SELECT * FROM (SELECT "aid", {all_columns}, {rank_columns} FROM "counters") '
            f'AS "ranked" WHERE ' + " OR ".join(f'"r{k}" <= {p}' for k in range(len(ranks))))
    with _aggregate_session():
        rows = _run(text, params + [top] * len(ranks))
    info = [_text(Asset, "assetInfo", name) for name in _INFO_PATHS]
    infos = {row[0]: _asset_info(row[1:]) for row in
             Asset.select(Asset.id, *info).where(dialects.current().id_in(Asset.id, [r[0] for r in rows])).tuples()}
    ncounts = nsev + len(totals)
    result = {key: [] for key in ("vulnerabilities",) + tuple(SUMMARY_TOTALS)}
    for row in rows:
        asset_id, counts, positions = row[0], row[1:1 + ncounts], row[1 + ncounts:]
        if positions[0] is not None and positions[0] <= top:
            result["vulnerabilities"].append((positions[0], {
                "assetInfo": infos[asset_id],
                **{key: int(n) for key, n in zip(SEVERITY_COUNTS, counts[:nsev])}}))
        for j, key in enumerate(SUMMARY_TOTALS):
            if positions[1 + j] is not None and positions[1 + j] <= top:
                result[key].append((positions[1 + j], {"assetInfo": infos[asset_id], "count": int(counts[nsev + j])}))
    return {key: [item for _, item in sorted(result[key], key=lambda pair: pair[0])] for key in
            ("vulnerabilities", "malware", "rootkits", "secrets", "misconfigurations", "exploits")}


# ---- Findings trends -----------------------------------------------------------------------

def trend_points(start_millis, end_millis):
    """The 10 instants, evenly spaced, ending at endTime (the original steps back from the end)."""
    step = (end_millis - start_millis) // TREND_POINTS
    return [end_millis - (TREND_POINTS - 1 - i) * step for i in range(TREND_POINTS)]


def format_millis(millis):
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=millis)
    text = moment.isoformat(timespec="milliseconds" if millis % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def findings_trends(start_millis, end_millis, finding_types=tuple(FINDING_TYPES)):
    """FindingsTrends: per type, at each point t, the asset findings with firstSeen <= t and
    (invalidatedOn null or > t).

    Parsing every row's two date-times costs more than the rest of the query together, so the
    rows are never parsed here: the instants are indexed (app/indexes.py), and each row is found
    through index ranges that fall between two points. With fs, inv the instants and t0..t9 the
    points, count(t_k) = #{fs <= t_k} - #{fs <= t_k and inv <= t_k}; both terms grow with k, so
    each row is counted once, at the first point where it enters a term:
      +1 at k when t_k-1 < fs <= t_k;
      -1 at k when t_k-1 < inv <= t_k and fs <= t_k, or when t_k-1 < fs <= t_k and inv <= t_k-1
    (no lower bound at k = 0). The per-point changes are summed per type in SQL, then
    accumulated over the points here."""
    points = trend_points(start_millis, end_millis)
    object_types = [FINDING_TYPES[t] for t in finding_types]
    changes = {object_type: [0] * len(points) for object_type in object_types}
    with _aggregate_session("enable_indexscan = off"):
        for object_type, k, change in _trend_changes(points, object_types):
            changes[object_type][k] += int(change)
    times = [format_millis(point) for point in points]
    result = []
    for finding_type, object_type in zip(finding_types, object_types):
        count, trends = 0, []
        for time, change in zip(times, changes[object_type]):
            count += change
            trends.append({"time": time, "count": count})
        result.append({"findingType": finding_type, "trends": trends})
    return result


#: Below every instant the date-time expression gives (year 0000 is about -6.2e13 ms).
_BEFORE_ALL = -(10 ** 18)


def _trend_changes(points, object_types):
    """Rows (objectType, k, change of the count at point k), see findings_trends."""
    first_seen, invalidated = _indexed(AssetFinding, "firstSeen"), _indexed(AssetFinding, "invalidatedOn")
    before = [None] + points[:-1]  # None: no lower bound
    # Three families of ranges: (change, the comparisons, per k their bounds).
    families = [
        (1, [(first_seen, ">"), (first_seen, "<=")],
         [(k, (before[k], points[k])) for k in range(len(points))]),
        (-1, [(invalidated, ">"), (invalidated, "<="), (first_seen, "<=")],
         [(k, (before[k], points[k], points[k])) for k in range(len(points))]),
        (-1, [(first_seen, ">"), (first_seen, "<="), (invalidated, "<=")],
         [(k, (before[k], points[k], before[k])) for k in range(1, len(points))]),
    ]
    p = database.param
    table = AssetFinding._meta.table_name
    parts, params = [], []
    for change, comparisons, ranges in families:
        if is_postgres():
            # One parameterized index scan per range (LATERAL): the planner cannot fall back to
            # a sequential scan, which would parse the date-times of every row.
            names = [f'"b{i}"' for i in range(len(comparisons))]
            row = f"({p}::int" + f", {p}::numeric" * len(comparisons) + ")"
            where = " AND ".join(f'{expression} {op} "bounds".{name}'
                                 for (expression, op), name in zip(comparisons, names))
            parts.append(f'SELECT "bounds"."k", {change} AS "change", "rows"."finding_id" '
                         f'FROM (VALUES {", ".join([row] * len(ranges))}) AS "bounds"("k", {", ".join(names)}) '
                         f'CROSS JOIN LATERAL (SELECT "finding_id" FROM "{table}" WHERE {where}) AS "rows"')
            for k, bounds in ranges:
                params += [k] + [_BEFORE_ALL if bound is None else bound for bound in bounds]
        else:
            for k, bounds in ranges:
                kept = [(expression, op, bound) for (expression, op), bound in zip(comparisons, bounds)
                        if bound is not None]
                where = " AND ".join(f"{expression} {op} {p}" for expression, op, _ in kept)
                parts.append(f'SELECT {k} AS "k", {change} AS "change", "finding_id" FROM "{table}" WHERE {where}')
                params += [bound for _, _, bound in kept]
    finding = Finding._meta.table_name
    text = ('SELECT "f"."object_type", "changes"."k", SUM("changes"."change") FROM ('
            + " UNION ALL ".join(parts) +
            f') AS "changes" JOIN "{finding}" AS "f" ON "f"."id" = "changes"."finding_id" '
            f'WHERE "f"."object_type" IN ({", ".join([p] * len(object_types))}) '
            f'GROUP BY "f"."object_type", "changes"."k"')
    return _run(text, params + list(object_types))


# ---- Findings impact -----------------------------------------------------------------------

def _impact_rank():
    """The order of a finding within its type: for vulnerabilities their severity (critical 0 ..
    negligible 4; NULL for none or another, which the original never collects), else 0."""
    severity = _text(Finding, "findingInfo", "severity")
    cases = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(VULNERABILITY_SEVERITIES))
    return dialects.sql("CASE WHEN {} = 'Vulnerability' THEN CASE {} " + cases + " END ELSE 0 END",
                        Finding.object_type, severity)


def findings_impact(top=TOP):
    """FindingsImpact: per type the `top` findings by affected assets (valid asset findings of
    live assets); vulnerabilities severity by severity, critical first, as the original.

    The asset findings are counted per finding first, reading only their own table (the few
    terminated assets are a small NOT IN list); the counts then meet the findings' columns, and
    only the winners' documents are read."""
    terminated = (Asset.select(SQL("1"))
                  .where(Asset.id == AssetFinding.asset, _text(Asset, "terminatedOn").is_null(False)))
    counts = (AssetFinding.select(AssetFinding.finding.alias("fid"), fn.COUNT(SQL("*")).alias("n"))
              .where(_text(AssetFinding, "invalidatedOn").is_null(), ~fn.EXISTS(terminated))
              .group_by(AssetFinding.finding)
              .alias("counts"))
    affected = (Finding.select(Finding.id.alias("fid"), Finding.object_type.alias("ot"),
                               _impact_rank().alias("rank"), counts.c.n.alias("n"), Finding.key.alias("fkey"))
                .join(counts, on=(counts.c.fid == Finding.id))
                .where(Finding.object_type.in_([kind for kind, _, _ in IMPACT.values()])))
    body, params = _materialized(affected)
    order_key = database.get_sql_context().sql(dialects.current().ordered_text(SQL('"fkey"'))).query()[0]
    p = database.param
    tops = [f'SELECT * FROM (SELECT "fid", "ot", "rank", "n", "fkey" FROM "affected" '
            f'WHERE "ot" = {p} AND "rank" IS NOT NULL ORDER BY "rank", "n" DESC, {order_key} LIMIT {p}) AS "top{i}"'
            for i in range(len(IMPACT))]
    with _aggregate_session():
        found = _run(f'WITH "affected" {body} ' + " UNION ALL ".join(tops),
                     params + [value for kind, _, _ in IMPACT.values() for value in (kind, top)])
    # The same order as the LIMITs above: byte order of the key is code point order in Python.
    rows = [(fid, ot, n) for fid, ot, _, n, _ in sorted(found, key=lambda r: (r[1], r[2], -r[3], r[4]))]
    documents = dict(Finding.select(Finding.id, Finding.data)
                     .where(dialects.current().id_in(Finding.id, [row[0] for row in rows])).tuples())
    result = {key: [] for key in IMPACT}
    by_type = {kind: (key, item, fields) for key, (kind, item, fields) in IMPACT.items()}
    for finding_id, object_type, count in rows:
        key, item, fields = by_type[object_type]
        info = documents[finding_id].get("findingInfo") or {}
        result[key].append({item: {name: info[name] for name in fields if name in info},
                            "affectedAssetsCount": int(count)})
    return result
