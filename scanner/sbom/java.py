"""Java archives (*.jar, *.war, *.ear, Jenkins *.hpi/*.jpi) and the archives nested one level inside them.

A zip is read from its end (central directory), so the archive is spooled to a temporary
file as the walk streams it (memory stays at SPOOL_MEMORY) and opened with zipfile once
complete. Everything inside is bounded: the central directory, each member we read, the
nested archives and their total size, so a zip bomb costs at most those limits.
"""

import io
import re
import struct
import tempfile
import zipfile
import zlib

from scanner.sbom.common import Findings, clean, make_purl, package
from scanner.walker import Visitor

EXTENSIONS = (".jar", ".war", ".ear", ".hpi", ".jpi")
MAX_ARCHIVE = 1 << 30
SPOOL_MEMORY = 16 << 20  # past this the spool goes to disk
MAX_ENTRIES = 200_000  # central directory entries; a real fat jar has < 100,000
MAX_DIRECTORY = 64 << 20  # central directory bytes
MAX_MEMBER = 1 << 20  # pom.properties, MANIFEST.MF
MAX_POMS = 1000
MAX_NESTED = 64 << 20  # one nested archive
MAX_NESTED_TOTAL = 512 << 20  # all nested archives of one outer archive, decompressed
MAX_NESTED_COUNT = 5000
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
              zlib.error, OSError, ValueError, KeyError, struct.error)

_POM = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")
_PROPERTY = re.compile(r"^\s*([^#!=:\s][^=:\s]*)\s*[=:]\s*(.*)$")
_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.+-]+?)[-_](?P<version>\d[A-Za-z0-9_.+~-]*)$")


def parse_properties(data):
    """Java .properties 'key=value' / 'key: value' lines (the subset pom.properties uses)."""
    values = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        match = _PROPERTY.match(line)
        if match:
            values.setdefault(match.group(1), match.group(2).strip())
    return values


def parse_manifest(data):
    """The main section of a MANIFEST.MF; continuation lines (leading space) are joined, as the spec wraps at 72."""
    values, key, parts = {}, None, []
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line.startswith(" ") and key:
            parts.append(line[1:])
            continue
        if key:
            values.setdefault(key, "".join(parts).strip())
            key = None
        if not line.strip():
            break  # end of the main section
        name, sep, value = line.partition(":")
        if sep:
            key, parts = name.strip(), [value]
    if key:
        values.setdefault(key, "".join(parts).strip())
    return values


def name_from_file(file_name):
    """('commons-lang3', '3.12.0') from 'commons-lang3-3.12.0.jar'; (stem, '') when there is no version."""
    stem = file_name.rpartition("/")[2].rsplit(".", 1)[0]
    match = _FILE_NAME.match(stem)
    return (match.group("name"), match.group("version")) if match else (stem, "")


def maven_package(group, artifact, version, licenses=()):
    group, artifact, version = clean(group, 256), clean(artifact, 256), clean(version, 256)
    if not artifact:
        raise ValueError("no artifact name")
    purl = make_purl("maven", group or None, artifact, version)
    return package(artifact, version, "java-archive", "java", purl, licenses)


def archive_packages(archive, file_name, findings):
    """Packages one opened archive describes: each pom.properties, else its manifest, else its file name."""
    found = []
    poms = [info for info in archive.infolist() if _POM.match(info.filename)][:MAX_POMS]
    for info in poms:
        try:
            props = parse_properties(read_member(archive, info, MAX_MEMBER))
            found.append(maven_package(props.get("groupId"), props.get("artifactId"), props.get("version")))
        except ZIP_ERRORS:
            findings.skip("bad pom.properties")
    if found:
        return found
    try:
        manifest = parse_manifest(read_member(archive, archive.getinfo("META-INF/MANIFEST.MF"), MAX_MEMBER))
    except ZIP_ERRORS:  # KeyError: no manifest
        manifest = {}
    name, version = name_from_file(file_name)
    name = name or manifest.get("Implementation-Title") or manifest.get("Bundle-SymbolicName", "").split(";")[0]
    version = (manifest.get("Implementation-Version") or manifest.get("Bundle-Version")
               or manifest.get("Specification-Version") or version)
    licenses = [manifest["Bundle-License"]] if "Bundle-License" in manifest else []
    try:
        return [maven_package(manifest.get("Implementation-Vendor-Id"), name, version, licenses)]
    except ValueError:
        findings.skip("no name")
        return []


def read_member(archive, info, limit):
    """At most `limit` bytes of a member (zipfile stops at the declared size, so a bomb cannot run on)."""
    if info.file_size > limit:
        raise ValueError("member too large")
    with archive.open(info) as member:
        return member.read(limit)


def directory_fits(spool):
    """Check the end-of-central-directory record before zipfile builds one object per entry."""
    spool.seek(0, io.SEEK_END)
    size = spool.tell()
    tail_size = min(size, 22 + 65535)
    spool.seek(size - tail_size)
    tail = spool.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return False
    entries, directory_size = struct.unpack_from("<HI", tail, at + 10)
    # 0xFFFF / 0xFFFFFFFF mean "see the zip64 record": then the archive size cap bounds it.
    return (entries == 0xFFFF or entries <= MAX_ENTRIES) and (
        directory_size == 0xFFFFFFFF or directory_size <= MAX_DIRECTORY)


def nested_archives(archive, findings):
    """(name, bytes) of archives inside this one (WEB-INF/lib/*.jar, BOOT-INF/lib/*.jar, ...), bounded."""
    total = 0
    nested = [info for info in archive.infolist() if info.filename.lower().endswith(EXTENSIONS)]
    if len(nested) > MAX_NESTED_COUNT:
        findings.skip("nested archives over the limit", len(nested) - MAX_NESTED_COUNT)
    for info in nested[:MAX_NESTED_COUNT]:
        if info.file_size > MAX_NESTED or total + info.file_size > MAX_NESTED_TOTAL:
            findings.skip("nested archive too large")
            continue
        try:
            data = read_member(archive, info, MAX_NESTED)
        except ZIP_ERRORS:
            findings.skip("unreadable nested archive")
            continue
        total += len(data)
        yield info.filename, data


class JavaArchiveVisitor(Visitor):
    name = "java"
    max_file_size = MAX_ARCHIVE

    def __init__(self):
        self.findings = Findings(self.name)
        self.entry, self.spool = None, None

    def wants(self, entry):
        return entry.path.lower().endswith(EXTENSIONS) and self.findings.fits(entry, MAX_ARCHIVE)

    def feed(self, entry, chunk):
        if self.entry is not entry:
            self._close()
            self.entry, self.spool = entry, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        self.spool.write(chunk)

    def end(self, entry, complete):
        try:
            if complete and self.entry is entry:
                self._parse(entry)
            elif complete:  # an empty file: feed() never ran
                self.findings.skip("not a zip")
        finally:
            self._close()

    def finish(self):
        self._close()

    def _close(self):
        if self.spool is not None:
            self.spool.close()
        self.entry, self.spool = None, None

    def _parse(self, entry):
        try:
            if not directory_fits(self.spool):
                self.findings.skip("not a zip, or central directory over the limits")
                return
            with zipfile.ZipFile(self.spool) as archive:
                for pkg in archive_packages(archive, entry.path, self.findings):
                    self.findings.add(pkg, entry.path)
                for inner_name, data in nested_archives(archive, self.findings):
                    self._parse_nested(entry.path, inner_name, data)
        except ZIP_ERRORS:
            self.findings.skip("unreadable archive")

    def _parse_nested(self, outer_path, inner_name, data):
        """One level only: archives inside a nested archive are not opened."""
        try:
            spool = io.BytesIO(data)
            if not directory_fits(spool):
                self.findings.skip("nested: not a zip, or central directory over the limits")
                return
            with zipfile.ZipFile(spool) as archive:
                for pkg in archive_packages(archive, inner_name, self.findings):
                    self.findings.add(pkg, f"{outer_path}:{inner_name}")  # syft's notation for a nested location
        except ZIP_ERRORS:
            self.findings.skip("unreadable nested archive")
