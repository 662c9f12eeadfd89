"""Scans: the scans table with live progress, one scan, and the scan configurations with their form."""

from flask import abort, current_app, g, redirect, render_template, request, url_for

from app.models import Scan, ScanConfig
from app.ui import bp
from app.ui import findings_queries, live
from app.ui import scans_queries as queries
from app.ui.htmx import is_htmx, render
from app.ui.listing import Column, TableState, page_of
from app.ui.scan_config_form import CRON_PRESETS, FAMILY_CHOICES, ScanConfigForm
from app.ui.scope_builder import FIELDS, operators_for, rows_from_form
from app.ui.security import writer_required

SCAN_COLUMNS = (
    Column("name", "Name", "name"),
    Column("started", "Started", "startTime"),
    Column("ended", "Ended", "endTime"),
    Column("scope", "Scope"),
    Column("status", "Status", "status/state"),
    Column("progress", "Scanned assets"),
)
CONFIG_COLUMNS = (
    Column("name", "Name", "name"),
    Column("scope", "Scope"),
    Column("time", "Scan time", "scheduled/operationTime"),
    Column("types", "Scan types"),
)
#: Components of one scan that keep themselves up to date: template for ?view=.
LIVE_VIEWS = {"row": "ui/_scan_row.html", "facts": "ui/_scan_facts.html"}


@bp.app_template_global()
def scan_progress(scan):
    return queries.progress(scan)


@bp.app_template_global()
def scan_is_running(scan):
    return queries.is_running(scan)


@bp.get("/scans")
def scans():
    state = TableState.from_request(SCAN_COLUMNS, "started", default_descending=True)
    page = page_of(Scan, SCAN_COLUMNS, state)
    return render("ui/scans.html", "ui/_scans_table.html", page=page, state=state, columns=SCAN_COLUMNS)


@bp.get("/scans/<scan_id>")
def scan_detail(scan_id):
    """The "Scan details" tab: facts, configuration and asset scans."""
    scan = queries.get_scan(scan_id)
    asset_scans, asset_scan_count = queries.asset_scans_of(scan_id)
    return render("ui/scan.html", "ui/_scan_tab.html", tab="details", scan=scan, asset_scans=asset_scans,
                  asset_scan_count=asset_scan_count, families=queries.enabled_families(scan))


@bp.get("/scans/<scan_id>/findings")
def scan_findings(scan_id):
    """The "Findings" tab: per finding type, what the scan found, linking to those findings."""
    scan = queries.get_scan(scan_id)
    return render("ui/scan.html", "ui/_scan_tab.html", tab="findings", scan=scan,
                  counts=findings_queries.scan_findings(scan))


@bp.get("/scans/<scan_id>/progress")
def scan_live(scan_id):
    """One scan's row or facts, polled while it runs; the answer that shows it ended stops the polling."""
    scan = queries.get_scan(scan_id)
    return live.component(LIVE_VIEWS.get(request.args.get("view"), LIVE_VIEWS["row"]), queries.is_running(scan),
                          scan=scan)


@bp.post("/scans/<scan_id>/stop")
@writer_required
def stop_scan(scan_id):
    view = request.form.get("view")
    try:
        scan = queries.stop_scan(scan_id, g.user.username)
    except queries.Refused as refused:
        return _refused(refused, LIVE_VIEWS.get(view, LIVE_VIEWS["row"]), scan=queries.get_scan(scan_id))
    if not is_htmx():
        return redirect(url_for("ui.scan_detail", scan_id=scan_id) if view == "facts" else url_for("ui.scans"), 303)
    return render_template(LIVE_VIEWS.get(view, LIVE_VIEWS["row"]), scan=scan)


@bp.get("/scans/configs")
def scan_configs():
    state = TableState.from_request(CONFIG_COLUMNS, "name")
    page = page_of(ScanConfig, CONFIG_COLUMNS, state)
    return render("ui/scan_configs.html", "ui/_scan_configs_table.html", page=page, state=state,
                  columns=CONFIG_COLUMNS)


@bp.route("/scans/configs/new", methods=("GET", "POST"))
@writer_required
def new_scan_config():
    if request.method == "GET":
        source = request.args.get("from")
        form = (ScanConfigForm.from_document(queries.get_config(source), duplicate=True) if source
                else ScanConfigForm())
        return _form_page(form, title="New scan configuration")
    return _save(ScanConfigForm.from_form(request.form), None, "New scan configuration")


@bp.route("/scans/configs/<config_id>/edit", methods=("GET", "POST"))
@writer_required
def edit_scan_config(config_id):
    stored = queries.get_config(config_id)
    title = f"Edit {stored['name']}"
    if request.method == "GET":
        return _form_page(ScanConfigForm.from_document(stored), title=title, stored_config=stored)
    form = ScanConfigForm.from_form(request.form, kept_schedule=stored.get("scheduled"))
    return _save(form, stored, title)


@bp.post("/scans/configs/<config_id>/start")
@writer_required
def start_scan_config(config_id):
    try:
        config = queries.start_config(config_id)
    except queries.Refused as refused:
        return _refused(refused, "ui/_scan_config_row.html", config=queries.get_config(config_id))
    if not is_htmx():
        return redirect(url_for("ui.scans"), 303)
    return render_template("ui/_scan_config_row.html", config=config, started=True)


@bp.post("/scans/configs/<config_id>/delete")
@writer_required
def delete_scan_config(config_id):
    queries.delete_config(config_id)
    if not is_htmx():
        return redirect(url_for("ui.scan_configs"), 303)
    return ""  # the row is swapped for nothing


@bp.get("/scans/configs/scope")
@writer_required
def scope_builder():
    """The scope builder re-rendered: after a field changed, or changed by ?action= (add, remove:<n>, or:<n>...)."""
    form = ScanConfigForm(rows=rows_from_form(request.args))
    form.apply_scope_action(request.args.get("action"))
    return render_template("ui/_scope_builder.html", form=form, preview=queries.scope_preview(form), errors={})


@bp.get("/scans/configs/scope/preview")
@writer_required
def scope_preview():
    form = ScanConfigForm.from_form(request.args)
    return render_template("ui/_scope_preview.html", preview=queries.scope_preview(form))


@bp.app_context_processor
def _form_vocabulary():
    return {"SCOPE_FIELDS": FIELDS, "scope_operators": operators_for, "FAMILY_CHOICES": FAMILY_CHOICES,
            "CRON_PRESETS": CRON_PRESETS, "scan_time": queries.scan_time,
            "enabled_families": queries.enabled_families, "config_can_start": queries.can_start}


def _refused(refused, template, **context):
    """409 with the component shown again, the reason inside it (a table row cannot hold a bare alert)."""
    if not is_htmx():
        abort(409, str(refused))
    return render_template(template, error=str(refused), **context), 409


def _save(form, stored, title):
    config_id = stored["id"] if stored else None
    if form.apply_scope_action(request.form.get("scope_action")):
        return _form_page(form, title=title, stored_config=stored)
    changes, errors = form.checked()
    preview = queries.scope_preview(form)
    if preview.error and "scope" not in errors:
        errors["scope"] = preview.error
    if errors:
        return _form_page(form, errors, 422, title=title, stored_config=stored, preview=preview)
    revision = int(form.revision) if form.revision.isdigit() else 0
    saved, failure = queries.save_config(form.document(changes, stored), config_id,
                                         revision if stored else None)
    if failure:
        status, errors = failure
        return _form_page(form, errors, status, title=title, stored_config=stored, preview=preview)
    return _to_configs()


def _form_page(form, errors=None, status=200, preview=None, **context):
    response = render("ui/scan_config_form.html", "ui/_scan_config_form.html", form=form, errors=errors or {},
                      preview=preview or queries.scope_preview(form), **context)
    response.status_code = status
    return response


def _to_configs():
    target = url_for("ui.scan_configs")
    if is_htmx():
        response = current_app.response_class(status=200)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)
