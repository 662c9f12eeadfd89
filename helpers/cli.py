"""The `vmclarity-helper` command."""

import click


@click.group()
@click.version_option(package_name="vmclarity")
def main():
    """Run the helper servers that scanners download their data from."""
