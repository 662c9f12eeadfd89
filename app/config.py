"""Settings of the control plane, read from VMCLARITY_* environment variables."""

import os
from pathlib import Path

#: Every setting with its default; README's configuration table mirrors this.
DEFAULTS = {
    "VMCLARITY_DATA_DIR": str(Path.home() / ".local/share/vmclarity"),
    "VMCLARITY_DATABASE_URL": "",
    "VMCLARITY_REDIS_URL": "",
    "VMCLARITY_ADMIN_TOKEN": "",
    "VMCLARITY_HOST": "127.0.0.1",
    "VMCLARITY_PORT": "8080",
    "VMCLARITY_WEB_WORKERS": "2",
    "VMCLARITY_API_MAX_PAGE": "1000",
    "VMCLARITY_SECRET_KEY": "",
    "VMCLARITY_ADMIN_PASSWORD": "",
}


def from_environment(environ=None):
    """Return the Flask config mapping built from the environment."""
    environ = os.environ if environ is None else environ
    settings = {name: environ.get(name, default) for name, default in DEFAULTS.items()}
    data_dir = Path(settings["VMCLARITY_DATA_DIR"])
    return {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": settings["VMCLARITY_DATABASE_URL"] or f"sqlite:///{data_dir / 'vmclarity.db'}",
        "REDIS_URL": settings["VMCLARITY_REDIS_URL"],
        "ADMIN_TOKEN": settings["VMCLARITY_ADMIN_TOKEN"],
        "HOST": settings["VMCLARITY_HOST"],
        "PORT": int(settings["VMCLARITY_PORT"]),
        "WEB_WORKERS": int(settings["VMCLARITY_WEB_WORKERS"]),
        "API_MAX_PAGE": int(settings["VMCLARITY_API_MAX_PAGE"]),
        "SECRET_KEY": settings["VMCLARITY_SECRET_KEY"],
        "ADMIN_PASSWORD": settings["VMCLARITY_ADMIN_PASSWORD"],
    }
