"""Assets: the table of every asset, and one asset with its asset scans and findings."""

from flask import abort, request

from app import odata
from app.models import Asset, AssetScan
from app.ui import bp
from app.ui.htmx import render
from app.ui.listing import Column, TableState, page_of, quote

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
    asset = odata.get_document(Asset, asset_id, {})
    if asset is None:
        abort(404, "no asset has that id")
    asset_scans = odata.list_documents(AssetScan, {
        "$filter": f"asset/id eq {quote(asset_id)}", "$orderby": "status/lastTransitionTime desc",
        "$expand": "scan($select=id,name,startTime)", "$top": "50"})["items"]
    return render("ui/asset.html", "ui/asset.html", asset=asset, asset_scans=asset_scans)


def _search(text):
    if not text:
        return None
    return " or ".join(f"contains(assetInfo/{field}, {quote(text)})" for field in NAME_FIELDS + ("location",))
