"""The OpenAPI 3.0.1 document of the VMClarity JSON API, assembled in code.

The wire contract (paths, operationIds, schema and property names, types,
formats, enums, readOnly markers and discriminated unions) is the one the
upstream VMClarity API speaks, so its clients and our OData compiler (which
walks `components.schemas` to learn each field's kind) see the same shapes.
On top of it we declare bearer authentication, 401/403 on every operation and
400 on every list for a malformed query. The upstream document repeats a few
patterns (status blocks, list pages, relationships, conflict bodies, the CRUD
operations) many times, so each pattern is one helper here.
"""

import copy
import functools
import re

SCHEMAS = "#/components/schemas/"

# Scanner family -> (its settings schema, its results schema); upstream keys configs, results and stats by family.
FAMILIES = {
    "sbom": ("SBOMConfig", "SbomScan"),
    "vulnerabilities": ("VulnerabilitiesConfig", "VulnerabilityScan"),
    "malware": ("MalwareConfig", "MalwareScan"),
    "rootkits": ("RootkitsConfig", "RootkitScan"),
    "secrets": ("SecretsConfig", "SecretScan"),
    "misconfigurations": ("MisconfigurationsConfig", "MisconfigurationScan"),
    "exploits": ("ExploitsConfig", "ExploitScan"),
    "infoFinder": ("InfoFinderConfig", "InfoFinderScan"),
    "plugins": ("PluginsConfig", "PluginScan"),
}

# objectType value -> result schema that a FindingInfo variant extends.
FINDING_KINDS = {
    "Package": "Package",
    "Vulnerability": "Vulnerability",
    "Malware": "Malware",
    "Secret": "Secret",
    "Misconfiguration": "Misconfiguration",
    "Rootkit": "Rootkit",
    "Exploit": "Exploit",
    "InfoFinder": "InfoFinderInfo",
}

ASSET_KINDS = ("VMInfo", "PodInfo", "DirInfo", "ContainerImageInfo", "ContainerInfo")

SCOPE_HELP = (
    "OData $filter over assets that limits what the scan covers, "
    "e.g. `startswith(assetInfo/location, 'eu-west-2')`."
)


def ref(name):
    return {"$ref": SCHEMAS + name}


def string(**extra):
    return {"type": "string", **extra}


def integer(**extra):
    return {"type": "integer", **extra}


def number(**extra):
    return {"type": "number", **extra}


def boolean(**extra):
    return {"type": "boolean", **extra}


def date_time(**extra):
    return string(format="date-time", **extra)


def array_of(items, nullable=False, **extra):
    schema = {"type": "array", "items": items, **extra}
    if nullable:
        schema["nullable"] = True
    return schema


def strings(nullable=False, **extra):
    return array_of(string(), nullable, **extra)


def obj(properties, required=(), **extra):
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {**schema, **extra}


def words(names):
    return names.split()


def each(kind, names):
    """Several properties of one plain type, e.g. `each(string, "name version")`."""
    return {name: kind() for name in words(names)}


def read_only(schema):
    return {**schema, "readOnly": True}


def read_only_except(fields, *writable):
    return {name: s if name in writable else read_only(s) for name, s in fields.items()}


def without(fields, *names):
    return {name: s for name, s in fields.items() if name not in names}


def resource(fields, *tail, **extra):
    """A top-level object: annotations, its own fields, then mixed-in schemas."""
    parts = [ref("Metadata"), obj(fields), *map(ref, tail)]
    return {"type": "object", "allOf": parts, **extra}


def relationship(fields, *tail, writable=("id",), required=True, **extra):
    """The expandable view of an object stored by reference; clients send only `id`."""
    part = obj(read_only_except(fields, *writable), required=("id",) if required else ())
    parts = [ref("MetadataReadOnly"), part, *map(ref, tail)]
    return {"type": "object", "allOf": parts, **extra}


def page(item, noun, read_only_fields=True):
    """The `{count, items}` body of a list operation."""
    count = integer(description=f"Number of {noun} matching the filter (with $count=true).")
    items = array_of(ref(item), description=f"The {noun} on this page.")
    if read_only_fields:
        count, items = read_only(count), read_only(items)
    return obj({"count": count, "items": items})


def exists(item, key):
    """The 409 body: which uniqueness rule failed, and the object already there."""
    message = read_only(string(description="The uniqueness rule that the request broke."))
    return obj({"message": message, key: ref(item)})


def status(states, reasons):
    return obj(
        {
            "state": string(enum=words(states)),
            "reason": string(enum=words(reasons), description="Machine-readable cause of the last transition."),
            "message": string(description="Human-readable detail."),
            "lastTransitionTime": date_time(),
        },
        required=("state", "reason", "lastTransitionTime"),
    )


def union(variants, **extra):
    """A discriminated union on `objectType`; upstream spells it `anyOf`, and so do we."""
    return {
        **extra,
        "anyOf": [ref(name) for name in variants.values()],
        "discriminator": {
            "propertyName": "objectType",
            "mapping": {tag: SCHEMAS + name for tag, name in variants.items()},
        },
    }


def tagged(fields, required=()):
    return obj({"objectType": string(), **fields}, required=("objectType", *required))


def family_config(list_key="scanners", **more):
    return obj({"enabled": boolean(), list_key: strings(), **more})


def family_result(key, item, **more):
    return obj({"status": ref("ScannerStatus"), **more, key: array_of(ref(item), nullable=True)})


def common_schemas():
    message = {"message": read_only(string())}
    return {
        "ApiResponse": obj(message, description="Body of every failed request."),
        "SuccessResponse": obj(message, description="Body of a successful request with nothing else to return."),
        "Metadata": obj({"annotations": ref("Annotations")}),
        "MetadataReadOnly": obj({"annotations": read_only(ref("Annotations"))}),
        "Annotations": array_of(
            obj({"key": string(), "value": string()}),
            description="Free-form key/value pairs attached to an object.",
        ),
        "CloudProvider": string(enum=words("AWS Azure GCP Docker External Kubernetes")),
        "ScanFindingsSummary": obj(
            {
                **{f"total{kind}": integer() for kind in words(
                    "Packages Exploits Malware Misconfigurations Rootkits Secrets InfoFinder Plugins"
                )},
                "totalVulnerabilities": ref("VulnerabilitySeveritySummary"),
            },
            description="Finding counts per family.",
        ),
        "VulnerabilitySeveritySummary": obj(
            {f"total{level}Vulnerabilities": integer() for level in words("Critical High Medium Low Negligible")},
            description="Vulnerability counts per severity.",
        ),
        "ScanType": string(enum=words("SBOM VULNERABILITY MALWARE SECRET MISCONFIGURATION ROOTKIT EXPLOIT INFOFINDER")),
    }


def scan_schemas():
    template = {
        "scope": string(description=SCOPE_HELP),
        "timeoutSeconds": integer(minimum=0, description="Abort the scan after this many seconds."),
        "maxParallelScanners": integer(minimum=1, maximum=20, description="Asset scans allowed to run at once."),
        "assetScanTemplate": ref("AssetScanTemplate"),
    }
    scan = {
        "id": string(),
        "name": string(),
        "revision": integer(),
        "startTime": date_time(),
        "endTime": date_time(),
        "scanConfig": ref("ScanConfigRelationship"),
        "assetIDs": strings(nullable=True, description="Assets this scan covers."),
        "status": ref("ScanStatus"),
        "summary": ref("ScanSummary"),
    }
    # Upstream repeats scope and assetScanTemplate inline before mixing in the
    # read-only template, leaving the inline scope writable; kept as published.
    scan_view = {**scan, "scope": template["scope"], "assetScanTemplate": template["assetScanTemplate"]}
    return {
        "Scans": page("Scan", "scans"),
        "ScanRelationship": relationship(
            scan_view, "ScanTemplateReadOnly", writable=("id", "scope"), description="A scan, stored by reference."
        ),
        "ScanTemplate": obj(template),
        # Upstream leaves maxParallelScanners writable here; kept as published.
        "ScanTemplateReadOnly": obj(read_only_except(template, "maxParallelScanners")),
        "Scan": resource(scan, "ScanTemplate", description="One run of a scan config over a set of assets."),
        "ScanStatus": status(
            "Pending Discovered InProgress Aborted Failed Done",
            "Created AssetsDiscovered AssetScansRunning Cancellation Error Timeout NothingToScan Success",
        ),
        "ScanSummary": {
            "description": "Finding counts plus progress of the scan's asset scans.",
            "allOf": [ref("ScanFindingsSummary"), obj({"jobsLeftToRun": integer(), "jobsCompleted": integer()})],
        },
        "ScanExists": exists("Scan", "scan"),
    }


def scan_config_schemas():
    config = {
        "id": string(),
        "revision": integer(),
        "name": string(),
        "scanTemplate": ref("ScanTemplate"),
        "scheduled": ref("RuntimeScheduleScanConfig"),
        "disabled": boolean(description="A disabled config starts no scans."),
    }
    return {
        "ScanFamiliesConfig": obj(
            {family: ref(config_name) for family, (config_name, _) in FAMILIES.items()},
            description="Which scanner families run, and with which scanners.",
        ),
        "InfoFinderConfig": family_config(),
        "VulnerabilitiesConfig": family_config(),
        "SBOMConfig": family_config("analyzers"),
        "MalwareConfig": family_config(yara_directories_to_scan=strings()),
        "RootkitsConfig": family_config(),
        "SecretsConfig": family_config(),
        "MisconfigurationsConfig": family_config(),
        "ExploitsConfig": family_config(),
        "PluginsConfig": family_config(
            "scanners_list",
            binary_mode=boolean(),
            binary_artifacts_path=string(),
            binary_artifacts_clean=boolean(),
            scanners_config={"type": "object", "additionalProperties": ref("PluginScannerConfig")},
        ),
        "PluginScannerConfig": obj({"image_name": string(), "config": string()}),
        "ScanConfigs": page("ScanConfig", "scan configs"),
        "ScannerInstanceCreationConfig": obj(
            {"useSpotInstances": boolean(), "retryMaxAttempts": integer(), "maxPrice": string()},
            required=("useSpotInstances",),
            description="How the provider creates the scanner instance.",
        ),
        "ScanConfigRelationship": relationship(config, description="A scan config, stored by reference."),
        "ScanConfig": resource(config, description="A scheduled, repeatable scan definition."),
        "ScanConfigExists": exists("ScanConfig", "scanConfig"),
        "RuntimeScheduleScanConfig": obj(
            {
                "cronLine": string(description="Cron expression, e.g. `5 4 * * 1`."),
                "operationTime": date_time(description="When the next scan starts."),
            },
            minProperties=1,
            additionalProperties=False,
            description="When to scan: once at operationTime, on cronLine ticks, or on ticks from operationTime on.",
        ),
    }


def asset_schemas():
    asset = {
        "id": string(),
        "revision": integer(),
        "assetInfo": ref("AssetType"),
        "firstSeen": date_time(),
        "terminatedOn": date_time(),
        "lastSeen": date_time(),
        "scansCount": integer(description="Scans ever run on this asset."),
        "summary": ref("ScanFindingsSummary"),
        "providers": array_of(ref("ProviderRelationship"), description="Providers that discovered the asset."),
    }
    tags = array_of(ref("Tag"), nullable=True)
    return {
        "SecurityGroup": obj({"id": string(minLength=1)}, required=("id",), additionalProperties=False),
        "Tag": obj({"key": string(), "value": string()}, required=("key", "value"), additionalProperties=False),
        "RootVolume": obj(
            # Quoted on purpose: YAML 1.1 readers turn bare Yes/No into booleans.
            {"sizeGB": integer(), "encrypted": string(enum=["Yes", "No", "Unknown"])},
            required=("sizeGB", "encrypted"),
            additionalProperties=False,
        ),
        "Assets": page("Asset", "assets"),
        "AssetCommon": {"type": "object"},
        "Asset": resource(asset, description="Something to scan: a VM, container, image, directory or pod."),
        # Upstream leaves firstSeen writable in the relationship; kept as published.
        "AssetRelationship": relationship(
            asset, writable=("id", "firstSeen"), description="An asset, stored by reference."
        ),
        "AssetExists": exists("Asset", "asset"),
        "AssetType": union({kind: kind for kind in ASSET_KINDS}, type="object"),
        "VMInfo": tagged(
            {
                "instanceID": string(),
                "instanceProvider": ref("CloudProvider"),
                "location": string(),
                "tags": tags,
                "securityGroups": array_of(ref("SecurityGroup"), nullable=True),
                "image": string(),
                "instanceType": string(),
                "platform": string(),
                "launchTime": date_time(),
                "rootVolume": ref("RootVolume"),
            },
            required=words("instanceID location instanceType image platform launchTime rootVolume"),
        ),
        "PodInfo": tagged({"podName": string(), "location": string()}),
        "ContainerInfo": tagged(
            {
                "containerName": string(),
                "location": string(),
                "image": ref("ContainerImageInfo"),
                "containerID": string(),
                "createdAt": date_time(),
                "labels": tags,
            },
            required=("containerID",),
        ),
        "ContainerImageInfo": tagged(
            {
                "imageID": string(),
                "repoTags": strings(),
                "repoDigests": strings(),
                "labels": tags,
                "architecture": string(),
                "os": string(),
                "size": integer(format="int64"),
            },
            required=("imageID",),
        ),
        "DirInfo": tagged({"dirName": string(), "location": string()}),
    }


def asset_scan_schemas():
    asset_scan = {
        "id": string(),
        "revision": integer(),
        "asset": ref("AssetRelationship"),
        "scan": ref("ScanRelationship"),
        "status": ref("AssetScanStatus"),
        **{family: ref(result) for family, (_, result) in FAMILIES.items()},
        "findingsProcessed": boolean(),
        "resourceCleanupStatus": ref("ResourceCleanupStatus"),
        "stats": ref("AssetScanStats"),
        "summary": ref("ScanFindingsSummary"),
        "provider": {**ref("ProviderRelationship"), "description": "Provider that runs this asset scan."},
    }
    template = {
        "scanFamiliesConfig": ref("ScanFamiliesConfig"),
        "scannerInstanceCreationConfig": ref("ScannerInstanceCreationConfig"),
    }
    scan_time = ref("AssetScanScanTime")
    return {
        "AssetScans": page("AssetScan", "asset scans"),
        "ResourceCleanupStatus": status(
            "Pending Skipped Failed Done",
            "AssetScanCreated NotApplicable DeletePolicy ProviderError InternalError Success",
        ),
        "AssetScanTemplate": obj(template),
        "AssetScan": resource(asset_scan, "AssetScanTemplate"),
        "AssetScanStatus": status(
            "Pending Scheduled ReadyToScan InProgress Aborted Failed Done",
            "Created Provisioning UnSupervised ResourcesReady ScannerIsRunning Cancellation Timeout Error "
            "AbortTimedOut Success",
        ),
        "ScannerStatus": status(
            "Pending InProgress Skipped Failed Done", "Scheduled Scanning NotScheduled Error Success"
        ),
        "AssetScanStats": obj(
            {
                "general": ref("AssetScanGeneralStats"),
                **{family: array_of(ref("AssetScanInputScanStats")) for family in FAMILIES},
            }
        ),
        # Upstream publishes this without any readOnly marker; kept as published.
        "AssetScanTemplateReadOnly": obj(template),
        # Upstream's relationship has no plugins or provider; kept as published.
        "AssetScanRelationship": relationship(without(asset_scan, "plugins", "provider"), "AssetScanTemplateReadOnly"),
        "AssetScanGeneralStats": obj({"scanTime": scan_time}, description="Timing of the whole asset scan."),
        "AssetScanInputScanStats": obj(
            {
                "type": string(description="Input kind, e.g. ROOTFS, DIR or IMAGE."),
                "path": string(description="Where the input was mounted."),
                "size": integer(format="int64", description="Input size in MB."),
                "scanTime": scan_time,
            },
            description="Statistics for one scanned input.",
        ),
        "AssetScanScanTime": obj({"startTime": date_time(), "endTime": date_time()}),
        "AssetScanExists": exists("AssetScan", "assetScan"),
    }


def provider_schemas():
    provider = {
        "id": string(),
        "revision": integer(),
        "displayName": string(description="Human-readable provider name."),
        "lastHeartbeatTime": date_time(description="When the provider last reported in."),
        "status": ref("ProviderStatus"),
        "providerRuntimeVersion": string(description="Runtime version the provider was built with."),
    }
    return {
        "Providers": page("Provider", "providers"),
        "Provider": resource(provider, description="A plugin that discovers assets and runs scanners."),
        # Upstream leaves `id` optional here, unlike the other relationships.
        "ProviderRelationship": relationship(provider, required=False, description="A provider, stored by reference."),
        "ProviderExists": exists("Provider", "provider"),
        "ProviderStatus": status("Healthy Unhealthy Unknown", "HeartbeatReceived NoHeartbeatReceived"),
    }


def result_schemas():
    return {
        "Package": obj(
            {
                **each(string, "name version type language"),
                "licenses": strings(nullable=True),
                "cpes": strings(nullable=True),
                "purl": string(),
            }
        ),
        "Vulnerability": obj(
            {
                "vulnerabilityName": string(),
                "description": string(),
                "severity": ref("VulnerabilitySeverity"),
                "links": strings(nullable=True),
                "distro": ref("VulnerabilityDistro"),
                "cvss": array_of(ref("VulnerabilityCvss"), nullable=True),
                "package": ref("Package"),
                "fix": ref("VulnerabilityFix"),
                "layerId": string(),
                "path": string(),
            }
        ),
        "VulnerabilityFix": obj({"versions": strings(nullable=True), "state": string()}),
        "VulnerabilityCvss": obj({**each(string, "version vector"), "metrics": ref("VulnerabilityCvssMetrics")}),
        "VulnerabilityCvssMetrics": obj(each(number, "baseScore exploitabilityScore impactScore")),
        "VulnerabilityDistro": obj(
            {
                "name": string(description="Distribution name."),
                "version": string(description="Major or major.minor version."),
                "IDLike": strings(nullable=True, description="ID_LIKE from /etc/os-release."),
            },
            description="The Linux distribution the vulnerability was found on.",
        ),
        "VulnerabilitySeverity": string(enum=words("CRITICAL HIGH MEDIUM LOW NEGLIGIBLE")),
        # Field names follow ClamAV's own summary output, hence the capitals.
        "ScannerSummary": obj(
            {
                **each(integer, "KnownViruses ScannedDirectories ScannedFiles InfectedFiles SuspectedFiles"),
                **each(string, "EngineVersion DataScanned DataRead TimeTaken"),
            }
        ),
        "ScannerMetadata": obj({"scannerName": string(), "scannerSummary": ref("ScannerSummary")}),
        "Malware": obj(
            {
                "malwareName": string(),
                "malwareType": ref("MalwareType"),
                "ruleName": string(),
                "path": string(description="File that holds the malware."),
            }
        ),
        "Rootkit": obj({"rootkitName": string(), "rootkitType": ref("RootkitType"), "message": string()}),
        "MisconfigurationSeverity": string(
            enum=[f"Misconfiguration{level}Severity" for level in words("High Medium Low Info")]
        ),
        "Misconfiguration": obj(
            {
                **each(string, "scannerName id location category message description remediation"),
                "severity": ref("MisconfigurationSeverity"),
            }
        ),
        "Secret": obj(
            {
                "description": string(),
                "filePath": string(description="File that holds the secret."),
                **each(integer, "startLine endLine startColumn endColumn"),
                "fingerprint": string(description="Not unique on its own."),
            }
        ),
        "Exploit": obj(
            {
                **each(string, "name title description cveID sourceDB"),
                "urls": strings(nullable=True),
            }
        ),
        "InfoFinderInfo": obj(
            {
                "scannerName": string(),
                "type": ref("InfoType"),
                "path": string(description="File the info came from."),
                "data": string(description="What the scanner found, e.g. a key fingerprint."),
            }
        ),
        "InfoType": string(
            enum=words(
                "SSHKnownHostFingerprint SSHAuthorizedKeyFingerprint SSHPrivateKeyFingerprint "
                "SSHDaemonKeyFingerprint UNKNOWN"
            )
        ),
        "MalwareType": string(),
        "RootkitType": string(enum=words("MEMORY KERNEL APPLICATION FIRMWARE UNKNOWN")),
    }


def family_result_schemas():
    scanners = strings(nullable=True)
    return {
        "SbomScan": family_result("packages", "Package"),
        "VulnerabilityScan": family_result("vulnerabilities", "Vulnerability"),
        "MalwareScan": family_result(
            "malware", "Malware", metadata=array_of(ref("ScannerMetadata"), nullable=True)
        ),
        "RootkitScan": family_result("rootkits", "Rootkit"),
        "SecretScan": family_result("secrets", "Secret"),
        "MisconfigurationScan": family_result("misconfigurations", "Misconfiguration", scanners=scanners),
        "InfoFinderScan": family_result("infos", "InfoFinderInfo", scanners=scanners),
        "PluginScan": family_result("findingInfos", "FindingInfo"),
        "ExploitScan": family_result("exploits", "Exploit"),
    }


def finding_schemas():
    finding = {
        "id": string(),
        "revision": integer(),
        "firstSeen": date_time(description="When a scan first found this."),
        "lastSeen": date_time(description="When a scan last found this."),
        "lastSeenBy": {**ref("AssetScanRelationship"), "description": "The asset scan that last found this."},
        "findingInfo": ref("FindingInfo"),
        "summary": ref("FindingSummary"),
    }
    asset_finding = {
        "id": string(),
        "asset": ref("AssetRelationship"),
        "finding": ref("FindingRelationship"),
        "firstSeen": date_time(description="When a scan first found this on the asset."),
        "lastSeen": date_time(description="When a scan last found this on the asset."),
        "invalidatedOn": date_time(description="When a newer scan no longer found it."),
        "revision": integer(),
    }
    variants = {
        f"{kind}FindingInfo": {
            "type": "object",
            "allOf": [ref(base), obj({"objectType": string()}, required=("objectType",))],
        }
        for kind, base in FINDING_KINDS.items()
    }
    return {
        "FindingExists": exists("Finding", "finding"),
        # Upstream does not mark these list fields readOnly, unlike the older lists.
        "Findings": page("Finding", "findings", read_only_fields=False),
        **variants,
        "Finding": resource(finding),
        "FindingRelationship": relationship(finding),
        "FindingSummary": obj({"updatedAt": string(), "totalVulnerabilities": ref("VulnerabilitySeveritySummary")}),
        "FindingInfo": union({kind: f"{kind}FindingInfo" for kind in FINDING_KINDS}),
        "AssetFindings": page("AssetFinding", "asset findings", read_only_fields=False),
        # Upstream names the conflicting object `finding` here, not `assetFinding`.
        "AssetFindingExists": exists("AssetFinding", "finding"),
        "AssetFinding": resource(asset_finding),
    }


def estimation_schemas():
    lifetime = {
        "ttlSecondsAfterFinished": integer(description="Seconds to keep this after it ends."),
        "deleteAfter": date_time(description="endTime + ttlSecondsAfterFinished; set by the server."),
    }
    scan_estimation = {
        "id": string(),
        "assetIDs": strings(description="Assets to estimate."),
        "status": ref("ScanEstimationStatus"),
        "startTime": date_time(),
        "endTime": date_time(),
        "assetScanEstimations": array_of(ref("AssetScanEstimationRelationship")),
        "scanTemplate": ref("ScanTemplate"),
        "summary": ref("ScanEstimationSummary"),
        "revision": integer(),
        **lifetime,
    }
    asset_scan_estimation = {
        "id": string(),
        "asset": ref("AssetRelationship"),
        "scanEstimation": ref("ScanEstimationRelationship"),
        "status": ref("AssetScanEstimationStatus"),
        "estimation": ref("Estimation"),
        "assetScanTemplate": ref("AssetScanTemplate"),
        "revision": integer(),
        "startTime": date_time(),
        "endTime": date_time(),
        **lifetime,
    }
    cost = number(format="float", description="Cost in US dollars.")
    return {
        "AssetScanEstimationStatus": status(
            "Pending Aborted Failed Done", "Created Cancellation Aborted Error Success"
        ),
        "ScanEstimations": page("ScanEstimation", "scan estimations", read_only_fields=False),
        "ScanEstimation": resource(scan_estimation),
        # Upstream never filled these two in beyond the id.
        "ScanEstimationRelationship": obj({"id": string()}),
        "ScanEstimationStatus": status(
            "Pending Discovered InProgress Aborted Failed Done",
            "Created SuccessfulDiscovery EstimationsRunning Cancellation Aborted Error TimeOut "
            "NothingToEstimate Success",
        ),
        "Estimation": obj(
            {
                "duration": integer(description="Seconds."),
                "size": integer(description="GB."),
                "cost": cost,
                "costBreakdown": array_of(ref("CostBreakdownComponent")),
            }
        ),
        "CostBreakdownComponent": obj(
            {"operation": string(), "cost": number(format="float")}, required=("operation", "cost")
        ),
        "AssetScanEstimations": page("AssetScanEstimation", "asset scan estimations", read_only_fields=False),
        "AssetScanEstimation": resource(asset_scan_estimation),
        "AssetScanEstimationRelationship": obj({"id": string()}),
        "AssetScanEstimationExists": exists("AssetScanEstimation", "assetScanEstimation"),
        "ScanEstimationSummary": obj(
            {
                "jobsLeftToRun": integer(),
                "jobsCompleted": integer(),
                "totalScanTime": integer(description="Seconds."),
                "totalScanSize": integer(description="GB."),
                "totalScanCost": cost,
            },
            description="Totals over the scan estimation's asset scan estimations.",
        ),
    }


def schemas():
    return {
        **common_schemas(),
        **scan_schemas(),
        **scan_config_schemas(),
        **asset_schemas(),
        **asset_scan_schemas(),
        **provider_schemas(),
        **result_schemas(),
        **family_result_schemas(),
        **finding_schemas(),
        **estimation_schemas(),
    }


# ---- operations -------------------------------------------------------------

ODATA_LIST = ("odataFilter", "odataSelect", "odataCount", "odataTop", "odataSkip", "odataExpand", "odataOrderBy")
ODATA_ITEM = ("odataSelect", "odataExpand")

# Registered in this order upstream; each entry is (singular, quirks).
# The quirks record where upstream's response codes differ between resources.
RESOURCES = (
    ("Asset", {"patch_invalid": False, "delete_invalid": True}),
    ("AssetScan", {"delete": False}),
    ("Scan", {}),
    ("ScanConfig", {}),
    ("Finding", {"if_match": False, "precondition": False, "conflict": ("post",)}),
    ("AssetFinding", {"precondition": False}),
    ("ScanEstimation", {"conflict": ()}),
    ("AssetScanEstimation", {}),
    ("Provider", {"delete_invalid": True}),
)


def lower_first(name):
    return name[0].lower() + name[1:]


def spaced(name):
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def id_param(singular):
    return lower_first(singular) + "ID"


def body(schema_name):
    return {"content": {"application/json": {"schema": ref(schema_name)}}}


def reply(description, schema_name="ApiResponse"):
    return {"description": description, **body(schema_name)}


def shared_response(name):
    return {"$ref": "#/components/responses/" + name}


def operation(operation_id, summary, responses, parameters=(), request=None):
    op = {"summary": summary, "operationId": operation_id}
    if parameters:
        op["parameters"] = [{"$ref": "#/components/parameters/" + name} for name in parameters]
    if request:
        op["requestBody"] = {**body(request), "required": True}
    op["responses"] = {
        **responses,
        "401": shared_response("Unauthorized"),
        "403": shared_response("Forbidden"),
        "default": shared_response("UnknownError"),
    }
    return op


def crud_paths(singular, *, delete=True, if_match=True, precondition=True,
               conflict=("post", "put", "patch"), patch_invalid=True, delete_invalid=False):
    """The list/create path and the item path of one collection, with upstream's codes."""
    plural, noun, param = singular + "s", spaced(singular), id_param(singular)
    found = {"200": reply("Success", singular)}
    invalid = {"400": reply(f"Invalid {noun}.")}
    missing = {"404": reply(f"No {noun} with this id.")}

    def write_codes(method, *parts):
        codes = {}
        for part in parts:
            codes.update(part)
        if method in conflict:
            codes["409"] = reply(f"Conflicts with an existing {noun}.", f"{singular}Exists")
        if precondition and method != "post":
            codes["412"] = reply("If-Match does not equal the stored revision.")
        return codes

    write_params = (param, "ifmatch") if if_match else (param,)
    collection = {
        "get": operation(
            f"Get{plural}", f"List {noun}s.",
            {"200": reply("Success", plural), "400": reply("Malformed OData query.")}, ODATA_LIST,
        ),
        "post": operation(
            f"Post{plural}", f"Create {noun}.",
            write_codes("post", {"201": reply(f"Created the {noun}.", singular)}, invalid), request=singular,
        ),
    }
    item = {
        "get": operation(f"Get{plural}{singular}ID", f"Get {noun}.", {**found, **missing}, (param, *ODATA_ITEM)),
        "put": operation(
            f"Put{plural}{singular}ID", f"Replace {noun}.",
            write_codes("put", found, invalid, missing), write_params, singular,
        ),
        "patch": operation(
            f"Patch{plural}{singular}ID", f"Merge-patch {noun} (RFC 7386).",
            write_codes("patch", found, invalid if patch_invalid else {}, missing), write_params, singular,
        ),
    }
    if delete:
        codes = {"200": shared_response("Success"), **(invalid if delete_invalid else {}), **missing}
        item["delete"] = operation(f"Delete{plural}{singular}ID", f"Delete {noun}.", codes, (param,))
    return {f"/{lower_first(plural)}": collection, f"/{lower_first(plural)}/{{{param}}}": item}


def paths():
    spec = {
        "get": operation(
            "GetOpenAPISpec", "Get this OpenAPI document.",
            # Upstream declares a JSON-encoded string but sends an object; we say object.
            {"200": {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}}},
        )
    }
    result = {"/openapi.json": spec}
    for singular, quirks in RESOURCES:
        result.update(crud_paths(singular, **quirks))
    return result


def parameters():
    query = {
        "odataFilter": ("$filter", "string"),
        "odataSelect": ("$select", "string"),
        "odataCount": ("$count", "boolean"),
        "odataTop": ("$top", "integer"),
        "odataSkip": ("$skip", "integer"),
        "odataExpand": ("$expand", "string"),
        "odataOrderBy": ("$orderby", "string"),
    }
    result = {key: {"in": "query", "name": name, "schema": {"type": kind}} for key, (name, kind) in query.items()}
    for singular, _ in RESOURCES:
        param = id_param(singular)
        result[param] = {"in": "path", "name": param, "required": True, "schema": {"type": "string"}}
    # The revision the client last saw; upstream types it as an integer, not an ETag string.
    result["ifmatch"] = {"in": "header", "name": "If-Match", "schema": {"type": "integer"}}
    return result


def responses():
    return {
        "Success": reply("Success message", "SuccessResponse"),
        "UnknownError": reply("Unexpected error"),
        "Unauthorized": reply("Missing or invalid bearer token."),
        "Forbidden": reply("The token is not allowed to do this."),
    }


@functools.cache
def _document():
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "VMClarity APIs",
            "description": "Inventory, scan scheduling and findings for agentless VM security scanning.",
            "version": "1.0.0",
        },
        "security": [{"bearerAuth": []}],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "responses": responses(),
            "parameters": parameters(),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_document() -> dict:
    """Return the API's OpenAPI document as plain JSON-serialisable dicts.

    The document is built once; each call returns a fresh deep copy, so a
    caller may change its copy (e.g. add a `servers` entry for the request's
    forwarded host) without affecting anyone else.
    """
    return copy.deepcopy(_document())
