"""Match packages against the OSV database and build API Vulnerability findings."""

import re
from collections import Counter
from urllib.parse import quote

from scanner.versions import InvalidVersion, scheme
from scanner.vulnerabilities.osv.ecosystems import package_target
from scanner.vulnerabilities.osv.records import FIXED, INTRODUCED, LAST_AFFECTED
from scanner.vulnerabilities.osv.severity import severity_of

PACKAGE_FIELDS = {"name": str, "version": str, "type": str, "language": str, "purl": str}
PACKAGE_LISTS = ("licenses", "cpes")
UNRATED_NOTE = "Severity: not rated by the advisory (reported as NEGLIGIBLE)."


def match_packages(db, packages, distro=None, skipped=None):
    """Return the API Vulnerability dicts for the packages, sorted deterministically.

    Findings share nested objects (a package's dict, an advisory's links and CVSS
    list): treat the result as read-only, or copy before changing it.

    Packages that cannot be matched (no purl, unsupported distro, invalid version) are
    counted by reason in `skipped` (a Counter) when one is given.
    """
    skipped = skipped if skipped is not None else Counter()
    findings, described = {}, {}
    for package in packages:
        target, reason = package_target(package, distro)
        if target is None:
            skipped[reason] += 1
            continue
        api_package = _api_package(package)
        package_key = tuple(api_package.get(k, "") for k in ("purl", "name", "version"))
        for ids, hits in _group_by_alias(_hits(db, target, skipped)):
            finding = _finding(ids, hits, api_package, target, described)
            # The same package listed twice (found at two paths) is reported once.
            findings.setdefault((package_key, finding["vulnerabilityName"]), finding)
    return [findings[key] for key in sorted(findings)]


def _hits(db, target, skipped):
    """[(Affected, state, fixes)] for every affected entry the package version falls in."""
    parsed = {}

    def version_in(scheme_name):
        if scheme_name not in parsed:
            try:
                parsed[scheme_name] = scheme(scheme_name).parse(target.version)
            except InvalidVersion:
                parsed[scheme_name] = None
                skipped[f"version invalid for {scheme_name}"] += 1
        return parsed[scheme_name]

    hits = []
    for name in target.names:
        for entry in db.lookup(target.ecosystem, name):
            result = _evaluate(entry, target.version, version_in)
            if result:
                hits.append((entry, *result))
    return hits


def _evaluate(entry, text, version_in):
    """(fix state, fixes) when the version is affected by this entry, else None."""
    fixes, states = [], set()
    for rng in entry.ranges:
        version = version_in(rng.scheme)
        status = _in_range(rng, version) if version is not None else None
        if status:
            states.add(status[0])
            if status[1]:
                fixes.append((rng.scheme, *status[1]))
    if not states:
        version = version_in(entry.scheme)
        listed = text in entry.texts or (version is not None and version in entry.versions)
        if not listed:
            return None
        states.add("listed")
    if fixes:
        return "fixed", fixes
    return ("not-fixed" if "open" in states else "unknown"), fixes


def _in_range(rng, version):
    """OSV's evaluation of one range: None if unaffected, else (boundary kind, fix).

    The boundary is what ends the affected stretch containing the version: a fixed event
    ("fixed", (parsed, text)), a last_affected event ("last", None) or nothing ("open").
    """
    if rng.limits and not any(version < limit for limit in rng.limits):
        return None
    affected = False
    for kind, bound, _ in rng.events:
        if kind == INTRODUCED and (bound is None or version >= bound):
            affected = True
        elif kind == FIXED and version >= bound:
            affected = False
        elif kind == LAST_AFFECTED and version > bound:
            affected = False
    if not affected:
        return None
    for kind, bound, text in rng.events:
        if kind == FIXED and bound > version:
            return "fixed", (bound, text)
        if kind == LAST_AFFECTED and bound >= version:
            return "last", None
    return "open", None


def _group_by_alias(hits):
    """Merge hits whose advisories share an id or alias: one finding per vulnerability.

    Aliases in real data are not always clean (PyPA lists one GHSA id under two
    different CVEs), so groups naming different CVEs are never merged.
    """
    groups, owner = {}, {}  # groups: number -> (ids, hits); owner: id -> group number
    for number, hit in enumerate(hits):
        advisory = hit[0].advisory
        ids, members = {advisory.id, *advisory.aliases}, [hit]
        for other in sorted({owner[i] for i in ids if i in owner}):
            other_ids, other_members = groups[other]
            if _same_cves(other_ids, ids):
                del groups[other]
                ids, members = other_ids | ids, other_members + members
        groups[number] = (ids, members)
        owner.update(dict.fromkeys(ids, number))
    return list(groups.values())


def _same_cves(a, b):
    cves_a = {i for i in a if i.startswith("CVE-")}
    cves_b = {i for i in b if i.startswith("CVE-")}
    return not cves_a or not cves_b or not cves_a.isdisjoint(cves_b)


def _id_rank(identifier):
    """Sort key for naming: CVE ids first, then GHSA ids, then the rest; numbers
    compare as numbers, so CVE-2020-9 comes before CVE-2020-10."""
    kind = 0 if identifier.startswith("CVE-") else 1 if identifier.startswith("GHSA-") else 2
    parts = re.split(r"(\d+)", identifier)
    return (kind, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts))


def _finding(ids, hits, package, target, described):
    """One API Vulnerability. `described` caches what depends only on the advisories,
    which many packages (every affected version of a name) share."""
    key = frozenset(id(entry) for entry, _, _ in hits)
    if key not in described:
        described[key] = _describe(ids, hits)
    finding = {**described[key], "package": package, "fix": _fix(hits)}
    if target.distro:
        finding["distro"] = target.distro
    return finding


def _describe(ids, hits):
    all_ids = sorted(ids, key=_id_rank)
    advisories = sorted({hit[0].advisory.id: hit[0].advisory for hit in hits}.values(), key=lambda a: a.id)
    cvss = _cvss(hits)
    labels = [label for entry, _, _ in hits for label in (*entry.advisory.labels, *entry.labels)]
    severity = severity_of(cvss, labels)
    return {
        "vulnerabilityName": all_ids[0],
        "description": _description(advisories, all_ids, severity is None),
        "severity": severity or "NEGLIGIBLE",
        "links": _links(all_ids, advisories),
        "cvss": cvss,
    }


def _cvss(hits):
    by_vector = {}
    for entry, _, _ in hits:
        for item in (*entry.advisory.cvss, *entry.cvss):
            by_vector.setdefault(item["vector"], item)
    return sorted(by_vector.values(), key=lambda c: (c["version"], c["vector"]))


def _description(advisories, all_ids, unrated):
    # The most detailed advisory speaks for the group.
    primary = min(advisories, key=lambda a: (-len(a.details), a.id))
    text = primary.summary
    if primary.details and primary.details != primary.summary:
        text = f"{text}\n\n{primary.details}" if text else primary.details
    notes = []
    if len(all_ids) > 1:
        notes.append(f"Also known as: {', '.join(all_ids[1:])}.")
    if unrated:
        notes.append(UNRATED_NOTE)
    return "\n\n".join(part for part in (text, *notes) if part)


def advisory_url(identifier):
    if identifier.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{quote(identifier)}"
    if identifier.startswith("GHSA-"):
        return f"https://github.com/advisories/{quote(identifier)}"
    return f"https://osv.dev/vulnerability/{quote(identifier)}"


def _links(all_ids, advisories):
    links = [advisory_url(i) for i in all_ids]
    links += [url for advisory in advisories for url in advisory.references]
    return list(dict.fromkeys(links))


def _fix(hits):
    found = [fix for _, _, fixes in hits for fix in fixes]  # (scheme, parsed, text)
    if len(found) > 1:
        found = sorted(set(found))
    if found:
        return {"versions": list(dict.fromkeys(text for _, _, text in found)), "state": "fixed"}
    not_fixed = any(state == "not-fixed" for _, state, _ in hits)
    return {"versions": [], "state": "not-fixed" if not_fixed else "unknown"}


def _api_package(package):
    result = {k: package[k] for k, kind in PACKAGE_FIELDS.items() if isinstance(package.get(k), kind)}
    for key in PACKAGE_LISTS:
        if isinstance(package.get(key), list):
            result[key] = [item for item in package[key] if isinstance(item, str)]
    return result
