"""Settings of the control plane, read from VMCLARITY_* environment variables."""

import os
import secrets
import tempfile
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


def secret_key(configured, data_dir):
    """The installation's secret: VMCLARITY_SECRET_KEY (`configured`), else the one kept in `data_dir`.

    Web servers sign sessions with it; the orchestrator derives other keys from it and
    never sends it anywhere.
    """
    return configured or stored_secret_key(Path(data_dir))


def stored_secret_key(data_dir):
    """The installation's secret key, made once and kept in `<data dir>/secret-key` (0600)."""
    path = data_dir / "secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written whole to a private name, then linked into place: web servers and workers
        # that start together all end up with the one key that won.
        fd, scratch = tempfile.mkstemp(dir=data_dir)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(scratch)
    return path.read_text().strip()
