"""The web UI: server-rendered pages and htmx partials, every one behind a login."""

from flask import Blueprint

bp = Blueprint("ui", __name__)

from app.ui import views_assets, views_auth, views_dashboard  # noqa: E402,F401  (register the views on bp)
from app.ui import errors, listing, navigation, presenters, security  # noqa: E402,F401


def init_app(app):
    security.init_app(app)
    presenters.init_app(app)
    app.jinja_env.globals.update(nav_links=navigation.nav_links, url_with=listing.url_with)
    app.register_blueprint(bp)
