"""The nine API resources: their paths, models and the rules the API enforces on them.

Each rule function takes the document about to be stored (and the stored one on
update) and either returns the column values the store keeps beside the
document, or raises BadRequest with a message naming the field at fault.
"""

import datetime
from dataclasses import dataclass, field

from croniter import croniter, CroniterBadCronError

from app import identity, models, transitions
from app.errors import BadRequest


@dataclass(frozen=True)
class Resource:
    model: type
    plural: str          # path segment: /assets
    param: str           # item path parameter: assetID
    exists_key: str      # property of <Type>Exists carrying the object
    columns: callable    # (document, stored or None) -> {column: value}
    deletable: bool = True
    children: tuple = field(default_factory=tuple)  # (model, fk) deleted with it

    @property
    def schema_name(self):
        return self.model.schema_name


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _related_id(document, name, required):
    """Return the id of relationship `name`, enforcing presence when `required`."""
    value = document.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name}: is required")
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise BadRequest(f"{name}: must be an object with a string id")
    return value["id"]


def _check_status(machine, document, stored, initial, default, key="status"):
    """Validate `document[key]`: a start state on create, an allowed transition on update."""
    status = document.get(key)
    if stored is None:
        if status is None:
            document[key] = status = {**default, "lastTransitionTime": _now()}
        error = machine.check_initial(status, initial)
    elif status is None:
        error = f"{key}: cannot be removed" if stored.get(key) is not None else None
    else:
        error = machine.check(stored.get(key), status)
    if error:
        raise BadRequest(error)


def asset_columns(document, stored):
    return {"identity": identity.asset_key(document.get("assetInfo"))}


def scan_config_columns(document, stored):
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name: must be a non-empty string")
    scheduled = document.get("scheduled")
    if not isinstance(scheduled, dict) or not (scheduled.get("cronLine") or scheduled.get("operationTime")):
        raise BadRequest("scheduled: needs cronLine or operationTime")
    cron_line = scheduled.get("cronLine")
    if cron_line:
        try:
            next_tick = croniter(cron_line, datetime.datetime.now(datetime.timezone.utc)).get_next(datetime.datetime)
        except (CroniterBadCronError, ValueError, KeyError) as error:
            raise BadRequest(f"scheduled/cronLine: invalid cron expression {cron_line!r}: {error}") from None
        if not scheduled.get("operationTime"):
            scheduled["operationTime"] = next_tick.isoformat().replace("+00:00", "Z")
    return {"name": name}


def scan_columns(document, stored):
    _check_status(transitions.SCAN, document, stored, initial=("Pending",),
                  default={"state": "Pending", "reason": "Created"})
    config_id = _related_id(document, "scanConfig", required=False)
    if stored is not None and config_id != (stored.get("scanConfig") or {}).get("id"):
        raise BadRequest("scanConfig: cannot be changed")
    running = config_id if config_id and document.get("endTime") is None else None
    return {"scan_config": config_id, "running_config": running}


def asset_scan_columns(document, stored):
    _check_status(transitions.ASSET_SCAN, document, stored, initial=("Pending",),
                  default={"state": "Pending", "reason": "Created"})
    _check_status(transitions.RESOURCE_CLEANUP, document, stored, initial=("Pending", "Skipped"),
                  default={"state": "Pending", "reason": "AssetScanCreated"}, key="resourceCleanupStatus")
    return {
        "asset": _related_id(document, "asset", required=True),
        "scan": _related_id(document, "scan", required=False),
        "state": document["status"]["state"],
        "findings_processed": bool(document.get("findingsProcessed")),
    }


def finding_columns(document, stored):
    key = identity.finding_key(document.get("findingInfo"))
    if key is None:
        raise BadRequest("findingInfo/objectType: is required")
    return {
        "key": key,
        "object_type": document["findingInfo"]["objectType"],
        "last_seen_by": _related_id(document, "lastSeenBy", required=False),
    }


def asset_finding_columns(document, stored):
    return {
        "asset": _related_id(document, "asset", required=True),
        "finding": _related_id(document, "finding", required=True),
    }


def scan_estimation_columns(document, stored):
    _check_status(transitions.SCAN_ESTIMATION, document, stored, initial=("Pending",),
                  default={"state": "Pending", "reason": "Created"})
    return {}


def asset_scan_estimation_columns(document, stored):
    _check_status(transitions.ASSET_SCAN_ESTIMATION, document, stored, initial=("Pending",),
                  default={"state": "Pending", "reason": "Created"})
    return {
        "asset": _related_id(document, "asset", required=True),
        "scan_estimation": _related_id(document, "scanEstimation", required=True),
    }


def provider_columns(document, stored):
    if not isinstance(document.get("status"), dict):
        raise BadRequest("status: is required")
    return {}


RESOURCES = (
    Resource(models.Asset, "assets", "assetID", "asset", asset_columns,
             children=((models.AssetScan, "asset"), (models.AssetFinding, "asset"),
                       (models.AssetScanEstimation, "asset"))),
    Resource(models.AssetScan, "assetScans", "assetScanID", "assetScan", asset_scan_columns,
             deletable=False),
    Resource(models.Scan, "scans", "scanID", "scan", scan_columns,
             children=((models.AssetScan, "scan"),)),
    Resource(models.ScanConfig, "scanConfigs", "scanConfigID", "scanConfig", scan_config_columns,
             children=((models.Scan, "scan_config"),)),
    Resource(models.Finding, "findings", "findingID", "finding", finding_columns,
             children=((models.AssetFinding, "finding"),)),
    Resource(models.AssetFinding, "assetFindings", "assetFindingID", "finding", asset_finding_columns),
    Resource(models.ScanEstimation, "scanEstimations", "scanEstimationID", "scanEstimation",
             scan_estimation_columns, children=((models.AssetScanEstimation, "scan_estimation"),)),
    Resource(models.AssetScanEstimation, "assetScanEstimations", "assetScanEstimationID",
             "assetScanEstimation", asset_scan_estimation_columns),
    Resource(models.Provider, "providers", "providerID", "provider", provider_columns),
)
RESOURCES_BY_MODEL = {resource.model: resource for resource in RESOURCES}
