"""Version ordering, one module per versioning scheme.

Each scheme module has `parse(text)`, returning a value that sorts, hashes and compares
equal under that scheme's rules (raising `InvalidVersion` for text it cannot read), and
`compare(a, b)`, returning -1, 0 or 1 for two version strings.

    pep440   Python packages (PyPI), via `packaging.version`
    dpkg     Debian and Ubuntu packages (epoch:upstream-revision, "~" sorts first)
    rpm      Red Hat, Rocky, AlmaLinux packages (rpmvercmp with "~" and "^", epochs)
    apk      Alpine, Wolfi, Chainguard packages (suffixes _alpha.._rc, _p, -rN)
    semver   SemVer 2.0 (npm, Go with its leading "v", crates.io, Hex, Pub)
    maven    Maven (ComparableVersion's rules, a pragmatic subset)
    generic  anything else: numbers and letter runs in turn

    from scanner.versions import scheme
    scheme("dpkg").compare("1.0~rc1", "1.0")   # -1
"""

from scanner.versions import apk, dpkg, generic, maven, pep440, rpm, semver
from scanner.versions.base import InvalidVersion

SCHEMES = {
    "pep440": pep440,
    "dpkg": dpkg,
    "rpm": rpm,
    "apk": apk,
    "semver": semver,
    "maven": maven,
    "generic": generic,
}

__all__ = ["InvalidVersion", "SCHEMES", "scheme"]


def scheme(name):
    """The module implementing a scheme; unknown names get the generic ordering."""
    return SCHEMES.get(name, generic)
