"""Where a package lives in OSV: ecosystem, names and version scheme.

Package side (from the purl):
    pypi -> PyPI (PEP 503 names), npm -> npm, golang -> Go, maven -> Maven (group:artifact),
    cargo -> crates.io, gem -> RubyGems, nuget -> NuGet, composer -> Packagist,
    hex -> Hex, pub -> Pub;
    deb  + debian-12      -> Debian:12        deb + ubuntu-22.04 -> Ubuntu:22.04
    apk  + alpine-3.19.1  -> Alpine:v3.19     apk + wolfi / chainguard -> Wolfi / Chainguard
    rpm  + rhel-9.3 (or centos-9) -> Red Hat:9
    rpm  + rocky-9.3      -> Rocky Linux:9    rpm + almalinux-9.3 -> AlmaLinux:9
The distro comes from the purl's `distro` qualifier (syft writes `distro=debian-12`), else
from the distro given to the matcher (its name and version, from /etc/os-release). Other
distros (SUSE, Amazon, Oracle, ...) are not mapped: their packages are skipped with a reason.

Data side, OSV ecosystem strings are folded onto the same keys:
    Ubuntu:22.04:LTS -> Ubuntu:22.04 (Ubuntu:Pro:... stays apart: ESM fixes need Pro)
    Red Hat:enterprise_linux:9::appstream (any stream) -> Red Hat:9 (EUS/AUS streams stay apart)
    Maven:<repository URL> -> Maven

Distro advisories are keyed by SOURCE package. The source comes from the purl qualifier
`upstream` (syft: `upstream=openssl` or `upstream=openssl@3.0.11-1`, for rpm the source
rpm file name) or from an optional non-API package field `source` in the same
"name[@version]" form. With a source, Debian/Ubuntu/Alpine look up only the source name,
at the source version when one is given; rpm looks up the binary and the source name
(Red Hat lists binary rpms, Rocky and Alma source rpms). Without one, the binary name.
"""

import re
from typing import NamedTuple

from scanner.vulnerabilities.osv.purl import parse_purl

# OSV ecosystem -> version scheme; ecosystems not listed here are not loaded.
SCHEMES = {
    "PyPI": "pep440",
    "npm": "semver",
    "Go": "semver",
    "crates.io": "semver",
    "Hex": "semver",
    "Pub": "semver",
    "Maven": "maven",
    "RubyGems": "generic",
    "NuGet": "generic",
    "Packagist": "generic",
    "Debian": "dpkg",
    "Ubuntu": "dpkg",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
}

LANGUAGE_TYPES = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "maven": "Maven",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
}

DISTRO_ALIASES = {
    "debian gnu/linux": "debian",
    "alpine linux": "alpine",
    "redhat": "rhel",
    "red hat enterprise linux": "rhel",
    "rockylinux": "rocky",
    "rocky linux": "rocky",
    "alma": "almalinux",
    "almalinux os": "almalinux",
}


def _major(version):
    head = version.split(".")[0]
    return head if head.isascii() and head.isdigit() else None


def _major_minor(version):
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
        return None
    return f"{parts[0]}.{parts[1]}"


def _alpine_release(version):
    return _major_minor(re.split(r"[_-]", version)[0])  # 3.20.0_alpha20240329 -> 3.20


def _release_key(prefix, release_of):
    """A function from VERSION_ID to the OSV ecosystem key, None if it has no release."""

    def to_ecosystem(version):
        release = release_of(version)
        return f"{prefix}{release}" if release else None

    return to_ecosystem


# distro id -> (purl type, function from VERSION_ID to OSV ecosystem key or None)
DISTROS = {
    "debian": ("deb", _release_key("Debian:", _major)),
    "ubuntu": ("deb", _release_key("Ubuntu:", _major_minor)),
    "alpine": ("apk", _release_key("Alpine:v", _alpine_release)),
    "wolfi": ("apk", lambda version: "Wolfi"),
    "chainguard": ("apk", lambda version: "Chainguard"),
    "rhel": ("rpm", _release_key("Red Hat:", _major)),
    "centos": ("rpm", _release_key("Red Hat:", _major)),
    "rocky": ("rpm", _release_key("Rocky Linux:", _major)),
    "almalinux": ("rpm", _release_key("AlmaLinux:", _major)),
}


class Target(NamedTuple):
    ecosystem: str  # index key, e.g. "PyPI", "Debian:12"
    names: tuple  # normalised names to look up
    version: str
    distro: dict | None  # the API VulnerabilityDistro to report, if known


def base_ecosystem(ecosystem):
    return ecosystem.split(":", 1)[0]


def scheme_name(ecosystem):
    """The version scheme of an ecosystem (key or raw string); None if unsupported."""
    return SCHEMES.get(base_ecosystem(ecosystem))


def normalize_name(ecosystem, name):
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    if base in ("NuGet", "Packagist"):
        return name.lower()
    return name


def index_ecosystem(raw):
    """Fold an OSV ecosystem string onto our key; None if we do not support it."""
    base, _, rest = raw.partition(":")
    if base not in SCHEMES:
        return None
    if base == "Ubuntu":
        parts = rest.split(":")
        if parts and parts[-1] == "LTS":
            parts.pop()
        return ":".join(["Ubuntu", *parts])
    if base == "Red Hat":
        parts = rest.split(":")
        if len(parts) >= 2 and parts[0] == "enterprise_linux" and _major(parts[1]):
            return f"Red Hat:{_major(parts[1])}"
        return raw
    if base == "Maven":
        return "Maven"
    return raw


def package_target(package, distro=None):
    """Return (Target, None), or (None, reason) when the package cannot be matched."""
    if not isinstance(package, dict):
        return None, "package is not an object"
    purl = parse_purl(package.get("purl"))
    if purl is None:
        return None, "no usable purl"
    version = package.get("version")
    if not isinstance(version, str) or not version.strip():
        version = purl.version
    if not version:
        return None, "no version"
    if purl.type in LANGUAGE_TYPES:
        return _language_target(purl, version, distro)
    if purl.type in ("deb", "apk", "rpm"):
        return _os_target(package, purl, version, distro)
    return None, f"unsupported package type {purl.type[:20]!r}"


def _language_target(purl, version, distro):
    ecosystem = LANGUAGE_TYPES[purl.type]
    name = purl.name
    if purl.type in ("npm", "golang", "composer") and purl.namespace:
        name = f"{purl.namespace}/{purl.name}"
    elif purl.type == "maven":
        if not purl.namespace:
            return None, "maven package without a group id"
        name = f"{purl.namespace}:{purl.name}"
    if purl.type == "golang" and name == "stdlib" and version.startswith("go"):
        version = version[2:]  # Go reports the toolchain as go1.21.0; OSV says 1.21.0
    return Target(ecosystem, (normalize_name(ecosystem, name),), version, _api_distro(distro)), None


def _os_target(package, purl, version, distro):
    distro_id, release = _distro_of(purl, distro)
    if distro_id not in DISTROS:
        return None, "unknown or unsupported distro"
    purl_type, to_ecosystem = DISTROS[distro_id]
    if purl_type != purl.type:
        return None, "package type does not match the distro"
    ecosystem = to_ecosystem(release or "")
    if ecosystem is None:
        return None, "unknown distro release"
    if purl.type == "rpm":
        version = _rpm_version(version, purl.qualifiers.get("epoch", ""))
    source_name, source_version = _source_of(package, purl)
    if purl.type == "rpm":
        names = tuple(dict.fromkeys(n for n in (purl.name, source_name) if n))
    else:
        names = (source_name or purl.name,)
        version = source_version or version
    reported = _api_distro(distro) or {"name": distro_id, "version": release or ""}
    return Target(ecosystem, names, version, reported), None


def _distro_of(purl, distro):
    """(id, VERSION_ID) from the purl's distro qualifier, else from the given distro."""
    qualifier = purl.qualifiers.get("distro", "")
    if qualifier:
        head, dash, tail = qualifier.rpartition("-")
        if dash and tail[:1].isdigit():
            return _distro_id(head), tail
        return _distro_id(qualifier), ""
    if isinstance(distro, dict):
        name, version = distro.get("name"), distro.get("version")
        return _distro_id(name), version if isinstance(version, str) else ""
    return None, ""


def _distro_id(name):
    if not isinstance(name, str):
        return None
    name = name.strip().lower()
    return DISTRO_ALIASES.get(name, name)


def _source_of(package, purl):
    """(source name, source version) from the upstream qualifier or the `source` field."""
    text = purl.qualifiers.get("upstream") or package.get("source")
    if not isinstance(text, str) or not text.strip() or len(text) > 512:
        return None, None
    text = text.strip()
    if purl.type == "rpm" and text.endswith(".src.rpm"):
        # syft gives the source rpm file: openssl-3.0.7-24.el9.src.rpm
        parts = text[: -len(".src.rpm")].rsplit("-", 2)
        return (parts[0], None) if len(parts) == 3 else (None, None)
    name, _, version = text.partition("@")
    return name or None, version or None


def _rpm_version(version, epoch):
    if ":" in version or not epoch.isascii() or not epoch.isdigit() or int(epoch) == 0:
        return version
    return f"{epoch}:{version}"


def _api_distro(distro):
    """The distro argument as an API VulnerabilityDistro, keeping only well-typed fields."""
    if not isinstance(distro, dict):
        return None
    result = {}
    for key in ("name", "version"):
        if isinstance(distro.get(key), str):
            result[key] = distro[key]
    like = distro.get("IDLike")
    if isinstance(like, list):
        result["IDLike"] = [item for item in like if isinstance(item, str)]
    return result or None
