"""Fixtures: a real database (SQLite file, or PostgreSQL when asked) and the app on it.

The suite runs once per backend: `VMCLARITY_TEST_DATABASE=postgresql` selects a
fresh PostgreSQL database on 127.0.0.1 (VMCLARITY_TEST_PG_URL to override).
"""

import os

import psycopg2
import pytest
from psycopg2 import sql

from app import create_app
from app import migrations
from app.db import database, open_database

ADMIN_TOKEN = "test-admin-token"
PG_SERVER_URL = os.environ.get("VMCLARITY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
PG_TEST_DB = f"vmclarity_test_{os.getpid()}"


def backend():
    return os.environ.get("VMCLARITY_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def pg_url():
    """Create a throwaway PostgreSQL database for this test session."""
    admin = psycopg2.connect(f"{PG_SERVER_URL}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(PG_TEST_DB)))
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_TEST_DB)))
    yield f"{PG_SERVER_URL}/{PG_TEST_DB}"
    database.close()
    with admin.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PG_TEST_DB)))
    admin.close()


@pytest.fixture
def database_url(request, tmp_path):
    """URL of an empty, migrated database of the selected backend."""
    if backend() == "postgresql":
        url = request.getfixturevalue("pg_url")
        database.initialize(open_database(url))
        database.connect(reuse_if_open=True)
        # Emptying schema_version too makes upgrade() see a fresh database.
        tables = [f'"{name}"' for name in database.get_tables()]
        if tables:
            database.execute_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        url = f"sqlite:///{tmp_path / 'vmclarity.db'}"
        database.initialize(open_database(url))
    migrations.upgrade()
    database.close()
    return url


@pytest.fixture
def db(database_url):
    """The database proxy, connected and bound to a fresh database."""
    database.connect(reuse_if_open=True)
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def app(database_url, tmp_path):
    return create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "ADMIN_TOKEN": ADMIN_TOKEN,
    })


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client):
    """A client that sends the admin bearer token on every request."""
    return AuthedClient(client, ADMIN_TOKEN)


class AuthedClient:
    """Thin wrapper that adds an Authorization header to the Flask test client."""

    def __init__(self, client, token):
        self.client = client
        self.token = token

    def open(self, method, url, headers=None, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url, **kwargs):
        return self.open("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.open("POST", url, **kwargs)

    def put(self, url, **kwargs):
        return self.open("PUT", url, **kwargs)

    def patch(self, url, **kwargs):
        return self.open("PATCH", url, **kwargs)

    def delete(self, url, **kwargs):
        return self.open("DELETE", url, **kwargs)
