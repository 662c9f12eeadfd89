"""A one-off scan of one asset, started from the asset's page.

It is an ordinary Scan (no scan config) whose scope is exactly this asset; the
orchestrator turns it into one asset scan like any other scan.
"""

from app import store
from app.models import Scan
from app.resources import RESOURCES_BY_MODEL
from app.ui.asset_scans_queries import SHOWN_FAMILIES
from app.ui.listing import quote
from app.ui.presenters import asset_name
from scanner.vocabulary import now

#: Families a person may pick, in the order the form lists them.
FAMILY_KEYS = tuple(family.api_key for family in SHOWN_FAMILIES)
#: Ticked at first: the original's default (SBOM and vulnerabilities) plus the families
#: that need no helper data or tool (secrets, misconfigurations), so a click scans broadly
#: without a family that is bound to fail on an installation that lacks ClamAV or exploit-db.
DEFAULT_FAMILIES = ("sbom", "vulnerabilities", "secrets", "misconfigurations")


def start(asset, families):
    """Create the scan of `asset` with the `families` (API keys) enabled; return its document."""
    if asset.get("terminatedOn"):
        raise ValueError("this asset is terminated: there is nothing left to scan")
    unknown = sorted(set(families) - set(FAMILY_KEYS))
    if unknown:
        raise ValueError(f"unknown scan family {unknown[0]!r}")
    if not families:
        raise ValueError("choose at least one scan family")
    started = now()
    return store.create(RESOURCES_BY_MODEL[Scan], {
        "name": f"{asset_name(asset.get('assetInfo'))} now {started[:19].replace('T', ' ')}",
        "scope": f"id eq {quote(asset['id'])}",
        "startTime": started,
        "maxParallelScanners": 1,
        "assetScanTemplate": {
            "scanFamiliesConfig": {key: {"enabled": True} for key in FAMILY_KEYS if key in families},
            "scannerInstanceCreationConfig": {"useSpotInstances": False},
        },
    })
