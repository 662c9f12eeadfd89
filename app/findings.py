"""Findings processing: one finished asset scan's results become Findings and AssetFindings.

Anatomy §2.4, done in bulk SQL inside one write transaction per asset scan:

1. Plan (in Python, outside the transaction): walk the result blocks whose
   family status is Done, in the original's order, and key every result with
   `identity.finding_key`. The first result of a key wins; the rest are
   duplicates of the same finding. Packages come from the SBOM only (the SBOM
   is authoritative; our vulnerabilities are matched from it), but the
   packages named by vulnerabilities still get their summaries refreshed.
2. Insert the findings no one has stored yet (ON CONFLICT (key) DO NOTHING).
3. The asset's AssetFindings: insert the new ones, move lastSeen forward and
   firstSeen back with UPDATEs whose WHERE compares the stored time with the
   reference time t, so an older scan processed late never moves anything
   backward. A finding seen again is valid again, unless a later scan of the
   asset, processed before this one, ran the family and did not see it: then
   it is invalidated at that scan's time, so the history does not depend on
   the order scans are processed in. Then the invalidation of what this scan
   no longer saw, the asset's summary and `findingsProcessed`.
4. Last, the rows that other assets' scans share: lock the scan's findings
   and packages in key order, move their lastSeen and lastSeenBy forward
   (firstSeen back) as in 3, and refresh the packages' vulnerability summaries.

Every write keeps the JSON document, the `revision` column and the key and
foreign-key columns in step, as app/store.py does, and changes a row only when
its content changes: processing the same asset scan again is a no-op.

Concurrency. SQLite: the IMMEDIATE write transaction serializes all writers.
PostgreSQL: the asset row, then the asset scan row are locked first, so two
scans of one asset run one after the other. Scans of different assets share
Finding rows (every scan of a fleet sees the same packages), and each waits
for the previous one's commit to update them: so the shared rows are locked
only in step 4, at the end of the transaction, in key order (no deadlock),
and re-read once locked (no lost update), with the statements of step 4 sent
in two round trips before the commit. Steps 2 and 3 need no lock on a Finding:
what they read of one (id, type, severity) never changes, and the foreign keys
of the new AssetFindings take KEY SHARE locks, which the NO KEY UPDATE locks
of step 4 do not block. Inserts run in key order too: ON CONFLICT waits for
another transaction's uncommitted row with the same key and then skips it.
"""

import json
import uuid
from dataclasses import dataclass, field

import peewee
from peewee import SQL, fn

from app import identity
from app.db import database, is_postgres, write_transaction
from app.models import Asset, AssetFinding, AssetScan, Finding
from app.odata import dialect as dialects
from app.odata.compiler import datetime_millis
from app.odata.dialect import sql, string_literal
from scanner.vocabulary import FAMILIES, FAMILIES_BY_API_KEY, INCOMPLETE_REASON, VULNERABILITY_SEVERITIES

#: The original's order (anatomy §2.4); it decides which duplicate result wins.
PROCESSING_ORDER = ("vulnerabilities", "sbom", "exploits", "secrets", "malware", "rootkits",
                    "misconfigurations", "infoFinder", "plugins")
FINISHED_STATES = ("Done", "Failed")
#: Rows per INSERT; 6 parameters a row stays far below SQLite's 32,766.
BATCH = 500


@dataclass
class Plan:
    """What one asset scan contributes, computed before the transaction opens."""

    asset_scan_id: str
    asset_id: str
    revision: int
    time: str                     # status.lastTransitionTime, written as-is
    millis: int                   # the same instant, for comparisons in SQL
    findings: dict = field(default_factory=dict)   # key -> findingInfo, in processing order
    counts: dict = field(default_factory=dict)     # family api key -> distinct findings
    invalidated_types: list = field(default_factory=list)
    packages: dict = field(default_factory=dict)   # Package key -> (name, version)
    plugins: int = None           # distinct plugin findings, None when plugins did not run


def process_asset_scan(asset_scan_id):
    """Turn a finished asset scan's results into findings; return counts for the logs."""
    scan = AssetScan.get_or_none(AssetScan.id == asset_scan_id)
    reason = _not_ready(scan)
    if reason:
        return {"skipped": reason}
    plan = make_plan(scan.data, scan.revision)
    with write_transaction():
        # The asset before its asset scan: the order a cascading delete locks them in.
        asset = _lock(Asset, plan.asset_id)
        scan = _lock(AssetScan, asset_scan_id)
        reason = _not_ready(scan)
        if reason:
            return {"skipped": reason}
        if scan.revision != plan.revision:  # the results changed since we planned
            plan = make_plan(scan.data, scan.revision)
        return _apply(plan, asset)


def make_plan(document, revision):
    """The findings of the asset scan `document`, keyed, de-duplicated and in order."""
    time = (document.get("status") or {}).get("lastTransitionTime")
    millis = datetime_millis(time) if isinstance(time, str) else None
    if millis is None:
        raise ValueError(f"asset scan {document['id']}: status.lastTransitionTime {time!r} is not a date-time")
    plan = Plan(document["id"], document["asset"]["id"], revision, time, millis)
    for api_key in PROCESSING_ORDER:
        family = FAMILIES_BY_API_KEY[api_key]
        block = document.get(api_key) or {}
        if (block.get("status") or {}).get("state") != "Done":
            continue
        keys = set()
        for result in block.get(family.results_key) or []:
            info = _finding_info(result, family.finding_type)
            key = identity.finding_key(info)
            if key is None:  # a plugin result of no known type
                continue
            keys.add(key)
            plan.findings.setdefault(key, info)
            _note_package(plan, key, info)
        plan.counts[api_key] = len(keys)
        if not family.finding_type:
            plan.plugins = len(keys)  # plugin findings are never invalidated
        elif ran_fully(block["status"]["state"], block["status"].get("reason")):
            plan.invalidated_types.append(family.finding_type)
    return plan


def _finding_info(result, finding_type):
    if not isinstance(result, dict):
        return None
    return {**result, "objectType": finding_type} if finding_type else dict(result)


def _note_package(plan, key, info):
    """Remember the packages whose vulnerability summary this scan may change."""
    if info["objectType"] == "Package":
        plan.packages[key] = (info.get("name"), info.get("version"))
    elif info["objectType"] == "Vulnerability":
        package = info.get("package") or {}
        if package.get("name") is not None:
            name, version = package.get("name"), package.get("version")
            package_key = identity.finding_key({"objectType": "Package", "name": name, "version": version})
            plan.packages[package_key] = (name, version)


def _not_ready(scan):
    if scan is None:
        return "not found"
    if (scan.data.get("status") or {}).get("state") not in FINISHED_STATES:
        return "not finished"
    if scan.data.get("findingsProcessed"):
        return "already processed"
    return None


def _apply(plan, asset):
    created = _insert_findings(plan)
    # First what belongs to this asset alone (the asset's row is locked already)...
    finding_ids = _finding_ids(plan.findings)
    later = later_invalidations(plan.asset_id, plan.asset_scan_id, plan.millis)
    invalidation = _invalidate(plan)
    cursor = _execute_together([*_insert_asset_findings(plan, finding_ids, later),
                                *_see_asset_findings(plan, finding_ids, later), invalidation])
    invalidated = cursor.rowcount if invalidation is not None else 0
    # ...last the Finding rows that other assets' scans share: locked until the commit.
    _see_shared_findings(plan, before=[_asset_summary_update(plan, asset), _processed_update(plan)])
    return {"findings": plan.counts, "created": created, "invalidated": invalidated}


# ---- SQL helpers: JSON documents on both databases -----------------------------------------

def _lock(model, object_id):
    """The row, locked until the transaction ends (SQLite's write lock already covers it)."""
    query = model.select().where(model.id == object_id)
    if is_postgres():
        # NO KEY UPDATE, the lock a plain UPDATE takes: foreign keys that point
        # at the row (KEY SHARE) can still be written by others.
        query = query.for_update("FOR NO KEY UPDATE")
    return query.first()


def _text(model, *path):
    """The text at `path` inside the model's document; NULL when missing."""
    dialect = dialects.current()
    ref = dialect.ref(model.data)
    for name in path:
        ref = ref.child(name)
    return dialect.text(ref)


def _instant(model, *path):
    """The document's date-time at `path` in epoch milliseconds, NULL when missing or invalid."""
    return dialects.current().datetime(_text(model, *path))


def _before(model, name, millis):
    """`name` is earlier than `millis`, or was never set."""
    instant = _instant(model, name)
    return instant.is_null() | (instant < millis)


def _after(model, name, millis):
    return _instant(model, name) > millis


def _json(value):
    """A JSON value as an SQL node: a Python value (bound as JSON text) or an SQL number."""
    if isinstance(value, peewee.Node):
        return fn.to_jsonb(value) if is_postgres() else value
    text = json.dumps(value, separators=(",", ":"))
    return sql("CAST({} AS jsonb)", text) if is_postgres() else fn.json(text)


def _member(model, name):
    """The JSON value of the document's top-level member `name`."""
    if is_postgres():
        return sql("({} -> {})", model.data, string_literal(name))
    return fn.json_extract(model.data, string_literal("$." + name))


def _differs(model, name, value):
    """The document's member `name` is not `value` (or is missing)."""
    return dialects.current().distinct(_member(model, name), _json(value))


def _document(model, changes, remove=()):
    """The model's document with the top-level `changes` set and the `remove` members dropped."""
    if is_postgres():
        pairs = []
        for name, value in changes.items():
            pairs += [string_literal(name), _json(value)]
        node = sql("({} || jsonb_build_object(" + ", ".join(["{}"] * len(pairs)) + "))", model.data, *pairs)
        for name in remove:
            node = sql("({} - {})", node, string_literal(name))
        return node
    arguments = []
    for name, value in changes.items():
        arguments += [string_literal("$." + name), _json(value)]
    node = fn.json_set(model.data, *arguments)
    if remove:
        node = fn.json_remove(node, *[string_literal("$." + name) for name in remove])
    return node


def _revised(model, changes, **columns):
    """UPDATE values: the changed document and its revision, one higher in both places."""
    changes = {**changes, "revision": model.revision + 1}
    return {model.data: _document(model, changes), model.revision: model.revision + 1,
            **{getattr(model, name): value for name, value in columns.items()}}


def _id_in(column, values):
    return dialects.current().id_in(column, list(values))


# ---- Findings ------------------------------------------------------------------------------

def _insert_findings(plan):
    """Insert the findings no one has stored yet, in key order; return how many."""
    rows = []
    for key in sorted(plan.findings):
        info = plan.findings[key]
        document = {"id": str(uuid.uuid4()), "revision": 1, "firstSeen": plan.time, "lastSeen": plan.time,
                    "lastSeenBy": {"id": plan.asset_scan_id}, "findingInfo": info}
        rows.append((document["id"], 1, document, key, info["objectType"], plan.asset_scan_id))
    fields = [Finding.id, Finding.revision, Finding.data, Finding.key, Finding.object_type, Finding.last_seen_by]
    created = 0
    for batch in peewee.chunked(rows, BATCH):
        created += (Finding.insert_many(batch, fields=fields)
                    .on_conflict(action="NOTHING", conflict_target=[Finding.key])
                    .as_rowcount()
                    .execute())
    return created


def _finding_ids(keys):
    """{key: id} of the stored findings with these keys (every one, after _insert_findings)."""
    return dict(Finding.select(Finding.key, Finding.id).where(_id_in(Finding.key, keys)).tuples())


def _see_shared_findings(plan, before=()):
    """Lock the scan's findings and packages in key order, move their lastSeen/lastSeenBy
    forward and firstSeen back, and refresh the packages' vulnerability summaries.

    Every asset scan that shares a finding waits here for the one before it to commit, so
    the locks are taken at the very end of the transaction and held for two round trips
    (with PostgreSQL's statements sent together) before the commit, instead of one per
    statement: in a busy worker process each round trip also waits for the GIL.
    The counts are read after the locks are taken, in a statement of their own (a fresh
    snapshot): whoever locks a package last counts every vulnerability committed before.
    The `before` statements are sent ahead of the lock, in the same round trip.
    """
    queries = list(before)
    if is_postgres():
        keys = sorted(set(plan.findings) | set(plan.packages))
        queries.append(Finding.select(Finding.id).where(_id_in(Finding.key, keys))
                       .order_by(Finding.key).for_update("FOR NO KEY UPDATE"))
    if plan.findings:
        in_scan = _id_in(Finding.key, plan.findings)
        seen = {"lastSeen": plan.time, "lastSeenBy": {"id": plan.asset_scan_id}}
        queries.append(Finding.update(_revised(Finding, seen, last_seen_by=plan.asset_scan_id))
                       .where(in_scan, _before(Finding, "lastSeen", plan.millis)))
        queries.append(Finding.update(_revised(Finding, {"firstSeen": plan.time}))
                       .where(in_scan, _after(Finding, "firstSeen", plan.millis)))
    names = sorted({name for name, _ in plan.packages.values() if name is not None})
    if names:
        queries.append(_vulnerability_counts_query(names))
    cursor = _execute_together(queries)
    if plan.packages:
        counts = _vulnerability_counts(cursor.fetchall() if names else [])
        _execute_together(_package_summary_updates(plan, counts))


def _execute_together(queries):
    """Run the queries in order, in one round trip on PostgreSQL; the last one's cursor.

    Fewer round trips matter beyond the network: in a worker process whose threads are
    busy, each answer also waits for the GIL before the next statement can be sent.
    """
    queries = [query for query in queries if query is not None]
    if not queries:
        return None
    if is_postgres() and len(queries) > 1:
        # Each statement of a multi-statement query takes its own snapshot (READ COMMITTED),
        # exactly as if sent one by one; the cursor holds the last one's rows.
        parts = [query.sql() for query in queries]
        return database.execute_sql(";\n".join(text for text, _ in parts),
                                    [param for _, params in parts for param in params])
    cursor = None
    for query in queries:
        cursor = database.execute(query)
    return cursor


# ---- AssetFindings -------------------------------------------------------------------------

def later_invalidations(asset_id, asset_scan_id, millis):
    """{finding type: time} of the earliest processed scan of the asset after `millis` whose
    family for that type ran (Done): the time an asset finding last seen at `millis` is gone.

    Scans are not always processed in time order; with this, an older scan processed
    late ends with the same history as if it had been processed first.
    """
    families = [family for family in FAMILIES if family.finding_type]
    statuses = [_text(AssetScan, family.api_key, "status", field) for family in families
                for field in ("state", "reason")]
    query = (AssetScan.select(_text(AssetScan, "status", "lastTransitionTime"), *statuses)
             .where(AssetScan.asset == asset_id, AssetScan.findings_processed == True,  # noqa: E712
                    AssetScan.id != asset_scan_id, _instant(AssetScan, "status", "lastTransitionTime") > millis))
    earliest = {}
    for time, *family_statuses in query.tuples():
        moment = (datetime_millis(time), time)
        for family, state, reason in zip(families, family_statuses[::2], family_statuses[1::2]):
            if ran_fully(state, reason) and moment < earliest.get(family.finding_type, (float("inf"), "")):
                earliest[family.finding_type] = moment
    return {finding_type: time for finding_type, (_, time) in earliest.items()}


def ran_fully(state, reason):
    """Whether a family's status says it saw everything it looks for: Done, and not incomplete
    (a scanner of it could not scan), so what it did not report is gone."""
    return state == "Done" and reason != INCOMPLETE_REASON


def _ids_by_invalidation(plan, finding_ids, later):
    """The scan's finding ids (in key order) grouped by the invalidatedOn their asset findings get."""
    groups = {}
    for key in sorted(plan.findings):
        groups.setdefault(later.get(plan.findings[key]["objectType"]), []).append(finding_ids[key])
    return groups


def _insert_asset_findings(plan, finding_ids, later):
    """INSERTs of the scan's asset findings that do not exist yet."""
    rows = []
    for key in sorted(plan.findings):
        finding_id = finding_ids[key]
        document = {"id": str(uuid.uuid4()), "revision": 1, "asset": {"id": plan.asset_id},
                    "finding": {"id": finding_id}, "firstSeen": plan.time, "lastSeen": plan.time}
        invalidated_on = later.get(plan.findings[key]["objectType"])
        if invalidated_on:
            document["invalidatedOn"] = invalidated_on
        rows.append((document["id"], 1, document, plan.asset_id, finding_id))
    fields = [AssetFinding.id, AssetFinding.revision, AssetFinding.data, AssetFinding.asset, AssetFinding.finding]
    return [AssetFinding.insert_many(batch, fields=fields)
            .on_conflict(action="NOTHING", conflict_target=[AssetFinding.asset, AssetFinding.finding])
            .as_rowcount()
            for batch in peewee.chunked(rows, BATCH)]


def _see_asset_findings(plan, finding_ids, later):
    """UPDATEs that move the asset findings' lastSeen forward and firstSeen back, as for the findings;
    seen again, an asset finding is valid again (unless a later scan lost it)."""
    updates = []
    for invalidated_on, ids in _ids_by_invalidation(plan, finding_ids, later).items():
        in_group = (AssetFinding.asset == plan.asset_id) & _id_in(AssetFinding.finding, ids)
        seen = {"lastSeen": plan.time, "revision": AssetFinding.revision + 1}
        if invalidated_on:
            document = _document(AssetFinding, {**seen, "invalidatedOn": invalidated_on})
        else:
            document = _document(AssetFinding, seen, remove=("invalidatedOn",))
        updates.append(AssetFinding.update({AssetFinding.data: document,
                                            AssetFinding.revision: AssetFinding.revision + 1})
                       .where(in_group, _before(AssetFinding, "lastSeen", plan.millis)))
    if plan.findings:
        scan_ids = [finding_ids[key] for key in plan.findings]
        in_scan = (AssetFinding.asset == plan.asset_id) & _id_in(AssetFinding.finding, scan_ids)
        updates.append(AssetFinding.update(_revised(AssetFinding, {"firstSeen": plan.time}))
                       .where(in_scan, _after(AssetFinding, "firstSeen", plan.millis)))
    return updates


def _invalidate(plan):
    """The UPDATE that marks what this scan's families no longer found on the asset, or None."""
    if not plan.invalidated_types:
        return None
    of_types = Finding.select(Finding.id).where(Finding.object_type.in_(plan.invalidated_types))
    invalidated = _instant(AssetFinding, "invalidatedOn")
    return (AssetFinding.update(_revised(AssetFinding, {"invalidatedOn": plan.time}))
            .where(AssetFinding.asset == plan.asset_id,
                   AssetFinding.finding.in_(of_types),
                   _before(AssetFinding, "lastSeen", plan.millis),
                   invalidated.is_null() | (invalidated > plan.millis)))


# ---- Summaries -----------------------------------------------------------------------------

def _severity_summary(counts):
    """VulnerabilitySeveritySummary from {severity: count}."""
    return {f"total{severity.capitalize()}Vulnerabilities": counts.get(severity, 0)
            for severity in VULNERABILITY_SEVERITIES}


def _vulnerability_counts_query(names):
    """(package name, version, severity, count) over every Vulnerability finding of these packages."""
    name = _text(Finding, "findingInfo", "package", "name")
    version = _text(Finding, "findingInfo", "package", "version")
    severity = _text(Finding, "findingInfo", "severity")
    return (Finding.select(name, version, severity, fn.COUNT(SQL("*")))
            .where(Finding.object_type == "Vulnerability", _id_in(name, names))
            .group_by(name, version, severity))


def _vulnerability_counts(rows):
    counts = {}
    for package_name, package_version, level, count in rows:
        counts.setdefault((package_name, package_version), {})[level] = count
    return counts


def _package_summary_updates(plan, counts):
    """UPDATEs that give every package of this scan its vulnerability counts, one per distinct summary."""
    keys_by_summary = {}
    for key, package in plan.packages.items():
        totals = _severity_summary(counts.get(package, {}))
        keys_by_summary.setdefault(json.dumps(totals), []).append(key)
    updates = []
    for totals, keys in sorted(keys_by_summary.items()):
        summary = {"updatedAt": plan.time, "totalVulnerabilities": json.loads(totals)}
        updates.append(Finding.update(_revised(Finding, {"summary": summary}))
                       .where(Finding.object_type == "Package", _id_in(Finding.key, keys),
                              _differs(Finding, "summary", summary)))
    return updates


def active_counts(asset_id):
    """{(finding type, severity): count} of the asset's findings that are not invalidated."""
    severity = _text(Finding, "findingInfo", "severity")
    query = (AssetFinding.select(Finding.object_type, severity, fn.COUNT(SQL("*")))
             .join(Finding, on=(AssetFinding.finding == Finding.id))
             .where(AssetFinding.asset == asset_id, _text(AssetFinding, "invalidatedOn").is_null())
             .group_by(Finding.object_type, severity))
    return {(object_type, level): count for object_type, level, count in query.tuples()}


def asset_summary(asset_id, plugins):
    """ScanFindingsSummary of the asset's valid findings; `plugins` is totalPlugins."""
    counts = active_counts(asset_id)
    summary = {}
    for family in FAMILIES:
        if family.finding_type and family.finding_type != "Vulnerability":
            summary[family.summary_key] = sum(n for (kind, _), n in counts.items() if kind == family.finding_type)
    summary["totalPlugins"] = plugins
    summary["totalVulnerabilities"] = _severity_summary(
        {level: n for (kind, level), n in counts.items() if kind == "Vulnerability"})
    return summary


def _asset_summary_update(plan, asset):
    """The UPDATE that gives the asset the summary of its valid findings, when it changes."""
    # Plugin findings carry their own types and are counted under them; totalPlugins
    # is how many the plugins family reported in the last processed scan that ran it.
    plugins = plan.plugins
    if plugins is None:
        plugins = ((asset.data.get("summary") or {}).get("totalPlugins")) or 0
    summary = asset_summary(plan.asset_id, plugins)
    return (Asset.update(_revised(Asset, {"summary": summary}))
            .where(Asset.id == plan.asset_id, _differs(Asset, "summary", summary)))


def _processed_update(plan):
    """The UPDATE that sets the asset scan's `findingsProcessed`."""
    return (AssetScan.update(_revised(AssetScan, {"findingsProcessed": True}, findings_processed=True))
            .where(AssetScan.id == plan.asset_scan_id))
