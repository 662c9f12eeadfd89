"""Asset scans: the table of every asset scan, and one asset scan's families, stats, errors and findings."""

from flask import abort, request

from app.models import AssetScan
from app.ui import asset_scans_queries as queries
from app.ui import bp, live, scans_queries
from app.ui.htmx import render
from app.ui.listing import Column, TableState, page_of

NAME_SORT = ", ".join(f"asset/assetInfo/{field}" for field in queries.NAME_FIELDS)
COLUMNS = (
    Column("asset", "Asset name", NAME_SORT),
    Column("type", "Asset type", "asset/assetInfo/objectType"),
    Column("location", "Asset location", "asset/assetInfo/location"),
    Column("scan", "Scan name", "scan/name"),
    Column("scanStart", "Scan start", "scan/startTime"),
    Column("status", "Status", "status/state"),
    Column("changed", "Last change", "status/lastTransitionTime"),
)
EXPAND = "scan($select=id,name,startTime),asset($select=id,assetInfo)"


@bp.get("/asset-scans")
def asset_scans():
    state = TableState.from_request(COLUMNS, "changed", default_descending=True)
    args = {name: request.args.get(name, "").strip() for name in ("q", "status", "asset", "scan")}
    filters = queries.table_filters(args["q"], args["status"], args["asset"], args["scan"])
    page = page_of(AssetScan, COLUMNS, state, filters, expand=EXPAND)
    # One scan's asset scans, before it made them (e.g. just after "Scan this asset now"): the table waits.
    waiting = not page.items and bool(args["scan"]) and scans_queries.may_add_asset_scans(args["scan"])
    return render("ui/asset_scans.html", "ui/_asset_scans_table.html", page=page, state=state, columns=COLUMNS,
                  states=queries.STATES, waiting=waiting, **args)


@bp.get("/asset-scans/<asset_scan_id>/row")
def asset_scan_live(asset_scan_id):
    """One asset scan's table row, polled until it finished; the answer that shows it finished stops the polling."""
    asset_scan = _asset_scan_or_404(asset_scan_id)
    return live.component("ui/_asset_scan_row.html", not queries.is_finished(asset_scan), asset_scan=asset_scan)


@bp.app_template_global()
def asset_scan_finished(asset_scan):
    return queries.is_finished(asset_scan)


@bp.get("/asset-scans/<asset_scan_id>")
def asset_scan_detail(asset_scan_id):
    asset_scan = _asset_scan_or_404(asset_scan_id)
    families = queries.families(asset_scan)
    finished = queries.is_finished(asset_scan)
    findings, findings_count = queries.last_seen_findings(asset_scan_id) if finished else ([], 0)
    return render("ui/asset_scan.html", "ui/asset_scan.html", asset_scan=asset_scan, families=families,
                  errors=queries.errors(asset_scan, families), finished=finished, findings=findings,
                  findings_count=findings_count, shown_limit=queries.FINDINGS_SHOWN,
                  general_time=((asset_scan.get("stats") or {}).get("general") or {}).get("scanTime") or {},
                  duration=queries.duration)



def _asset_scan_or_404(asset_scan_id):
    asset_scan = queries.get(asset_scan_id)
    if asset_scan is None:
        abort(404, "no asset scan has that id")
    return asset_scan
