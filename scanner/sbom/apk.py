"""Alpine (and Wolfi, Chainguard) packages: /lib/apk/db/installed."""

from scanner.sbom.common import Findings, clean, make_purl, package, stanzas
from scanner.walker import WholeFileVisitor

INSTALLED = "/lib/apk/db/installed"
MAX_SIZE = 64 << 20
MAX_STANZA = 4 << 20  # a stanza lists every file of the package (F:/R: lines)


def parse_installed(data, findings):
    """Records of name, version, arch, licences, origin from an apk installed database."""
    blocks, too_big = stanzas(data, MAX_STANZA)
    findings.skip("stanza too large", too_big)
    records = []
    for block in blocks:
        name, version = clean(block.get("P"), 128), clean(block.get("V"), 128)
        if not name or " " in name or not version or " " in version:
            findings.skip("missing or bad name/version")
            continue
        records.append({"name": name, "version": version, "arch": clean(block.get("A"), 32),
                        "licenses": split_license(clean(block.get("L", ""))),
                        "origin": clean(block.get("o"), 128)})
    return records


def split_license(value):
    """'MIT BSD-2-Clause' lists licences; 'MIT AND (GPL-2.0 OR BSD)' is one SPDX expression."""
    if any(word in value.split() for word in ("AND", "OR", "WITH")) or "(" in value:
        return [value]
    return value.split()


def purl(record, distro):
    """pkg:apk/alpine/<name>@<version>?arch=..&distro=alpine-<version_id>, upstream=<origin> as syft adds it."""
    namespace = distro.id if distro else "alpine"
    upstream = record["origin"] if record["origin"] != record["name"] else ""
    qualifiers = {"arch": record["arch"], "upstream": upstream, "distro": distro.qualifier() if distro else ""}
    return make_purl("apk", namespace, record["name"], record["version"], qualifiers)


class ApkVisitor(WholeFileVisitor):
    name = "apk"
    max_file_size = MAX_SIZE

    def __init__(self, distro):
        self.distro = distro
        self.findings = Findings(self.name)

    def wants(self, entry):
        return entry.path == INSTALLED and self.findings.fits(entry, MAX_SIZE)

    def handle(self, entry, data):
        for record in parse_installed(data, self.findings):
            pkg = package(record["name"], record["version"], "apk", "", purl(record, self.distro),
                          licenses=record["licenses"])
            self.findings.add(pkg, entry.path)
