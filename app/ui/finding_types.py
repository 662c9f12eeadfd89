"""The finding types of the Findings pages: their tabs, columns, cells and search fields.

Pure presentation over Finding documents (no database): the table, the detail
page and the CSV/SARIF exports all read a finding through these definitions, so
a column means the same thing everywhere. Every value here came from a scanned
disk and is attacker-controlled: cells are plain text, escaped by whoever shows them.
"""

from dataclasses import dataclass

from app.ui.listing import Column
from scanner.vocabulary import VULNERABILITY_SEVERITIES

FIRST_SEEN = Column("firstSeen", "First seen", "firstSeen")
LAST_SEEN = Column("lastSeen", "Last seen", "lastSeen")
#: Column keys whose cells are file paths (shown monospaced, exported as SARIF locations).
PATH_KEYS = frozenset({"path", "filePath", "location", "purl"})
#: Secret fields a page or an export may show: never anything that could hold the secret itself.
SECRET_FIELDS = ("description", "filePath", "startLine", "endLine", "startColumn", "endColumn", "fingerprint")
#: Stored severities, highest first (the API's enums; the other finding types have none).
MISCONFIGURATION_SEVERITIES = tuple(f"Misconfiguration{level}Severity" for level in ("High", "Medium", "Low", "Info"))


@dataclass(frozen=True)
class FindingType:
    slug: str                # ?type=<slug>
    label: str               # the tab
    object_type: str         # findingInfo/objectType
    columns: tuple           # Columns; the first one names the finding and links to it
    search: tuple            # findingInfo paths the search box looks in
    rule_fields: tuple       # findingInfo fields naming the SARIF rule, first present wins
    path_field: str = None   # findingInfo field holding a file path, for SARIF locations
    severities: tuple = ()   # stored findingInfo/severity values, highest first

    def column(self, key):
        return next(column for column in self.columns if column.key == key)

    @property
    def severity_words(self):
        """The severities as the table shows them and ?severity= names them, highest first."""
        return tuple(_severity_word(value) for value in self.severities)

    def stored_severity(self, word):
        """The stored severity a word names (case aside), or None when this type has no such severity."""
        return next((value for value in self.severities if _severity_word(value) == word.upper()), None)


def _info(name, label, sortable=True):
    return Column(name, label, f"findingInfo/{name}" if sortable else None)


def _severity(levels):
    """The Severity column: it sorts by rank (unknown values lowest), not alphabetically."""
    return Column("severity", "Severity", "findingInfo/severity", rank=tuple(reversed(levels)))


TYPES = (
    FindingType("vulnerabilities", "Vulnerabilities", "Vulnerability", (
        _info("vulnerabilityName", "Vulnerability"),
        _severity(VULNERABILITY_SEVERITIES),
        Column("packageName", "Package", "findingInfo/package/name"),
        Column("packageVersion", "Version", "findingInfo/package/version"),
        Column("fixVersions", "Fix versions"),
        FIRST_SEEN, LAST_SEEN),
        search=("vulnerabilityName", "package/name", "description"),
        rule_fields=("vulnerabilityName",), path_field="path", severities=VULNERABILITY_SEVERITIES),
    FindingType("exploits", "Exploits", "Exploit", (
        _info("name", "Name"), _info("title", "Title"), _info("cveID", "CVE"), _info("sourceDB", "Source DB"),
        Column("urls", "URLs"), FIRST_SEEN, LAST_SEEN),
        search=("name", "title", "cveID", "description"),
        rule_fields=("cveID", "name")),
    FindingType("misconfigurations", "Misconfigurations", "Misconfiguration", (
        _info("id", "Id"), _info("scannerName", "Scanner"), _info("category", "Category"),
        _severity(MISCONFIGURATION_SEVERITIES), _info("message", "Message"), _info("location", "Location"),
        FIRST_SEEN, LAST_SEEN),
        search=("id", "category", "message", "location", "scannerName"),
        rule_fields=("id",), path_field="location", severities=MISCONFIGURATION_SEVERITIES),
    FindingType("secrets", "Secrets", "Secret", (
        _info("filePath", "File"), Column("position", "Line:column", "findingInfo/startLine"),
        _info("fingerprint", "Fingerprint"), _info("description", "Description"), FIRST_SEEN, LAST_SEEN),
        search=("filePath", "description", "fingerprint"),
        rule_fields=("description",), path_field="filePath"),
    FindingType("malware", "Malware", "Malware", (
        _info("malwareName", "Name"), _info("malwareType", "Type"), _info("ruleName", "Rule"), _info("path", "Path"),
        FIRST_SEEN, LAST_SEEN),
        search=("malwareName", "ruleName", "path"),
        rule_fields=("malwareName", "ruleName"), path_field="path"),
    FindingType("rootkits", "Rootkits", "Rootkit", (
        _info("rootkitName", "Name"), _info("rootkitType", "Type"), _info("message", "Message"),
        FIRST_SEEN, LAST_SEEN),
        search=("rootkitName", "message"),
        rule_fields=("rootkitName",)),
    FindingType("packages", "Packages", "Package", (
        _info("name", "Name"), _info("version", "Version"), _info("purl", "purl"),
        Column("kind", "Language / type", "findingInfo/language"), Column("licenses", "Licenses"),
        FIRST_SEEN, LAST_SEEN),
        search=("name", "purl"),
        rule_fields=("name",)),
    FindingType("ssh-topology", "SSH topology", "InfoFinder", (
        _info("type", "Type"), _info("data", "Data"), _info("path", "Path"), _info("scannerName", "Scanner"),
        FIRST_SEEN, LAST_SEEN),
        search=("data", "path"),
        rule_fields=("type",), path_field="path"),
)
TYPES_BY_SLUG = {finding_type.slug: finding_type for finding_type in TYPES}
TYPES_BY_OBJECT_TYPE = {finding_type.object_type: finding_type for finding_type in TYPES}
DEFAULT_TYPE = TYPES[0]


def _text(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={_text(item)}" for key, item in value.items())
    return str(value)


def cvss_score(info):
    """The highest CVSS base score of a vulnerability, or None."""
    scores = [((entry or {}).get("metrics") or {}).get("baseScore") for entry in info.get("cvss") or []
              if isinstance(entry, dict)]
    scores = [score for score in scores if isinstance(score, (int, float))]
    return max(scores) if scores else None


def severity(info):
    """A finding's severity in one word (CRITICAL, HIGH, ...), or None."""
    value = info.get("severity")
    return _severity_word(value) if isinstance(value, str) else None


def _severity_word(value):
    # Misconfigurations spell it MisconfigurationHighSeverity.
    return value.removeprefix("Misconfiguration").removesuffix("Severity").upper()


def _position(info):
    line, column = info.get("startLine"), info.get("startColumn")
    return "" if line is None else f"{line}:{column}" if column is not None else str(line)


_CELLS = {
    "severity": lambda info: " ".join(filter(None, (severity(info), _text(cvss_score(info))))),
    "packageName": lambda info: _text((info.get("package") or {}).get("name")),
    "packageVersion": lambda info: _text((info.get("package") or {}).get("version")),
    "fixVersions": lambda info: _text((info.get("fix") or {}).get("versions")),
    "position": _position,
    "kind": lambda info: " / ".join(filter(None, (_text(info.get("language")), _text(info.get("type"))))),
}


def cell(finding, column):
    """The plain text a finding shows in `column` (tables and CSV alike)."""
    if column.key in ("firstSeen", "lastSeen"):
        return _text(finding.get(column.key))
    info = finding.get("findingInfo") or {}
    if column.key in _CELLS:
        return _CELLS[column.key](info)
    return _text(info.get(column.key))


def title(finding):
    """What names a finding: its first column, else its type."""
    finding_type = type_of(finding)
    return cell(finding, finding_type.columns[0]) or finding_type.label if finding_type else "finding"


def type_of(finding):
    return TYPES_BY_OBJECT_TYPE.get((finding.get("findingInfo") or {}).get("objectType"))


def detail_fields(info):
    """[(field, value)] of a findingInfo for the detail page; a secret shows only its safe fields."""
    if info.get("objectType") == "Secret":
        return [(name, info[name]) for name in SECRET_FIELDS if info.get(name) is not None]
    return [(name, value) for name, value in info.items() if name != "objectType" and value not in (None, "", [])]
