"""How API documents read on a page: names, types and counters a person recognises."""

from app.dashboard import VM_TYPES

#: assetInfo objectType -> (the field that names the asset, its type label).
ASSET_KINDS = {
    "VMInfo": ("instanceID", None),
    "ContainerInfo": ("containerName", "Container"),
    "ContainerImageInfo": ("imageID", "Container Image"),
    "PodInfo": ("podName", "Pod"),
    "DirInfo": ("dirName", "Directory"),
}
#: ScanFindingsSummary counter -> column label, in the order tables show them.
SUMMARY_COUNTERS = (
    ("totalVulnerabilities", "Vulnerabilities"),
    ("totalExploits", "Exploits"),
    ("totalMisconfigurations", "Misconfigurations"),
    ("totalSecrets", "Secrets"),
    ("totalMalware", "Malware"),
    ("totalRootkits", "Rootkits"),
    ("totalPackages", "Packages"),
)


def asset_name(info):
    field, _ = ASSET_KINDS.get((info or {}).get("objectType"), ("instanceID", None))
    return (info or {}).get(field) or "(unnamed)"


def asset_type(info):
    info = info or {}
    if info.get("objectType") == "VMInfo":
        return VM_TYPES.get(info.get("instanceProvider"), "Virtual machine")
    return ASSET_KINDS.get(info.get("objectType"), (None, info.get("objectType") or "unknown"))[1]


def summary_count(summary, counter):
    """A counter of a ScanFindingsSummary; vulnerabilities are the sum of their severities."""
    value = (summary or {}).get(counter)
    if isinstance(value, dict):
        return sum(n for n in value.values() if isinstance(n, int))
    return value if isinstance(value, int) else 0


def labels(document):
    return [f"{tag.get('key')}={tag.get('value', '')}" for tag in (document.get("assetInfo") or {}).get("tags") or []]


def when(text):
    """An RFC 3339 instant as `YYYY-MM-DD HH:MM` (UTC), or an empty string."""
    return text[:16].replace("T", " ") if isinstance(text, str) else ""


def init_app(app):
    app.jinja_env.globals.update(asset_name=asset_name, asset_type=asset_type, summary_count=summary_count,
                                 asset_labels=labels, SUMMARY_COUNTERS=SUMMARY_COUNTERS)
    app.jinja_env.filters["when"] = when
