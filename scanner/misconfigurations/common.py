"""What every native misconfiguration check shares: the result shape, config-file lines and in-root reads."""

import os
import stat
from dataclasses import dataclass

from scanner.safe_fs import open_dir_at
from scanner.walker import display, read_in_root

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


class RootFiles:
    """Config files by in-root path: the bytes the walk handed over, else a targeted read in the root.

    A targeted read follows links the way a chroot would (an absolute target restarts at the
    root, '..' stops there), so nothing outside the scanned root is ever read; `read()`
    gives None for a name that is missing or is not a regular file (FIFO, device, loop).
    """

    def __init__(self, root, limit):
        self.root = root
        self.limit = limit
        self.files = {}  # raw in-root path -> (display path, bytes), or None

    def add(self, entry, data):
        self.files[entry.path] = (entry.display_path, data)

    def read(self, path):
        """(display path, bytes) of the file at in-root `path`, or None."""
        if path not in self.files:
            try:
                self.files[path] = (display(path), read_in_root(self.root, path, limit=self.limit))
            except OSError:
                self.files[path] = None
        return self.files[path]

    def known(self):
        """In-root paths of the files there are bytes of: all the walk handed over, and what was read since."""
        return [path for path, found in self.files.items() if found is not None]


MAX_LISTED = 10_000  # names of one configuration directory


def list_dir(root, path):
    """Sorted (name, lstat, link target or None) of the entries of the in-root directory `path`.

    Every component is opened without following links, as the walk does (a directory that
    is a link is not listed: []), and at most MAX_LISTED names are looked at.
    """
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    fd = root_fd
    try:
        for name in path.strip("/").split("/"):
            if name in ("", ".", ".."):
                return []
            fd, parent = open_dir_at(name, fd), fd
            os.close(parent)
        found = []
        for name in sorted(os.listdir(fd))[:MAX_LISTED]:
            if "/" not in name and "\0" not in name:
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(info.st_mode) else None
                except OSError:  # gone or changed since the listing
                    continue
                found.append((name, info, target))
        return found
    except OSError:
        return []
    finally:
        os.close(fd)
