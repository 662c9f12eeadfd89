"""Schema versioning: a fresh database gets the current schema; an older one is migrated.

`MIGRATIONS[n]` turns a schema at version n into version n + 1, keeping the data,
so `vmclarity db upgrade` can run against any earlier installation.
"""

import datetime

import peewee

from app.db import database
from app.indexes import create_json_indexes
from app.models import ALL_MODELS, BaseModel


class SchemaVersion(BaseModel):
    version = peewee.IntegerField()
    applied_at = peewee.DateTimeField()


def add_login_failure(db):
    """Version 1 -> 2: the login_failure table, for locking out password guessing."""

    # The table as version 2 made it, frozen here: a later change to the model is a later step.
    class LoginFailure(BaseModel):
        username = peewee.CharField(max_length=150, primary_key=True)
        count = peewee.IntegerField(default=0)
        locked_until = peewee.DateTimeField(null=True)
        last_attempt = peewee.DateTimeField(index=True)

        class Meta:
            database = db
            table_name = "login_failure"

    db.create_tables([LoginFailure])


#: Ordered migration steps; each takes the database.
MIGRATIONS = [add_login_failure]


def target_version():
    """The schema version this code expects."""
    return len(MIGRATIONS) + 1


def current_version():
    """Return the schema version of the database, 0 when it has none."""
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()
    return row or 0


def upgrade():
    """Bring the database to target_version(); return (from_version, to_version)."""
    target = target_version()
    with database.atomic():
        start = current_version()
        if start > target:
            raise RuntimeError(f"the database schema (version {start}) is newer than this code ({target})")
        if start == 0:
            database.create_tables(ALL_MODELS + (SchemaVersion,))
        else:
            for step in MIGRATIONS[start - 1:]:
                step(database)
        # Derived and idempotent: indexes declared since the database was made are added here.
        create_json_indexes()
        if start != target:
            SchemaVersion.create(version=target, applied_at=datetime.datetime.now(datetime.timezone.utc))
    return start, target
