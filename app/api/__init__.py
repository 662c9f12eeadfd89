"""The JSON API at /api, speaking the original VMClarity wire contract."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from app.api import routes  # noqa: E402,F401  (registers the views on bp)
