"""The scanner's `.families.yaml` for one asset scan (anatomy §2.5, §4.3).

Built from the scan template's ScanFamiliesConfig (API spelling: `{sbom: {enabled,
analyzers}, vulnerabilities: {enabled, scanners}, malware: {..., yara_directories_to_scan},
...}`) plus the `VMCLARITY_SCANNER_*` settings below: addresses of the helper servers
for a fleet, or local data for one machine.

Scanner names of the original map to ours where one of ours does the same job
(grype and trivy match vulnerabilities: `osv`; trivy, windows and gomod catalogue
packages: `native`); a name we don't know is passed through unchanged, so the
scanner refuses it with a message naming the ones it has. An empty list means our
defaults. A family whose data is not configured (vulnerabilities with neither an
OSV path nor a URL) still goes in: the scanner reports it Failed, saying which
setting is missing, which is more useful than a family that silently never ran.

The secrets family gets the installation's fingerprint key: HMAC-SHA256 of the
installation secret (VMCLARITY_SECRET_KEY, else `<data dir>/secret-key`) over
"secrets-fingerprint". Scanners never see the secret itself; the key is the same in
every scan, so a secret found again keeps its finding; and fingerprints from one
installation are no use for testing password guesses without it. Changing the secret
changes every fingerprint, so findings found before show up as new ones.
"""

import functools
import hmac
import os

from app import config as app_config
from scanner.vocabulary import FAMILIES_BY_API_KEY

PREFIX = "VMCLARITY_SCANNER_"

#: Every scanner setting: (default, meaning). README's scanner settings table mirrors this.
SCANNER_SETTINGS = {
    "VMCLARITY_SCANNER_VULNDB_URL": (
        "", "vulnerability DB server (helper) serving `<url>/<Ecosystem>/all.zip`; "
            "vulnerabilities `osv.server_url`"),
    "VMCLARITY_SCANNER_EXPLOITDB_URL": (
        "", "exploit DB server (helper), asked `GET <url>/cves/<CVE>`; exploits `exploit_db.base_url`"),
    "VMCLARITY_SCANNER_FRESHCLAM_MIRROR_URL": (
        "", "ClamAV signature mirror (helper) for freshclam; malware `clam.freshclam_mirror_url`"),
    "VMCLARITY_SCANNER_YARA_RULES_URL": (
        "", "YARA rule server (helper) serving compiled rules; malware `yara.compiled_rule_url`"),
    "VMCLARITY_SCANNER_OSV_DB_PATH": (
        "", "local OSV data: a directory of `<Ecosystem>/all.zip` files; vulnerabilities `osv.db_path`"),
    "VMCLARITY_SCANNER_EXPLOITDB_CSV_PATH": (
        "", "local exploit-db `files_exploits.csv`; exploits `exploit_db.csv_path`"),
    "VMCLARITY_SCANNER_CLAM_DATABASE_DIR": (
        "", "local ClamAV signature directory (`*.cvd`, `*.cld`, ...); malware `clam.database_dir`"),
    "VMCLARITY_SCANNER_YARA_RULE_PATHS": (
        "", "local YARA rule files or directories, separated by `:`; malware `yara.rule_paths`"),
}

#: API (original) scanner name -> our scanner names, per `.families.yaml` family key.
SCANNER_NAMES = {
    "sbom": {"syft": ["syft"], "trivy": ["native"], "windows": ["native"], "gomod": ["native"]},
    "vulnerabilities": {"grype": ["osv"], "trivy": ["osv"]},
    "secrets": {"gitleaks": ["secrets"]},
}

#: What runs when the API lists no scanner. A family missing here gets no list at
#: all, so the scanner picks its own default (misconfiguration: lynis is opt-in).
DEFAULT_SCANNERS = {
    "sbom": ["native"],
    "vulnerabilities": ["osv"],
    "exploits": ["exploitdb"],
    "secrets": ["secrets"],
    "malware": ["clam", "yara"],
    "rootkits": ["chkrootkit"],
    "infofinder": ["sshTopology"],
}

#: What the installation secret is hashed over to make the secrets fingerprint key.
FINGERPRINT_PURPOSE = b"secrets-fingerprint"

#: Plugins keep the original's own keys; they are copied as they are.
PLUGIN_KEYS = ("scanners_config", "binary_mode", "binary_artifacts_path", "binary_artifacts_clean")


def scanner_settings(environ=None):
    """The scanner settings from the environment, keyed without the prefix, in lower case.

    `yara_rule_paths` is a list; every other value is a string ("" when unset). Besides
    them, where the installation secret comes from (`secret_key`, `data_dir`: the
    control plane's own settings), read only when a scan needs the fingerprint key.
    """
    environ = os.environ if environ is None else environ
    settings = {name[len(PREFIX):].lower(): environ.get(name, default)
                for name, (default, _) in SCANNER_SETTINGS.items()}
    settings["yara_rule_paths"] = _paths(settings["yara_rule_paths"])
    installation = app_config.from_environment(environ)
    settings.update(secret_key=installation["SECRET_KEY"], data_dir=installation["DATA_DIR"])
    return settings


def fingerprint_key(settings):
    """The installation's key for secrets fingerprints; "" when `settings` name no installation."""
    if not (settings.get("secret_key") or settings.get("data_dir")):
        return ""
    return _fingerprint_key(settings.get("secret_key"), settings.get("data_dir"))


@functools.cache  # the same for a process's life: not a file read and an HMAC per provisioned scan
def _fingerprint_key(configured, data_dir):
    secret = app_config.secret_key(configured, data_dir)
    return hmac.new(secret.encode(), FINGERPRINT_PURPOSE, "sha256").hexdigest()


def scanner_config(families_config, settings):
    """The `.families.yaml` document (a dict) for one asset scan; enabled families only."""
    document = {}
    for api_key, block in (families_config or {}).items():
        family = FAMILIES_BY_API_KEY.get(api_key)
        if family is None or not isinstance(block, dict) or not block.get("enabled"):
            continue
        document[family.config_key] = _family(family.config_key, block, settings)
    return document


def _family(key, block, settings):
    if key == "plugins":
        plugins = {"enabled": True, "scanners_list": list(block.get("scanners_list") or [])}
        plugins.update({name: block[name] for name in PLUGIN_KEYS if name in block})
        return plugins
    list_key, config_key = ("analyzers_list", "analyzers_config") if key == "sbom" else \
        ("scanners_list", "scanners_config")
    config = {"enabled": True}
    scanners = _scanners(key, block.get("analyzers" if key == "sbom" else "scanners"))
    if scanners:
        config[list_key] = scanners
    scanners_config = _scanners_config(key, block, settings)
    if scanners_config:
        config[config_key] = scanners_config
    # Chain the families as the original does: packages from the SBOM, CVEs from the matches.
    if key == "vulnerabilities":
        config["input_from_sbom"] = True
    if key == "exploits":
        config["input_from_vuln"] = True
    return config


def _scanners(key, names):
    """Our scanner names for the API's list, in order, without repeats."""
    names = names or DEFAULT_SCANNERS.get(key, [])
    ours = []
    for name in names:
        for scanner in SCANNER_NAMES.get(key, {}).get(name, [name]):
            if scanner not in ours:
                ours.append(scanner)
    return ours


def _scanners_config(key, block, settings):
    if key == "vulnerabilities":
        return {"osv": _set(db_path=settings.get("osv_db_path"), server_url=settings.get("vulndb_url"))}
    if key == "exploits":
        return {"exploit_db": _set(base_url=settings.get("exploitdb_url"),
                                   csv_path=settings.get("exploitdb_csv_path"))}
    if key == "secrets":
        secrets_key = fingerprint_key(settings)
        return {"secrets": {"fingerprint_key": secrets_key}} if secrets_key else {}
    if key == "malware":
        rule_paths = settings.get("yara_rule_paths")
        if isinstance(rule_paths, str):
            rule_paths = _paths(rule_paths)
        return {
            "clam": _set(database_dir=settings.get("clam_database_dir"),
                         freshclam_mirror_url=settings.get("freshclam_mirror_url")),
            "yara": _set(rule_paths=rule_paths, compiled_rule_url=settings.get("yara_rules_url"),
                         directories_to_scan=list(block.get("yara_directories_to_scan") or [])),
        }
    return {}


def _set(**values):
    """The values that are set: a missing setting is left out, not written as empty."""
    return {name: value for name, value in values.items() if value}


def _paths(text):
    return [path for path in (text or "").split(":") if path]
