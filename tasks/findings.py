"""The findings actor: turns one finished asset scan's results into findings (anatomy §2.4)."""

import tasks.broker  # noqa: F401  (sets the broker before any actor is declared)

import dramatiq

from app import findings


@dramatiq.actor(queue_name="orchestrator", max_retries=5, min_backoff=2000, time_limit=600_000)
def process_findings(asset_scan_id):
    """Process one asset scan; a no-op when it is unfinished or already processed.

    The work is one transaction that ends with `findingsProcessed`, so a crash or
    a lost message leaves the scan unprocessed and a retry (or the sweep over
    `AssetScan.awaiting_findings()` in tasks.scheduler) redoes it from the start.
    """
    counts = findings.process_asset_scan(asset_scan_id)
    process_findings.logger.info("asset scan %s: %s", asset_scan_id, counts)
