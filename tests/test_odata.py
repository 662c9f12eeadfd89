"""The OData engine against a real database (run once on SQLite, once on PostgreSQL).

Documents are inserted straight through the models; every test asserts the
exact ids (and, with $orderby, their order) the database returns.
"""

import pytest

from app import odata
from app.db import database, is_postgres
from app.models import (
    Asset, AssetFinding, AssetScan, AssetScanEstimation, Finding, Provider, Scan, ScanConfig, ScanEstimation,
)


def make(model, id, revision=1, columns=None, **data):
    return model.create(id=id, revision=revision, data={"id": id, "revision": revision, **data}, **(columns or {}))


@pytest.fixture
def world(db):
    make(Provider, "p1", displayName="aws")
    make(Provider, "p2", displayName="docker")
    make(Asset, "a1", 9, scansCount=5, firstSeen="2024-01-02T03:04:05Z", providers=[{"id": "p1"}],
         annotations=[{"key": "owner", "value": "alice"}],
         summary={"totalVulnerabilities": {"totalCriticalVulnerabilities": 3}},
         assetInfo={"objectType": "VMInfo", "instanceID": "i-1", "location": "eu-west-2/vpc-1",
                    "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "red"}]})
    make(Asset, "a2", 10, scansCount=10, firstSeen="2024-01-02T04:04:05+02:00", terminatedOn="2024-03-01T00:00:00Z",
         providers=[{"id": "p2"}, {"id": "p1"}],
         summary={"totalVulnerabilities": {"totalCriticalVulnerabilities": 0}},
         assetInfo={"objectType": "VMInfo", "instanceID": "i-2", "location": "us-east-1/vpc-2", "image": "ami-123",
                    "tags": [{"key": "env", "value": "dev"}]})
    make(Asset, "a3", 2, scansCount=2, firstSeen="2024-01-02T03:04:05.5Z", providers=[],
         assetInfo={"objectType": "DirInfo", "dirName": "/home/User_%x\\[*]?", "location": "EU-Wést"})
    # tags here is an object, not an array: lambdas and length() must not iterate it.
    make(Asset, "a4", 1, providers=[{"id": "dangling"}],
         assetInfo={"objectType": "ContainerImageInfo", "imageID": "sha256:abc",
                    "repoTags": ["nginx:1.25", "nginx:latest"], "tags": {"key": "env", "value": "prod"}})
    make(Asset, "a5", 3, firstSeen="2023-12-31T23:59:59.999-01:00",
         assetInfo={"objectType": "ContainerInfo", "containerID": "c-1", "location": "eu-central-1",
                    "image": {"objectType": "ContainerImageInfo", "imageID": "sha256:abc"}, "labels": []})

    make(ScanConfig, "sc1", columns={"name": "daily"}, name="daily", disabled=False,
         scanTemplate={"maxParallelScanners": 1})
    make(ScanConfig, "sc2", columns={"name": "weekly"}, name="weekly", disabled=True,
         scanTemplate={"maxParallelScanners": 5})
    make(ScanConfig, "sc3", columns={"name": "adhoc"}, name="adhoc")
    make(Scan, "s1", columns={"scan_config": "sc1"}, name="one", scanConfig={"id": "sc1"}, assetIDs=["a1", "a2"],
         startTime="2024-05-01T10:00:00Z")
    make(Scan, "s2", columns={"scan_config": "sc2"}, name="two", scanConfig={"id": "sc2"}, assetIDs=["a3"])
    make(Scan, "s3", name="three")

    def asset_scan(id, asset, scan, state, **data):
        stubs = {"asset": {"id": asset}, **({"scan": {"id": scan}} if scan else {})}
        make(AssetScan, id, columns={"asset": asset, "scan": scan, "state": state},
             status={"state": state}, **stubs, **data)

    asset_scan("as1", "a1", "s1", "Done", vulnerabilities={"vulnerabilities": [
        {"vulnerabilityName": "CVE-1", "links": ["https://nvd.nist.gov/CVE-1", "https://example.com"]},
        {"vulnerabilityName": "CVE-2", "links": []}]})
    asset_scan("as2", "a2", "s1", "Failed")
    asset_scan("as3", "a3", "s2", "InProgress")
    asset_scan("as4", "a5", None, "Pending")

    def finding(id, info, last_seen_by=None):
        stub = {"lastSeenBy": {"id": last_seen_by}} if last_seen_by else {}
        make(Finding, id, columns={"key": id, "object_type": info["objectType"], "last_seen_by": last_seen_by},
             findingInfo=info, **stub)

    finding("f1", {"objectType": "Vulnerability", "vulnerabilityName": "CVE-1", "severity": "CRITICAL"}, "as1")
    finding("f2", {"objectType": "Package", "name": "openssl", "version": "3.0.0"})
    finding("f3", {"objectType": "Vulnerability", "vulnerabilityName": "CVE-2", "severity": "HIGH"}, "as3")
    for id, asset, found in (("af1", "a1", "f1"), ("af2", "a1", "f2"), ("af3", "a2", "f1"), ("af4", "a3", "f3")):
        make(AssetFinding, id, columns={"asset": asset, "finding": found}, asset={"id": asset}, finding={"id": found})

    make(ScanEstimation, "se1", assetScanEstimations=[{"id": "ase1"}, {"id": "ghost"}, {"id": "ase2"}, {"id": "ase3"}])
    for id, asset, state, start in (("ase1", "a1", "Done", "2024-01-01T10:00:00Z"),
                                    ("ase2", "a2", "Done", "2024-01-01T12:00:00+01:00"),
                                    ("ase3", "a3", "Pending", "2024-01-01T11:30:00Z")):
        make(AssetScanEstimation, id, columns={"asset": asset, "scan_estimation": "se1"},
             asset={"id": asset}, scanEstimation={"id": "se1"}, status={"state": state}, startTime=start)


def query(model, restrict=None, **options):
    return odata.list_documents(model, {f"${name}": value for name, value in options.items()}, restrict=restrict)


def ids(model, **options):
    return [doc["id"] for doc in query(model, **options)["items"]]


ALL_ASSETS = ["a1", "a2", "a3", "a4", "a5"]


# --- $filter ------------------------------------------------------------------------------

ASSET_FILTERS = [
    # comparison operators, typed
    ("assetInfo/location eq 'eu-west-2/vpc-1'", ["a1"]),
    ("assetInfo/location ne 'eu-west-2/vpc-1'", ["a2", "a3", "a4", "a5"]),  # missing ne x is true
    ("scansCount eq 10", ["a2"]),
    ("scansCount ne 10", ["a1", "a3", "a4", "a5"]),
    ("scansCount gt 5", ["a2"]),
    ("scansCount ge 5", ["a1", "a2"]),
    ("scansCount lt 5", ["a3"]),
    ("scansCount le 2", ["a3"]),
    ("scansCount gt 4.5", ["a1", "a2"]),
    ("10 eq scansCount", ["a2"]),
    ("5 lt scansCount", ["a2"]),  # literal on the left flips the operator
    ("revision gt 9", ["a2"]),  # numerically: as text '10' < '9'
    ("revision le 2", ["a3", "a4"]),
    ("summary/totalVulnerabilities/totalCriticalVulnerabilities ge 1", ["a1"]),
    ("id eq 'a3'", ["a3"]),
    ("$it/scansCount eq 5", ["a1"]),
    # null handling: missing keys count as null
    ("terminatedOn eq null", ["a1", "a3", "a4", "a5"]),
    ("terminatedOn ne null", ["a2"]),
    ("null ne terminatedOn", ["a2"]),
    ("assetInfo/location eq null", ["a4"]),
    ("scansCount eq null", ["a4", "a5"]),
    ("assetInfo ne null", ALL_ASSETS),
    ("not (scansCount gt 4)", ["a3", "a4", "a5"]),
    ("not scansCount gt 4", ["a3", "a4", "a5"]),
    ("not (assetInfo/location eq 'EU-Wést')", ["a1", "a2", "a4", "a5"]),
    # datetimes compare as instants, whatever the offset or fraction
    ("firstSeen gt 2024-01-02T03:00:00Z", ["a1", "a3"]),
    ("firstSeen lt 2024-01-02T05:00:00+02:00", ["a2", "a5"]),
    ("firstSeen eq 2024-01-02T02:04:05Z", ["a2"]),
    ("firstSeen eq '2024-01-02T02:04:05Z'", ["a2"]),
    ("firstSeen gt 2024-01-02T03:04:05Z", ["a3"]),
    ("firstSeen ge 2024-01-02T03:04:05.000Z", ["a1", "a3"]),
    ("firstSeen eq 2024-01-01T00:59:59.999Z", ["a5"]),
    ("firstSeen lt terminatedOn", ["a2"]),
    # strings order by bytes on both databases ('E' < 'e'), whatever PostgreSQL's locale
    ("assetInfo/location gt 'eu-central-1'", ["a1", "a2"]),
    ("assetInfo/location lt 'e'", ["a3"]),
    ("assetInfo/location ge 'eu-central-1' and assetInfo/location le 'eu-west'", ["a5"]),
    # and / or / not / parentheses
    ("scansCount gt 1 and (assetInfo/objectType eq 'VMInfo' or assetInfo/objectType eq 'DirInfo')",
     ["a1", "a2", "a3"]),
    ("scansCount gt 4 or terminatedOn ne null", ["a1", "a2"]),
    ("scansCount gt 4 and terminatedOn ne null or id eq 'a5'", ["a2", "a5"]),
    ("not (scansCount gt 4 or assetInfo/location eq null)", ["a3", "a5"]),
    ("not not (scansCount eq 5)", ["a1"]),
    ("((scansCount eq 5))", ["a1"]),
    # string functions: case-sensitive, metacharacters literal
    ("contains(assetInfo/location, 'west')", ["a1"]),
    ("contains(assetInfo/location, 'Wés')", ["a3"]),
    ("contains(assetInfo/location, 'WEST')", []),
    ("startswith(assetInfo/location, 'eu')", ["a1", "a5"]),
    ("startswith(assetInfo/location, 'EU')", ["a3"]),
    ("endswith(assetInfo/location, 'vpc-1')", ["a1"]),
    ("endswith(assetInfo/location, 'VPC-1')", []),
    ("contains(assetInfo/location, '')", ["a1", "a2", "a3", "a5"]),
    ("contains(assetInfo/dirName, '_%x')", ["a3"]),
    ("contains(assetInfo/dirName, '\\[*]?')", ["a3"]),
    ("endswith(assetInfo/dirName, '?')", ["a3"]),
    ("startswith(assetInfo/dirName, '/home/User')", ["a3"]),
    ("startswith(assetInfo/dirName, '/home/user')", []),
    ("contains(assetInfo/location, '%')", []),
    ("contains(assetInfo/location, '*')", []),
    ("startswith(assetInfo/location, '_u')", []),
    ("startswith(assetInfo/location, '?u')", []),
    ("contains(assetInfo/location, '[w]')", []),
    ("contains(assetInfo/location, '\\')", []),
    ("not contains(assetInfo/location, 'west')", ["a2", "a3", "a4", "a5"]),
    # length(): arrays and strings (characters, not bytes)
    ("length(assetInfo/tags) eq 2", ["a1"]),
    ("length(assetInfo/tags) gt 0", ["a1", "a2"]),
    ("length(assetInfo/repoTags) eq 2", ["a4"]),
    ("length(providers) eq 0", ["a3"]),
    ("length(assetInfo/labels) eq 0", ["a5"]),
    ("length(assetInfo/location) eq 7", ["a3"]),
    ("length(assetInfo/location) eq 12", ["a5"]),
    # lambdas, including empty, missing and non-array collections
    ("assetInfo/tags/any(t: t/key eq 'env' and t/value eq 'prod')", ["a1"]),
    ("assetInfo/tags/any(t: t/key eq 'env')", ["a1", "a2"]),
    ("assetInfo/tags/any()", ["a1", "a2"]),
    ("not assetInfo/tags/any()", ["a3", "a4", "a5"]),
    ("assetInfo/tags/all(t: t/key eq 'env')", ["a2", "a3", "a4", "a5"]),
    ("not assetInfo/tags/all(t: t/key eq 'env')", ["a1"]),
    ("assetInfo/tags/any(t: not (t/key eq 'env'))", ["a1"]),
    ("assetInfo/tags/any(t: t/value eq 'prod' and scansCount eq 5)", ["a1"]),
    ("assetInfo/tags/any(t: t/value eq 'prod' and $it/scansCount eq 10)", []),
    ("assetInfo/repoTags/any(t: t eq 'nginx:latest')", ["a4"]),
    ("assetInfo/repoTags/any(t: startswith(t, 'nginx:1'))", ["a4"]),
    ("assetInfo/repoTags/all(t: startswith(t, 'nginx'))", ALL_ASSETS),
    ("assetInfo/repoTags/all(t: t eq 'nginx:latest')", ["a1", "a2", "a3", "a5"]),
    ("assetInfo/repoTags/any(t: length(t) eq 10)", ["a4"]),
    ("assetInfo/labels/any()", []),
    ("assetInfo/labels/all(l: l/key eq 'x')", ALL_ASSETS),
    ("annotations/any(a: a/value eq 'alice')", ["a1"]),
    ("providers/any(p: p/displayName eq 'docker')", ["a2"]),
    ("providers/any(p: p/id eq 'dangling')", ["a4"]),
    ("providers/any(p: p/displayName eq null)", ["a4"]),
    ("providers/all(p: p/displayName eq 'aws')", ["a1", "a3", "a5"]),
    ("providers/any(p: p/displayName eq 'aws') and assetInfo/tags/any(t: t/value eq 'dev')", ["a2"]),
    # union members: any property of any variant
    ("assetInfo/instanceID eq 'i-2'", ["a2"]),
    ("assetInfo/objectType eq 'DirInfo'", ["a3"]),
    ("assetInfo/image eq 'ami-123'", ["a2"]),
    ("assetInfo/image/imageID eq 'sha256:abc'", ["a5"]),
    ("assetInfo/imageID eq 'sha256:abc'", ["a4"]),
    # injection attempts are just strings
    ("assetInfo/location eq 'x'' OR 1=1 --'", []),
    ("assetInfo/location eq 'eu-west-2/vpc-1'' or ''1''=''1'", []),
    ("contains(assetInfo/location, ''');DROP TABLE asset;--')", []),
]


@pytest.mark.parametrize("text, expected", ASSET_FILTERS)
def test_asset_filters(world, text, expected):
    assert ids(Asset, filter=text) == expected


@pytest.mark.parametrize("model, text, expected", [
    # to-one relationships, pushed into the target table or as scalar sub-selects
    (AssetScan, "asset/assetInfo/location eq 'eu-west-2/vpc-1'", ["as1"]),
    (AssetScan, "asset/terminatedOn ne null", ["as2"]),
    (AssetScan, "asset/terminatedOn eq null", ["as1", "as3", "as4"]),
    (AssetScan, "asset/scansCount ge 5", ["as1", "as2"]),
    (AssetScan, "asset/firstSeen lt 2024-01-02T03:00:00Z", ["as2", "as4"]),
    (AssetScan, "asset/id eq 'a5'", ["as4"]),
    (AssetScan, "status/state eq 'Done'", ["as1"]),
    (AssetScan, "status/state ne 'Done'", ["as2", "as3", "as4"]),
    (AssetScan, "scan eq null", ["as4"]),
    (AssetScan, "scan ne null", ["as1", "as2", "as3"]),
    (AssetScan, "scan/name ne 'one'", ["as3", "as4"]),
    (AssetScan, "not (scan/name eq 'one')", ["as3", "as4"]),
    (AssetScan, "startswith(scan/name, 't')", ["as3"]),
    (AssetScan, "asset/assetInfo/location gt scan/name", ["as2"]),
    (AssetScan, "asset/assetInfo/location eq scan/name", []),
    (AssetScan, "asset/terminatedOn eq scan/endTime", ["as1", "as3", "as4"]),  # null eq null
    # multi-hop
    (AssetScan, "scan/scanConfig/id eq 'sc1'", ["as1", "as2"]),
    (AssetScan, "scan/scanConfig/name eq 'weekly'", ["as3"]),
    (AssetScan, "scan/scanConfig/scanTemplate/maxParallelScanners gt 1", ["as3"]),
    (AssetScan, "scan/scanConfig/disabled", ["as3"]),
    (AssetScan, "scan/scanConfig eq null", ["as4"]),
    (AssetFinding, "finding/findingInfo/objectType eq 'Vulnerability'", ["af1", "af3", "af4"]),
    (AssetFinding, "not (finding/findingInfo/objectType eq 'Vulnerability')", ["af2"]),
    (AssetFinding, "finding/findingInfo/severity eq 'CRITICAL'", ["af1", "af3"]),
    (AssetFinding, "finding/lastSeenBy/asset/assetInfo/instanceID eq 'i-1'", ["af1", "af3"]),
    (AssetFinding, "finding/lastSeenBy/status/state ne 'Done'", ["af2", "af4"]),
    (AssetFinding, "asset/id eq 'a1' and finding/findingInfo/objectType eq 'Package'", ["af2"]),
    # lambdas across relationships
    (AssetFinding, "asset/assetInfo/tags/any(t: t/value eq 'prod')", ["af1", "af2"]),
    (AssetFinding, "asset/assetInfo/tags/all(t: t/value eq 'prod')", ["af4"]),
    (AssetFinding, "asset/assetInfo/tags/all(t: t/key ne 'x')", ["af1", "af2", "af3", "af4"]),
    (AssetScan, "scan/assetIDs/any(x: x eq 'a3')", ["as3"]),
    (AssetScan, "scan/assetIDs/all(x: x eq 'a3')", ["as3", "as4"]),
    (AssetScan, "not scan/assetIDs/all(x: x eq 'a3')", ["as1", "as2"]),
    (AssetScan, "asset/providers/any(p: p/displayName eq 'docker')", ["as2"]),
    # nested lambdas
    (AssetScan, "vulnerabilities/vulnerabilities/any(v: v/links/any(l: contains(l, 'nvd')))", ["as1"]),
    (AssetScan, "vulnerabilities/vulnerabilities/any(v: v/links/all(l: contains(l, 'nvd')))", ["as1"]),
    (AssetScan, "vulnerabilities/vulnerabilities/all(v: length(v/links) gt 0)", ["as2", "as3", "as4"]),
    (AssetScan, "vulnerabilities/vulnerabilities/any(v: v/links/any(l: endswith(l, v/vulnerabilityName)))", None),
    (Finding, "lastSeenBy/status/state eq 'Done'", ["f1"]),
    (Finding, "lastSeenBy eq null", ["f2"]),
    (Finding, "findingInfo/objectType eq 'Vulnerability' and findingInfo/severity ne 'HIGH'", ["f1"]),
    (ScanEstimation, "assetScanEstimations/any(e: e/status/state eq 'Pending')", ["se1"]),
    (ScanEstimation, "assetScanEstimations/all(e: e/status/state eq 'Done')", []),
    (ScanEstimation, "assetScanEstimations/any(e: e/asset/assetInfo/instanceID eq 'i-2')", ["se1"]),
    (AssetScanEstimation, "startTime gt 2024-01-01T11:15:00Z", ["ase3"]),  # ase2 is 12:00+01:00
    (AssetScanEstimation, "scanEstimation/id eq 'se1' and asset/scansCount eq 2", ["ase3"]),
    # booleans
    (ScanConfig, "disabled eq true", ["sc2"]),
    (ScanConfig, "disabled eq false", ["sc1"]),
    (ScanConfig, "disabled", ["sc2"]),
    (ScanConfig, "not disabled", ["sc1", "sc3"]),
    (ScanConfig, "disabled ne true", ["sc1", "sc3"]),
    (ScanConfig, "true", ["sc1", "sc2", "sc3"]),
])
def test_filters_across_models(world, model, text, expected):
    if expected is None:
        with pytest.raises(odata.ODataError, match="string literal"):
            ids(model, filter=text)
    else:
        assert ids(model, filter=text) == expected


@pytest.mark.parametrize("text, message", [
    ("assetInf eq 1", "$filter: unknown property 'assetInf' at position 0"),
    ("assetInfo/locaton eq 'x'", "$filter: unknown property 'locaton' at position 10"),
    ("revision eq 'x'", "type mismatch: integer property 'revision' cannot be compared with string 'x' at position 12"),
    ("scansCount eq 'it''s'", "string 'it''s' at position 14"),
    ("assetInfo/location eq 5", "at position 22"),
    ("scansCount eq true", "boolean true at position 14"),
    ("scansCount eq 1)", "$filter: unexpected token ')' at position 15"),
    ("scansCount eq", "$filter: unexpected end of input at position 13"),
    ("scansCount eq 1 and", "unexpected end of input at position 19"),
    ("scansCount eq 1 scansCount", "unexpected token 'scansCount' at position 16"),
    ("scansCount eq 1 eq 2", "unexpected token 'eq' at position 16"),
    ("(scansCount eq 1", "unexpected end of input at position 16"),
    ("scansCount eq firstSeen", "integer property 'scansCount' cannot be compared with datetime property 'firstSeen'"),
    ("foo(scansCount)", "$filter: unknown function 'foo' at position 0"),
    ("tolower(assetInfo/location) eq 'x'", "unknown function 'tolower' at position 0"),
    ("contains(assetInfo/location)", "contains() takes 2 arguments, got 1 at position 0"),
    ("assetInfo.location eq 'x'", "unexpected character '.' (path segments are separated by '/') at position 9"),
    ("scansCount eq 1 && id eq 'x'", "unexpected character '&' at position 16"),
    ("assetInfo/location eq 'eu", "unterminated string literal at position 22"),
    ("terminatedOn gt null", "null can only be compared with eq or ne, not 'gt' at position 13"),
    ("assetInfo/tags/key eq 'x'",
     "'tags' is a collection: use tags/any(...) or tags/all(...) to reach 'key' at position 15"),
    ("providers/displayName eq 'x'", "'providers' is a collection"),
    ("assetInfo eq 'x'", "'assetInfo' is an object and can only be compared with null at position 0"),
    ("assetInfo/location/x eq 'y'", "'location' is string and has no property 'x' at position 19"),
    ("contains(scansCount, '1')", "contains() needs a string property, not 'scansCount' at position 9"),
    ("contains(assetInfo/location, assetInfo/location)",
     "needs a string literal as its second argument at position 29"),
    ("firstSeen gt 'yesterday'",
     "invalid datetime literal 'yesterday' (expected e.g. 2024-01-02T03:04:05Z) at position 13"),
    ("firstSeen gt 2024-13-01T00:00:00Z", "invalid datetime literal '2024-13-01T00:00:00Z'"),
    ("firstSeen gt 2024-01-02", "invalid datetime literal '2024-01-02'"),
    ("firstSeen gt 2024-02-30T00:00:00Z", "invalid datetime literal '2024-02-30T00:00:00Z' (expected"),
    ("assetInfo/tags/all()", "all() needs a condition"),
    ("scansCount/any(x: x eq 1)", "'scansCount' is not a collection, so it has no any() at position 11"),
    ("assetInfo/tags/any(t: u/key eq 'x')", "unknown property 'u' at position 22"),
    ("scansCount", "'scansCount' is not a condition"),
    ("length(assetInfo/tags)", "length() is a number, not a condition"),
    ("length(scansCount) eq 1", "length() needs a collection or string property, not 'scansCount' at position 7"),
    ("scansCount eq (id eq 'x')", "expected a property, literal or length(), not a condition at position 18"),
    ("assetInfo/tags/any(t: t/key eq 'x'", "unexpected end of input"),
    ("providers eq 'p1'", "'providers' is a collection and can only be compared with null"),
])
def test_bad_filters_name_the_token(world, text, message):
    with pytest.raises(odata.ODataError) as error:
        ids(Asset, filter=text)
    assert message in str(error.value)
    assert str(error.value).startswith("$filter: ")


def test_the_largest_filters_still_run(world):
    many = " or ".join(f"assetInfo/location eq 'x{i}'" for i in range(200)) + " or id ne 'none'"
    assert ids(Asset, filter=many) == ALL_ASSETS
    deep = "not (" * 7 + "id ne 'none'" + ")" * 7  # 14 levels: 7 of them NOT, nesting the SQL
    assert ids(Asset, filter=deep) == []
    assert ids(Asset, filter="not " * 15 + "id ne 'none'") == []


@pytest.mark.parametrize("text, message", [
    (" and ".join(["scansCount eq 1"] * 202), "too many 'and'/'or' operators (at most 200)"),
    ("(" * 17 + "scansCount eq 1" + ")" * 17, "nested too deeply (at most 16 levels)"),
    ("not " * 17 + "scansCount eq 1", "nested too deeply (at most 16 levels)"),
])
def test_huge_filters_are_refused_not_crashed(world, text, message):
    with pytest.raises(odata.ODataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ids(Asset, filter=text)


def test_blank_filter_matches_everything(world):
    assert ids(Asset, filter="  ") == ALL_ASSETS


def test_relationship_compared_to_a_string_hints_at_id(world):
    with pytest.raises(odata.ODataError, match=r"'scan' is a relationship .*compare scan/id"):
        ids(AssetScan, filter="scan eq 's1'")


def test_injection_leaves_the_tables_alone(world):
    assert ids(Asset, filter="assetInfo/location eq 'x''; DELETE FROM asset; --'") == []
    assert ids(Asset, filter="contains(assetInfo/location, ''')); DROP TABLE asset; --')") == []
    with pytest.raises(odata.ODataError, match="unexpected character ';'"):
        ids(Asset, orderby="scansCount; DROP TABLE asset")
    assert Asset.select().count() == 5


# --- $orderby, $top, $skip, $count -------------------------------------------------------

@pytest.mark.parametrize("model, orderby, expected", [
    (Asset, "revision", ["a4", "a3", "a5", "a1", "a2"]),
    (Asset, "revision desc", ["a2", "a1", "a5", "a3", "a4"]),
    (Asset, "revision asc", ["a4", "a3", "a5", "a1", "a2"]),
    # missing values: first ascending, last descending, ties by insertion
    (Asset, "scansCount", ["a4", "a5", "a3", "a1", "a2"]),
    (Asset, "scansCount desc", ["a2", "a1", "a3", "a4", "a5"]),
    # instants, not text: offsets and fractional seconds
    (Asset, "firstSeen", ["a4", "a5", "a2", "a1", "a3"]),
    (Asset, "firstSeen desc", ["a3", "a1", "a2", "a5", "a4"]),
    # byte order on both databases, whatever PostgreSQL's locale
    (Asset, "assetInfo/location", ["a4", "a3", "a5", "a1", "a2"]),
    (Asset, "assetInfo/objectType, scansCount desc", ["a4", "a5", "a3", "a2", "a1"]),
    (Asset, "assetInfo/objectType", ["a4", "a5", "a3", "a1", "a2"]),
    (Asset, "summary/totalVulnerabilities/totalCriticalVulnerabilities desc,id desc", ["a1", "a2", "a5", "a4", "a3"]),
    (AssetScan, "asset/scansCount desc", ["as2", "as1", "as3", "as4"]),
    (AssetScan, "scan/scanConfig/name", ["as4", "as1", "as2", "as3"]),
    (AssetScan, "scan/id desc", ["as3", "as1", "as2", "as4"]),
    (ScanConfig, "disabled desc", ["sc2", "sc1", "sc3"]),
    (AssetScanEstimation, "startTime", ["ase1", "ase2", "ase3"]),
])
def test_orderby_is_typed(world, model, orderby, expected):
    assert ids(model, orderby=orderby) == expected


@pytest.mark.parametrize("orderby, message", [
    ("assetInfo", "$orderby: cannot order by 'assetInfo': it is an object at position 0"),
    ("assetInfo/tags", "cannot order by 'assetInfo/tags': it is a collection at position 0"),
    ("scanCount", "$orderby: unknown property 'scanCount' at position 0"),
    ("scansCount up", "unexpected token 'up' at position 11"),
    ("scansCount,", "unexpected end of input at position 11"),
    ("assetInfo/tags/any(t: t/key eq 'x')", "cannot order by a lambda"),
])
def test_bad_orderby(world, orderby, message):
    with pytest.raises(odata.ODataError) as error:
        ids(Asset, orderby=orderby)
    assert message in str(error.value)


@pytest.mark.parametrize("options, expected, count", [
    ({"top": "2"}, ["a4", "a3"], None),
    ({"skip": "2"}, ["a5", "a1", "a2"], None),
    ({"top": "1", "skip": "1"}, ["a3"], None),
    ({"top": "0"}, [], None),
    ({"skip": "10"}, [], None),
    ({"top": "2", "count": "true"}, ["a4", "a3"], 5),
    ({"skip": "4", "count": "true", "filter": "scansCount gt 1"}, [], 3),
    ({"count": "false"}, ["a4", "a3", "a5", "a1", "a2"], None),
])
def test_paging_and_count(world, options, expected, count):
    result = query(Asset, orderby="revision", **options)
    assert [doc["id"] for doc in result["items"]] == expected
    assert result.get("count") == count


def test_paging_is_stable_on_ties(world):
    pages = [ids(Asset, orderby="assetInfo/objectType desc", top="2", skip=str(skip)) for skip in (0, 2, 4)]
    assert sum(pages, []) == ["a1", "a2", "a3", "a5", "a4"]


@pytest.mark.parametrize("name, value", [
    ("top", "-1"), ("top", "x"), ("top", "1.5"), ("skip", "-3"), ("skip", " 2"), ("count", "yes"),
])
def test_bad_paging_options(world, name, value):
    with pytest.raises(odata.ODataError, match=rf"^\${name}: expected"):
        query(Asset, **{name: value})


# --- $select -----------------------------------------------------------------------------

def test_select_returns_exactly_the_selected_properties(world):
    items = query(Asset, select="id,scansCount", orderby="revision")["items"]
    assert items == [{"id": "a4"}, {"id": "a3", "scansCount": 2}, {"id": "a5"}, {"id": "a1", "scansCount": 5},
                     {"id": "a2", "scansCount": 10}]


def test_select_nested_keeps_union_discriminator(world):
    items = query(Asset, select="assetInfo/location", filter="id eq 'a1' or id eq 'a3'")["items"]
    assert items == [{"assetInfo": {"objectType": "VMInfo", "location": "eu-west-2/vpc-1"}},
                     {"assetInfo": {"objectType": "DirInfo", "location": "EU-Wést"}}]


def test_select_deep_and_through_arrays(world):
    [item] = query(Asset, filter="id eq 'a1'",
                   select="summary/totalVulnerabilities/totalCriticalVulnerabilities,assetInfo/tags/key")["items"]
    assert item == {"summary": {"totalVulnerabilities": {"totalCriticalVulnerabilities": 3}},
                    "assetInfo": {"objectType": "VMInfo", "tags": [{"key": "env"}, {"key": "team"}]}}


def test_select_whole_property_wins_over_part(world):
    [item] = query(Asset, filter="id eq 'a2'", select="assetInfo/location,assetInfo,id")["items"]
    assert item == {"id": "a2", "assetInfo": Asset.get(Asset.id == "a2").data["assetInfo"]}


def test_select_star_or_nothing_returns_everything(world):
    full = Asset.get(Asset.id == "a1").data
    assert query(Asset, filter="id eq 'a1'", select="*")["items"] == [full]
    assert query(Asset, filter="id eq 'a1'")["items"] == [full]


@pytest.mark.parametrize("select, message", [
    ("idd", "$select: unknown property 'idd' at position 0"),
    ("id,assetInfo/nope", "$select: unknown property 'nope' at position 13"),
    ("providers/displayName", "cannot select inside relationship 'providers'; use $expand=providers($select=...)"),
    ("id,,scansCount", "$select: empty item at position 3"),
    ("scansCount/x", "'scansCount' is integer and has no property 'x' at position 11"),
    ("id name", "unexpected token 'name' at position 3"),
])
def test_bad_select(world, select, message):
    with pytest.raises(odata.ODataError) as error:
        query(Asset, select=select)
    assert message in str(error.value)


# --- $expand -----------------------------------------------------------------------------

def test_expand_to_one_relationships(world):
    [item] = query(AssetScan, filter="id eq 'as1'", expand="asset,scan")["items"]
    assert item["asset"] == Asset.get(Asset.id == "a1").data
    assert item["scan"] == Scan.get(Scan.id == "s1").data


def test_expand_with_nested_select(world):
    items = query(AssetScan, select="id", expand="asset($select=assetInfo/instanceID),scan($select=name,startTime)",
                  filter="scan ne null")["items"]
    assert items == [
        {"id": "as1", "asset": {"assetInfo": {"objectType": "VMInfo", "instanceID": "i-1"}},
         "scan": {"name": "one", "startTime": "2024-05-01T10:00:00Z"}},
        {"id": "as2", "asset": {"assetInfo": {"objectType": "VMInfo", "instanceID": "i-2"}},
         "scan": {"name": "one", "startTime": "2024-05-01T10:00:00Z"}},
        {"id": "as3", "asset": {"assetInfo": {"objectType": "DirInfo"}}, "scan": {"name": "two"}},
    ]


def test_expand_nested_expand(world):
    items = query(AssetScan, select="id", orderby="id",
                  expand="scan($select=name;$expand=scanConfig($select=name,disabled))")["items"]
    assert items == [
        {"id": "as1", "scan": {"name": "one", "scanConfig": {"name": "daily", "disabled": False}}},
        {"id": "as2", "scan": {"name": "one", "scanConfig": {"name": "daily", "disabled": False}}},
        {"id": "as3", "scan": {"name": "two", "scanConfig": {"name": "weekly", "disabled": True}}},
        {"id": "as4"},
    ]


def test_expand_three_levels(world):
    [item] = query(AssetFinding, filter="id eq 'af3'", select="id",
                   expand="finding($select=id;$expand=lastSeenBy($select=id;$expand=asset($select=id)))")["items"]
    assert item == {"id": "af3", "finding": {"id": "f1", "lastSeenBy": {"id": "as1", "asset": {"id": "a1"}}}}


def test_expand_to_one_with_nested_filter(world):
    items = query(AssetScan, select="id", expand="asset($filter=scansCount gt 5;$select=id)", orderby="id")["items"]
    assert items == [{"id": "as1", "asset": None}, {"id": "as2", "asset": {"id": "a2"}},
                     {"id": "as3", "asset": None}, {"id": "as4", "asset": None}]


def test_expand_collection_keeps_document_order_and_drops_dangling(world):
    items = query(Asset, select="id", expand="providers($select=displayName)", orderby="id")["items"]
    assert items == [
        {"id": "a1", "providers": [{"displayName": "aws"}]},
        {"id": "a2", "providers": [{"displayName": "docker"}, {"displayName": "aws"}]},
        {"id": "a3", "providers": []},
        {"id": "a4", "providers": []},
        {"id": "a5"},
    ]


def test_expand_collection_with_nested_filter_and_orderby(world):
    [item] = query(ScanEstimation, select="id",
                   expand="assetScanEstimations($filter=status/state eq 'Done';$orderby=startTime desc;$select=id)"
                   )["items"]
    # ase2 started 11:00Z (12:00+01:00), ase1 at 10:00Z
    assert item == {"id": "se1", "assetScanEstimations": [{"id": "ase2"}, {"id": "ase1"}]}
    [item] = query(ScanEstimation, select="id", expand="assetScanEstimations($select=id;$orderby=startTime)")["items"]
    assert item["assetScanEstimations"] == [{"id": "ase1"}, {"id": "ase2"}, {"id": "ase3"}]
    [item] = query(ScanEstimation, select="id", expand="assetScanEstimations($select=id)")["items"]
    assert item["assetScanEstimations"] == [{"id": "ase1"}, {"id": "ase2"}, {"id": "ase3"}]


def test_expand_dangling_to_one_is_null(world):
    make(Finding, "f9", columns={"key": "f9", "object_type": "Package"}, lastSeenBy={"id": "gone"},
         findingInfo={"objectType": "Package"})
    [item] = query(Finding, filter="id eq 'f9'", expand="lastSeenBy", select="id")["items"]
    assert item == {"id": "f9", "lastSeenBy": None}


def test_expand_runs_one_query_per_relationship(world, monkeypatch):
    statements = []
    real = database.obj.execute_sql
    monkeypatch.setattr(database.obj, "execute_sql", lambda sql, *a, **k: statements.append(sql) or real(sql, *a, **k))
    items = query(AssetScan, expand="asset($expand=providers),scan($expand=scanConfig)")["items"]
    assert len(items) == 4
    assert len(statements) == 5  # the page, assets, their providers, scans, their scan configs
    assert items[1]["asset"]["providers"][0]["displayName"] == "docker"


@pytest.mark.parametrize("expand, message", [
    ("status", "$expand: 'status' is not a relationship and cannot be expanded at position 0"),
    ("asset,assett", "$expand: unknown property 'assett' at position 6"),
    ("asset($filter=foo eq 1)", "$expand: unknown property 'foo' at position 14"),
    ("asset($filter=scansCount eq)", "$expand: unexpected end of input at position 27"),
    ("asset($orderby=assetInfo)", "cannot order by 'assetInfo': it is an object at position 15"),
    ("asset($select=nope)", "$expand: unknown property 'nope' at position 14"),
    ("scan($expand=scanConfig($select=nam))", "unknown property 'nam' at position 32"),
    ("asset($top=1)", "unsupported option '$top' in $expand of 'asset' at position 6"),
    ("asset(", "unbalanced '('"),
    ("asset)", "unexpected token ')' at position 5"),
    ("asset x", "unexpected token 'x' at position 6"),
])
def test_bad_expand(world, expand, message):
    with pytest.raises(odata.ODataError) as error:
        query(AssetScan, expand=expand)
    assert message in str(error.value)


# --- get_document, restrict, filter_expression -------------------------------------------

def test_get_document(world):
    assert odata.get_document(Asset, "a1", {}) == Asset.get(Asset.id == "a1").data
    assert odata.get_document(Asset, "nope", {}) is None
    shaped = odata.get_document(AssetScan, "as3", {"$select": "id", "$expand": "scan($select=name)",
                                                   "$filter": "id eq 'other'"})
    assert shaped == {"id": "as3", "scan": {"name": "two"}}
    with pytest.raises(odata.ODataError, match="unknown property"):
        odata.get_document(Asset, "a1", {"$select": "bogus"})


def test_restrict_is_anded_into_where_and_count(world):
    result = query(AssetScan, restrict=AssetScan.id == "as2", count="true", filter="status/state ne 'Done'")
    assert [doc["id"] for doc in result["items"]] == ["as2"]
    assert result["count"] == 1
    assert ids(AssetScan, restrict=AssetScan.id == "as2", filter="status/state eq 'Done'") == []


def test_filter_expression_for_scopes(world):
    scope = odata.filter_expression(Asset, "startswith(assetInfo/location, 'eu') and terminatedOn eq null")
    assert [a.id for a in Asset.select().where(scope).order_by(Asset.pk)] == ["a1", "a5"]
    everything = odata.filter_expression(Asset, "  ")
    assert Asset.select().where(everything).count() == 5
    with pytest.raises(odata.ODataError, match="unexpected character '.'"):
        odata.filter_expression(Asset, "startswith(assetInfo.location, 'eu')")


# --- index expressions -------------------------------------------------------------------

@pytest.mark.parametrize("model, path, value", [
    (Finding, "findingInfo/objectType", "Vulnerability"),
    (Finding, "findingInfo/severity", "CRITICAL"),
    (AssetScan, "status/state", "Done"),
])
def test_json_path_sql_is_the_expression_filters_use(world, model, path, value):
    expression, params = odata.json_path_sql(model, path)
    assert params == []
    table = model._meta.table_name
    index = f"odata_test_{table}_idx"
    database.execute_sql(f'CREATE INDEX "{index}" ON "{table}" (({expression}))')
    try:
        query_ = model.select(model.id).where(odata.filter_expression(model, f"{path} eq '{value}'"))
        text, _ = query_.sql()
        assert expression.replace('"data"', '"t1"."data"') in text
        if is_postgres():
            database.execute_sql("SET enable_seqscan = off")
        plan = " ".join(str(row) for row in database.execute_sql(
            ("EXPLAIN " if is_postgres() else "EXPLAIN QUERY PLAN ") + text, [value]).fetchall())
        assert index in plan
        assert len(query_) >= 1
    finally:
        if is_postgres():
            database.execute_sql("RESET enable_seqscan")
        database.execute_sql(f'DROP INDEX "{index}"')


def test_json_path_sql_rejects_relationship_paths(world):
    with pytest.raises(odata.ODataError, match="crosses a relationship"):
        odata.json_path_sql(AssetFinding, "finding/findingInfo/objectType")
    with pytest.raises(odata.ODataError, match="unknown property 'nope'"):
        odata.json_path_sql(Finding, "findingInfo/nope")


def test_postgres_text_order_does_not_depend_on_the_locale():
    """The server used in CI sorts as C already; check the SQL asks for byte order explicitly."""
    import peewee

    from app.odata import dialect, parser
    from app.odata.compiler import Compiler

    compiler = Compiler(Asset, "$orderby", dialect.POSTGRES)
    [term] = compiler.order_terms(parser.parse_orderby("assetInfo/location desc"))
    [compare] = [compiler.predicate(parser.parse_filter("assetInfo/location gt 'a'"), {})]
    context = peewee.PostgresqlDatabase(None).get_sql_context
    assert context().sql(term).query()[0].endswith('COLLATE "C" DESC NULLS LAST')
    assert 'COLLATE "C" > %s' in context().sql(compare).query()[0]
