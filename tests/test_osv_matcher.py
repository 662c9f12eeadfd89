"""The OSV matcher: range rules, ecosystems, aliases, severity, loading, the server client."""

import hashlib
import json
import random
import socket
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

import pytest

from app.validation import schema_validator
from scanner.vulnerabilities.osv import OsvDatabase, OsvError, match_packages, needed_ecosystems
from scanner.vulnerabilities.osv import database as database_module
from conftest import http_server, write_osv

REAL_PYPI = Path("/work/shared/data/osv/PyPI/all.zip")
CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
CVSS_MEDIUM = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N"  # 5.3
CVSS2_HIGH = "AV:N/AC:L/Au:N/C:P/I:P/A:P"  # 7.5
CVSS4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 9.3


def record(record_id, name, ecosystem="PyPI", events=None, versions=None, kind="ECOSYSTEM", aliases=(), **extra):
    affected = {"package": {"ecosystem": ecosystem, "name": name}}
    if events is not None:
        affected["ranges"] = [{"type": kind, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    result = {
        "id": record_id,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": list(aliases),
        "summary": f"summary of {record_id}",
        "details": f"details of {record_id}",
        "references": [{"type": "WEB", "url": f"https://example.org/{record_id}"}],
        "affected": [affected],
    }
    result.update(extra)
    return result


def package(purl, version=None):
    name_part = purl.split("?")[0].rsplit("/", 1)[-1]
    name, _, purl_version = name_part.partition("@")
    return {
        "name": unquote(name),
        "version": version or purl_version,
        "type": purl.split("/")[0][4:],
        "language": "",
        "licenses": [],
        "cpes": [],
        "purl": purl,
    }


def pypi(name, version):
    return package(f"pkg:pypi/{name}@{version}")


def found(vulns):
    return sorted((v["vulnerabilityName"], v["package"]["version"]) for v in vulns)


@pytest.fixture(scope="module")
def vulnerability_validator():
    return schema_validator("Vulnerability")


# --- OSV range rules --------------------------------------------------------------------

TWO_PAIRS = [{"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.3"}]

# (events, package version, expected: None if unaffected, else (fix state, fix versions))
RANGE_CASES = [
    ([{"introduced": "0"}, {"fixed": "1.0"}], "0.5", ("fixed", ["1.0"])),
    ([{"introduced": "0"}, {"fixed": "1.0"}], "0.0.0.dev0", ("fixed", ["1.0"])),
    ([{"introduced": "0"}, {"fixed": "1.0"}], "1.0", None),
    ([{"introduced": "0"}, {"fixed": "1.0"}], "1.0.0", None),
    ([{"introduced": "0"}, {"fixed": "1.0"}], "1.1", None),
    ([{"introduced": "0"}, {"fixed": "1.0"}], "1.0rc1", ("fixed", ["1.0"])),
    ([{"introduced": "0"}, {"fixed": "1.0"}], "1.0+local", None),
    (TWO_PAIRS, "0.9", None),
    (TWO_PAIRS, "1.0", ("fixed", ["1.2"])),
    (TWO_PAIRS, "1.1.9", ("fixed", ["1.2"])),
    (TWO_PAIRS, "1.2", None),
    (TWO_PAIRS, "1.5", None),
    (TWO_PAIRS, "2.0", ("fixed", ["2.3"])),
    (TWO_PAIRS, "2.2.9", ("fixed", ["2.3"])),
    (TWO_PAIRS, "2.3", None),
    (TWO_PAIRS, "3.0", None),
    # events out of order are sorted first, as the spec's algorithm says
    ([{"introduced": "2.0"}, {"fixed": "2.3"}, {"introduced": "1.0"}, {"fixed": "1.2"}], "1.1", ("fixed", ["1.2"])),
    ([{"introduced": "2.0"}, {"fixed": "2.3"}, {"introduced": "1.0"}, {"fixed": "1.2"}], "1.5", None),
    ([{"fixed": "1.2"}, {"introduced": "1.0"}], "1.1", ("fixed", ["1.2"])),
    ([{"introduced": "0"}, {"last_affected": "1.5"}], "1.5", ("unknown", [])),
    ([{"introduced": "0"}, {"last_affected": "1.5"}], "0.1", ("unknown", [])),
    ([{"introduced": "0"}, {"last_affected": "1.5"}], "1.5.1", None),
    ([{"introduced": "1.0"}], "0.9", None),
    ([{"introduced": "1.0"}], "5.0", ("not-fixed", [])),
    ([{"introduced": "0"}, {"limit": "2.0"}], "1.0", ("not-fixed", [])),
    ([{"introduced": "0"}, {"limit": "2.0"}], "2.0", None),
    ([{"introduced": "0"}, {"limit": "2.0"}], "3.0", None),
    ([{"introduced": "0"}, {"fixed": "3.0"}, {"limit": "2.0"}], "2.5", None),
    ([{"introduced": "0"}, {"limit": "*"}], "99.0", ("not-fixed", [])),
    ([{"introduced": "1.0"}, {"fixed": "1.0"}], "1.0", None),
]


@pytest.mark.parametrize("events, version, expected", RANGE_CASES)
def test_range_rules(events, version, expected):
    db = OsvDatabase.from_records([record("PYSEC-1", "demo", events=events)])
    vulns = match_packages(db, [pypi("demo", version)])
    if expected is None:
        assert vulns == []
    else:
        assert len(vulns) == 1
        assert vulns[0]["fix"] == {"state": expected[0], "versions": expected[1]}


@pytest.mark.parametrize(
    "version, affected",
    [("1.3", True), ("1.5", True), ("1.5.0", True), ("1.4", False), ("2019-09-12", True), ("2019-09-13", False)],
)
def test_explicit_versions_list(version, affected):
    db = OsvDatabase.from_records([record("PYSEC-2", "demo", versions=["1.3", "1.5", "2019-09-12"])])
    skipped = Counter()
    vulns = match_packages(db, [pypi("demo", version)], skipped=skipped)
    assert bool(vulns) == affected
    if affected:
        assert vulns[0]["fix"] == {"state": "unknown", "versions": []}


def test_a_version_in_two_ranges_gets_both_fixes():
    item = record("PYSEC-3", "demo", events=[{"introduced": "0"}, {"fixed": "2.0"}])
    item["affected"][0]["ranges"].append({"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.5"}]})
    vulns = match_packages(OsvDatabase.from_records([item]), [pypi("demo", "1.2")])
    assert vulns[0]["fix"] == {"state": "fixed", "versions": ["1.5", "2.0"]}


def test_git_ranges_are_ignored_but_versions_still_match():
    item = record("PYSEC-4", "demo", versions=["1.0"])
    item["affected"][0]["ranges"] = [{"type": "GIT", "repo": "https://x", "events": [{"introduced": "0"}]}]
    db = OsvDatabase.from_records([item])
    assert db.skipped["GIT range ignored"] == 1
    assert found(match_packages(db, [pypi("demo", "1.0"), pypi("demo", "2.0")])) == [("PYSEC-4", "1.0")]


def test_semver_range_type_uses_semver_precedence():
    events = [{"introduced": "1.0.0"}, {"fixed": "1.2.3"}]
    db = OsvDatabase.from_records([record("GHSA-aaaa-bbbb-cccc", "left-pad", "npm", events, kind="SEMVER")])
    vulns = match_packages(
        db,
        [package(f"pkg:npm/left-pad@{version}") for version in ("1.2.3-beta.1", "1.2.3", "0.9.0")],
    )
    assert found(vulns) == [("GHSA-aaaa-bbbb-cccc", "1.2.3-beta.1")]


def test_withdrawn_records_are_skipped():
    item = record("PYSEC-5", "demo", events=[{"introduced": "0"}], withdrawn="2024-01-01T00:00:00Z")
    db = OsvDatabase.from_records([item])
    assert db.skipped["withdrawn record"] == 1
    assert match_packages(db, [pypi("demo", "1.0")]) == []


def test_unknown_ecosystems_are_skipped():
    db = OsvDatabase.from_records([record("X-1", "demo", "NoSuchEcosystem", [{"introduced": "0"}])])
    assert db.skipped["unsupported ecosystem"] == 1
    assert db.record_count == 0
    skipped = Counter()
    assert match_packages(db, [package("pkg:nosuch/demo@1.0")], skipped=skipped) == []
    assert skipped == {"unsupported package type 'nosuch'": 1}


def test_an_invalid_package_version_is_counted_not_guessed():
    db = OsvDatabase.from_records([record("PYSEC-6", "demo", events=[{"introduced": "0"}, {"fixed": "2.0"}])])
    skipped = Counter()
    assert match_packages(db, [pypi("demo", "not-a-version")], skipped=skipped) == []
    assert skipped["version invalid for pep440"] == 1


def test_a_range_with_an_invalid_version_is_skipped_not_widened():
    events = [{"introduced": "0"}, {"fixed": "not a version"}]
    db = OsvDatabase.from_records([record("PYSEC-7", "demo", events=events)])
    assert db.skipped["range with an invalid event or version"] == 1
    assert match_packages(db, [pypi("demo", "99.0")]) == []


def test_pypi_names_are_normalised():
    db = OsvDatabase.from_records([record("PYSEC-8", "zope.interface", events=[{"introduced": "0"}])])
    vulns = match_packages(db, [pypi("Zope_Interface", "1.0")])
    assert found(vulns) == [("PYSEC-8", "1.0")]


# --- Ecosystems and distros -------------------------------------------------------------

RH_FIX = "1:3.0.7-25.el9_3"
DISTRO_RECORDS = [
    record("DSA-1", "openssl", "Debian:12", [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]),
    record("DSA-2", "openssl", "Debian:11", [{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u1"}]),
    record("USN-1", "openssl", "Ubuntu:22.04:LTS", [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.15"}]),
    record("USN-2", "openssl", "Ubuntu:Pro:22.04:LTS", [{"introduced": "0"}, {"fixed": "3.0.2-0ubuntu1.99+esm1"}]),
    record("ALPINE-1", "musl", "Alpine:v3.19", [{"introduced": "0"}, {"fixed": "1.2.4_git20230717-r5"}]),
    record("RHSA-1", "openssl-libs", "Red Hat:enterprise_linux:9::baseos", [{"introduced": "0"}, {"fixed": RH_FIX}]),
    record("RLSA-1", "openssl", "Rocky Linux:9", [{"introduced": "0"}, {"fixed": RH_FIX}]),
    record("ALSA-1", "openssl", "AlmaLinux:9", [{"introduced": "0"}, {"fixed": RH_FIX}]),
    record("GHSA-go11-aaaa-bbbb", "github.com/x/y", "Go", [{"introduced": "0"}, {"fixed": "1.2.4"}], kind="SEMVER"),
    record("GHSA-npm1-aaaa-bbbb", "@babel/core", "npm", [{"introduced": "0"}, {"fixed": "7.0.1"}]),
    record("GHSA-mvn1-aaaa-bbbb", "org.apache:x", "Maven", [{"introduced": "0"}, {"fixed": "1.0.1"}]),
    record("GHSA-mvn2-aaaa-bbbb", "com.google:y", "Maven:https://maven.google.com", [{"introduced": "0"}]),
    record("RUSTSEC-2024-1", "smallvec", "crates.io", [{"introduced": "0"}, {"fixed": "1.6.1"}]),
    record("GHSA-gem1-aaaa-bbbb", "rack", "RubyGems", [{"introduced": "0"}, {"fixed": "2.2.8.1"}]),
]

DEB12 = "arch=amd64&distro=debian-12"
SOURCE = "3.0.11-1~deb12u2"  # a source version, for binNMU'd binaries
BOOKWORM = {"name": "debian", "version": "12"}
SSL_RPM = "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm"

# (package, distro argument, expected finding names)
ECOSYSTEM_CASES = [
    (package(f"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?{DEB12}&upstream=openssl"), None, ["DSA-1"]),
    (package(f"pkg:deb/debian/libssl3@3.0.13-1~deb12u1?{DEB12}&upstream=openssl"), None, []),
    (package(f"pkg:deb/debian/openssl@3.0.11-1~deb12u2?{DEB12}"), None, ["DSA-1"]),
    (package(f"pkg:deb/debian/libssl3@3.0.11-1~deb12u2+b1?{DEB12}&upstream=openssl%40{SOURCE}"), None, ["DSA-1"]),
    (package(f"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?{DEB12}"), None, []),  # binary name: no match
    (dict(package(f"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?{DEB12}"), source="openssl"), None, ["DSA-1"]),
    (package("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?upstream=openssl"), BOOKWORM, ["DSA-1"]),
    (package("pkg:deb/debian/libssl1.1@1.1.1n-0+deb11u5?distro=debian-11&upstream=openssl"), None, ["DSA-2"]),
    (package("pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.10?distro=ubuntu-22.04&upstream=openssl"), None, ["USN-1"]),
    (package("pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.15?distro=ubuntu-22.04&upstream=openssl"), None, []),
    (package("pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"), None, ["ALPINE-1"]),
    (package("pkg:apk/alpine/musl@1.2.4_git20230717-r5?distro=alpine-3.19.1"), None, []),
    (package("pkg:apk/alpine/musl-utils@1.2.4-r2?distro=alpine-3.19.1&upstream=musl"), None, ["ALPINE-1"]),
    (package("pkg:apk/alpine/musl@1.2.4-r2?distro=alpine-3.18.4"), None, []),
    (package(f"{SSL_RPM}&distro=rhel-9.3"), None, ["RHSA-1"]),
    (package(f"{SSL_RPM}&distro=rocky-9.3"), None, ["RLSA-1"]),
    (package(f"{SSL_RPM}&distro=almalinux-9.3"), None, ["ALSA-1"]),
    (package(f"{SSL_RPM}&distro=rhel-8.9"), None, []),
    (package("pkg:rpm/redhat/openssl-libs@1:3.0.7-25.el9_3?distro=rhel-9.3"), None, []),
    (package("pkg:rpm/rocky/openssl@3.0.9-1.el9"), {"name": "rocky", "version": "9.3"}, ["RLSA-1"]),  # epoch 0 < 1
    (package("pkg:golang/github.com/x/y@v1.2.3"), None, ["GHSA-go11-aaaa-bbbb"]),
    (package("pkg:golang/github.com/x/y@v1.2.4"), None, []),
    (package("pkg:npm/%40babel/core@7.0.0"), None, ["GHSA-npm1-aaaa-bbbb"]),
    (package("pkg:maven/org.apache/x@1.0"), None, ["GHSA-mvn1-aaaa-bbbb"]),
    (package("pkg:maven/org.apache/x@1.0.1"), None, []),
    (package("pkg:maven/com.google/y@3.0"), None, ["GHSA-mvn2-aaaa-bbbb"]),
    (package("pkg:cargo/smallvec@1.6.0"), None, ["RUSTSEC-2024-1"]),
    (package("pkg:gem/rack@2.2.8"), None, ["GHSA-gem1-aaaa-bbbb"]),
    (package("pkg:gem/rack@2.2.8.1"), None, []),
]


@pytest.mark.parametrize("pkg, distro, expected", ECOSYSTEM_CASES)
def test_ecosystem_mapping(pkg, distro, expected):
    db = OsvDatabase.from_records(DISTRO_RECORDS)
    assert [v["vulnerabilityName"] for v in match_packages(db, [pkg], distro=distro)] == expected


@pytest.mark.parametrize(
    "pkg, distro, reason",
    [
        (package("pkg:deb/debian/libssl3@3.0.11-1?upstream=openssl"), None, "unknown or unsupported distro"),
        (package("pkg:deb/debian/x@1.0?distro=debian-sid"), None, "unknown or unsupported distro"),
        (package("pkg:deb/debian/x@1.0"), {"name": "debian", "version": ""}, "unknown distro release"),
        (package("pkg:rpm/suse/x@1.0?distro=sles-15.5"), None, "unknown or unsupported distro"),
        (package("pkg:apk/alpine/x@1.0?distro=debian-12"), None, "package type does not match the distro"),
        (package("pkg:maven/x@1.0"), None, "maven package without a group id"),
        ({"name": "x", "version": "1.0"}, None, "no usable purl"),
        ({"name": "x", "purl": "pkg:pypi/x"}, None, "no version"),
        ("not a package", None, "package is not an object"),
    ],
)
def test_unmatchable_packages_are_counted(pkg, distro, reason):
    skipped = Counter()
    assert match_packages(OsvDatabase.from_records(DISTRO_RECORDS), [pkg], distro=distro, skipped=skipped) == []
    assert skipped == {reason: 1}


def test_distro_is_reported_on_findings():
    distro = {"name": "debian", "version": "12", "IDLike": []}
    pkg = package("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?upstream=openssl")
    vulns = match_packages(OsvDatabase.from_records(DISTRO_RECORDS), [pkg], distro=distro)
    assert vulns[0]["distro"] == distro
    openssl = package(f"pkg:deb/debian/openssl@3.0.1-1?{DEB12}")
    from_purl = match_packages(OsvDatabase.from_records(DISTRO_RECORDS), [openssl])
    assert from_purl[0]["distro"] == {"name": "debian", "version": "12"}


def test_needed_ecosystems():
    packages = [case[0] for case in ECOSYSTEM_CASES] + [pypi("x", "1.0"), {"purl": "garbage"}]
    assert needed_ecosystems(packages) == [
        "AlmaLinux", "Alpine", "Debian", "Go", "Maven", "PyPI", "Red Hat", "Rocky Linux", "RubyGems", "Ubuntu",
        "crates.io", "npm",
    ]


# --- Aliases, naming, severity, output --------------------------------------------------

def test_aliases_are_one_finding_named_by_cve():
    records = [
        record("PYSEC-2020-1", "demo", events=[{"introduced": "0"}, {"fixed": "2.0"}],
               aliases=["CVE-2020-1", "GHSA-aaaa-bbbb-cccc"]),
        record("GHSA-aaaa-bbbb-cccc", "demo", events=[{"introduced": "0"}, {"fixed": "2.0"}], aliases=["CVE-2020-1"]),
    ]
    vulns = match_packages(OsvDatabase.from_records(records), [pypi("demo", "1.0")])
    assert len(vulns) == 1
    vuln = vulns[0]
    assert vuln["vulnerabilityName"] == "CVE-2020-1"
    assert vuln["links"][:3] == [
        "https://nvd.nist.gov/vuln/detail/CVE-2020-1",
        "https://github.com/advisories/GHSA-aaaa-bbbb-cccc",
        "https://osv.dev/vulnerability/PYSEC-2020-1",
    ]
    assert "https://example.org/PYSEC-2020-1" in vuln["links"]
    assert "Also known as: GHSA-aaaa-bbbb-cccc, PYSEC-2020-1." in vuln["description"]
    assert vuln["fix"] == {"state": "fixed", "versions": ["2.0"]}


@pytest.mark.parametrize(
    "record_id, aliases, expected",
    [
        ("PYSEC-2020-1", ["GHSA-zzzz-bbbb-cccc", "CVE-2020-10", "CVE-2020-9"], "CVE-2020-9"),
        ("PYSEC-2020-1", ["GHSA-zzzz-bbbb-cccc", "GHSA-aaaa-bbbb-cccc"], "GHSA-aaaa-bbbb-cccc"),
        ("PYSEC-2020-1", [], "PYSEC-2020-1"),
        ("OSV-2020-1", ["PYSEC-2020-1"], "OSV-2020-1"),
    ],
)
def test_finding_name_prefers_cve_then_ghsa_then_record_id(record_id, aliases, expected):
    db = OsvDatabase.from_records([record(record_id, "demo", events=[{"introduced": "0"}], aliases=aliases)])
    assert match_packages(db, [pypi("demo", "1.0")])[0]["vulnerabilityName"] == expected


def test_records_naming_different_cves_stay_apart_despite_a_shared_ghsa():
    records = [
        record("PYSEC-1", "demo", events=[{"introduced": "0"}], aliases=["CVE-2021-1", "GHSA-aaaa-bbbb-cccc"]),
        record("PYSEC-2", "demo", events=[{"introduced": "0"}], aliases=["CVE-2021-2", "GHSA-aaaa-bbbb-cccc"]),
        record("GHSA-aaaa-bbbb-cccc", "demo", events=[{"introduced": "0"}]),
    ]
    names = [v["vulnerabilityName"] for v in match_packages(OsvDatabase.from_records(records), [pypi("demo", "1.0")])]
    assert names == ["CVE-2021-1", "CVE-2021-2"]


def test_the_same_advisory_is_not_shared_across_packages():
    records = [record("PYSEC-1", "demo", events=[{"introduced": "0"}]),
               record("PYSEC-2", "other", events=[{"introduced": "0"}])]
    vulns = match_packages(OsvDatabase.from_records(records), [pypi("demo", "1.0"), pypi("other", "1.0")])
    pairs = [(v["vulnerabilityName"], v["package"]["name"]) for v in vulns]
    assert pairs == [("PYSEC-1", "demo"), ("PYSEC-2", "other")]


# (severity[], database_specific, expected severity, whether the "not rated" note is added)
SEVERITY_CASES = [
    ([{"type": "CVSS_V3", "score": CVSS_CRITICAL}], {}, "CRITICAL", False),
    ([{"type": "CVSS_V3", "score": CVSS_MEDIUM}], {}, "MEDIUM", False),
    ([{"type": "CVSS_V2", "score": CVSS2_HIGH}], {}, "HIGH", False),
    ([{"type": "CVSS_V4", "score": CVSS4_CRITICAL}], {}, "CRITICAL", False),
    ([{"type": "CVSS_V2", "score": CVSS2_HIGH}, {"type": "CVSS_V3", "score": CVSS_MEDIUM}], {}, "HIGH", False),
    ([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"}], {}, "NEGLIGIBLE", False),
    ([], {"severity": "MODERATE"}, "MEDIUM", False),
    ([], {"severity": "CRITICAL"}, "CRITICAL", False),
    ([{"type": "Ubuntu", "score": "high"}], {}, "HIGH", False),
    ([{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}], {"severity": "LOW"}, "LOW", False),
    ([{"type": "CVSS_V3", "score": CVSS_MEDIUM}], {"severity": "CRITICAL"}, "MEDIUM", False),  # vectors first
    ([], {}, "NEGLIGIBLE", True),
    ([{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}], {"severity": "whatever"}, "NEGLIGIBLE", True),
]


@pytest.mark.parametrize("severity, database_specific, expected, unrated", SEVERITY_CASES)
def test_severity(severity, database_specific, expected, unrated, vulnerability_validator):
    item = record("PYSEC-1", "demo", events=[{"introduced": "0"}], severity=severity,
                  database_specific=database_specific)
    vuln = match_packages(OsvDatabase.from_records([item]), [pypi("demo", "1.0")])[0]
    assert vuln["severity"] == expected
    assert ("not rated by the advisory" in vuln["description"]) == unrated
    vulnerability_validator.validate(vuln)


def test_cvss_scores():
    item = record("PYSEC-1", "demo", events=[{"introduced": "0"}], severity=[
        {"type": "CVSS_V3", "score": CVSS_CRITICAL},
        {"type": "CVSS_V2", "score": CVSS2_HIGH},
        {"type": "CVSS_V4", "score": CVSS4_CRITICAL},
    ])
    vuln = match_packages(OsvDatabase.from_records([item]), [pypi("demo", "1.0")])[0]
    assert vuln["cvss"] == [
        {"version": "2.0", "vector": CVSS2_HIGH,
         "metrics": {"baseScore": 7.5, "exploitabilityScore": 10.0, "impactScore": 6.4}},
        {"version": "3.1", "vector": CVSS_CRITICAL,
         "metrics": {"baseScore": 9.8, "exploitabilityScore": 3.9, "impactScore": 5.9}},
        {"version": "4.0", "vector": CVSS4_CRITICAL, "metrics": {"baseScore": 9.3}},
    ]


def test_affected_level_severity_counts():
    item = record("DEBIAN-CVE-2024-1", "openssl", "Debian:12", [{"introduced": "0"}])
    item["affected"][0]["ecosystem_specific"] = {"urgency": "high"}
    vuln = match_packages(OsvDatabase.from_records([item]), [package(f"pkg:deb/debian/openssl@1.0-1?{DEB12}")])[0]
    assert vuln["severity"] == "HIGH"


def test_output_validates_against_the_api_schema_and_is_sorted(vulnerability_validator):
    packages = [case[0] for case in ECOSYSTEM_CASES if case[1] is None]
    shuffled = packages[:]
    random.Random(7).shuffle(shuffled)
    db = OsvDatabase.from_records(DISTRO_RECORDS)
    vulns = match_packages(db, packages)
    assert vulns == match_packages(db, shuffled)
    assert len(vulns) > 10
    for vuln in vulns:
        vulnerability_validator.validate(vuln)
        assert set(vuln) >= {"vulnerabilityName", "description", "severity", "links", "cvss", "package", "fix"}
    keys = [(*(v["package"][k] for k in ("purl", "name", "version")), v["vulnerabilityName"]) for v in vulns]
    assert keys == sorted(keys)


def test_a_package_listed_twice_is_reported_once():
    db = OsvDatabase.from_records([record("PYSEC-1", "demo", events=[{"introduced": "0"}])])
    assert len(match_packages(db, [pypi("demo", "1.0"), pypi("demo", "1.0")])) == 1


def test_findings_carry_only_api_package_fields():
    db = OsvDatabase.from_records([record("PYSEC-1", "demo", events=[{"introduced": "0"}])])
    pkg = dict(pypi("demo", "1.0"), source="x", licenses=["MIT", 3], cpes=None)
    assert match_packages(db, [pkg])[0]["package"] == {
        "name": "demo", "version": "1.0", "type": "pypi", "language": "", "purl": "pkg:pypi/demo@1.0",
        "licenses": ["MIT"],
    }


# --- Loading and hostile data -----------------------------------------------------------

def test_load_layouts(tmp_path):
    records = [
        record("PYSEC-1", "demo", events=[{"introduced": "0"}]),
        record("GHSA-aaaa-bbbb-cccc", "left-pad", "npm", [{"introduced": "0"}]),
    ]
    zipped = write_osv(tmp_path / "zipped", records)
    loose = write_osv(tmp_path / "loose", records, zipped=False)
    for root in (zipped, loose):
        db = OsvDatabase.from_path(root)
        assert db.record_count == 2
        assert db.load_seconds >= 0
    assert OsvDatabase.from_path(zipped / "PyPI" / "all.zip").record_count == 1
    assert OsvDatabase.from_path(zipped, ecosystems=["npm"]).record_count == 1
    assert OsvDatabase.from_path(loose / "PyPI" / "PYSEC-1.json").record_count == 1
    with pytest.raises(OsvError):
        OsvDatabase.from_path(tmp_path / "missing")


def test_a_record_under_two_ecosystems_is_loaded_once(tmp_path):
    item = record("GHSA-aaaa-bbbb-cccc", "demo", events=[{"introduced": "0"}])
    npm_range = {"type": "SEMVER", "events": [{"introduced": "0"}]}
    item["affected"].append({"package": {"ecosystem": "npm", "name": "demo"}, "ranges": [npm_range]})
    for base in ("PyPI", "npm"):
        (tmp_path / base).mkdir()
        (tmp_path / base / "GHSA-aaaa-bbbb-cccc.json").write_text(json.dumps(item))
    db = OsvDatabase.from_path(tmp_path)
    assert db.record_count == 1
    assert db.skipped["duplicate record id"] == 1
    assert len(match_packages(db, [pypi("demo", "1.0"), package("pkg:npm/demo@1.0.0")])) == 2


HOSTILE = {
    "bad.json": b"{not json",
    "list.json": b"[1, 2]",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "binary.json": bytes(range(256)),
    "no-id.json": json.dumps({"id": 5, "affected": []}).encode(),
    "bad-id.json": json.dumps({"id": "../../etc/passwd x", "affected": []}).encode(),
    "types.json": json.dumps({
        "id": "PYSEC-T1",
        "aliases": [1, "has space", "GHSA-ok-ok-ok"],
        "severity": "high",
        "references": [{"url": "javascript:alert(1)"}, "x", {"url": "https://ok.example/a"}],
        "affected": [
            "string",
            {"package": {"ecosystem": "PyPI", "name": ["x"]}},
            {"package": {"ecosystem": "PyPI", "name": "hostile"}, "ranges": 5, "versions": [1, {"a": 1}, "1.0"]},
            {"package": {"ecosystem": "PyPI", "name": "hostile"}, "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": 0}]},
                {"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}]},
                {"type": "WHAT", "events": [{"introduced": "0"}]},
                {"type": "ECOSYSTEM", "events": "nope"},
            ]},
        ],
    }).encode(),
}


def test_hostile_files_are_skipped_with_reasons(tmp_path):
    folder = tmp_path / "PyPI"
    folder.mkdir()
    for name, data in HOSTILE.items():
        (folder / name).write_bytes(data)
    (folder / "good.json").write_text(json.dumps(record("PYSEC-G1", "demo", events=[{"introduced": "0"}])))
    db = OsvDatabase.from_path(tmp_path)
    assert db.record_count == 2  # good.json, and the usable part of types.json
    assert db.skipped["invalid JSON"] == 3
    assert db.skipped["record is not an object"] == 1
    assert db.skipped["record without a valid id"] == 2
    assert db.skipped["range with an invalid event or version"] == 2
    assert db.skipped["range without an introduced event"] == 2
    assert db.skipped["range of unknown type"] == 1
    vulns = match_packages(db, [pypi("demo", "1.0"), pypi("hostile", "1.0"), pypi("hostile", "2.0")])
    assert found(vulns) == [("GHSA-ok-ok-ok", "1.0"), ("PYSEC-G1", "1.0")]
    hostile = next(v for v in vulns if v["package"]["name"] == "hostile")
    assert not any(link.startswith("javascript:") for link in hostile["links"])
    assert "https://ok.example/a" in hostile["links"]


def test_broken_and_oversized_archives(tmp_path, monkeypatch):
    (tmp_path / "Debian").mkdir()
    (tmp_path / "Debian" / "all.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    write_osv(tmp_path, [record("PYSEC-1", "demo", events=[{"introduced": "0"}], details="x" * 5000)])
    monkeypatch.setattr(database_module, "MAX_RECORD_BYTES", 1000)
    db = OsvDatabase.from_path(tmp_path)
    assert db.skipped["unreadable archive"] == 1
    assert db.skipped["record too large"] == 1
    assert db.record_count == 0


def test_long_text_is_truncated():
    item = record("PYSEC-1", "demo", events=[{"introduced": "0"}], details="x" * 100_000)
    vuln = match_packages(OsvDatabase.from_records([item]), [pypi("demo", "1.0")])[0]
    assert len(vuln["description"]) < 20_000


# --- The helper-server client -----------------------------------------------------------

class OsvHandler(BaseHTTPRequestHandler):
    """Serves server.root like the helper server: GET /<Ecosystem>/all.zip with ETags."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append((unquote(self.path), self.headers.get("If-None-Match")))
        if self.server.script:
            status = self.server.script.pop(0)
            if status == "garbage":
                return self._send(200, b"<html>not a zip</html>", '"garbage"')
            return self._send(status, b"")
        file = self.server.root / unquote(self.path).lstrip("/")
        if not file.is_file():
            return self._send(404, b"")
        data = file.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        if self.headers.get("If-None-Match") == etag:
            return self._send(304, b"")
        return self._send(200, data, etag)

    def _send(self, status, body, etag=None):
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def osv_server(tmp_path):
    root = write_osv(tmp_path / "served", [
        record("PYSEC-1", "demo", events=[{"introduced": "0"}, {"fixed": "2.0"}]),
        record("GHSA-aaaa-bbbb-cccc", "left-pad", "npm", [{"introduced": "0"}]),
        record("DSA-1", "openssl", "Debian:12", [{"introduced": "0"}]),
    ])
    with http_server(OsvHandler) as server:
        server.root, server.requests, server.script = root, [], []
        yield server


FAST = {"retries": 2, "backoff": 0.01, "timeout": 5}


def test_server_downloads_only_needed_ecosystems_and_revalidates(osv_server, tmp_path):
    cache = tmp_path / "cache"
    packages = [pypi("demo", "1.0")]
    db = OsvDatabase.from_server(osv_server.url, cache, needed_ecosystems(packages), **FAST)
    assert found(match_packages(db, packages)) == [("PYSEC-1", "1.0")]
    assert osv_server.requests == [("/PyPI/all.zip", None)]
    assert (cache / "PyPI" / "all.zip").is_file()
    etag = (cache / "PyPI" / "etag").read_text()

    again = OsvDatabase.from_server(osv_server.url, cache, ["PyPI"], **FAST)
    assert again.record_count == 1
    assert osv_server.requests[-1] == ("/PyPI/all.zip", etag)  # answered 304

    write_osv(osv_server.root, [record("PYSEC-2", "demo", events=[{"introduced": "0"}])])
    changed = OsvDatabase.from_server(osv_server.url, cache, ["PyPI"], **FAST)
    assert found(match_packages(changed, packages)) == [("PYSEC-2", "1.0")]
    assert (cache / "PyPI" / "etag").read_text() != etag


def test_server_versioned_ecosystems_fetch_the_base_archive(osv_server, tmp_path):
    distro_pkg = package(f"pkg:deb/debian/openssl@1.0-1?{DEB12}")
    db = OsvDatabase.from_server(osv_server.url, tmp_path, needed_ecosystems([distro_pkg]), **FAST)
    assert osv_server.requests == [("/Debian/all.zip", None)]
    assert found(match_packages(db, [distro_pkg])) == [("DSA-1", "1.0-1")]


def test_server_errors_are_retried_with_backoff(osv_server, tmp_path):
    osv_server.script = [503, 500]
    db = OsvDatabase.from_server(osv_server.url, tmp_path, ["PyPI"], **FAST)
    assert db.record_count == 1
    assert len(osv_server.requests) == 3


def test_a_non_zip_answer_is_retried(osv_server, tmp_path):
    osv_server.script = ["garbage"]
    assert OsvDatabase.from_server(osv_server.url, tmp_path, ["PyPI"], **FAST).record_count == 1
    assert (tmp_path / "PyPI" / "etag").read_text() != '"garbage"'


@pytest.mark.parametrize("status", [400, 401, 403])
def test_server_client_errors_fail_at_once(osv_server, tmp_path, status):
    osv_server.script = [status]
    with pytest.raises(OsvError, match=f"HTTP {status}"):
        OsvDatabase.from_server(osv_server.url, tmp_path, ["PyPI"], **FAST)
    assert len(osv_server.requests) == 1


def test_missing_ecosystems_are_reported_unless_all_are_missing(osv_server, tmp_path):
    db = OsvDatabase.from_server(osv_server.url, tmp_path, ["PyPI", "crates.io"], **FAST)
    assert db.missing_ecosystems == ["crates.io"]
    assert db.record_count == 1
    with pytest.raises(OsvError, match="none of the ecosystems"):
        OsvDatabase.from_server(osv_server.url, tmp_path, ["crates.io", "Go"], **FAST)


def test_unreachable_server_uses_the_cache_or_fails(osv_server, tmp_path):
    OsvDatabase.from_server(osv_server.url, tmp_path, ["PyPI"], **FAST)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    assert OsvDatabase.from_server(dead_url, tmp_path, ["PyPI"], **FAST).record_count == 1
    with pytest.raises(OsvError, match="cannot download"):
        OsvDatabase.from_server(dead_url, tmp_path / "empty", ["PyPI"], **FAST)


@pytest.mark.parametrize("url, ecosystems", [("file:///etc", ["PyPI"]), ("http://x", [".."]), ("http://x", ["a/b"])])
def test_server_rejects_bad_urls_and_names(url, ecosystems, tmp_path):
    with pytest.raises(OsvError):
        OsvDatabase.from_server(url, tmp_path, ecosystems, **FAST)


# --- The real PyPA data, when present ---------------------------------------------------

real_data = pytest.mark.skipif(not REAL_PYPI.is_file(), reason="the PyPA OSV sample is not present")


@pytest.fixture(scope="module")
def real_db():
    return OsvDatabase.from_path(REAL_PYPI)


# (package, version, advisory name, expected fix) — read from the PyPA records
REAL_VULNERABLE = [
    ("requests", "2.19.0", "CVE-2018-18074", ["2.20.0"]),  # PYSEC-2018-28
    ("PyYAML", "5.3", "CVE-2020-1747", ["5.3.1"]),  # PYSEC-2020-96: introduced 5.1
    ("django", "1.7.5", "CVE-2015-5964", ["1.7.10"]),  # PYSEC-2015-23: pairs out of order
    ("urllib3", "2.0.6", "CVE-2023-45803", ["2.0.7"]),  # PYSEC-2023-212
    ("urllib3", "1.26.17", "CVE-2023-45803", ["1.26.18"]),
    ("Jinja2", "2.10", "CVE-2019-10906", ["2.10.1"]),  # PYSEC-2019-217
    ("Pillow", "9.2.5", "CVE-2022-45199", ["9.3.0"]),  # PYSEC-2022-42980
    ("pillow", "10.0.0", "PYSEC-2023-175", ["10.0.1"]),  # no aliases: named by its id
    ("accesscontrol", "4.2", "CVE-2021-32807", ["4.3"]),  # PYSEC-2021-335
    ("accesscontrol", "4.2", "CVE-2021-32811", ["4.3"]),  # PYSEC-2021-370 shares a GHSA id
]

REAL_NOT_VULNERABLE = [
    ("requests", "2.20.0", "CVE-2018-18074"),
    ("PyYAML", "5.3.1", "CVE-2020-1747"),
    ("PyYAML", "5.0", "CVE-2020-1747"),
    ("django", "1.5", "CVE-2015-5964"),
    ("django", "1.7.10", "CVE-2015-5964"),
    ("urllib3", "2.0.7", "CVE-2023-45803"),
    ("urllib3", "1.26.18", "CVE-2023-45803"),
    ("Jinja2", "2.10.1", "CVE-2019-10906"),
    ("Pillow", "9.3.0", "CVE-2022-45199"),
    ("Pillow", "9.1.0", "CVE-2022-45199"),
    ("accesscontrol", "4.3", "CVE-2021-32807"),
]


@real_data
@pytest.mark.parametrize("name, version, vulnerability, fix", REAL_VULNERABLE)
def test_real_data_finds_planted_vulnerable_versions(
    real_db, name, version, vulnerability, fix, vulnerability_validator
):
    vulns = {v["vulnerabilityName"]: v for v in match_packages(real_db, [pypi(name, version)])}
    assert vulnerability in vulns
    assert vulns[vulnerability]["fix"] == {"state": "fixed", "versions": fix}
    for vuln in vulns.values():
        vulnerability_validator.validate(vuln)


@real_data
@pytest.mark.parametrize("name, version, vulnerability", REAL_NOT_VULNERABLE)
def test_real_data_does_not_report_fixed_versions(real_db, name, version, vulnerability):
    names = {v["vulnerabilityName"] for v in match_packages(real_db, [pypi(name, version)])}
    assert vulnerability not in names


@real_data
def test_real_data_severity_withdrawn_and_counts(real_db):
    assert real_db.record_count == 2649
    assert real_db.skipped["withdrawn record"] == 10
    vulns = match_packages(real_db, [pypi("urllib3", "2.0.6")])
    vuln = next(v for v in vulns if v["vulnerabilityName"] == "CVE-2023-45803")
    assert vuln["cvss"] and vuln["severity"] != "NEGLIGIBLE"
    # PYSEC-2022-43059 (CVE-2022-33124, aiohttp, every version) is withdrawn
    names = {v["vulnerabilityName"] for v in match_packages(real_db, [pypi("aiohttp", "3.8.1")])}
    assert names and "CVE-2022-33124" not in names
