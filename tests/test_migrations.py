"""Schema versioning: upgrades run each missing step once and keep the data."""

import peewee
import pytest
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from app import login_throttle, migrations, users
from app.db import is_postgres
from app.models import LoginFailure, Provider


def add_provider_region(database):
    migrator = PostgresqlMigrator(database) if is_postgres() else SqliteMigrator(database)
    migrate(migrator.add_column("provider", "region", peewee.CharField(null=True)))


def test_fresh_database_is_at_the_target_version(db):
    assert migrations.current_version() == migrations.target_version()
    assert migrations.upgrade() == (migrations.target_version(),) * 2


def test_upgrade_runs_new_steps_and_keeps_data(db, monkeypatch):
    Provider.create(id="p1", data={"id": "p1", "revision": 1, "displayName": "kept"})
    start = migrations.target_version()
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [add_provider_region])

    assert migrations.upgrade() == (start, start + 1)

    columns = [column.name for column in db.get_columns("provider")]
    assert "region" in columns
    assert Provider.get(Provider.id == "p1").data["displayName"] == "kept"
    assert migrations.upgrade() == (start + 1, start + 1)


def test_version_1_gains_the_login_failure_table_and_keeps_its_data(db):
    # A version 1 database: what a fresh one was before login_failure.
    db.drop_tables([LoginFailure])
    migrations.SchemaVersion.delete().execute()
    migrations.SchemaVersion.create(version=1, applied_at="2026-01-01 00:00:00")
    Provider.create(id="p1", data={"id": "p1", "revision": 1, "displayName": "kept"})
    users.create_user("alice", "kept password", "admin")

    assert migrations.upgrade() == (1, 2)

    assert "login_failure" in db.get_tables()
    assert Provider.get(Provider.id == "p1").data["displayName"] == "kept"
    assert users.check_password("alice", "kept password")
    assert login_throttle.authenticate("alice", "wrong password", "192.0.2.1") is None
    assert LoginFailure.get(LoginFailure.username == "alice").count == 1
    assert migrations.upgrade() == (2, 2)


def test_refuses_a_database_newer_than_the_code(db, monkeypatch):
    migrations.SchemaVersion.create(version=99, applied_at="2026-01-01 00:00:00")
    with pytest.raises(RuntimeError, match="newer than this code"):
        migrations.upgrade()
