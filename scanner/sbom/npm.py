"""npm packages: package-lock.json (lockfileVersion 1, 2, 3) and node_modules/**/package.json."""

import json
import re

from scanner.sbom.common import Findings, clean, make_purl, package
from scanner.walker import WholeFileVisitor

MAX_LOCK = 64 << 20
MAX_PACKAGE_JSON = 4 << 20
MAX_ENTRIES = 200_000  # per lockfile
# The package.json at a package's root: .../node_modules/<name>/ or .../node_modules/@scope/<name>/
_INSTALLED = re.compile(r"/node_modules/((?:@[^/@]+/)?[^/@.][^/]*)/package\.json$")


def npm_purl(name, version):
    """pkg:npm/<name>@<version>, with the scope as namespace so '@' is encoded: pkg:npm/%40babel/core@7.0.0."""
    scope, _, bare = name.rpartition("/")
    return make_purl("npm", scope or None, bare, version)


def licenses_of(meta):
    """'license': "MIT" | {"type": "MIT"}; the old 'licenses': ["MIT"] | [{"type": "MIT"}]."""
    found = []
    values = [meta.get("license")]
    if isinstance(meta.get("licenses"), list):
        values += meta["licenses"][:16]
    for value in values:
        if isinstance(value, dict):
            value = value.get("type")
        if isinstance(value, str):
            found.append(value)
    return found


def _package(name, meta, findings):
    """An API Package from a name and its lockfile or package.json entry, or None (counted)."""
    name, version = clean(name, 214), clean(meta.get("version"), 256)  # npm's own name limit is 214
    if not name or not version or " " in version or " " in name or name.count("/") > 1:
        findings.skip("missing or bad name/version")
        return None
    try:
        return package(name, version, "npm", "javascript", npm_purl(name, version), licenses_of(meta))
    except ValueError:
        findings.skip("bad purl")
        return None


def parse_lock(data, findings):
    """Packages of a package-lock.json (or npm-shrinkwrap.json)."""
    doc = _json(data, findings)
    if doc is None:
        return []
    if isinstance(doc.get("packages"), dict):  # lockfileVersion 2 and 3
        entries = _lock_v2(doc["packages"])
    elif isinstance(doc.get("dependencies"), dict):  # lockfileVersion 1
        entries = _lock_v1(doc["dependencies"])
    else:
        findings.skip("no packages in lockfile")
        return []
    found = []
    for name, meta in entries:
        if len(found) >= MAX_ENTRIES:
            findings.skip("too many entries")
            break
        pkg = _package(name, meta, findings)
        if pkg:
            found.append(pkg)
    return found


def _lock_v2(packages):
    """('node_modules/a/node_modules/@s/b', {...}) -> ('@s/b', {...}); the root ('') and links are no packages."""
    for key, meta in packages.items():
        if not key or not isinstance(meta, dict) or meta.get("link") is True:
            continue
        if isinstance(meta.get("name"), str):
            yield meta["name"], meta
        elif "node_modules/" in key:  # else a workspace folder that did not say its name
            yield key.rpartition("node_modules/")[2], meta


def _lock_v1(dependencies):
    """Nested 'dependencies' maps, walked with a stack: a hostile lockfile may nest very deep."""
    stack = [dependencies]
    while stack:
        for name, meta in stack.pop().items():
            if isinstance(meta, dict):
                yield name, meta
                if isinstance(meta.get("dependencies"), dict):
                    stack.append(meta["dependencies"])


def parse_package_json(data, findings):
    """The package an installed node_modules/<name>/package.json describes, or None."""
    doc = _json(data, findings)
    return _package(doc.get("name"), doc, findings) if doc is not None else None


def _json(data, findings):
    """A JSON object, or None (counted): invalid, too deep, or not an object."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        findings.skip("invalid json")
        return None
    if not isinstance(doc, dict):
        findings.skip("json is not an object")
        return None
    return doc


class NpmVisitor(WholeFileVisitor):
    name = "npm"
    max_file_size = MAX_LOCK

    def __init__(self):
        self.findings = Findings(self.name)

    def wants(self, entry):
        base = entry.path.rpartition("/")[2]
        if base in ("package-lock.json", "npm-shrinkwrap.json"):
            return "/node_modules/" not in entry.path and self.findings.fits(entry, MAX_LOCK)
        return _INSTALLED.search(entry.path) is not None and self.findings.fits(entry, MAX_PACKAGE_JSON)

    def handle(self, entry, data):
        if entry.path.endswith("/package.json"):
            found = [parse_package_json(data, self.findings)]
        else:
            found = parse_lock(data, self.findings)
        for pkg in found:
            if pkg:
                self.findings.add(pkg, entry.path)
