"""The web UI: server-rendered pages and htmx partials, every one behind a login.

Each `views_<section>.py` module registers its views on `bp` when imported; all
of them are imported here, so adding a section is adding its module.
"""

import importlib
import pkgutil

from flask import Blueprint

bp = Blueprint("ui", __name__)

from app.ui import errors, listing, navigation, presenters, security  # noqa: E402

for _module in pkgutil.iter_modules(__path__):
    if _module.name.startswith("views_"):
        importlib.import_module(f"{__name__}.{_module.name}")


def init_app(app):
    security.init_app(app)
    presenters.init_app(app)
    app.jinja_env.globals.update(nav_links=navigation.nav_links, url_with=listing.url_with)
    app.register_blueprint(bp)
