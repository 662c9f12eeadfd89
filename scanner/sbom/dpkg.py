"""Debian and Ubuntu packages: /var/lib/dpkg/status, distroless status.d/*, copyright licences."""

import re

from scanner.sbom.common import Findings, clean, header_fields, make_purl, package, stanzas
from scanner.walker import WholeFileVisitor, read_in_root

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
DOC = "/usr/share/doc/"
MAX_STATUS = 64 << 20  # a desktop with 5,000 packages has a ~10 MiB status file
MAX_STANZA = 1 << 20
MAX_COPYRIGHT = 1 << 20
MAX_DOC_LOOKUPS = 1000  # targeted reads for doc dirs that are symlinks (the walk does not follow them)

_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_COMMON_LICENSE = re.compile(r"/usr/share/common-licenses/([0-9A-Za-z_.+-]+)")


def parse_status(data, findings, require_status=True):
    """Installed package records from a status file: dicts of name, version, arch, source."""
    blocks, too_big = stanzas(data, MAX_STANZA)
    findings.skip("stanza too large", too_big)
    records = []
    for block in blocks:
        record = _record(block, require_status)
        if isinstance(record, str):
            findings.skip(record)
        else:
            records.append(record)
    return records


def _record(block, require_status):
    """One stanza as a record, or the reason it is skipped."""
    status = block.get("Status")
    # "install ok installed", "hold ok installed", "deinstall ok installed" are all on disk.
    # Distroless status.d entries carry no Status line: every one of them is installed.
    if status is not None or require_status:
        words = (status or "").split()
        if len(words) != 3 or words[2] != "installed":
            return "not installed"
    name, version = clean(block.get("Package"), 128), clean(block.get("Version"), 256)
    if not name or " " in name:
        return "bad package name"
    if not version or " " in version:
        return "bad version"
    source, source_version = name, ""
    match = _SOURCE.match(clean(block.get("Source", "")))
    if match:
        source, source_version = match.group(1), match.group(2) or ""
    return {"name": name, "version": version, "arch": clean(block.get("Architecture"), 32),
            "source": source, "source_version": source_version}


def parse_copyright(data):
    """Licence names from a copyright file: DEP-5 'License:' fields and common-licenses references."""
    found = []
    for key, value in header_fields(data, stop_at_blank=False, limit=MAX_COPYRIGHT):
        if key.lower() == "license" and value:
            found.append(value)
    text = data[:MAX_COPYRIGHT].decode("utf-8", errors="replace")
    found += [name.rstrip(".") for name in _COMMON_LICENSE.findall(text)]  # ".../GPL." ends a sentence
    return found


def purl(record, distro):
    """pkg:deb/<debian|ubuntu|...>/<name>@<version>?arch=..&distro=..&upstream=.. (syft's convention)."""
    namespace = distro.id if distro and distro.like("debian") else "debian"
    upstream = ""
    if record["source"] != record["name"] or record["source_version"]:
        upstream = record["source"]
        if record["source_version"]:
            upstream += "@" + record["source_version"]
    qualifiers = {"arch": record["arch"], "upstream": upstream, "distro": distro.qualifier() if distro else ""}
    return make_purl("deb", namespace, record["name"], record["version"], qualifiers)


class DpkgVisitor(WholeFileVisitor):
    """Collects status files and copyright files during the walk; packages are built at the end,
    once every copyright file has been seen."""

    name = "dpkg"
    max_file_size = MAX_STATUS

    def __init__(self, root, distro):
        self.root, self.distro = root, distro
        self.findings = Findings(self.name)
        self.records = []  # (record, path of the status file)
        self.copyrights = {}  # package name -> licences

    def wants(self, entry):
        path = entry.path
        if path == STATUS or (path.startswith(STATUS_D) and "/" not in path[len(STATUS_D):]):
            return not path.endswith(".md5sums") and self.findings.fits(entry, MAX_STATUS)
        return _doc_package(path) is not None and self.findings.fits(entry, MAX_COPYRIGHT)

    def handle(self, entry, data):
        doc_package = _doc_package(entry.path)
        if doc_package is not None:
            self.copyrights[doc_package] = parse_copyright(data)
            return
        # status.d/ holds one file per package (distroless); the records inside may lack Status.
        records = parse_status(data, self.findings, require_status=entry.path == STATUS)
        self.records += [(record, entry.path) for record in records]

    def finish(self):
        self.findings.found.clear()  # finish() may be called again; build from scratch
        lookups = 0
        for record, path in self.records:
            name = record["name"]
            if name not in self.copyrights and lookups < MAX_DOC_LOOKUPS:
                lookups += 1
                self.copyrights[name] = self._read_copyright(name)
            pkg = package(name, record["version"], "deb", "", purl(record, self.distro),
                          licenses=self.copyrights.get(name, []))
            self.findings.add(pkg, path)

    def _read_copyright(self, name):
        """A copyright file the walk did not feed us: its doc dir is a symlink (libgcc-s1 -> gcc-12-base)."""
        try:
            return parse_copyright(read_in_root(self.root, f"{DOC}{name}/copyright", limit=MAX_COPYRIGHT))
        except (OSError, ValueError):
            return []


def _doc_package(path):
    """'libc6' for /usr/share/doc/libc6/copyright, else None."""
    if path.startswith(DOC) and path.endswith("/copyright"):
        middle = path[len(DOC):-len("/copyright")]
        if middle and "/" not in middle:
            return middle
    return None
