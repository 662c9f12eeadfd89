"""The `vmclarity` command: database, web server, tokens and users."""

import os
import sys

import click

from app import auth, config, create_app, launcher, migrations, users
from app.db import database


def _connected_app():
    """Create the app and bring its database schema up to date."""
    app = create_app()
    database.connect(reuse_if_open=True)
    migrations.upgrade()
    return app


@click.group()
@click.version_option(package_name="vmclarity")
def main():
    """VMClarity: agentless security scanning for virtual machines."""


@main.group()
def db():
    """Manage the database."""


@db.command("upgrade")
def db_upgrade():
    """Create the schema or migrate it to this version, keeping the data."""
    create_app()
    start, end = migrations.upgrade()
    click.echo(f"database schema at version {end}" + (f" (was {start})" if start != end else ", up to date"))


@main.command()
@click.option("--host", default=lambda: config.from_environment()["HOST"], show_default="VMCLARITY_HOST")
@click.option("--port", default=lambda: config.from_environment()["PORT"], show_default="VMCLARITY_PORT", type=int)
@click.option("--workers", default=lambda: config.from_environment()["WEB_WORKERS"],
              show_default="VMCLARITY_WEB_WORKERS", type=int)
def web(host, port, workers):
    """Serve the web UI and the API with gunicorn."""
    _connected_app()
    _serve(host, port, workers)


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="Overrides VMCLARITY_DATA_DIR.")
@click.option("--port", type=int, help="Overrides VMCLARITY_PORT.")
def up(data_dir, port):
    """Run VMClarity on this machine: database, Redis, web, workers and scheduler."""
    if data_dir:
        os.environ["VMCLARITY_DATA_DIR"] = os.path.abspath(data_dir)
    if port:
        os.environ["VMCLARITY_PORT"] = str(port)
    app = _connected_app()
    settings = app.config
    admin_token = auth.first_admin_token(settings["DATA_DIR"])
    admin_password = users.first_admin(settings["ADMIN_PASSWORD"])
    database.close()
    environ = dict(os.environ)
    redis_server = None
    if not settings["REDIS_URL"]:
        redis_server, environ["VMCLARITY_REDIS_URL"] = launcher.embedded_redis(settings["DATA_DIR"])
    click.echo(f"VMClarity: http://{settings['HOST']}:{settings['PORT']}/  (API at /api)")
    click.echo(f"data directory: {settings['DATA_DIR']}")
    click.echo(f"admin API token: {admin_token}")
    if admin_password:
        click.echo(f"web UI user 'admin', password (shown only this once): {admin_password}")
    code = launcher.run(launcher.commands(settings), environ)
    if redis_server is not None:
        redis_server.shutdown()
    sys.exit(code)


def _serve(host, port, workers):
    database.close()
    argv = launcher.web_command(host, port, workers)
    os.execv(argv[0], argv)


@main.group()
def token():
    """Manage API tokens."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(auth.ROLES))
@click.option("--name", required=True, help="Who or what will use the token.")
def token_create(role, name):
    """Create an API token and print it (it is shown only once)."""
    _connected_app()
    click.echo(auth.create_token(name, role))


@main.group()
def user():
    """Manage web UI users."""


@user.command("create")
@click.argument("username")
@click.option("--role", default="viewer", show_default=True, type=click.Choice(auth.ROLES))
@click.password_option(help="Prompted for when not given.")
def user_create(username, role, password):
    """Create a user who can sign in to the web UI."""
    _connected_app()
    try:
        users.create_user(username, password, role)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"user {username} created with role {role}")
