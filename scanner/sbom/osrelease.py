"""The OS distribution of a root, from /etc/os-release (or /usr/lib/os-release).

/etc/os-release is usually a relative symlink to ../usr/lib/os-release, which the walk does
not follow, so this is one of the few files read directly, through read_in_root (which
resolves links as if the root were chrooted).
"""

import re
from dataclasses import dataclass

from scanner.walker import Visitor, read_in_root

PATHS = ("/etc/os-release", "/usr/lib/os-release")
MAX_SIZE = 64 * 1024  # a real os-release is under 1 KiB


@dataclass(frozen=True)
class Distro:
    id: str  # ID, e.g. debian, ubuntu, alpine, rhel
    version_id: str  # VERSION_ID, e.g. 12, 22.04, 3.19.1; '' on rolling distributions
    id_like: tuple = ()  # ID_LIKE words

    def like(self, family):
        """True for the family itself and for distributions that say they are like it."""
        return self.id == family or family in self.id_like

    def qualifier(self):
        """The purl `distro` qualifier, as syft writes it: <id>-<version_id>."""
        return "-".join(part for part in (self.id, self.version_id) if part)

    def api(self):
        """The API's VulnerabilityDistro object."""
        return {"name": self.id, "version": self.version_id, "IDLike": list(self.id_like)}


def parse(data):
    """A Distro from os-release bytes, or None when there is no ID."""
    values = {}
    for line in data[:MAX_SIZE].decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.isidentifier():
            values[key] = unquote(value.strip())
    distro_id = _word(values.get("ID", ""))
    if not distro_id:
        return None
    like = tuple(w for w in (_word(x) for x in values.get("ID_LIKE", "").split()) if w)
    return Distro(distro_id, _word(values.get("VERSION_ID", "")), like[:16])


def unquote(value):
    """Shell-style quoted value as os-release(5) allows: one pair of quotes, backslash escapes."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def _word(value):
    """IDs are lower-case words (os-release(5)); anything else is dropped, never passed on."""
    value = value.strip().lower()
    ok = value and len(value) <= 64 and all(ch.isalnum() or ch in "._-~+" for ch in value)
    return value if ok and value.isascii() else ""


def detect(root):
    """The root's Distro, or None when neither os-release file is readable or says nothing."""
    for path in PATHS:
        try:
            data = read_in_root(root, path, limit=MAX_SIZE)
        except (OSError, ValueError):
            continue
        distro = parse(data)
        if distro:
            return distro
    return None


class OsReleaseVisitor(Visitor):
    """Carries the root's distribution through a walk, for collect(); it reads nothing from the walk.

    The detection happens up front (a targeted read) because the package cataloguers need
    the distro for their purls, and /etc/os-release is a symlink the walk would not follow.
    """

    name = "os-release"

    def __init__(self, root):
        self.distro = detect(root)
