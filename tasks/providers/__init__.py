"""Providers: where assets come from and where scanners run (anatomy §3.1).

Every call is non-blocking and idempotent: `run_asset_scan` and
`remove_asset_scan` return as soon as they have started (or found) their work,
raise RetryableError while it is not ready yet (the actor re-enqueues itself
after `after` seconds instead of sleeping), and FatalError when it never will be.
Everything a provider creates is named or tagged with the asset scan id, so a
later call, or a sweep after a crash, finds its own earlier work.
"""

from dataclasses import dataclass


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
    token: str               # the scanner token of this asset scan


class Provider:
    kind = ""

    def discover_assets(self):
        """Yield the AssetType documents (assetInfo) of what exists now."""
        return iter(())

    def run_asset_scan(self, job):
        """Start (or find) the scanner for `job`; raise RetryableError until it is running."""
        raise NotImplementedError

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
