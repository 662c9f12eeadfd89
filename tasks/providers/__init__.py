"""Providers: where assets come from and where scanners run (anatomy §3.1).

Every call is non-blocking and idempotent: `run_asset_scan` and
`remove_asset_scan` return as soon as they have started (or found) their work,
raise RetryableError while it is not ready yet (the actor re-enqueues itself
after `after` seconds instead of sleeping), and FatalError when it never will be.
Everything a provider creates is named or tagged with the asset scan id, so a
later call, or a sweep after a crash, finds its own earlier work.

A provider also tells when a scanner is gone (`scanner_exit`): the orchestrator
asks on every reconcile of a ReadyToScan or InProgress asset scan (the
scheduler's sweep sends one every interval), and at once when the provider
calls `settings["on_scanner_exit"](asset_scan_id)` because it saw a scanner end.
"""

import signal
from dataclasses import dataclass
from typing import Callable, Optional


class ProviderError(Exception):
    pass


class RetryableError(ProviderError):
    def __init__(self, message, after=5.0):
        super().__init__(message)
        self.after = after


class FatalError(ProviderError):
    pass


@dataclass(frozen=True)
class ScanJob:
    """What a provider needs to start the scanner of one asset scan."""

    asset_scan_id: str
    asset: dict              # the Asset document
    scanner_config: dict     # the scanner's .families.yaml content
    api_url: str             # where the scanner reports
    #: Mints the asset scan's scanner token, revoking any earlier one. A provider calls it
    #: only when it starts a scanner, so a retry that finds its scanner running mints nothing.
    mint_token: Callable[[], str]


@dataclass(frozen=True)
class ScannerExit:
    """How a scanner that is gone ended: its exit code (None when unknown) and when (epoch seconds).

    `at` is when it exited, or when the provider first found it gone if it cannot know better.
    """

    code: Optional[int]
    at: float
    detail: str = ""         # what a provider can say when it has no exit code ("instance terminated")

    def message(self):
        if self.code is None:
            return f"scanner {self.detail or 'exited'} without reporting (exit code unknown)"
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = f"signal {-self.code}"
            return f"scanner exited with code {self.code} (killed by {name}) without reporting"
        return f"scanner exited with code {self.code} without reporting"


class Provider:
    kind = ""

    def discover_assets(self):
        """Yield the AssetType documents (assetInfo) of what exists now."""
        return iter(())

    def run_asset_scan(self, job):
        """Start (or find) the scanner for `job`; raise RetryableError until it is running."""
        raise NotImplementedError

    def scanner_exit(self, asset_scan_id):
        """A ScannerExit once the scanner started for the asset scan is gone; None while it runs.

        None too when this provider started none for it, or cannot tell: the orchestrator
        fails an asset scan only on a definite answer.
        """
        return None

    def remove_asset_scan(self, asset_scan_id):
        """Stop and delete everything made for the asset scan; RetryableError until gone."""
        raise NotImplementedError

    def leftovers(self, live_asset_scan_ids):
        """Ids of asset scans that still own resources but are not in `live_asset_scan_ids`."""
        return []

    def estimate(self, stats, asset, template):
        """An Estimation {duration, size, cost, costBreakdown} for scanning `asset`."""
        raise FatalError(f"the {self.kind} provider has no estimator")


def get_provider(name, settings):
    """The provider called `name` (VMCLARITY_PROVIDER), configured from `settings`."""
    if name == "local":
        from tasks.providers.local import LocalProvider

        return LocalProvider(settings)
    raise ValueError(f"unknown provider {name!r}: choose local")
