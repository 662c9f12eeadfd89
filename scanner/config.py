"""The scanner's configuration: the original's `.families.yaml` format, checked strictly.

Keys are snake_case as in the original (`enabled`, `scanners_list` / `analyzers_list`
for sbom, `inputs`, `scanners_config` / `analyzers_config`). A scanner name we do not
have is an error that names the ones we do, never a silent skip, except for the
original's scanners that have no counterpart here (UNAVAILABLE: `cisdocker` is in the
original's default misconfiguration list, and the control plane passes it through):
such a name becomes a note in the family's status message ("cisdocker: not available
in this scanner") and the family runs its other scanners, or its defaults when none is
left. The original's names that do have a counterpart here under our name (trivy,
grype, gitleaks) are translated by the control plane; in a config file they are
errors that name ours.
"""

from dataclasses import dataclass, field

import yaml

from scanner.vocabulary import FAMILIES_BY_CONFIG_KEY

#: Scanners each family offers here, and the ones used when the config lists none.
SCANNERS = {
    "sbom": ("native", "syft"),
    "vulnerabilities": ("osv",),
    "exploits": ("exploitdb",),
    "secrets": ("secrets",),
    "malware": ("clam", "yara"),
    "rootkits": ("chkrootkit",),
    "misconfiguration": ("native", "lynis"),
    "infofinder": ("sshTopology",),
}
DEFAULT_SCANNERS = {
    "sbom": ("native",),
    "vulnerabilities": ("osv",),
    "exploits": ("exploitdb",),
    "secrets": ("secrets",),
    "malware": ("clam", "yara"),
    "rootkits": ("chkrootkit",),
    "misconfiguration": ("native",),
    "infofinder": ("sshTopology",),
}
#: The original's scanners that nothing here replaces: noted and skipped, not refused.
UNAVAILABLE = {
    "misconfiguration": ("cisdocker",),
}
INPUT_TYPES = ("rootfs", "dir", "sbom", "csv")
FILESYSTEM_INPUTS = ("rootfs", "dir")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Input:
    type: str
    path: str

    @classmethod
    def parse(cls, text):
        """Parse `TYPE:PATH` from the command line."""
        kind, sep, path = text.partition(":")
        if not sep or not path:
            raise ConfigError(f"--input {text!r}: expected TYPE:PATH, e.g. rootfs:/mnt/snapshot")
        return cls(_input_type(kind, f"--input {text!r}"), path)


@dataclass
class FamilyConfig:
    name: str
    scanners: tuple
    inputs: list = field(default_factory=list)
    scanners_config: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # input_from_sbom, input_from_vuln, ...
    notes: list = field(default_factory=list)    # for the family's status message

    def scanner_config(self, scanner):
        return self.scanners_config.get(scanner) or {}


def load(path):
    """Read a `.families.yaml` file; return {family name: FamilyConfig} of enabled families."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse(document or {}, source=str(path))


def parse(document, source="config"):
    """Check a decoded config document; return {family name: FamilyConfig} of enabled families."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping of families")
    families = {}
    for name, block in document.items():
        if name not in FAMILIES_BY_CONFIG_KEY:
            raise ConfigError(f"{source}: unknown family {name!r}; families are "
                              f"{', '.join(FAMILIES_BY_CONFIG_KEY)}")
        if block is None or not isinstance(block, dict):
            raise ConfigError(f"{source}: {name}: expected a mapping")
        if block.get("enabled"):
            families[name] = _family(name, block, f"{source}: {name}")
    return families


def _family(name, block, where):
    if name not in SCANNERS:
        raise ConfigError(f"{where}: this scanner does not provide the {name} family yet")
    list_key, config_key = ("analyzers_list", "analyzers_config") if name == "sbom" else \
        ("scanners_list", "scanners_config")
    scanners, notes = _scanners(name, block.get(list_key), where, list_key)
    scanners_config = block.get(config_key) or {}
    if not isinstance(scanners_config, dict):
        raise ConfigError(f"{where}: {config_key} must be a mapping of scanner name to settings")
    options = {key: value for key, value in block.items()
               if key not in ("enabled", list_key, config_key, "inputs")}
    return FamilyConfig(name, scanners, _inputs(block.get("inputs") or [], where), scanners_config, options,
                        notes)


def _scanners(name, listed, where, list_key):
    """(scanners to run, notes) from a family's scanner list; an unknown name is an error."""
    scanners, notes = [], []
    for scanner in listed or ():
        if scanner in UNAVAILABLE.get(name, ()):
            notes.append(f"{scanner}: not available in this scanner")
        elif scanner not in SCANNERS[name]:
            raise ConfigError(f"{where}: unknown scanner {scanner!r} in {list_key}; "
                              f"available: {', '.join(SCANNERS[name])}")
        elif scanner not in scanners:
            scanners.append(scanner)
    if not scanners:
        scanners = list(DEFAULT_SCANNERS[name])
        if notes:
            notes.append(f"ran {', '.join(scanners)} instead")
    return tuple(scanners), notes


def _inputs(items, where):
    if not isinstance(items, list):
        raise ConfigError(f"{where}: inputs must be a list")
    inputs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            raise ConfigError(f"{where}: inputs[{index}] needs `input` and `input_type`")
        inputs.append(Input(_input_type(item.get("input_type"), f"{where}: inputs[{index}]"), item["input"]))
    return inputs


def _input_type(kind, where):
    if kind not in INPUT_TYPES:
        raise ConfigError(f"{where}: unsupported input type {kind!r}; supported: {', '.join(INPUT_TYPES)}")
    return kind
