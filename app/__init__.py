"""VMClarity control plane: the Flask application factory."""

from importlib.metadata import entry_points

from flask import Flask

from app import config as config_module


def create_app(test_config=None):
    """Create the app from the environment, overlaid with `test_config` when given."""
    app = Flask(__name__)
    app.config.from_mapping(config_module.from_environment())
    if test_config:
        app.config.from_mapping(test_config)

    from app import db

    db.init_app(app)

    from app.api import bp as api_bp
    from app.ui_api import bp as ui_api_bp

    from app import json_errors
    from app import ui

    app.register_blueprint(api_bp)
    app.register_blueprint(ui_api_bp)
    json_errors.init_app(app)
    ui.init_app(app)
    _load_extensions(app)
    return app


def _load_extensions(app):
    """Let installed packages (the orchestrator) hook in without app importing them.

    `EXTENSIONS` names the entry points to load; None loads every installed one.
    """
    wanted = app.config.get("EXTENSIONS")
    for entry_point in entry_points(group="vmclarity.extensions"):
        if wanted is None or entry_point.name in wanted:
            entry_point.load()(app)
