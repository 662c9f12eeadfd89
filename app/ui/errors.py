"""Errors of UI views: an alert in place for htmx, an error page otherwise."""

from flask import render_template
from werkzeug.exceptions import HTTPException

from app.errors import ApiError
from app.odata import ODataError
from app.ui import bp
from app.ui.htmx import is_htmx


@bp.errorhandler(ApiError)
def api_error(error):
    return _answer(error.status, error.message)


@bp.errorhandler(ODataError)
def odata_error(error):
    return _answer(400, str(error))


@bp.errorhandler(HTTPException)
def http_error(error):
    return _answer(error.code, error.description)


def _answer(status, message):
    template = "ui/_alert.html" if is_htmx() else "ui/error.html"
    return render_template(template, status=status, message=message), status

