"""Errors of the JSON APIs (/api and /ui/api) answered as `{message}`, never as HTML pages."""

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from app.errors import ApiError
from app.odata import ODataError

#: Path prefixes whose errors are JSON.
JSON_PREFIXES = ("/api/", "/ui/api/")


def init_app(app):
    app.register_error_handler(ApiError, api_error)
    app.register_error_handler(ODataError, odata_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, internal_error)


def api_error(error):
    return jsonify(error.body), error.status


def odata_error(error):
    return jsonify({"message": str(error)}), 400


def http_error(error):
    """Unmatched routes and methods under the JSON prefixes; pages keep Flask's own answer."""
    if not request.path.startswith(JSON_PREFIXES):
        return error
    return jsonify({"message": error.description}), error.code


def internal_error(error):
    if not request.path.startswith(JSON_PREFIXES):
        raise error
    current_app.logger.exception("unhandled error in %s %s", request.method, request.path)
    return jsonify({"message": "internal server error"}), 500
