"""Findings processing: one finished asset scan's results become Findings and AssetFindings.

Anatomy §2.4, done in bulk SQL inside one write transaction per asset scan:

1. Plan (in Python, outside the transaction): walk the result blocks whose
   family status is Done, in the original's order, and key every result with
   `identity.finding_key`. The first result of a key wins; the rest are
   duplicates of the same finding. Packages come from the SBOM only (the SBOM
   is authoritative; our vulnerabilities are matched from it), but the
   packages named by vulnerabilities still get their summaries refreshed.
2. Upsert Findings: insert the new ones (ON CONFLICT (key) DO NOTHING), lock
   every one of the scan's findings in key order, then move lastSeen and
   lastSeenBy forward (firstSeen back) with UPDATEs whose WHERE compares the
   stored time with the reference time t, so an older scan processed late
   never moves anything backward.
3. The same for the asset's AssetFindings. A finding seen again is valid
   again, unless a later scan of the asset, processed before this one, ran
   the family and did not see it: then it is invalidated at that scan's time,
   so the history does not depend on the order scans are processed in.
4. Package summaries, invalidation of what this scan no longer saw, the
   asset's summary, and finally `findingsProcessed`.

Every write keeps the JSON document, the `revision` column and the key and
foreign-key columns in step, as app/store.py does, and changes a row only when
its content changes: processing the same asset scan again is a no-op.

Concurrency. SQLite: the IMMEDIATE write transaction serializes all writers.
PostgreSQL: the asset row, then the asset scan row, then the findings (in key
order) are locked before anything is updated, so two scans of one asset run
one after the other, and scans of different assets that share findings take
their locks in the same order (no deadlock) and re-read the locked rows (no
lost update). Inserts run in key order too: ON CONFLICT waits for another
transaction's uncommitted row with the same key and then skips it.
"""

import json
import uuid
from dataclasses import dataclass, field

import peewee
from peewee import SQL, fn

from app import identity
from app.db import is_postgres, write_transaction
from app.models import Asset, AssetFinding, AssetScan, Finding
from app.odata import dialect as dialects
from app.odata.compiler import datetime_millis
from app.odata.dialect import sql, string_literal
from scanner.vocabulary import FAMILIES, FAMILIES_BY_API_KEY, VULNERABILITY_SEVERITIES

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
        if family.finding_type:  # plugin findings are never invalidated
            plan.invalidated_types.append(family.finding_type)
        else:
            plan.plugins = len(keys)
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
    finding_ids = _lock_findings(sorted(set(plan.findings) | set(plan.packages)))
    _see_findings(plan)
    later = later_invalidations(plan.asset_id, plan.asset_scan_id, plan.millis)
    _insert_asset_findings(plan, finding_ids, later)
    _see_asset_findings(plan, finding_ids, later)
    _update_package_summaries(plan)
    invalidated = _invalidate(plan)
    _update_asset_summary(plan, asset)
    _mark_processed(plan)
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


def _lock_findings(keys):
    """{key: id} of the stored findings with these keys, locked in key order on PostgreSQL."""
    query = Finding.select(Finding.key, Finding.id).where(_id_in(Finding.key, keys)).order_by(Finding.key)
    if is_postgres():
        query = query.for_update("FOR NO KEY UPDATE")
    return dict(query.tuples())


def _see_findings(plan):
    """Move lastSeen/lastSeenBy forward and firstSeen back to this scan's time where needed."""
    in_scan = _id_in(Finding.key, plan.findings)
    seen = {"lastSeen": plan.time, "lastSeenBy": {"id": plan.asset_scan_id}}
    (Finding.update(_revised(Finding, seen, last_seen_by=plan.asset_scan_id))
     .where(in_scan, _before(Finding, "lastSeen", plan.millis))
     .execute())
    (Finding.update(_revised(Finding, {"firstSeen": plan.time}))
     .where(in_scan, _after(Finding, "firstSeen", plan.millis))
     .execute())


# ---- AssetFindings -------------------------------------------------------------------------

def later_invalidations(asset_id, asset_scan_id, millis):
    """{finding type: time} of the earliest processed scan of the asset after `millis` whose
    family for that type ran (Done): the time an asset finding last seen at `millis` is gone.

    Scans are not always processed in time order; with this, an older scan processed
    late ends with the same history as if it had been processed first.
    """
    families = [family for family in FAMILIES if family.finding_type]
    states = [_text(AssetScan, family.api_key, "status", "state") for family in families]
    query = (AssetScan.select(_text(AssetScan, "status", "lastTransitionTime"), *states)
             .where(AssetScan.asset == asset_id, AssetScan.findings_processed == True,  # noqa: E712
                    AssetScan.id != asset_scan_id, _instant(AssetScan, "status", "lastTransitionTime") > millis))
    earliest = {}
    for time, *family_states in query.tuples():
        moment = (datetime_millis(time), time)
        for family, state in zip(families, family_states):
            if state == "Done" and moment < earliest.get(family.finding_type, (float("inf"), "")):
                earliest[family.finding_type] = moment
    return {finding_type: time for finding_type, (_, time) in earliest.items()}


def _ids_by_invalidation(plan, finding_ids, later):
    """The scan's finding ids (in key order) grouped by the invalidatedOn their asset findings get."""
    groups = {}
    for key in sorted(plan.findings):
        groups.setdefault(later.get(plan.findings[key]["objectType"]), []).append(finding_ids[key])
    return groups


def _insert_asset_findings(plan, finding_ids, later):
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
    for batch in peewee.chunked(rows, BATCH):
        (AssetFinding.insert_many(batch, fields=fields)
         .on_conflict(action="NOTHING", conflict_target=[AssetFinding.asset, AssetFinding.finding])
         .execute())


def _see_asset_findings(plan, finding_ids, later):
    """As _see_findings; seen again, an asset finding is valid again (unless a later scan lost it)."""
    for invalidated_on, ids in _ids_by_invalidation(plan, finding_ids, later).items():
        in_group = (AssetFinding.asset == plan.asset_id) & _id_in(AssetFinding.finding, ids)
        seen = {"lastSeen": plan.time, "revision": AssetFinding.revision + 1}
        if invalidated_on:
            document = _document(AssetFinding, {**seen, "invalidatedOn": invalidated_on})
        else:
            document = _document(AssetFinding, seen, remove=("invalidatedOn",))
        (AssetFinding.update({AssetFinding.data: document, AssetFinding.revision: AssetFinding.revision + 1})
         .where(in_group, _before(AssetFinding, "lastSeen", plan.millis))
         .execute())
    scan_ids = [finding_ids[key] for key in plan.findings]
    in_scan = (AssetFinding.asset == plan.asset_id) & _id_in(AssetFinding.finding, scan_ids)
    (AssetFinding.update(_revised(AssetFinding, {"firstSeen": plan.time}))
     .where(in_scan, _after(AssetFinding, "firstSeen", plan.millis))
     .execute())


def _invalidate(plan):
    """Mark what this scan's families no longer found on the asset; return how many."""
    if not plan.invalidated_types:
        return 0
    of_types = Finding.select(Finding.id).where(Finding.object_type.in_(plan.invalidated_types))
    invalidated = _instant(AssetFinding, "invalidatedOn")
    return (AssetFinding.update(_revised(AssetFinding, {"invalidatedOn": plan.time}))
            .where(AssetFinding.asset == plan.asset_id,
                   AssetFinding.finding.in_(of_types),
                   _before(AssetFinding, "lastSeen", plan.millis),
                   invalidated.is_null() | (invalidated > plan.millis))
            .execute())


# ---- Summaries -----------------------------------------------------------------------------

def _severity_summary(counts):
    """VulnerabilitySeveritySummary from {severity: count}."""
    return {f"total{severity.capitalize()}Vulnerabilities": counts.get(severity, 0)
            for severity in VULNERABILITY_SEVERITIES}


def vulnerability_counts(names):
    """{(package name, version): {severity: count}} over every Vulnerability finding of these packages."""
    name = _text(Finding, "findingInfo", "package", "name")
    version = _text(Finding, "findingInfo", "package", "version")
    severity = _text(Finding, "findingInfo", "severity")
    query = (Finding.select(name, version, severity, fn.COUNT(SQL("*")))
             .where(Finding.object_type == "Vulnerability", _id_in(name, names))
             .group_by(name, version, severity))
    counts = {}
    for package_name, package_version, level, count in query.tuples():
        counts.setdefault((package_name, package_version), {})[level] = count
    return counts


def _update_package_summaries(plan):
    """Give every package of this scan its vulnerability counts, one UPDATE per distinct summary."""
    counts = vulnerability_counts(sorted({name for name, _ in plan.packages.values() if name is not None}))
    keys_by_summary = {}
    for key, package in plan.packages.items():
        totals = _severity_summary(counts.get(package, {}))
        keys_by_summary.setdefault(json.dumps(totals), []).append(key)
    for totals, keys in sorted(keys_by_summary.items()):
        summary = {"updatedAt": plan.time, "totalVulnerabilities": json.loads(totals)}
        (Finding.update(_revised(Finding, {"summary": summary}))
         .where(Finding.object_type == "Package", _id_in(Finding.key, keys), _differs(Finding, "summary", summary))
         .execute())


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


def _update_asset_summary(plan, asset):
    # Plugin findings carry their own types and are counted under them; totalPlugins
    # is how many the plugins family reported in the last processed scan that ran it.
    plugins = plan.plugins
    if plugins is None:
        plugins = ((asset.data.get("summary") or {}).get("totalPlugins")) or 0
    summary = asset_summary(plan.asset_id, plugins)
    (Asset.update(_revised(Asset, {"summary": summary}))
     .where(Asset.id == plan.asset_id, _differs(Asset, "summary", summary))
     .execute())


def _mark_processed(plan):
    (AssetScan.update(_revised(AssetScan, {"findingsProcessed": True}, findings_processed=True))
     .where(AssetScan.id == plan.asset_scan_id)
     .execute())
