"""Scan config scheduling: a due config becomes a scan, then its time moves on.

Due means `scheduled.operationTime` has come. A cron config then moves to its
next tick; a one-off is disabled (the UI's "start now" sets a new time and
enables it again). A config with a scan still running skips this turn. A
config due later gets a delayed message for that moment (the scheduler's sweep
is the safety net).
"""

import dramatiq
from croniter import croniter

import tasks.broker  # noqa: F401  (sets the broker before any actor is declared)
from app.models import Scan, ScanConfig
from tasks.objects import Stale, create, load, now, parse_time, patch, status, timestamp

#: Longest delay of one message; later times are re-checked then.
MAX_DELAY_SECONDS = 3600


@dramatiq.actor(queue_name="orchestrator", max_retries=10, min_backoff=1000, max_backoff=60_000,
                time_limit=60_000)
def reconcile_scan_config(scan_config_id):
    try:
        _reconcile(scan_config_id)
    except Stale:
        reconcile_scan_config.send_with_options(args=(scan_config_id,), delay=200)


def _reconcile(scan_config_id):
    config = load(ScanConfig, scan_config_id)
    if config is None or config.get("disabled"):
        return
    scheduled = config.get("scheduled") or {}
    operation_time = parse_time(scheduled.get("operationTime"))
    if operation_time is None:
        return
    wait = (operation_time - now()).total_seconds()
    if wait > 0:
        delay_ms = int(min(wait, MAX_DELAY_SECONDS) * 1000) + 50
        reconcile_scan_config.send_with_options(args=(scan_config_id,), delay=delay_ms)
        return
    if not Scan.running_for(scan_config_id).exists():
        create(Scan, new_scan(config, operation_time))
    patch(ScanConfig, config, _after_run(scheduled))


def new_scan(config, operation_time):
    """The Scan document a config starts: its template flattened, as the original did."""
    template = config.get("scanTemplate") or {}
    scan = {
        "name": f"{config['name']}-{timestamp(operation_time)}",
        "scanConfig": {"id": config["id"]},
        "status": status("Pending", "Created"),
        "startTime": timestamp(),
        "summary": empty_summary(),
    }
    for key in ("scope", "timeoutSeconds", "maxParallelScanners", "assetScanTemplate"):
        if key in template:
            scan[key] = template[key]
    return scan


def empty_summary():
    return {
        "jobsLeftToRun": 0, "jobsCompleted": 0, "totalPackages": 0, "totalExploits": 0, "totalMalware": 0,
        "totalMisconfigurations": 0, "totalRootkits": 0, "totalSecrets": 0, "totalInfoFinder": 0,
        "totalPlugins": 0,
        "totalVulnerabilities": {f"total{s}Vulnerabilities": 0
                                 for s in ("Critical", "High", "Medium", "Low", "Negligible")},
    }


def _after_run(scheduled):
    cron_line = scheduled.get("cronLine")
    if cron_line:
        following = croniter(cron_line, now()).get_next(type(now()))
        return {"scheduled": {"operationTime": timestamp(following)}}
    return {"disabled": True}
