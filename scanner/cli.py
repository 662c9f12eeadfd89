"""The `vmclarity-scanner` command."""

import contextlib
import importlib.metadata
import json
import logging
import os
import sys
from pathlib import Path

import click

from scanner import config as scan_config
from scanner import cyclonedx, mounting
from scanner.api_client import ApiClient, ApiError
from scanner.config import ConfigError, Input
from scanner.progress import Fanout, Progress
from scanner.reporter import Aborted, Reporter
from scanner.results import asset_scan_document
from scanner.run import Cancelled, run_scan

EXIT_FAMILY_FAILED = 1
EXIT_ABORTED = 3
DEFAULT_STATE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "vmclarity-scanner")


@click.group()
@click.version_option(package_name="vmclarity")
def main():
    """Scan a mounted filesystem and report to the VMClarity API or to files."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The families configuration (.families.yaml format).")
@click.option("--input", "inputs", multiple=True, metavar="TYPE:PATH",
              help="What to scan: rootfs:PATH, dir:PATH, sbom:FILE or csv:FILE; repeatable.")
@click.option("--output", type=click.Path(file_okay=False), help="Write assetscan.json and sbom.cdx.json here.")
@click.option("--server", help="VMClarity API base URL, e.g. http://10.0.0.1:8080/api.")
@click.option("--asset-scan-id", help="The asset scan to report to (with --server).")
@click.option("--token", envvar="VMCLARITY_SCANNER_TOKEN", help="The asset scan's scanner token.")
@click.option("--mount-attached-volume", is_flag=True, help="Mount attached unmounted volumes and scan them.")
@click.option("--mount-device", "mount_devices", multiple=True, metavar="DEVICE",
              help="Mount this attached block device (and its partitions) and scan it; repeatable.")
@click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True, type=click.Path(file_okay=False),
              help="Caches and results waiting to be sent.")
def scan(config_path, inputs, output, server, asset_scan_id, token, mount_attached_volume, mount_devices,
         state_dir):
    """Run the enabled scan families over the inputs."""
    if server and not (asset_scan_id and token):
        raise click.UsageError("--server needs --asset-scan-id and --token")
    reporter = None
    if server:
        reporter = Reporter(ApiClient(server, token), asset_scan_id, os.path.join(state_dir, "spool"))
    try:
        families = scan_config.load(config_path)
        cli_inputs = [Input.parse(text) for text in inputs]
        if not families:
            raise ConfigError(f"{config_path}: no family is enabled")
    except ConfigError as error:
        if reporter:  # the orchestrator must not wait for a scanner that will never run
            reporter.fail(f"scanner configuration: {error}")
        raise click.UsageError(str(error)) from None
    code = _scan(families, cli_inputs, output, reporter, mount_attached_volume, state_dir, mount_devices)
    if code == EXIT_ABORTED:
        # Stop now: lookups still waiting on the network must not keep an aborted scanner alive.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _scan(families, cli_inputs, output, reporter, mount_attached_volume, state_dir, mount_devices=()):
    try:
        if reporter:
            reporter.start()
        with _volumes(mount_attached_volume, mount_devices) as mounted:
            outcome = run_scan(families, cli_inputs + mounted, Fanout(Progress(), reporter),
                               cache_dir=state_dir)
            if output:
                _write_output(Path(output), outcome)
        if reporter:
            reporter.finish(outcome)
    except (Cancelled, Aborted) as error:
        return _stopped(reporter, str(error))
    except KeyboardInterrupt:
        if reporter is None or not reporter.aborted.is_set():
            raise
        return _stopped(reporter, "the asset scan was aborted")
    except (ApiError, mounting.MountError) as error:
        if reporter and not isinstance(error, ApiError):
            reporter.fail(str(error))
        raise click.ClickException(str(error)) from None
    if outcome.failed:
        click.echo(f"failed families: {', '.join(outcome.failed)}", err=True)
        return EXIT_FAMILY_FAILED
    return 0


def _stopped(reporter, reason):
    click.echo(f"scan stopped: {reason}", err=True)
    if reporter:
        reporter.stopped_after_abort()
    return EXIT_ABORTED


@contextlib.contextmanager
def _volumes(enabled, devices=()):
    # --mount-device is --mount-attached-volume restricted to the given devices.
    if not (enabled or devices):
        yield []
        return
    with mounting.mounted_volumes(list(devices) or None) as report:
        for device, reason in report.skipped:
            logging.getLogger("scanner").warning("not scanning %s: %s", device, reason)
        yield [Input("rootfs", mount.mountpoint) for mount in report.mounts]


def _write_output(directory, outcome):
    directory.mkdir(parents=True, exist_ok=True)
    document = asset_scan_document(outcome)
    _write_json(directory / "assetscan.json", document)
    if outcome.sbom is not None:
        cyclonedx.write_sbom(directory / "sbom.cdx.json", outcome.sbom.packages, outcome.sbom.locations,
                             outcome.sbom.distro, target_name=_target_name(outcome), tool_version=_version())
    walks = [{"root": w.root, "files": w.files, "directories": w.directories, "bytesRead": w.bytes_read,
              "seconds": round(w.seconds, 3), "skipped": w.skipped, "examples": w.examples}
             for w in outcome.walks]
    _write_json(directory / "walk-stats.json", walks)


def _write_json(path, document):
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8",
                         errors="backslashreplace")
    os.replace(temporary, path)


def _target_name(outcome):
    roots = [w.root for w in outcome.walks]
    return ", ".join(roots) or "sbom"


def _version():
    return importlib.metadata.version("vmclarity")
