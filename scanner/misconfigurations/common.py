"""What every native misconfiguration check shares: the result shape, config-file lines and in-root reads."""

import os
from dataclasses import dataclass
from itertools import islice

from scanner.safe_fs import open_dir_in_root, read_in_root
from scanner.walker import display

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


def read_config(root, path, limit):
    """(display path, bytes) of the regular file at in-root `path`; None when there is none or it is larger.

    The read follows links the way a chroot would (an absolute target restarts at the
    root, '..' stops there), so nothing outside the scanned root is ever read; a FIFO,
    device or loop is never a file here.
    """
    try:
        return display(path), read_in_root(root, path, limit=limit)
    except OSError:
        return None


class RootFiles:
    """Config files by in-root path: the bytes the walk handed over, else a targeted read_config()."""

    def __init__(self, root, limit):
        self.root = root
        self.limit = limit
        self.files = {}  # raw in-root path -> (display path, bytes), or None

    def add(self, entry, data):
        self.files[entry.path] = (entry.display_path, data)

    def read(self, path):
        """(display path, bytes) of the file at in-root `path`, or None."""
        if path not in self.files:
            self.files[path] = read_config(self.root, path, self.limit)
        return self.files[path]

    def known(self):
        """In-root paths of the files there are bytes of: all the walk handed over, and what was read since."""
        return [path for path, found in self.files.items() if found is not None]


MAX_LISTED = 10_000  # names of one configuration directory


def list_dir(root, path, notes):
    """Sorted names of the entries of the in-root directory `path`.

    Every component is opened without following links, as the walk does (a directory that
    is a link is not listed: []). At most MAX_LISTED names are read, in the directory's
    own order, so a hostile directory costs no more; `notes` says when there were more.
    """
    try:
        fd = open_dir_in_root(root, path)
    except OSError:
        return []
    try:
        with os.scandir(fd) as listing:
            names = [item.name for item in islice(listing, MAX_LISTED + 1)]
    except OSError:
        return []
    finally:
        os.close(fd)
    if len(names) > MAX_LISTED:
        del names[MAX_LISTED:]
        notes.append(f"native: {display(path)} has more than {MAX_LISTED} entries; only {MAX_LISTED} were read")
    return sorted(names)
