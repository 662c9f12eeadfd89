"""What the Scans section reads and writes: scans, their progress, scan configurations.

Every write goes through app.store, so the API's validation, uniqueness,
revision checks and orchestrator triggers apply to the UI exactly as to /api.
"""

import re
from dataclasses import dataclass

from flask import abort

from app import odata, store
from app.errors import ApiError, Conflict, PreconditionFailed
from app.models import Asset, AssetScan, Scan, ScanConfig
from app.resources import RESOURCES_BY_MODEL
from app.ui.listing import count, quote
from app.ui.scan_config_form import FAMILY_CHOICES, parse_time, rfc3339, utc_now
from app.ui.scope_builder import ScopeError

RUNNING_STATES = ("Pending", "Discovered", "InProgress", "Aborted")
STOPPABLE_STATES = ("Pending", "Discovered", "InProgress")  # those with an edge to Aborted
#: The orchestrator's closing message (tasks/scans.py): "X succeeded, Y failed out of Z total asset scans".
OUTCOME = re.compile(r"^(\d+) succeeded, (\d+) failed out of (\d+)")
ASSET_SCANS_SHOWN = 100


class Refused(Exception):
    """A scan or config action that does not apply in its current state; the message says why."""


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None   # None until the scan knows its assets
    running: bool
    succeeded: int | None = None
    failed: int | None = None


def get_scan(scan_id):
    scan = odata.get_document(Scan, scan_id, {"$expand": "scanConfig($select=id,name)"})
    if scan is None:
        abort(404, "no scan has that id")
    return scan


def is_running(scan):
    return not scan.get("endTime") and (scan.get("status") or {}).get("state") in RUNNING_STATES


def progress(scan):
    """How many of the scan's asset scans have finished, from the summary the orchestrator keeps."""
    summary = scan.get("summary") or {}
    done, left = summary.get("jobsCompleted") or 0, summary.get("jobsLeftToRun") or 0
    state = (scan.get("status") or {}).get("state")
    total = None if state in ("Pending", "Discovered") and not done + left else done + left
    outcome = OUTCOME.match((scan.get("status") or {}).get("message") or "")
    if outcome:
        succeeded, failed, total = (int(number) for number in outcome.groups())
        return Progress(succeeded + failed, total, is_running(scan), succeeded, failed)
    return Progress(done, total, is_running(scan))


def stop_scan(scan_id, who):
    """Ask the orchestrator to abort a running scan (it then aborts the scan's asset scans)."""
    scan = get_scan(scan_id)
    state = (scan.get("status") or {}).get("state")
    if state not in STOPPABLE_STATES:
        raise Refused(f"this scan cannot be stopped: it is {state}")
    status = {"state": "Aborted", "reason": "Cancellation", "message": f"stopped by {who}",
              "lastTransitionTime": rfc3339(utc_now())}
    return store.patch(RESOURCES_BY_MODEL[Scan], scan_id, {"status": status}, None)


def may_add_asset_scans(scan_id):
    """Whether the scan may still make asset scans: it runs (it makes them once it found its assets)."""
    scan = odata.get_document(Scan, scan_id, {})
    return scan is not None and is_running(scan)


def asset_scans_of(scan_id):
    """The scan's asset scans (the first ASSET_SCANS_SHOWN) with their assets, and how many there are."""
    result = odata.list_documents(AssetScan, {
        "$filter": f"scan/id eq {quote(scan_id)}", "$expand": "asset($select=id,assetInfo)",
        "$orderby": "status/lastTransitionTime desc", "$top": str(ASSET_SCANS_SHOWN), "$count": "true"})
    return result["items"], result["count"]


def get_config(config_id):
    config = odata.get_document(ScanConfig, config_id, {})
    if config is None:
        abort(404, "no scan configuration has that id")
    return config


def scope_matches(scope):
    """How many live assets the scope selects; raises ODataError when the compiler refuses it."""
    return count(Asset, "terminatedOn eq null", scope)


@dataclass(frozen=True)
class ScopePreview:
    odata: str | None
    error: str | None = None
    matches: int | None = None


def scope_preview(form):
    """The OData the form's scope makes, checked by the real compiler, and how many assets it selects."""
    try:
        scope = form.scope()
    except ScopeError as error:
        return ScopePreview(None, str(error))
    try:
        return ScopePreview(scope, None, scope_matches(scope))
    except odata.ODataError as error:
        return ScopePreview(scope, f"not a valid assets filter: {error}")


def save_config(document, config_id=None, revision=None):
    """Create or replace a config; returns (document, None) or (None, (status, {field: message}))."""
    resource = RESOURCES_BY_MODEL[ScanConfig]
    try:
        if config_id is None:
            return store.create(resource, document), None
        return store.replace(resource, config_id, document, revision), None
    except Conflict:
        return None, (409, {"name": f"a configuration named {document['name']} already exists"})
    except PreconditionFailed:
        return None, (409, {"form": "someone else changed this configuration while you were editing it. "
                                    "Your changes are still below: reload the page in another tab to see "
                                    "theirs, then save again."})
    except ApiError as error:
        return None, (422, {"form": error.message})


def start_config(config_id):
    """Start a scan now, as the original's Start did: operationTime now, enabled."""
    config = get_config(config_id)
    if not can_start(config):
        raise Refused("this configuration is scheduled for a later time; edit it to run it now")
    if Scan.running_for(config_id).exists():
        # The orchestrator would skip this start (one scan per config at a time): say so instead.
        raise Refused("a scan of this configuration is still running; stop it or wait for it to end")
    body = {"scheduled": {"operationTime": rfc3339(utc_now())}, "disabled": False}
    return store.patch(RESOURCES_BY_MODEL[ScanConfig], config_id, body, None)


def can_start(config):
    """False for a one-off config still waiting for its time (the original disabled Start for those)."""
    scheduled = config.get("scheduled") or {}
    at = parse_time(scheduled.get("operationTime"))
    return bool(scheduled.get("cronLine")) or at is None or at <= utc_now() or bool(config.get("disabled"))


def delete_config(config_id):
    get_config(config_id)
    store.delete(RESOURCES_BY_MODEL[ScanConfig], config_id)


def scans_of_config(config_id):
    return Scan.select().where(Scan.scan_config == config_id).count()


def scan_time(config):
    """(kind, text) of when a config scans: ("cron", line), ("at", time) or ("now", time)."""
    scheduled = config.get("scheduled") or {}
    if scheduled.get("cronLine"):
        return "cron", scheduled["cronLine"]
    at = parse_time(scheduled.get("operationTime"))
    if at is not None and at > utc_now():
        return "at", scheduled["operationTime"]
    return "now", scheduled.get("operationTime")


def enabled_families(template):
    """Labels of the scan types a scan template turns on."""
    families = ((template or {}).get("assetScanTemplate") or {}).get("scanFamiliesConfig") or {}
    return [label for key, label in FAMILY_CHOICES if (families.get(key) or {}).get("enabled")]
