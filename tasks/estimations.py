"""Scan estimations (anatomy §2.2): what scanning a scope would take, before running it.

A scan estimation mirrors the scan's state machine (tasks/scans.py): Pending ->
assets in scope -> one asset scan estimation per asset -> the roll-up. An asset
scan estimation asks the provider once, with the stats of the asset's earlier
scans. Each call does one step; its write triggers the next (tasks.triggers).
Finished estimations are deleted ttlSecondsAfterFinished after they end: the
scheduler's sweep (`sweep_queries`) brings them back here once that time passes,
and also re-drives any step whose message was lost.
"""

import contextlib
import datetime
import math

import dramatiq

import tasks.broker  # noqa: F401  (sets the broker before any actor is declared)
from app import odata, store
from app.errors import NotFound
from app.models import Asset, AssetScan, AssetScanEstimation, ScanEstimation
from app.resources import RESOURCES_BY_MODEL
from tasks.locks import run_step
from tasks.objects import create, load, now, parse_time, patch, status, timestamp
from tasks.providers import ProviderError, RetryableError, get_provider
from tasks.settings import orchestrator_settings

#: Seconds a finished estimation is kept when it does not say (upstream's default).
DEFAULT_TTL = 7200
#: Seconds before an unfinished scan estimation fails with TimeOut (upstream: 48 h).
ESTIMATION_TIMEOUT = 48 * 3600
FINISHED_STATES = ("Done", "Failed")


@dramatiq.actor(queue_name="orchestrator", max_retries=20, min_backoff=500, max_backoff=30_000,
                time_limit=120_000)
def reconcile_scan_estimation(scan_estimation_id):
    run_step(reconcile_scan_estimation, "scan-estimation", scan_estimation_id, _reconcile_scan_estimation)


@dramatiq.actor(queue_name="orchestrator", max_retries=20, min_backoff=1000, max_backoff=60_000,
                time_limit=120_000)
def reconcile_asset_scan_estimation(asset_scan_estimation_id):
    run_step(reconcile_asset_scan_estimation, "asset-scan-estimation", asset_scan_estimation_id,
             _reconcile_asset_scan_estimation)


def sweep_queries():
    """(model, OData filter, actor) for the scheduler's sweep: unfinished, or due for deletion.

    `{now}` is filled in by the sweep. A finished one without deleteAfter (finished
    by a client's PATCH) is picked up too, to be given one.
    """
    due = "deleteAfter eq null or deleteAfter lt {now}"
    return (
        (ScanEstimation, f"(status/state ne 'Done' and status/state ne 'Failed') or {due}",
         reconcile_scan_estimation),
        (AssetScanEstimation, f"status/state eq 'Pending' or {due}", reconcile_asset_scan_estimation),
    )


# ---- scan estimations ---------------------------------------------------------------


def _reconcile_scan_estimation(scan_estimation_id):
    estimation = load(ScanEstimation, scan_estimation_id)
    if estimation is None:
        return
    state = estimation["status"]["state"]
    if state in FINISHED_STATES:
        _expire(ScanEstimation, estimation)
        return
    settings = orchestrator_settings()
    if state != "Aborted" and now() > _deadline(estimation, settings):
        _abort_asset_scan_estimations(scan_estimation_id)
        _finish(estimation, status("Failed", "TimeOut", "the estimation ran out of time"), settings)
        return
    STEPS[state](estimation, settings)


def _pending(estimation, settings):
    scope = (estimation.get("scanTemplate") or {}).get("scope") or ""
    try:
        condition = odata.filter_expression(Asset, scope)
    except odata.ODataError as error:
        _finish(estimation, status("Failed", "Error", f"scope: {error}"), settings)
        return
    asset_ids = [row.id for row in Asset.select(Asset.id).where(
        condition & odata.filter_expression(Asset, "terminatedOn eq null")).order_by(Asset.pk)]
    if not asset_ids:
        _finish(estimation, status("Done", "NothingToEstimate", "no asset matches the scope"), settings)
        return
    patch(ScanEstimation, estimation, {
        "assetIDs": asset_ids,
        "startTime": estimation.get("startTime") or timestamp(now()),
        "status": status("Discovered", "SuccessfulDiscovery"),
    })


def _discovered(estimation, settings):
    template = (estimation.get("scanTemplate") or {}).get("assetScanTemplate")
    for asset_id in estimation.get("assetIDs") or []:
        # An asset deleted since discovery has nothing left to estimate.
        if not Asset.select().where(Asset.id == asset_id).exists():
            continue
        body = {"asset": {"id": asset_id}, "scanEstimation": {"id": estimation["id"]},
                "status": status("Pending", "Created")}
        if template:
            body["assetScanTemplate"] = template
        create(AssetScanEstimation, body)  # None when a run before this one made it
    # Read back rather than collect what `create` returned: that covers the ones made earlier.
    rows = _asset_scan_estimations(estimation["id"])
    patch(ScanEstimation, estimation, {
        "assetScanEstimations": [{"id": row.id} for row in rows],
        "summary": _summary(estimation, rows, settings),
        "status": status("InProgress", "EstimationsRunning"),
    })


def _in_progress(estimation, settings):
    rows = _asset_scan_estimations(estimation["id"])
    summary = _summary(estimation, rows, settings)
    if summary["jobsLeftToRun"]:
        if summary != estimation.get("summary"):
            patch(ScanEstimation, estimation, {"summary": summary})
        return
    if not rows:  # every asset went away before its estimation was made
        _finish(estimation, status("Done", "NothingToEstimate", "no asset left to estimate"), settings)
        return
    failed = sum(1 for row in rows if _state(row.data) != "Done")
    total = len(rows)
    message = f"{total - failed} succeeded, {failed} failed out of {total} total asset scan estimations"
    _finish(estimation, status("Failed", "Error", message) if failed else status("Done", "Success", message),
            settings)


def _aborted(estimation, settings):
    _abort_asset_scan_estimations(estimation["id"])
    # Failed allows no Cancellation reason for estimations (anatomy §1.5): Aborted says it.
    _finish(estimation, status("Failed", "Aborted", "the estimation was aborted"), settings)


def _abort_asset_scan_estimations(scan_estimation_id):
    for row in _asset_scan_estimations(scan_estimation_id):
        if _state(row.data) == "Pending":
            patch(AssetScanEstimation, row.data, {"status": status("Aborted", "Cancellation")})


def _finish(estimation, final_status, settings):
    end = now()
    patch(ScanEstimation, estimation, {
        "status": final_status,
        "startTime": estimation.get("startTime") or timestamp(end),
        "endTime": timestamp(end),
        "deleteAfter": timestamp(end + _ttl(estimation)),
        "summary": _summary(estimation, _asset_scan_estimations(estimation["id"]), settings),
    })


def _summary(estimation, rows, settings):
    """Counts and totals over the asset scan estimations so far.

    Scanners run side by side, so the time is the sum divided by how many run at once.
    """
    finished = [row.data for row in rows if _state(row.data) != "Pending"]
    results = [document.get("estimation") or {} for document in finished]
    template = estimation.get("scanTemplate") or {}
    limit = template.get("maxParallelScanners") or settings["max_parallel_scanners"]
    parallel = max(1, min(limit, len(rows)))
    return {
        "jobsLeftToRun": len(rows) - len(finished),
        "jobsCompleted": len(finished),
        "totalScanTime": math.ceil(sum(result.get("duration") or 0 for result in results) / parallel),
        "totalScanSize": sum(result.get("size") or 0 for result in results),
        "totalScanCost": float(sum(result.get("cost") or 0 for result in results)),
    }


def _asset_scan_estimations(scan_estimation_id):
    return list(AssetScanEstimation.select()
                .where(AssetScanEstimation.scan_estimation == scan_estimation_id)
                .order_by(AssetScanEstimation.pk))


def _deadline(estimation, settings):
    # Without a startTime (still Pending) the clock starts when it was created.
    started = (parse_time(estimation.get("startTime"))
               or parse_time(estimation["status"].get("lastTransitionTime")) or now())
    return started + datetime.timedelta(seconds=settings.get("estimation_timeout", ESTIMATION_TIMEOUT))


STEPS = {
    "Pending": _pending,
    "Discovered": _discovered,
    "InProgress": _in_progress,
    "Aborted": _aborted,
}


# ---- asset scan estimations ---------------------------------------------------------


def _reconcile_asset_scan_estimation(asset_scan_estimation_id):
    estimation = load(AssetScanEstimation, asset_scan_estimation_id)
    if estimation is None:
        return
    if _state(estimation) == "Pending":
        _estimate(estimation, orchestrator_settings())
    else:  # Done, Failed or Aborted: nothing left but to expire
        _expire(AssetScanEstimation, estimation)


def _estimate(estimation, settings):
    started = now()
    asset_id = estimation["asset"]["id"]
    provider = get_provider(settings["provider"], settings)
    try:
        result = provider.estimate(latest_stats(asset_id), load(Asset, asset_id),
                                   estimation.get("assetScanTemplate") or {})
    except RetryableError:
        raise  # the actor asks again later
    except ProviderError as error:
        body = {"status": status("Failed", "Error", f"provider: {error}")}
    else:
        body = {"status": status("Done", "Success"), "estimation": result}
    end = now()
    patch(AssetScanEstimation, estimation, {
        **body,
        "startTime": estimation.get("startTime") or timestamp(started),
        "endTime": timestamp(end),
        "deleteAfter": timestamp(end + _ttl(estimation)),
    })


def latest_stats(asset_id):
    """AssetScanStats merged from the asset's Done asset scans: per family, the newest there is."""
    page = odata.list_documents(AssetScan, {"$select": "stats"},
                                restrict=(AssetScan.asset == asset_id) & (AssetScan.state == "Done"))
    merged = {}
    for document in reversed(page["items"]):  # newest first
        for family, value in (document.get("stats") or {}).items():
            if value and family not in merged:
                merged[family] = value
    return merged


# ---- both ---------------------------------------------------------------------------


def _expire(model, document):
    """A finished estimation: give it a deleteAfter if it has none; delete it once that has passed."""
    delete_after = parse_time(document.get("deleteAfter"))
    if delete_after is None:
        end = parse_time(document.get("endTime")) or now()
        patch(model, document, {"deleteAfter": timestamp(end + _ttl(document))})
    elif now() >= delete_after:
        with contextlib.suppress(NotFound):  # deleted meanwhile, e.g. with its scan estimation
            store.delete(RESOURCES_BY_MODEL[model], document["id"])


def _ttl(document):
    ttl = document.get("ttlSecondsAfterFinished")
    return datetime.timedelta(seconds=DEFAULT_TTL if ttl is None else ttl)


def _state(document):
    return (document.get("status") or {}).get("state")
