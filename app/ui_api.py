"""The UI backend at /ui/api: the original's dashboard contract (uibackend-openapi.yaml).

Same bearer tokens as /api: any user role may read, scanner tokens may not.
Errors answer `ApiResponse` {message}.
"""

from flask import Blueprint, current_app, jsonify, request

from app import auth, dashboard
from app.errors import BadRequest, Forbidden
from app.odata.compiler import datetime_millis

bp = Blueprint("ui_api", __name__, url_prefix="/ui/api")


@bp.before_request
def check_access():
    principal = auth.authenticate(request.headers.get("Authorization"), current_app.config["ADMIN_TOKEN"])
    if principal.role not in auth.ROLES:
        raise Forbidden("a scanner token may not read the dashboard")
    if request.method not in auth.READ_METHODS:
        raise Forbidden("the dashboard is read-only")


@bp.get("/dashboard/riskiestRegions")
def riskiest_regions():
    return jsonify(dashboard.riskiest_regions())


@bp.get("/dashboard/riskiestAssets")
def riskiest_assets():
    return jsonify(dashboard.riskiest_assets())


@bp.get("/dashboard/findingsImpact")
def findings_impact():
    return jsonify(dashboard.findings_impact())


@bp.get("/dashboard/findingsTrends")
def findings_trends():
    start, end = _instant("startTime"), _instant("endTime")
    if end <= start:
        raise BadRequest("endTime: must be after startTime")
    return jsonify(dashboard.findings_trends(start, end, _finding_types()))


def _instant(name):
    value = request.args.get(name)
    if value is None or value == "":
        raise BadRequest(f"{name}: required query parameter is missing")
    millis = datetime_millis(value)
    if millis is None:
        raise BadRequest(f"{name}: {value!r} is not an RFC 3339 date-time (e.g. 2024-01-02T03:04:05Z)")
    return millis


def _finding_types():
    """Optional `findingTypes` (comma-separated FindingType values; an extension): all by default."""
    raw = ",".join(request.args.getlist("findingTypes"))
    wanted = [part.strip() for part in raw.split(",") if part.strip()]
    if not wanted:
        return tuple(dashboard.FINDING_TYPES)
    unknown = [part for part in wanted if part not in dashboard.FINDING_TYPES]
    if unknown:
        raise BadRequest(f"findingTypes: unknown {', '.join(unknown)} "
                         f"(expected {', '.join(dashboard.FINDING_TYPES)})")
    return tuple(t for t in dashboard.FINDING_TYPES if t in wanted)
