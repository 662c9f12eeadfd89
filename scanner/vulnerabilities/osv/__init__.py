"""Our own OSV vulnerability matcher (scanner name `osv`).

    from scanner.vulnerabilities.osv import OsvDatabase, match_packages, needed_ecosystems

    db = OsvDatabase.from_path(path)       # <dir>/<Ecosystem>/all.zip or *.json, or one .zip
    db = OsvDatabase.from_server(url, cache_dir, needed_ecosystems(packages, distro))
    vulns = match_packages(db, packages, distro=None)  # API Vulnerability dicts, sorted

`packages` are API Package dicts; the purl is what is matched (see `ecosystems` for the
mapping from purl and distro to OSV ecosystems, and for source packages: the purl
qualifier `upstream=<source>[@<version>]` or an optional `source` field of that form).
`distro` is the API VulnerabilityDistro {name, version, IDLike} from /etc/os-release; it
serves OS packages whose purl lacks a `distro` qualifier and is reported on findings.
`match_packages(..., skipped=Counter())` counts packages that could not be matched, by
reason; `db.skipped` counts unusable records, ranges and files the same way.

Matching follows OSV's evaluation algorithm: a version is affected when it is listed in
`versions[]` or falls in an ECOSYSTEM or SEMVER range (events sorted by version;
introduced "0" is the beginning, fixed and last_affected end a stretch, limit caps the
range). GIT ranges are ignored; withdrawn records are skipped. Versions are ordered by the
ecosystem's own scheme (`scanner.versions`); an unparsable version is never guessed at.

What a user sees on a finding:
- One finding per vulnerability and package, even when several records describe it (a
  PYSEC record and its GHSA and CVE aliases): records sharing an id or alias are merged.
  The name is the CVE id if there is one, else the GHSA id, else the record id (lowest
  first). The other ids are listed at the end of the description ("Also known as: ..."),
  and `links` starts with an advisory page per id (NVD for CVEs, GitHub for GHSAs,
  osv.dev otherwise), followed by the records' own http(s) references.
- `description` is the summary and details of the most detailed record.
- `severity` is the worst bucket of the CVSS v2/v3/v4 base scores (computed with `cvss`);
  without vectors, severity words ("MODERATE" -> MEDIUM, "Important" -> HIGH, Debian and
  Ubuntu priorities); without either, NEGLIGIBLE: grype says "Unknown", which the API
  enum lacks, and VMClarity has always mapped grype's Unknown to NEGLIGIBLE. Such
  findings say so in the description, so they can be told from truly negligible ones.
- `cvss` lists every vector with base, exploitability and impact scores (v4: base only).
- `fix.versions` are the fixed versions that end the affected stretch the package is in;
  `fix.state` is "fixed" when there is one, "not-fixed" for an open-ended range, else
  "unknown" (last_affected, or listed in versions[] only). "wont-fix" is never reported.
"""

from scanner.vulnerabilities.osv.database import OsvDatabase, OsvError
from scanner.vulnerabilities.osv.ecosystems import base_ecosystem, package_target
from scanner.vulnerabilities.osv.matcher import match_packages

SCANNER_NAME = "osv"

__all__ = ["SCANNER_NAME", "OsvDatabase", "OsvError", "match_packages", "needed_ecosystems"]


def needed_ecosystems(packages, distro=None):
    """The base OSV ecosystems ("PyPI", "Debian", ...) these packages can be matched in."""
    found = set()
    for package in packages:
        target, _ = package_target(package, distro)
        if target:
            found.add(base_ecosystem(target.ecosystem))
    return sorted(found)
