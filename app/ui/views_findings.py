"""Findings: a tab per finding type, one finding with the assets that have it, and exports."""

import datetime

from flask import Response, request, stream_with_context

from app.ui import bp, exports
from app.ui import findings_queries as queries
from app.ui.finding_types import PATH_KEYS, TYPES, cell, detail_fields, severity, title, type_of
from app.ui.htmx import render
from app.ui.listing import TableState

#: The query arguments that shape the findings table, apart from its page.
VIEW_ARGS = ("type", "q", "severity", "first_seen_from", "first_seen_to", "hide_history", "asset", "scan", "sort",
             "dir")
#: Those a tab keeps when it switches type: only the fixed ones, as htmx does not redraw the
#: tabs when the filter form changes.
TAB_ARGS = ("asset", "scan")


@bp.get("/findings")
def findings():
    filters, state = _table_request()
    return render("ui/findings.html", "ui/_findings_table.html", filters=filters, state=state,
                  page=queries.page(filters, state), types=TYPES, export_args=_export_args(filters),
                  tab_args=_known_args(TAB_ARGS))


@bp.get("/findings/<finding_id>")
def finding_detail(finding_id):
    finding = queries.get(finding_id)
    state = TableState.from_request(queries.ASSET_COLUMNS, "lastSeen", default_descending=True)
    return render("ui/finding.html", "ui/_finding_assets.html", finding=finding, finding_type=type_of(finding),
                  fields=detail_fields(finding.get("findingInfo") or {}), state=state,
                  columns=queries.ASSET_COLUMNS, assets=queries.affected_assets(finding_id, state))


@bp.get("/findings/export.csv")
def findings_export_csv():
    filters, state, total = _export_request()
    chunks = exports.csv_chunks(filters.finding_type, queries.every(filters, state))
    return _download(chunks, "text/csv; charset=utf-8", _filename(filters, "csv"), total)


@bp.get("/findings/export.sarif")
def findings_export_sarif():
    filters, state, total = _export_request()
    truncated_at = queries.EXPORT_CAP if total > queries.EXPORT_CAP else None
    chunks = exports.sarif_chunks(filters.finding_type, queries.every(filters, state), truncated_at)
    return _download(chunks, "application/sarif+json", _filename(filters, "sarif"), total)


@bp.app_template_global()
def finding_cell(finding, column):
    return cell(finding, column)


@bp.app_template_global()
def finding_severity(finding):
    return severity((finding.get("findingInfo") or {}))


@bp.app_template_global()
def finding_title(finding):
    return title(finding)


@bp.app_template_global()
def finding_is_path(column):
    return column.key in PATH_KEYS


@bp.app_template_global()
def finding_web_link(value):
    """Whether a finding's value may become a link: only http(s), never javascript: and friends."""
    return isinstance(value, str) and value.lower().startswith(("https://", "http://"))


def _table_request():
    filters = queries.FindingFilters.from_args(request.args)
    return filters, queries.table_state(filters)


def _export_request():
    # Counting first runs the query before the response starts: a bad filter is
    # still an error page, not a broken download.
    filters, state = _table_request()
    return filters, state, queries.count(filters)


def _export_args(filters):
    """The view's own query arguments for the export links; no page (an export has every page).

    Only known names: url_for reads some (_external, _scheme, _anchor) as orders, not arguments.
    """
    return {**_known_args(VIEW_ARGS), "type": filters.finding_type.slug}


def _known_args(names):
    return {name: request.args[name] for name in names if request.args.get(name)}


def _filename(filters, extension):
    return f"vmclarity-{filters.finding_type.slug}-{datetime.date.today():%Y%m%d}.{extension}"


def _download(chunks, mimetype, filename, total):
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Total-Count"] = str(total)
    return response
