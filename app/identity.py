"""Identity keys: what makes two assets or two findings the same object.

Used for de-duplication and for the 409 `<Type>Exists` answers (anatomy §1.2, §1.4).
A key is a short digest of the identifying fields, stored in a unique column.
"""

import hashlib
import json

ASSET_KEY_FIELDS = {
    "VMInfo": ("instanceID", "location"),
    "DirInfo": ("dirName", "location"),
    "PodInfo": ("podName", "location"),
    "ContainerInfo": ("containerID",),
    "ContainerImageInfo": ("imageID",),
}

FINDING_KEY_FIELDS = {
    "Package": ("name", "version"),
    "Vulnerability": ("vulnerabilityName", "package/name", "package/version"),
    "Malware": ("malwareName", "malwareType", "path", "ruleName"),
    "Secret": ("fingerprint", "startColumn", "endColumn"),
    "Misconfiguration": ("scannerName", "id", "message"),
    "Rootkit": ("rootkitName", "rootkitType", "message"),
    "Exploit": ("sourceDB", "cveID", "urls"),
    "InfoFinder": ("scannerName", "type", "data", "path"),
}


def _lookup(document, path):
    for part in path.split("/"):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def _digest(object_type, document, fields):
    values = [object_type] + [_lookup(document, field) for field in fields]
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def asset_key(asset_info):
    """Return the identity key of an AssetType document, or None when it has no type."""
    object_type = (asset_info or {}).get("objectType")
    if object_type not in ASSET_KEY_FIELDS:
        return None
    return _digest(object_type, asset_info, ASSET_KEY_FIELDS[object_type])


def finding_key(finding_info):
    """Return the identity key of a FindingInfo document, or None when it has no type."""
    object_type = (finding_info or {}).get("objectType")
    if object_type not in FINDING_KEY_FIELDS:
        return None
    return _digest(object_type, finding_info, FINDING_KEY_FIELDS[object_type])
