"""The scan state machine (anatomy §2.3): scope -> assets -> asset scans -> roll-up.

Each call does the one step the scan's state calls for; the write it makes
triggers the next call at once (tasks.triggers), so the happy path never waits
on a poll. One reconcile per scan at a time (a Redis lock), so scheduling never
starts more scanners than maxParallelScanners.
"""

import datetime

import dramatiq

import tasks.broker  # noqa: F401  (sets the broker before any actor is declared)
from app import odata
from app.models import Asset, AssetScan, Scan
from tasks.locks import run_step
from tasks.objects import create, load, now, parse_time, patch, status, timestamp
from tasks.scan_configs import empty_summary
from tasks.settings import orchestrator_settings
from scanner.vocabulary import FAMILIES, VULNERABILITY_SEVERITIES

UNFINISHED_ASSET_SCAN_STATES = ("Pending", "Scheduled", "ReadyToScan", "InProgress")


@dramatiq.actor(queue_name="orchestrator", max_retries=20, min_backoff=500, max_backoff=30_000,
                time_limit=300_000)
def reconcile_scan(scan_id):
    run_step(reconcile_scan, "scan", scan_id, _reconcile)


def _reconcile(scan_id):
    scan = load(Scan, scan_id)
    if scan is None:
        return
    state = scan["status"]["state"]
    if state in ("Done", "Failed"):
        return
    settings = orchestrator_settings()
    if state != "Aborted" and _timed_out(scan, settings):
        _abort_asset_scans(scan_id)
        _finish(scan, status("Failed", "Timeout", "the scan ran out of time"))
        return
    STEPS[state](scan, settings)


def _pending(scan, settings):
    try:
        condition = odata.filter_expression(Asset, scan.get("scope") or "")
    except odata.ODataError as error:
        _finish(scan, status("Failed", "Error", f"scope: {error}"))
        return
    asset_ids = [row.id for row in Asset.select(Asset.id).where(
        condition & odata.filter_expression(Asset, "terminatedOn eq null")).order_by(Asset.pk)]
    if not asset_ids:
        _finish(scan, status("Done", "NothingToScan", "no asset matches the scope"))
        return
    patch(Scan, scan, {"assetIDs": asset_ids, "status": status("Discovered", "AssetsDiscovered")})


def _discovered(scan, settings):
    template = scan.get("assetScanTemplate") or {}
    families = template.get("scanFamiliesConfig") or {}
    for asset_id in scan.get("assetIDs") or []:
        create(AssetScan, _asset_scan(scan["id"], asset_id, template, families))
    summary = {**(scan.get("summary") or empty_summary()), "jobsLeftToRun": len(scan.get("assetIDs") or [])}
    patch(Scan, scan, {"status": status("InProgress", "AssetScansRunning"), "summary": summary})
    # Come back when the time is up, in case nothing else happens before.
    remaining = _deadline(scan, settings) - now()
    reconcile_scan.send_with_options(args=(scan["id"],), delay=int(remaining.total_seconds() * 1000) + 100)


def _asset_scan(scan_id, asset_id, template, families):
    document = {
        "scan": {"id": scan_id},
        "asset": {"id": asset_id},
        "scanFamiliesConfig": families,
        "scannerInstanceCreationConfig": template.get("scannerInstanceCreationConfig")
        or {"useSpotInstances": False},
        "status": status("Pending", "Created"),
        "resourceCleanupStatus": status("Pending", "AssetScanCreated"),
        "findingsProcessed": False,
    }
    for family in FAMILIES:
        enabled = (families.get(family.api_key) or {}).get("enabled")
        document[family.api_key] = {"status": status("Pending", "Scheduled") if enabled
                                    else status("Skipped", "NotScheduled")}
    return document


def _in_progress(scan, settings):
    counts = AssetScan.state_counts(scan["id"])
    left = sum(counts.get(state, 0) for state in UNFINISHED_ASSET_SCAN_STATES + ("Aborted",))
    if left:
        _fill_slots(scan, counts, settings)
        summary = {**(scan.get("summary") or empty_summary()), "jobsLeftToRun": left,
                   "jobsCompleted": sum(counts.values()) - left}
        if summary != scan.get("summary"):
            patch(Scan, scan, {"summary": summary})
        return
    failed, total = counts.get("Failed", 0), sum(counts.values())
    message = f"{total - failed} succeeded, {failed} failed out of {total} total asset scans"
    _finish(scan, status("Failed", "Error", message) if failed else status("Done", "Success", message))


def _fill_slots(scan, counts, settings):
    """Start pending asset scans while fewer than maxParallelScanners are running."""
    limit = scan.get("maxParallelScanners") or settings["max_parallel_scanners"]
    running = sum(counts.get(state, 0) for state in AssetScan.ACTIVE_STATES)
    # Materialized first: SQLite refuses a write while a read of the same connection is open.
    for row in list(AssetScan.next_pending(scan["id"], max(0, limit - running))):
        patch(AssetScan, row.data, {"status": status("Scheduled", "Provisioning")})


def _aborted(scan, settings):
    _abort_asset_scans(scan["id"])
    _finish(scan, status("Failed", "Cancellation", "the scan was aborted"))


def _abort_asset_scans(scan_id):
    for row in list(AssetScan.of_scan(scan_id).where(AssetScan.state.in_(UNFINISHED_ASSET_SCAN_STATES))):
        aborted = patch(AssetScan, row.data, {"status": status("Aborted", "Cancellation")})
        if row.state == "Pending":
            # Nothing was started for it: no scanner will report, so end it now.
            patch(AssetScan, aborted, {"status": status("Failed", "Error", "aborted before it started")})


def _finish(scan, final_status):
    body = {"status": final_status, "endTime": timestamp()}
    if final_status["reason"] in ("Success", "Error", "NothingToScan"):
        body["summary"] = rolled_up_summary(scan["id"])
    patch(Scan, scan, body)


def rolled_up_summary(scan_id):
    """The scan's summary: every asset scan's counters added up (the original's bug fixed)."""
    summary = empty_summary()
    for row in AssetScan.of_scan(scan_id):
        finished = row.state in AssetScan.FINISHED_STATES
        summary["jobsCompleted" if finished else "jobsLeftToRun"] += 1
        for key, value in (row.data.get("summary") or {}).items():
            if key == "totalVulnerabilities" and isinstance(value, dict):
                for severity in VULNERABILITY_SEVERITIES:
                    name = f"total{severity.capitalize()}Vulnerabilities"
                    summary[key][name] += int(value.get(name) or 0)
            elif key in summary and isinstance(value, int):
                summary[key] += value
    return summary


def _deadline(scan, settings):
    started = parse_time(scan.get("startTime")) or now()
    return started + datetime.timedelta(seconds=scan.get("timeoutSeconds") or settings["scan_timeout"])


def _timed_out(scan, settings):
    return now() > _deadline(scan, settings)


STEPS = {
    "Pending": _pending,
    "Discovered": _discovered,
    "InProgress": _in_progress,
    "Aborted": _aborted,
}
