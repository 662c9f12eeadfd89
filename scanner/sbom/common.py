"""What every cataloguer shares: the API Package dict, purls, text cleaning, skip counting."""

import re
from collections import Counter
from dataclasses import dataclass, field

from packageurl import PackageURL

MAX_FIELD = 512  # longest name, version or licence we accept; longer is junk, not a package
MAX_LICENSES = 32  # per package: a hostile file must not make one record huge
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PEP503 = re.compile(r"[-_.]+")

# rpm purl namespaces by os-release ID: the names the purl spec uses (syft maps rhel the same way).
RPM_NAMESPACES = {"rhel": "redhat", "sles": "opensuse", "sled": "opensuse", "opensuse-leap": "opensuse",
                  "opensuse-tumbleweed": "opensuse", "opensuse-microos": "opensuse"}


@dataclass
class SbomResult:
    """What one analyzer (or a merge of several) found on one root."""

    packages: list = field(default_factory=list)  # API Package dicts, sorted by purl
    locations: dict = field(default_factory=dict)  # purl -> in-root paths where it was found
    distro: dict | None = None  # API VulnerabilityDistro {name, version, IDLike}, or None
    skips: Counter = field(default_factory=Counter)  # "cataloguer: reason" -> records skipped
    errors: list = field(default_factory=list)  # analyzer-level failures (syft missing, timed out, ...)


class Findings:
    """Packages one cataloguer found, with where, and the records it had to skip."""

    def __init__(self, name):
        self.name = name
        self.found = []  # (package dict, in-root path)
        self.skips = Counter()

    def add(self, package, path):
        self.found.append((package, path))

    def skip(self, reason, count=1):
        if count:
            self.skips[f"{self.name}: {reason}"] += count

    def fits(self, entry, limit):
        """For wants(): True when the file is small enough to parse, else counts it as skipped."""
        if entry.size <= limit:
            return True
        self.skip("file too large")
        return False


def clean(value, limit=MAX_FIELD):
    """A stripped one-line string, or '' when the value is missing, not text, too long or has control characters."""
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if len(value) > limit or _CONTROL.search(value):
        return ""
    return value


def clean_licenses(values):
    """De-duplicated, cleaned licence strings in first-seen order, bounded in number."""
    out = []
    for value in values:
        value = clean(value, 200)
        if value and value not in out and value.upper() != "UNKNOWN":
            out.append(value)
        if len(out) >= MAX_LICENSES:
            break
    return out


def package(name, version, type_, language, purl, licenses=(), cpes=()):
    """An API Package: exactly the schema's fields, nothing else."""
    return {
        "name": name,
        "version": version,
        "type": type_,
        "language": language,
        "licenses": clean_licenses(licenses),
        "cpes": list(cpes),
        "purl": purl,
    }


def make_purl(type_, namespace, name, version, qualifiers=None, subpath=None):
    """A canonical purl string: the library encodes, we drop empty qualifiers and normalise."""
    qualifiers = {k: v for k, v in (qualifiers or {}).items() if v}
    return canonical_purl(PackageURL(type_, namespace or None, name, version or None, qualifiers, subpath).to_string())


def canonical_purl(purl):
    """One spelling per package, so that our purls and syft's compare equal.

    packageurl sorts qualifiers and percent-encodes the same way every time; on top of that
    PyPI names get PEP 503 normalisation and rpm namespaces our distro naming. Raises
    ValueError for a string that is not a purl.
    """
    parsed = PackageURL.from_string(purl)
    parts = parsed.to_dict()
    if parsed.type == "pypi":
        parts["name"] = pep503(parsed.name)
    if parsed.type == "rpm" and parsed.namespace:
        parts["namespace"] = RPM_NAMESPACES.get(parsed.namespace.lower(), parsed.namespace.lower())
    return PackageURL(**parts).to_string()


def pep503(name):
    """PyPI's normalised project name: lower case, runs of - _ . become one -."""
    return _PEP503.sub("-", name).lower()


def text(data):
    """Bytes from the disk as text: UTF-8, undecodable bytes replaced (never an exception)."""
    return data.decode("utf-8", errors="replace")


def header_fields(data, stop_at_blank=True, limit=1 << 20):
    """RFC 822-style 'Key: value' lines as (key, value) pairs.

    Continuation lines (leading space) are ignored: every field we use is one line, and
    appending them would let a hostile file with a million continuations cost quadratic time.
    Only the first `limit` bytes are looked at.
    """
    for line in text(data[:limit]).split("\n"):
        line = line.rstrip("\r")
        if not line.strip():
            if stop_at_blank:
                return
            continue
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if sep:
            yield key.strip(), value.strip()


def stanzas(data, limit):
    """Blank-line separated blocks of 'Key: value' fields (dpkg status, apk installed) as dicts.

    Returns (blocks, skipped) where skipped counts blocks bigger than `limit` bytes: those are
    junk (a real stanza is a few KiB), and dropping them bounds the work per record.
    """
    blocks, skipped = [], 0
    for raw in re.split(rb"\n[ \t\r]*\n", data):
        if not raw.strip():
            continue
        if len(raw) > limit:
            skipped += 1
            continue
        block = {}
        for key, value in header_fields(raw, stop_at_blank=False, limit=limit):
            block.setdefault(key, value)
        blocks.append(block)
    return blocks, skipped
