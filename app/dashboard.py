"""Dashboard queries of the UI backend (anatomy §6.1), computed in SQL.

Every widget is one or a few GROUP BY / window queries over the tables; only the
aggregated rows (and at most 35 finding documents for the impact widget) reach
Python. JSON paths and date-time instants are read with the OData dialect helpers
(app/odata/dialect.py), so SQLite and PostgreSQL give identical answers.
"""

import datetime

from peewee import SQL, fn

from app.db import database, is_postgres
from app.models import Asset, AssetFinding, Finding
from app.odata import dialect as dialects
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


def _instant(model, *path):
    """Epoch milliseconds of the RFC 3339 date-time at `path`; NULL when missing or invalid."""
    return dialects.current().datetime(_text(model, *path))


def _live_assets():
    """The original's `terminatedOn eq null`."""
    return _text(Asset, "terminatedOn").is_null()


def _vulnerability_total():
    return dialects.sql(
        "(" + " + ".join(["coalesce({}, 0)"] * len(SEVERITY_TOTALS)) + ")",
        *[_number(Asset, "summary", "totalVulnerabilities", name) for name in SEVERITY_TOTALS])


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
    regions = []
    for name, vulnerabilities, *counts in query.tuples():
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
    (invalidatedOn null or > t). One pass over asset_finding: the two instants are computed once
    per row (materialized CTE) and counted against the 10 points with conditional sums."""
    points = trend_points(start_millis, end_millis)
    object_types = [FINDING_TYPES[t] for t in finding_types]
    first_seen, invalidated = _instant(AssetFinding, "firstSeen"), _instant(AssetFinding, "invalidatedOn")
    rows = (AssetFinding.select(Finding.object_type.alias("ot"), first_seen.alias("fs"), invalidated.alias("inv"))
            .join(Finding, on=(AssetFinding.finding == Finding.id))
            .where(Finding.object_type.in_(object_types)))
    body, params = _materialized(rows)
    p = database.param
    sums = [f'SUM(CASE WHEN "fs" <= {p} AND ("inv" IS NULL OR "inv" > {p}) THEN 1 ELSE 0 END)' for _ in points]
    text = (f'WITH "points_rows" {body} SELECT "ot", {", ".join(sums)} FROM "points_rows" '
            f'WHERE "fs" <= {p} GROUP BY "ot"')
    for point in points:
        params += [point, point]
    params.append(points[-1])
    counts = {row[0]: [int(n or 0) for n in row[1:]] for row in _run(text, params)}
    times = [format_millis(point) for point in points]
    return [{"findingType": finding_type,
             "trends": [{"time": time, "count": count}
                        for time, count in zip(times, counts.get(FINDING_TYPES[finding_type], [0] * len(points)))]}
            for finding_type in finding_types]


# ---- Findings impact -----------------------------------------------------------------------

def _severity_rank():
    severity = _text(Finding, "findingInfo", "severity")
    cases = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(VULNERABILITY_SEVERITIES))
    return dialects.sql("CASE {} " + cases + f" ELSE {len(VULNERABILITY_SEVERITIES)} END", severity)


def findings_impact(top=TOP):
    """FindingsImpact: per type the `top` findings by affected assets (valid asset findings of
    live assets); vulnerabilities severity by severity, critical first, as the original."""
    affected = (AssetFinding.select(Finding.id.alias("fid"), Finding.object_type.alias("ot"),
                                    Finding.key.alias("fkey"), _severity_rank().alias("rank"),
                                    fn.COUNT(SQL("*")).alias("n"))
                .join(Finding, on=(AssetFinding.finding == Finding.id))
                .join(Asset, on=(AssetFinding.asset == Asset.id))
                .where(_text(AssetFinding, "invalidatedOn").is_null(), _live_assets(),
                       Finding.object_type.in_([kind for kind, _, _ in IMPACT.values()]))
                .group_by(Finding.id, Finding.object_type, Finding.key, SQL("4")))
    body, params = _materialized(affected)
    ordered = dialects.current().ordered_text(SQL('"fkey"'))
    order_key = database.get_sql_context().sql(ordered).query()[0]
    text = (f'WITH "affected" {body} SELECT "fid", "ot", "n" FROM ('
            f'SELECT "fid", "ot", "n", ROW_NUMBER() OVER (PARTITION BY "ot" ORDER BY '
            f'CASE WHEN "ot" = \'Vulnerability\' THEN "rank" ELSE 0 END, "n" DESC, {order_key}) AS "position" '
            f'FROM "affected") AS "ranked" WHERE "position" <= {database.param} ORDER BY "ot", "position"')
    rows = _run(text, params + [top])
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
