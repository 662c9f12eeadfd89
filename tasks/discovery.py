"""Asset discovery: what the provider sees becomes assets; what it no longer sees is terminated.

Only assets this discovery created are ever marked terminated (they carry the
DISCOVERED_BY annotation), so assets made through the API are left alone.
"""

import dramatiq

import tasks.broker  # noqa: F401  (sets the broker before any actor is declared)
from app import identity, odata
from app.models import Asset
from tasks.objects import Stale, create, patch, timestamp
from tasks.providers import get_provider
from tasks.settings import orchestrator_settings

DISCOVERED_BY = "vmclarity.io/discovered-by"


@dramatiq.actor(queue_name="orchestrator", max_retries=3, min_backoff=5000, time_limit=600_000)
def discover_assets():
    settings = orchestrator_settings()
    provider = get_provider(settings["provider"], settings)
    seen_at = timestamp()
    seen = set()
    for asset_info in provider.discover_assets():
        seen.add(_upsert(asset_info, provider.kind, seen_at))
    _terminate_missing(provider.kind, seen, seen_at)
    discover_assets.logger.info("discovered %d assets", len(seen))


def _upsert(asset_info, kind, seen_at):
    key = identity.asset_key(asset_info)
    row = Asset.get_or_none(Asset.identity == key)
    if row is None:
        created = create(Asset, {"assetInfo": asset_info, "firstSeen": seen_at, "lastSeen": seen_at,
                                 "annotations": [{"key": DISCOVERED_BY, "value": kind}]})
        if created:
            return created["id"]
        row = Asset.get(Asset.identity == key)  # created meanwhile by another discovery
    body = {"assetInfo": asset_info, "lastSeen": seen_at}
    if row.data.get("terminatedOn"):
        body["terminatedOn"] = None  # it is back
    try:
        patch(Asset, row.data, body)
    except Stale:
        pass  # changed meanwhile; the next discovery updates it
    return row.id


def _terminate_missing(kind, seen, seen_at):
    discovered = odata.filter_expression(
        Asset, f"terminatedOn eq null and annotations/any(a: a/key eq '{DISCOVERED_BY}' and a/value eq '{kind}')")
    # Materialized first: SQLite refuses a write while a read of the same connection is open.
    for row in list(Asset.select().where(discovered & Asset.id.not_in(list(seen) or [""]))):
        try:
            patch(Asset, row.data, {"terminatedOn": seen_at})
        except Stale:
            pass  # changed meanwhile; the next discovery decides again
