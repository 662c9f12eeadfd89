"""The database: one proxy that the factory binds to SQLite or PostgreSQL."""

import json
from pathlib import Path

import peewee
from playhouse.db_url import parse

database = peewee.DatabaseProxy()

#: SQLite waits this long (ms) for a competing writer instead of failing with
#: "database is locked"; WAL lets readers carry on meanwhile.
SQLITE_BUSY_TIMEOUT_MS = 30_000


class JSONField(peewee.Field):
    """A JSON document: TEXT on SQLite (queried with JSON1), JSONB on PostgreSQL."""

    field_type = "JSONDOC"

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value):
        return json.loads(value) if isinstance(value, (str, bytes)) else value


def open_database(url):
    """Return a database for a `sqlite:///path` or `postgresql://...` URL."""
    if url.startswith("sqlite"):
        path = parse(url)["database"]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(
            path,
            field_types={"JSONDOC": "TEXT"},
            pragmas={
                "journal_mode": "wal",
                "foreign_keys": 1,
                "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
                "synchronous": "normal",
            },
        )
    if url.startswith(("postgres://", "postgresql://")):
        params = parse(url.replace("postgres://", "postgresql://", 1))
        return peewee.PostgresqlDatabase(
            params.pop("database"), field_types={"JSONDOC": "JSONB"}, autorollback=True, **params
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


def is_postgres():
    return isinstance(database.obj, peewee.PostgresqlDatabase)


def init_app(app):
    """Bind the proxy to the configured database and scope a connection to each request."""
    database.initialize(open_database(app.config["DATABASE_URL"]))

    @app.before_request
    def connect():
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def close(exc):
        if not database.is_closed():
            database.close()


def write_transaction():
    """A transaction that takes SQLite's write lock up front.

    A deferred SQLite transaction that reads and then writes fails at once with
    "database is locked" when another writer got in between; taking the lock at
    BEGIN makes it wait for busy_timeout instead.
    """
    if is_postgres():
        return database.atomic()
    return database.atomic(lock_type="IMMEDIATE")
