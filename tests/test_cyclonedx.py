"""CycloneDX: our SBOM as CycloneDX 1.6 JSON, and CycloneDX from other tools as packages."""

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from app.validation import schema_validator
from scanner import cyclonedx
from scanner.cyclonedx import packages_from_cyclonedx, sbom_document, sbom_from_cyclonedx, write_sbom
from scanner.sbom.common import package

DEBIAN = {"name": "debian", "version": "12", "IDLike": []}
UBUNTU = {"name": "ubuntu", "version": "22.04", "IDLike": ["debian"]}

PACKAGES = sorted([
    package("bash", "5.2.15-2+b2", "deb", "", "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
            ["GPL-3.0-or-later", "BSD-4-Clause-UC", "Custom license text"],
            ["cpe:2.3:a:gnu:bash:5.2.15:*:*:*:*:*:*:*", "cpe:2.3:a:bash:bash:5.2.15:*:*:*:*:*:*:*",
             "cpe:2.3:a:debian:bash:5.2.15:*:*:*:*:*:*:*"]),
    package("requests", "2.31.0", "python", "python", "pkg:pypi/requests@2.31.0", ["Apache-2.0"]),
    package("cryptography", "41.0.0", "python", "python", "pkg:pypi/cryptography@41.0.0",
            ["Apache-2.0 OR BSD-3-Clause"]),
    package("left-pad", "1.3.0", "npm", "javascript", "pkg:npm/left-pad@1.3.0", ["WTFPL", "MIT OR X11"]),
    package("@babel/core", "7.22.0", "npm", "javascript", "pkg:npm/%40babel/core@7.22.0"),
    package("golang.org/x/net", "v0.17.0", "go-module", "go", "pkg:golang/golang.org/x/net@v0.17.0"),
    package("log4j-core", "2.14.1", "java-archive", "java", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            ["Apache-2.0"], ["cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"]),
], key=lambda p: p["purl"])

LOCATIONS = {
    PACKAGES[0]["purl"]: ["/var/lib/dpkg/status"],
    "pkg:pypi/requests@2.31.0": ["/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
                                 "/opt/app/venv/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA"],
    "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1": ["/opt/app/app.war:WEB-INF/lib/log4j-core-2.14.1.jar"],
}


def validate_cyclonedx(doc):
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    assert error is None, str(error)


@pytest.fixture(scope="module")
def package_validator():
    return schema_validator("Package")


def normalized(packages):
    # The library keeps licences and properties in sorted sets: their order is not kept.
    return [{**p, "licenses": sorted(p["licenses"]), "cpes": p["cpes"][:1] + sorted(p["cpes"][1:])}
            for p in packages]


def components_by_name(doc):
    return {c["name"]: c for c in doc["components"]}


# --- writing ----------------------------------------------------------------------------

def test_document_is_valid_cyclonedx_1_6():
    doc = sbom_document(PACKAGES, LOCATIONS, DEBIAN, target_name="/mnt/snapshots/abc", tool_version="0.1.0")
    validate_cyclonedx(doc)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"] == {"bom-ref": "target", "name": "/mnt/snapshots/abc", "type": "file"}
    assert doc["metadata"]["tools"] == {"components": [{"name": "vmclarity-scanner", "type": "application",
                                                        "version": "0.1.0"}]}
    components = components_by_name(doc)
    assert len(components) == len(PACKAGES) + 1
    assert components["debian"] == {"bom-ref": "os:debian", "name": "debian", "type": "operating-system",
                                    "version": "12"}
    log4j = components["log4j-core"]
    assert log4j["bom-ref"] == log4j["purl"] == "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
    assert log4j["type"] == "library" and log4j["version"] == "2.14.1"
    assert log4j["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert log4j["cpe"] == "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"
    assert log4j["evidence"] == {"occurrences": [{"location": "/opt/app/app.war:WEB-INF/lib/log4j-core-2.14.1.jar"}]}
    assert {"name": "vmclarity:package:type", "value": "java-archive"} in log4j["properties"]
    assert {"name": "vmclarity:package:language", "value": "java"} in log4j["properties"]
    assert components["cryptography"]["licenses"] == [{"expression": "Apache-2.0 OR BSD-3-Clause"}]
    # An expression among several licences is kept as a name: CycloneDX allows only a sole expression.
    assert components["left-pad"]["licenses"] == [{"license": {"id": "WTFPL"}},
                                                  {"license": {"name": "MIT OR X11"}}]
    bash = components["bash"]
    assert {"license": {"name": "Custom license text"}} in bash["licenses"]
    assert [p["value"] for p in bash["properties"] if p["name"] == "vmclarity:package:cpe"] == [
        "cpe:2.3:a:bash:bash:5.2.15:*:*:*:*:*:*:*", "cpe:2.3:a:debian:bash:5.2.15:*:*:*:*:*:*:*"]
    root = next(d for d in doc["dependencies"] if d["ref"] == "target")
    assert sorted(root["dependsOn"]) == sorted(c["bom-ref"] for c in doc["components"])


def test_round_trip(tmp_path, package_validator):
    path = tmp_path / "sbom.cdx"
    write_sbom(path, PACKAGES, LOCATIONS, UBUNTU, target_name="vm-1", tool_version="0.1.0")
    assert [p.name for p in tmp_path.iterdir()] == ["sbom.cdx"]  # no temporary file left
    validate_cyclonedx(json.loads(path.read_text()))
    assert normalized(packages_from_cyclonedx(path)) == normalized(PACKAGES)
    assert normalized(packages_from_cyclonedx(str(path))) == normalized(PACKAGES)
    result = sbom_from_cyclonedx(path.read_bytes())
    assert result.distro == UBUNTU
    assert {purl: sorted(paths) for purl, paths in result.locations.items()} == {
        p["purl"]: sorted(LOCATIONS.get(p["purl"], [])) for p in PACKAGES}
    for item in result.packages:
        package_validator.validate(item)


def test_odd_packages_still_make_a_valid_document():
    odd = [
        {"name": "no-purl", "version": "1"},
        {"name": "bad-purl", "version": "1", "purl": "not a purl"},
        {"name": "dup", "version": "1", "purl": "pkg:pypi/dup@1", "licenses": None, "cpes": None},
        {"name": "dup", "version": "1", "purl": "pkg:pypi/dup@1", "type": "python"},
        {"name": "", "version": "", "purl": "pkg:generic/x"},
    ]
    doc = sbom_document(odd, {}, None, target_name="", tool_version="")
    validate_cyclonedx(doc)
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs)) == 5 and "pkg:pypi/dup@1" in refs
    assert doc["metadata"]["component"]["name"] == "unknown"
    empty = sbom_document([], {}, None, target_name="empty", tool_version="1")
    validate_cyclonedx(empty)
    assert "components" not in empty and packages_from_cyclonedx(json.dumps(empty).encode()) == []


# --- reading other tools' SBOMs ---------------------------------------------------------

SYFT_SBOM = {
    "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "version": 1,
    "metadata": {"component": {"bom-ref": "root", "type": "file", "name": "/"}},
    "components": [
        {"bom-ref": "pkg:deb/ubuntu/zlib1g@1.2.11?arch=amd64&distro=ubuntu-22.04&package-id=1", "type": "library",
         "publisher": "Ubuntu Developers", "name": "zlib1g", "version": "1:1.2.11.dfsg-2ubuntu9",
         "licenses": [{"license": {"name": "Zlib"}}],
         "cpe": "cpe:2.3:a:zlib1g:zlib1g:1\\:1.2.11.dfsg-2ubuntu9:*:*:*:*:*:*:*",
         "purl": "pkg:deb/ubuntu/zlib1g@1:1.2.11.dfsg-2ubuntu9?distro=ubuntu-22.04&arch=amd64",
         "properties": [
             {"name": "syft:package:foundBy", "value": "dpkg-db-cataloger"},
             {"name": "syft:package:type", "value": "deb"},
             {"name": "syft:cpe23", "value": "cpe:2.3:a:zlib:zlib1g:1\\:1.2.11.dfsg-2ubuntu9:*:*:*:*:*:*:*"},
             {"name": "syft:location:0:layerID", "value": "sha256:abc"},
             {"name": "syft:location:0:path", "value": "/var/lib/dpkg/status"},
         ]},
        {"type": "library", "name": "PyYAML", "version": "6.0", "purl": "pkg:pypi/PyYAML@6.0",
         "licenses": [{"expression": "MIT"}],
         "properties": [{"name": "syft:package:language", "value": "python"},
                        {"name": "syft:package:type", "value": "python"}]},
        {"type": "operating-system", "name": "ubuntu", "version": "22.04",
         "properties": [{"name": "syft:distro:idLike", "value": "debian"}]},
        {"type": "file", "name": "/etc/passwd", "purl": "pkg:generic/passwd"},
    ],
}

TRIVY_SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.4",
    "components": [
        {"bom-ref": "app", "type": "application", "name": "/app/package-lock.json",
         "components": [
             {"bom-ref": "pkg:npm/express@4.18.2", "type": "library", "name": "express", "version": "4.18.2",
              "purl": "pkg:npm/express@4.18.2",
              "properties": [{"name": "aquasecurity:trivy:PkgType", "value": "npm"}]},
             {"type": "library", "group": "org.yaml", "name": "snakeyaml", "version": "1.33",
              "purl": "pkg:maven/org.yaml/snakeyaml@1.33", "licenses": [{"license": {"id": "Apache-2.0"}}]},
         ]},
        {"type": "library", "name": "serde", "version": "1.0.0", "purl": "pkg:cargo/serde@1.0.0"},
    ],
}


def test_reads_syft_cyclonedx():
    result = sbom_from_cyclonedx(json.dumps(SYFT_SBOM).encode())
    assert result.distro == {"name": "ubuntu", "version": "22.04", "IDLike": ["debian"]}
    zlib, pyyaml = result.packages
    assert zlib == {
        "name": "zlib1g", "version": "1:1.2.11.dfsg-2ubuntu9", "type": "deb", "language": "",
        "licenses": ["Zlib"],
        "cpes": ["cpe:2.3:a:zlib1g:zlib1g:1\\:1.2.11.dfsg-2ubuntu9:*:*:*:*:*:*:*",
                 "cpe:2.3:a:zlib:zlib1g:1\\:1.2.11.dfsg-2ubuntu9:*:*:*:*:*:*:*"],
        "purl": "pkg:deb/ubuntu/zlib1g@1:1.2.11.dfsg-2ubuntu9?arch=amd64&distro=ubuntu-22.04",  # canonical
    }
    assert result.locations[zlib["purl"]] == ["/var/lib/dpkg/status"]
    assert pyyaml["purl"] == "pkg:pypi/pyyaml@6.0" and pyyaml["licenses"] == ["MIT"]
    assert (pyyaml["type"], pyyaml["language"]) == ("python", "python")


def test_reads_trivy_cyclonedx_with_types_from_purls():
    packages = packages_from_cyclonedx(json.dumps(TRIVY_SBOM).encode())
    assert [(p["name"], p["type"], p["language"]) for p in packages] == [
        ("serde", "rust-crate", "rust"), ("snakeyaml", "java-archive", "java"), ("express", "npm", "javascript"),
    ]
    assert packages[1]["licenses"] == ["Apache-2.0"]


@pytest.mark.parametrize("data, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00\x01", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b"[]", "not a CycloneDX JSON document"),
    (b'{"bomFormat": "SPDX"}', "not a CycloneDX JSON document"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "2.0"}', "unsupported CycloneDX specVersion"),
    (b'{"bomFormat": "CycloneDX", "specVersion": ["1.6"]}', "unsupported CycloneDX specVersion"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": {"a": 1}}', "'components' is not a list"),
])
def test_hostile_documents_are_value_errors(data, message):
    with pytest.raises(ValueError, match=message):
        packages_from_cyclonedx(data)


def test_wrong_types_lose_only_the_bad_components():
    components = [
        "a string", 7, None,
        {"type": "library", "name": 5, "purl": "pkg:pypi/x@1"},
        {"type": "library", "name": "no-purl"},
        {"type": "library", "name": "bad-purl", "purl": "pkg:"},
        {"type": "library", "name": "ctl\x00name", "purl": "pkg:pypi/ctl@1"},
        {"type": "library", "name": "x" * 10_000, "purl": "pkg:pypi/long@1"},
        {"type": ["library"], "name": "ok", "version": 1.5, "purl": "pkg:pypi/ok@1", "licenses": "MIT",
         "properties": {"a": "b"}, "cpe": ["x"], "evidence": [], "components": "nope"},
        {"type": "library", "name": "fine", "purl": "pkg:pypi/fine@2",
         "licenses": [None, {"license": "MIT"}, {"license": {"id": 3}}, {"expression": "MIT"}],
         "properties": [None, {"name": 1, "value": "x"}, {"name": "vmclarity:package:type", "value": 2}],
         "evidence": {"occurrences": [None, {"location": 5}, {"location": "/ok"}]}},
    ]
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": "wrong", "components": components}
    result = sbom_from_cyclonedx(json.dumps(doc).encode())
    assert [(p["name"], p["version"], p["type"], p["licenses"]) for p in result.packages] == [
        ("fine", "", "python", ["MIT"]), ("ok", "", "python", []),
    ]
    assert result.locations["pkg:pypi/fine@2"] == ["/ok"]
    assert result.skips["cyclonedx: component is not an object"] == 3
    assert result.skips["cyclonedx: component without a usable name or purl"] == 4
    assert result.skips["merge: bad purl"] == 1


def test_size_count_and_nesting_limits(tmp_path, monkeypatch):
    data = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}).encode()
    with pytest.raises(ValueError, match="larger than 10 bytes"):
        packages_from_cyclonedx(data, max_bytes=10)
    path = tmp_path / "big.json"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="larger than 10 bytes"):
        packages_from_cyclonedx(path, max_bytes=10)
    with pytest.raises(ValueError, match="cannot read SBOM"):
        packages_from_cyclonedx(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="path or bytes"):
        packages_from_cyclonedx(42)

    nested = {"type": "library", "name": "leaf", "purl": "pkg:pypi/leaf@1"}
    for _ in range(cyclonedx.MAX_NESTING + 1):
        nested = {"type": "application", "name": "box", "components": [nested]}
    deep = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [nested]}
    with pytest.raises(ValueError, match="nest deeper"):
        packages_from_cyclonedx(json.dumps(deep).encode())

    monkeypatch.setattr(cyclonedx, "MAX_COMPONENTS", 3)
    many = {"bomFormat": "CycloneDX", "specVersion": "1.6",
            "components": [{"type": "library", "name": f"p{i}", "purl": f"pkg:pypi/p{i}@1"} for i in range(4)]}
    with pytest.raises(ValueError, match="more than 3 components"):
        packages_from_cyclonedx(json.dumps(many).encode())
