"""What every native misconfiguration check shares: the result shape and config-file lines."""

from dataclasses import dataclass

SCANNER_NAME = "native"

HIGH = "MisconfigurationHighSeverity"
MEDIUM = "MisconfigurationMediumSeverity"
LOW = "MisconfigurationLowSeverity"
INFO = "MisconfigurationInfoSeverity"


@dataclass(frozen=True)
class Check:
    """One kind of misconfiguration; `finding()` makes an API Misconfiguration of it.

    The API identifies a finding by (scannerName, id, message), so a message names what
    differs between two occurrences (the account, the file, the value) and never a line
    number: that goes in `location`.
    """

    id: str
    category: str
    severity: str
    description: str
    remediation: str

    def finding(self, location, message, severity=None):
        return {
            "scannerName": SCANNER_NAME,
            "id": self.id,
            "location": location,
            "category": self.category,
            "message": message,
            "description": self.description,
            "remediation": self.remediation,
            "severity": severity or self.severity,
        }


def at(path, line=None):
    """A location: the in-root path, with ':line' when there is one."""
    return f"{path}:{line}" if line else path


def text_lines(data):
    """(line number, stripped line) of a config file's non-blank lines that are not '#' comments."""
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def mode_text(mode):
    return f"{mode & 0o7777:04o}"
