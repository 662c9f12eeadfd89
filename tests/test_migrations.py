"""Schema versioning: upgrades run each missing step once and keep the data."""

import peewee
import pytest
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from app import migrations
from app.db import is_postgres
from app.models import Provider


def add_provider_region(database):
    migrator = PostgresqlMigrator(database) if is_postgres() else SqliteMigrator(database)
    migrate(migrator.add_column("provider", "region", peewee.CharField(null=True)))


def test_fresh_database_is_at_the_target_version(db):
    assert migrations.current_version() == migrations.target_version()
    assert migrations.upgrade() == (migrations.target_version(),) * 2


def test_upgrade_runs_new_steps_and_keeps_data(db, monkeypatch):
    Provider.create(id="p1", data={"id": "p1", "revision": 1, "displayName": "kept"})
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + [add_provider_region])

    assert migrations.upgrade() == (1, 2)

    columns = [column.name for column in db.get_columns("provider")]
    assert "region" in columns
    assert Provider.get(Provider.id == "p1").data["displayName"] == "kept"
    assert migrations.upgrade() == (2, 2)


def test_refuses_a_database_newer_than_the_code(db, monkeypatch):
    migrations.SchemaVersion.create(version=99, applied_at="2026-01-01 00:00:00")
    with pytest.raises(RuntimeError, match="newer than this code"):
        migrations.upgrade()
