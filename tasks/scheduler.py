"""The scheduler: one process (a Redis lock makes a second copy wait) that enqueues due work.

Every sweep interval it re-drives everything whose state says work remains:
due scan configs, unfinished scans, asset scans still provisioning, running
(is their scanner still there?), aborted, unprocessed or not cleaned up; it removes provider resources whose asset scan
is gone; and it runs discovery every discovery interval. Messages lost with a
killed worker or a restarted Redis are thereby sent again; the actors are
idempotent, so a duplicate does no harm.
"""

import contextlib
import logging
import signal
import threading
import time

import dramatiq
from redis.exceptions import LockError, RedisError

from app import odata
from app.db import database
from app.models import AssetScan, Scan, ScanConfig
from tasks.asset_scans import reconcile_asset_scan, remove_leftover
from tasks.discovery import discover_assets
from tasks.estimations import sweep_queries as estimation_sweep_queries
from tasks.findings import process_findings
from tasks.objects import timestamp
from tasks.providers import get_provider
from tasks.scan_configs import reconcile_scan_config
from tasks.scans import reconcile_scan
from tasks.settings import orchestrator_settings

log = logging.getLogger(__name__)
LOCK_NAME = "vmclarity:scheduler"


def sweep(settings):
    """Enqueue a reconcile for everything that still has work; return how many."""
    sent = 0
    for model, text, actor in _WORK:
        query = model.select(model.id).where(odata.filter_expression(model, text.format(now=timestamp())))
        for row in query:
            actor.send(row.id)
            sent += 1
    for row in AssetScan.awaiting_findings():
        process_findings.send(row.id)
        sent += 1
    provider = get_provider(settings["provider"], settings)
    live = {row.id for row in AssetScan.select(AssetScan.id)}
    for asset_scan_id in provider.leftovers(live):
        remove_leftover.send(asset_scan_id)
        sent += 1
    return sent


_WORK = (
    (ScanConfig, "(disabled eq null or disabled eq false) and scheduled/operationTime le {now}",
     reconcile_scan_config),
    (Scan, "status/state ne 'Done' and status/state ne 'Failed'", reconcile_scan),
    # Asset scans the orchestrator owes a step: provisioning, aborting, checking that the scanner
    # of a ready or running one is still there, or finished and not cleaned up. Findings are
    # swept apart.
    (AssetScan, "status/state ne 'Done' and status/state ne 'Failed' "
                "or ((status/state eq 'Done' or status/state eq 'Failed') "
                "and resourceCleanupStatus/state eq 'Pending')",
     reconcile_asset_scan),
) + estimation_sweep_queries()


def run(stop=None, settings=None):
    """Sweep until `stop` is set; only the holder of the scheduler lock works."""
    stop = stop or threading.Event()
    settings = settings or orchestrator_settings()
    interval = settings["sweep_interval"]
    ttl = max(3 * interval, 10)
    lock = dramatiq.get_broker().client.lock(LOCK_NAME, timeout=ttl)
    next_discovery = 0.0
    while not stop.is_set():
        try:
            if _hold(lock, ttl):
                next_discovery = _tick(settings, next_discovery)
        except RedisError as error:  # Redis away: try again next tick, the sweep re-drives what was lost
            log.warning("Redis unavailable: %s", error)
        stop.wait(interval)
    with contextlib.suppress(LockError, RedisError):
        lock.release()


def _hold(lock, ttl):
    """Keep (or take over) the scheduler lock; False while another scheduler has it."""
    if lock.owned():
        try:
            return bool(lock.extend(ttl, replace_ttl=True))
        except LockError:
            pass  # expired and taken meanwhile
    return lock.acquire(blocking=False)


def _tick(settings, next_discovery):
    database.connect(reuse_if_open=True)
    try:
        log.info("sweep: %d reconciles enqueued", sweep(settings))
        if time.monotonic() >= next_discovery:
            discover_assets.send()
            next_discovery = time.monotonic() + settings["discovery_interval"]
    except Exception:  # noqa: BLE001 - a failed sweep is retried at the next tick
        log.exception("sweep failed")
    finally:
        database.close()
    return next_discovery


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s")
    from app import create_app

    create_app({"EXTENSIONS": ("orchestrator",)})
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
