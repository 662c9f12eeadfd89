"""VMClarity control plane: the Flask application factory."""

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

    app.register_blueprint(api_bp)
    return app
