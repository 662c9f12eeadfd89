"""The `vmclarity` command: database upgrade, tokens and users, against a real database."""

import hashlib

import pytest
from click.testing import CliRunner

from app import cli, migrations
from app.db import database
from app.models import ApiToken, User


@pytest.fixture
def run(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("VMCLARITY_DATABASE_URL", database_url)
    monkeypatch.setenv("VMCLARITY_DATA_DIR", str(tmp_path))

    def invoke(*args, input=None):
        result = CliRunner().invoke(cli.main, list(args), input=input, catch_exceptions=False)
        database.connect(reuse_if_open=True)
        return result

    yield invoke
    database.close()


def test_db_upgrade_is_idempotent(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0
    assert f"version {migrations.target_version()}" in result.output
    assert "up to date" in run("db", "upgrade").output


def test_token_create_prints_a_token_stored_only_as_hash(run, client):
    result = run("token", "create", "--role", "viewer", "--name", "dashboards")
    assert result.exit_code == 0
    token = result.output.strip()
    row = ApiToken.get(ApiToken.name == "dashboards")
    assert row.role == "viewer"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash
    assert client.get("/api/assets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post("/api/assets", json={}, headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_token_create_rejects_an_unknown_role(run):
    result = run("token", "create", "--role", "root", "--name", "x")
    assert result.exit_code == 2
    assert "root" in result.output
    assert ApiToken.select().count() == 0


def test_user_create_hashes_the_password(run):
    result = run("user", "create", "alice", "--role", "operator", "--password", "correct horse")
    assert result.exit_code == 0, result.output
    user = User.get(User.username == "alice")
    assert user.role == "operator"
    assert "correct horse" not in user.password_hash


@pytest.mark.parametrize("args, message", [
    (["alice", "--password", "short"], "at least 8 characters"),
    (["   ", "--password", "long enough"], "must not be empty"),
])
def test_user_create_explains_bad_input(run, args, message):
    result = run("user", "create", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert User.select().count() == 0


def test_user_create_refuses_a_duplicate(run):
    run("user", "create", "bob", "--password", "long enough")
    result = run("user", "create", "bob", "--password", "another one")
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert User.select().count() == 1
