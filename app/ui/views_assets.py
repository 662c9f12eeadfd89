"""Assets: the table of every asset, and one asset with its asset scans and findings; scanning one now."""

from flask import abort, redirect, request, url_for

from app import odata
from app.models import Asset, AssetScan
from app.ui import bp, scan_now
from app.ui.asset_scans_queries import FAMILY_LABELS
from app.ui.htmx import render
from app.ui.listing import Column, TableState, page_of, quote
from app.ui.security import writer_required

COLUMNS = (
    Column("name", "Name", "assetInfo/instanceID, assetInfo/dirName, assetInfo/containerName, assetInfo/imageID"),
    Column("labels", "Labels"),
    Column("type", "Type", "assetInfo/objectType"),
    Column("location", "Location", "assetInfo/location"),
    Column("lastSeen", "Last seen", "lastSeen"),
    Column("terminatedOn", "Terminated on", "terminatedOn"),
)
NAME_FIELDS = ("instanceID", "dirName", "containerName", "imageID", "podName")


@bp.get("/assets")
def assets():
    state = TableState.from_request(COLUMNS, "lastSeen", default_descending=True)
    show_terminated = request.args.get("terminated") == "show"
    filters = [None if show_terminated else "terminatedOn eq null", _search(request.args.get("q", "").strip())]
    page = page_of(Asset, COLUMNS, state, filters)
    return render("ui/assets.html", "ui/_assets_table.html", page=page, state=state, columns=COLUMNS,
                  show_terminated=show_terminated, q=request.args.get("q", ""))


@bp.get("/assets/<asset_id>")
def asset_detail(asset_id):
    return _asset_page(_asset_or_404(asset_id), scan_now.DEFAULT_FAMILIES)


@bp.post("/assets/<asset_id>/scan")
@writer_required
def scan_asset_now(asset_id):
    asset = _asset_or_404(asset_id)
    families = request.form.getlist("family")
    try:
        scan = scan_now.start(asset, families)
    except ValueError as error:
        return _asset_page(asset, families, str(error)), 422
    # Its asset scans, which keep themselves up to date (the table waits until the scan made them).
    return redirect(url_for("ui.asset_scans", scan=scan["id"]), 303)


def _asset_or_404(asset_id):
    asset = odata.get_document(Asset, asset_id, {})
    if asset is None:
        abort(404, "no asset has that id")
    return asset


def _asset_page(asset, chosen_families, scan_error=None):
    asset_scans = odata.list_documents(AssetScan, {
        "$filter": f"asset/id eq {quote(asset['id'])}", "$orderby": "status/lastTransitionTime desc",
        "$expand": "scan($select=id,name,startTime)", "$top": "50"})["items"]
    families = [(key, FAMILY_LABELS[key], key in chosen_families) for key in scan_now.FAMILY_KEYS]
    return render("ui/asset.html", "ui/asset.html", asset=asset, asset_scans=asset_scans, families=families,
                  scan_error=scan_error)


def _search(text):
    if not text:
        return None
    return " or ".join(f"contains(assetInfo/{field}, {quote(text)})" for field in NAME_FIELDS + ("location",))
