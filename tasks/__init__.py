"""Dramatiq actors that orchestrate scans; `dramatiq tasks` runs them.

The broker module comes first so that every actor binds to it.
"""

from tasks import broker  # noqa: F401  (first: sets the broker)
from tasks import triggers
from tasks.asset_scans import reconcile_asset_scan
from tasks.discovery import discover_assets
from tasks.estimations import reconcile_asset_scan_estimation, reconcile_scan_estimation
from tasks.findings import process_findings
from tasks.scan_configs import reconcile_scan_config
from tasks.scans import reconcile_scan

# Writes made by workers trigger the next steps too.
triggers.init_app(None)

__all__ = ["discover_assets", "process_findings", "reconcile_asset_scan", "reconcile_asset_scan_estimation",
           "reconcile_scan", "reconcile_scan_config", "reconcile_scan_estimation"]
