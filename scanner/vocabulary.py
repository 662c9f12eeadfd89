"""Shared vocabulary of scan families, importable by every package (it imports nothing).

A family has three spellings: its key in the scanner's `.families.yaml`, its key in
the API's ScanFamiliesConfig, and its result block in an AssetScan.
"""

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    config_key: str    # .families.yaml
    api_key: str       # ScanFamiliesConfig and AssetScan result block
    results_key: str   # the list inside the result block
    summary_key: str   # ScanFindingsSummary counter
    finding_type: str  # FindingInfo objectType


FAMILIES = (
    Family("sbom", "sbom", "packages", "totalPackages", "Package"),
    Family("vulnerabilities", "vulnerabilities", "vulnerabilities", "totalVulnerabilities", "Vulnerability"),
    Family("exploits", "exploits", "exploits", "totalExploits", "Exploit"),
    Family("secrets", "secrets", "secrets", "totalSecrets", "Secret"),
    Family("malware", "malware", "malware", "totalMalware", "Malware"),
    Family("rootkits", "rootkits", "rootkits", "totalRootkits", "Rootkit"),
    Family("misconfiguration", "misconfigurations", "misconfigurations", "totalMisconfigurations",
           "Misconfiguration"),
    Family("infofinder", "infoFinder", "infos", "totalInfoFinder", "InfoFinder"),
    Family("plugins", "plugins", "findingInfos", "totalPlugins", ""),
)
FAMILIES_BY_CONFIG_KEY = {family.config_key: family for family in FAMILIES}
FAMILIES_BY_API_KEY = {family.api_key: family for family in FAMILIES}

#: ScannerStatus reason for each state.
SCANNER_REASONS = {
    "Pending": "Scheduled",
    "InProgress": "Scanning",
    "Skipped": "NotScheduled",
    "Failed": "Error",
    "Done": "Success",
}

VULNERABILITY_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NEGLIGIBLE")


def now():
    """The current time as the API writes it (RFC 3339, UTC)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


#: The reason of a Done family in which a scanner could not scan: its results are real, but
#: whatever it would have found is unknown, so earlier findings of the family stay valid.
INCOMPLETE_REASON = "Error"


def scanner_status(state, message=None, reason=None):
    """A ScannerStatus document for `state` (with its usual reason unless `reason` is given)."""
    status = {"state": state, "reason": reason or SCANNER_REASONS[state], "lastTransitionTime": now()}
    if message:
        status["message"] = message
    return status
