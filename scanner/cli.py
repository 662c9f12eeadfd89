"""The `vmclarity-scanner` command."""

import click


@click.group()
@click.version_option(package_name="vmclarity")
def main():
    """Scan a mounted filesystem and report to the VMClarity API or to files."""
