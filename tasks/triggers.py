"""What a committed change sets in motion: the orchestrator's side of app.signals.

Loaded into every process that writes (the web app through the
`vmclarity.extensions` entry point, workers through `tasks`), so a state change
enqueues the next step at once, after the commit.
"""

import logging

from dramatiq.errors import BrokerConnectionError
from redis.exceptions import RedisError

from app.models import AssetScan
from app.signals import document_changed
from tasks.asset_scans import reconcile_asset_scan
from tasks.estimations import reconcile_asset_scan_estimation, reconcile_scan_estimation
from tasks.findings import process_findings
from tasks.scan_configs import reconcile_scan_config
from tasks.scans import reconcile_scan

log = logging.getLogger(__name__)


def init_app(app):
    document_changed.connect(on_change, weak=False)


def disconnect():
    """Stop reacting to changes (tests that share a process with other apps)."""
    document_changed.disconnect(on_change)


def on_change(schema_name, object_id, document, previous):
    handler = HANDLERS.get(schema_name)
    if document is None or handler is None:
        return
    try:
        handler(object_id, document, previous or {})
    except (BrokerConnectionError, RedisError) as error:
        # The change is committed; the scheduler's sweep sends what could not be sent now.
        log.warning("could not enqueue the next step for %s %s: %s", schema_name, object_id, error)


def _scan_config(object_id, document, previous):
    if previous.get("scheduled") != document.get("scheduled") or previous.get("disabled") != document.get(
            "disabled"):
        reconcile_scan_config.send(object_id)


def _scan(object_id, document, previous):
    if _state(previous) != _state(document):
        reconcile_scan.send(object_id)


def _asset_scan(object_id, document, previous):
    cleanup = (previous.get("resourceCleanupStatus") or {}).get("state"), (
        document.get("resourceCleanupStatus") or {}).get("state")
    # Nothing is owed to a new (Pending) asset scan (its scan schedules it), to a scanner reporting
    # itself InProgress (its exit is told, or swept), nor to a cleanup that has ended.
    moved = _state(previous) != _state(document) and _state(document) not in ("Pending", "InProgress")
    if moved or (cleanup[0] != cleanup[1] and cleanup[1] == "Pending"):
        reconcile_asset_scan.send(object_id)
    # Its findings, and the scan (a free slot, a roll-up, its end), move when it finishes.
    finished = (_state(document) in AssetScan.FINISHED_STATES
                and _state(previous) not in AssetScan.FINISHED_STATES)
    if finished and not document.get("findingsProcessed"):
        process_findings.send(object_id)
    if finished and document.get("scan"):
        reconcile_scan.send(document["scan"]["id"])


def _scan_estimation(object_id, document, previous):
    if _state(previous) != _state(document):
        reconcile_scan_estimation.send(object_id)


def _asset_scan_estimation(object_id, document, previous):
    if _state(previous) != _state(document):
        reconcile_asset_scan_estimation.send(object_id)
        if document.get("scanEstimation"):
            reconcile_scan_estimation.send(document["scanEstimation"]["id"])


def _state(document):
    return (document.get("status") or {}).get("state")


HANDLERS = {
    "ScanConfig": _scan_config,
    "Scan": _scan,
    "AssetScan": _asset_scan,
    "ScanEstimation": _scan_estimation,
    "AssetScanEstimation": _asset_scan_estimation,
}
