"""The asset scan state machine (anatomy §2.3): provision the scanner, then clean up.

Scheduled -> the provider starts the scanner -> ReadyToScan (the scanner itself
drives InProgress and Done/Failed). ReadyToScan/InProgress/Aborted whose scanner
is gone without reporting its end -> Failed, after a short grace for its last
report. Aborted -> Failed once the abort grace has passed. Done/Failed ->
cleanup by the delete policy, which revokes the scanner token (findings
processing is sent by tasks.triggers when it finishes). A provider step that
is not ready re-enqueues this actor after the delay the provider asks for; no
worker ever sleeps on a cloud.

A scanner's end is noticed at once when the provider sees it (`on_scanner_exit`),
else by the scheduler's sweep, which reconciles every running asset scan.
"""

import datetime
import time

import dramatiq

import tasks.broker  # noqa: F401  (sets the broker before any actor is declared)
from app import auth
from app.db import database
from app.models import ApiToken, Asset, AssetScan
from tasks.locks import run_step
from tasks.objects import load, now, parse_time, patch, status
from tasks.providers import FatalError, RetryableError, ScanJob, get_provider
from tasks.scanner_config import scanner_config, scanner_settings
from tasks.settings import orchestrator_settings


@dramatiq.actor(queue_name="orchestrator", max_retries=20, min_backoff=1000, max_backoff=60_000,
                time_limit=300_000)
def reconcile_asset_scan(asset_scan_id):
    run_step(reconcile_asset_scan, "asset-scan", asset_scan_id, _reconcile)


def _reconcile(asset_scan_id):
    asset_scan = load(AssetScan, asset_scan_id)
    if asset_scan is None:
        return
    settings = orchestrator_settings()
    state = asset_scan["status"]["state"]
    if state == "Scheduled":
        _provision(asset_scan, settings)
    elif state in ("ReadyToScan", "InProgress"):
        _fail_if_scanner_gone(asset_scan, settings)
    elif state == "Aborted":
        if not _fail_if_scanner_gone(asset_scan, settings):
            _aborted(asset_scan, settings)
    elif state in AssetScan.FINISHED_STATES:
        # Findings processing is sent when it finishes (tasks.triggers), and again by the sweep.
        _clean_up(asset_scan, settings)


def provider_of(settings):
    """The configured provider, telling this actor at once when it sees a scanner exit."""
    return get_provider(settings["provider"], {**settings, "on_scanner_exit": reconcile_asset_scan.send})


def _provision(asset_scan, settings):
    asset = load(Asset, asset_scan["asset"]["id"])
    provider = provider_of(settings)
    job = ScanJob(
        asset_scan_id=asset_scan["id"],
        asset=asset,
        scanner_config=scanner_config(asset_scan.get("scanFamiliesConfig") or {}, scanner_settings()),
        api_url=settings["api_url"],
        mint_token=lambda: _mint_scanner_token(asset_scan["id"]),
    )
    try:
        provider.run_asset_scan(job)
    except FatalError as error:
        patch(AssetScan, asset_scan, {"status": status("Failed", "Error", f"provider: {error}")})
        return
    patch(AssetScan, asset_scan, {"status": status("ReadyToScan", "ResourcesReady")})


def _mint_scanner_token(asset_scan_id):
    """The asset scan's one scanner token: any earlier one (a start that never happened) is revoked."""
    with database.atomic():
        _revoke_scanner_tokens(asset_scan_id)
        return auth.mint_scanner_token(asset_scan_id)


def _revoke_scanner_tokens(asset_scan_id):
    ApiToken.delete().where(ApiToken.asset_scan == asset_scan_id).execute()


def _fail_if_scanner_gone(asset_scan, settings):
    """Failed when the scanner is gone without having reported the end, once the grace has passed.

    True when it failed the asset scan. The grace runs from the exit: a scanner's last PATCH
    may still be on its way. A report that lands meanwhile changes the revision, so the patch
    here is refused (Stale) and the reconcile runs again on the reported state.
    """
    gone = provider_of(settings).scanner_exit(asset_scan["id"])
    if gone is None:
        return False
    waited = time.time() - gone.at
    grace = settings["scanner_exit_grace"]
    if waited < grace:
        raise RetryableError("the scanner is gone; waiting for its last report", after=grace - waited)
    patch(AssetScan, asset_scan, {"status": status("Failed", "Error", gone.message())})
    return True


def _aborted(asset_scan, settings):
    since = parse_time(asset_scan["status"].get("lastTransitionTime")) or now()
    remaining = since + datetime.timedelta(seconds=settings["abort_timeout"]) - now()
    if remaining.total_seconds() > 0:
        raise RetryableError("waiting for the scanner to stop", after=remaining.total_seconds())
    patch(AssetScan, asset_scan, {"status": status("Failed", "AbortTimedOut", "the scanner did not stop in time")})


def _clean_up(asset_scan, settings):
    if (asset_scan.get("resourceCleanupStatus") or {}).get("state") != "Pending":
        return
    policy = settings["delete_policy"]
    if policy == "never" or (policy == "onsuccess" and asset_scan["status"]["state"] == "Failed"):
        # The resources stay, for a look at them; the token is of no more use to anyone.
        _revoke_scanner_tokens(asset_scan["id"])
        patch(AssetScan, asset_scan, {"resourceCleanupStatus": status("Skipped", "DeletePolicy")})
        return
    try:
        get_provider(settings["provider"], settings).remove_asset_scan(asset_scan["id"])
    except FatalError as error:
        patch(AssetScan, asset_scan, {"resourceCleanupStatus": status("Failed", "ProviderError", str(error))})
        return
    _revoke_scanner_tokens(asset_scan["id"])
    patch(AssetScan, asset_scan, {"resourceCleanupStatus": status("Done", "Success")})


@dramatiq.actor(queue_name="orchestrator", max_retries=20, min_backoff=1000, max_backoff=60_000,
                time_limit=120_000)
def remove_leftover(asset_scan_id):
    """Remove provider resources whose asset scan no longer exists (deleted, or lost in a crash)."""
    settings = orchestrator_settings()
    try:
        get_provider(settings["provider"], settings).remove_asset_scan(asset_scan_id)
    except RetryableError as error:
        remove_leftover.send_with_options(args=(asset_scan_id,), delay=int(error.after * 1000))
