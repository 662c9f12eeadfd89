"""Asset scans as the UI shows them: the table's filters, and one asset scan's families, stats and findings."""

from dataclasses import dataclass

from app import odata
from app.models import AssetScan, Finding
from app.odata.compiler import datetime_millis
from app.ui.listing import quote
from app.ui.presenters import ASSET_KINDS
from scanner.vocabulary import FAMILIES

#: AssetScanStatus states, in the order an asset scan goes through them.
STATES = ("Pending", "Scheduled", "ReadyToScan", "InProgress", "Aborted", "Failed", "Done")
FINISHED_STATES = ("Done", "Failed")
#: Every assetInfo field that names an asset, whatever its kind.
NAME_FIELDS = tuple(field for field, _ in ASSET_KINDS.values())
#: The most findings one asset scan's page lists.
FINDINGS_SHOWN = 50
#: Families of the original UI, in its order; plugins run no scanner of ours.
SHOWN_FAMILIES = tuple(family for family in FAMILIES if family.api_key != "plugins")
FAMILY_LABELS = {"sbom": "SBOM", "vulnerabilities": "Vulnerabilities", "exploits": "Exploits",
                 "secrets": "Secrets", "malware": "Malware", "rootkits": "Rootkits",
                 "misconfigurations": "Misconfigurations", "infoFinder": "Info finder"}


def table_filters(search, state, asset_id, scan_id):
    """OData filters for the asset scans table from its query string values (blank ones ignored)."""
    return [
        " or ".join(f"contains(asset/assetInfo/{field}, {quote(search)})" for field in NAME_FIELDS)
        if search else None,
        f"status/state eq {quote(state)}" if state in STATES else None,
        f"asset/id eq {quote(asset_id)}" if asset_id else None,
        f"scan/id eq {quote(scan_id)}" if scan_id else None,
    ]


def get(asset_scan_id):
    """The asset scan with its asset and scan expanded, or None."""
    return odata.get_document(AssetScan, asset_scan_id, {"$expand": "asset,scan($select=id,name,startTime)"})


def is_finished(asset_scan):
    """Done or Failed: nothing about the asset scan changes any more but its findings processing."""
    return (asset_scan.get("status") or {}).get("state") in FINISHED_STATES


@dataclass
class FamilyRow:
    key: str
    label: str
    enabled: bool
    status: dict
    results: int | None   # how many results the scanner reported; None before it reported
    inputs: list          # AssetScanInputScanStats of this family


def families(asset_scan):
    """One row per scan family: whether it was asked for, its scanner status, results and per-input stats."""
    config = asset_scan.get("scanFamiliesConfig") or {}
    stats = asset_scan.get("stats") or {}
    rows = []
    for family in SHOWN_FAMILIES:
        block = asset_scan.get(family.api_key) or {}
        results = block.get(family.results_key)
        rows.append(FamilyRow(family.api_key, FAMILY_LABELS[family.api_key],
                              bool((config.get(family.api_key) or {}).get("enabled")), block.get("status") or {},
                              len(results) if isinstance(results, list) else None,
                              [_input(entry) for entry in stats.get(family.api_key) or []]))
    return rows


def _input(entry):
    return {**entry, "duration": duration(entry.get("scanTime"))}


def duration(scan_time):
    """How long a `{startTime, endTime}` span took, as `1h 2m 3s`; empty while it runs."""
    scan_time = scan_time or {}
    start, end = (datetime_millis(scan_time.get(key) or "") for key in ("startTime", "endTime"))
    if start is None or end is None or end < start:
        return ""
    seconds = round((end - start) / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(hours or minutes) + [f"{seconds}s"]
    return " ".join(parts)


def errors(asset_scan, rows):
    """[(where, message)] of everything that failed: the asset scan, its cleanup, and each failed family."""
    found = []
    for where, status in (("Asset scan", asset_scan.get("status")),
                          ("Resource cleanup", asset_scan.get("resourceCleanupStatus"))):
        if (status or {}).get("state") == "Failed":
            found.append((where, status.get("message") or status.get("reason")))
    found += [(row.label, row.status.get("message") or row.status.get("reason"))
              for row in rows if row.status.get("state") == "Failed"]
    return found


def last_seen_findings(asset_scan_id):
    """(the first FINDINGS_SHOWN findings this asset scan saw last, how many there are in all)."""
    result = odata.list_documents(Finding, {
        "$filter": f"lastSeenBy/id eq {quote(asset_scan_id)}", "$orderby": "findingInfo/objectType",
        "$top": str(FINDINGS_SHOWN), "$count": "true"})
    return result["items"], result["count"]

