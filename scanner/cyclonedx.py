"""CycloneDX JSON: our SBOM out (the sbom family's `cyclonedx-json` output, `sbom.cdx`) and
other tools' SBOMs in (the `sbom` input type).

    doc = sbom_document(result.packages, result.locations, result.distro,
                        target_name="/mnt/snapshots/<uuid>", tool_version="0.1.0")
    write_sbom("sbom.cdx", result.packages, result.locations, result.distro, target_name=..., tool_version=...)
    packages = packages_from_cyclonedx("sbom.cdx")        # API Package dicts
    result = sbom_from_cyclonedx(data)                     # SbomResult: packages, locations, distro

Writing uses cyclonedx-python-lib and its JSON 1.6 outputter. Each API Package is a `library`
component: purl, licences (SPDX ids as ids, a single compound expression as an expression,
anything else as a name), the first CPE as `cpe` and any others as properties (a component
has one `cpe`), the package type and language as properties, and where it was found as
evidence occurrences. The OS from os-release is an `operating-system` component, the scanned
target is metadata.component (which depends on everything, so the dependency graph is
complete) and the scanner is in metadata.tools.

Reading accepts CycloneDX JSON 1.2 to 1.7 from any tool (syft's and trivy's included): the
document is checked by hand rather than by the library's deserialiser, so that a hostile file
(bad JSON, wrong types, deep nesting, huge) ends in a clear ValueError and a sloppy one loses
only its bad components. Components without a purl, and files and operating systems, are not
packages. Type and language come from our properties, else syft's, else the purl type.
"""

import json
import os
import re
import tempfile

from cyclonedx import spdx
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from scanner.sbom.common import clean, clean_licenses
from scanner.sbom.merge import Merger

TOOL_NAME = "vmclarity-scanner"
TARGET_REF = "target"
PROP_TYPE = "vmclarity:package:type"
PROP_LANGUAGE = "vmclarity:package:language"
PROP_CPE = "vmclarity:package:cpe"
PROP_ID_LIKE = "vmclarity:distro:idLike"
# syft records the same facts under its own names.
SYFT_TYPE, SYFT_LANGUAGE, SYFT_CPE, SYFT_ID_LIKE = "syft:package:type", "syft:package:language", "syft:cpe23", "syft:distro:idLike"
SYFT_LOCATION = re.compile(r"syft:location:\d+:path")

SPEC_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
MAX_BYTES = 256 << 20  # a 100k-package SBOM is about 100 MiB
MAX_COMPONENTS = 1_000_000
MAX_NESTING = 16  # components inside components; real SBOMs nest one or two levels
MAX_PROPERTIES = 1000
MAX_PURL = 2048
NOT_PACKAGES = {"operating-system", "file", "device", "firmware", "data", "machine-learning-model",
                "cryptographic-asset"}

# purl type -> (syft package type, language), for SBOMs without type/language properties.
PURL_TYPES = {
    "deb": ("deb", ""), "apk": ("apk", ""), "rpm": ("rpm", ""), "alpm": ("alpm", ""),
    "pypi": ("python", "python"), "npm": ("npm", "javascript"), "golang": ("go-module", "go"),
    "maven": ("java-archive", "java"), "gem": ("gem", "ruby"), "cargo": ("rust-crate", "rust"),
    "nuget": ("dotnet", "dotnet"), "composer": ("php-composer", "php"), "hex": ("hex", "erlang"),
    "pub": ("dart-pub", "dart"), "cocoapods": ("pod", "swift"), "swift": ("swift", "swift"),
    "conan": ("conan", "c++"), "hackage": ("hackage", "haskell"), "cran": ("R-package", "R"),
    "github": ("github-action", ""),
}


# --- writing ----------------------------------------------------------------------------

def sbom_document(packages, locations, distro, *, target_name, tool_version):
    """The CycloneDX 1.6 JSON document (a dict) for one scanned target."""
    bom = _bom(packages, locations or {}, distro, target_name, tool_version)
    return json.loads(JsonV1Dot6(bom).output_as_string())


def write_sbom(path, packages, locations, distro, *, target_name, tool_version):
    """Write the document to path, replacing it only once it is complete."""
    doc = sbom_document(packages, locations, distro, target_name=target_name, tool_version=tool_version)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".sbom-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=2)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _bom(packages, locations, distro, target_name, tool_version):
    target = Component(name=str(target_name or "unknown"), type=ComponentType.FILE, bom_ref=TARGET_REF)
    tool = Component(name=TOOL_NAME, version=str(tool_version or "") or None, type=ComponentType.APPLICATION)
    bom = Bom(metadata=BomMetaData(component=target, tools=ToolRepository(components=[tool])))
    refs = {TARGET_REF}
    components = [_component(pkg, locations.get(pkg.get("purl")) or [], _ref(pkg.get("purl"), refs))
                  for pkg in packages]
    if distro and distro.get("name"):
        components.append(_os_component(distro, _ref(f"os:{distro['name']}", refs)))
    bom.components.update(components)
    _depend(bom, target, components)
    return bom


def _depend(bom, target, components):
    """The target depends on every component; each component is in the graph without dependencies.

    Bom.register_dependency scans all registered dependencies on each call and Bom.validate()
    (run by every outputter) calls it once per component: quadratic, minutes for 20k packages.
    So the graph is built here in one go, and this Bom's register_dependency skips what is known.
    """
    children = [Dependency(ref=c.bom_ref) for c in components]
    bom.dependencies.update([Dependency(ref=target.bom_ref, dependencies=children), *children])
    known = {target.bom_ref.value, *(c.bom_ref.value for c in components)}

    def register_dependency(target, depends_on=None):
        if depends_on or target.bom_ref.value not in known:
            Bom.register_dependency(bom, target, depends_on)
            known.add(target.bom_ref.value)

    bom.register_dependency = register_dependency


def _ref(wanted, taken):
    """A bom-ref unique in the document: the purl when free, else a numbered one."""
    ref = wanted if isinstance(wanted, str) and wanted and wanted not in taken else f"component-{len(taken)}"
    taken.add(ref)
    return ref


def _component(pkg, paths, ref):
    cpes = [cpe for cpe in pkg.get("cpes") or [] if isinstance(cpe, str) and cpe]
    properties = [Property(name=PROP_TYPE, value=pkg.get("type") or ""),
                  Property(name=PROP_LANGUAGE, value=pkg.get("language") or "")]
    properties += [Property(name=PROP_CPE, value=cpe) for cpe in cpes[1:]]
    occurrences = [Occurrence(location=path) for path in dict.fromkeys(paths) if isinstance(path, str) and path]
    return Component(
        name=pkg.get("name") or "",
        version=pkg.get("version") or None,
        bom_ref=ref,
        purl=_purl(pkg.get("purl")),
        licenses=_licenses(pkg.get("licenses") or []),
        cpe=cpes[0] if cpes else None,
        properties=properties,
        evidence=ComponentEvidence(occurrences=occurrences) if occurrences else None,
    )


def _purl(value):
    try:
        return PackageURL.from_string(value) if value else None
    except ValueError:
        return None  # the API does not promise a valid purl; the component just has none


def _licenses(values):
    values = [v for v in values if isinstance(v, str) and v]
    if len(values) == 1 and not spdx.is_supported_id(values[0]) and _compound(values[0]):
        # CycloneDX allows an expression only as the sole licence entry.
        return [LicenseExpression(values[0])]
    return [DisjunctiveLicense(id=v) if spdx.is_supported_id(v) else DisjunctiveLicense(name=v) for v in values]


def _compound(value):
    return re.search(r"\s(AND|OR|WITH)\s", value) is not None and spdx.is_expression(value)


def _os_component(distro, ref):
    id_like = [v for v in distro.get("IDLike") or [] if isinstance(v, str) and v]
    return Component(name=distro["name"], version=distro.get("version") or None, bom_ref=ref,
                     type=ComponentType.OPERATING_SYSTEM,
                     properties=[Property(name=PROP_ID_LIKE, value=v) for v in id_like])


# --- reading ----------------------------------------------------------------------------

def packages_from_cyclonedx(source, max_bytes=MAX_BYTES):
    """API Package dicts, sorted by purl, from a CycloneDX JSON file path or its bytes."""
    return sbom_from_cyclonedx(source, max_bytes).packages


def sbom_from_cyclonedx(source, max_bytes=MAX_BYTES):
    """An SbomResult (packages, locations, distro, skips) from CycloneDX JSON; ValueError if unusable."""
    doc = _document(_read(source, max_bytes))
    merger = Merger()
    for component in _components(doc, merger.skips):
        kind = component.get("type") if isinstance(component.get("type"), str) else "library"
        if kind == "operating-system":
            merger.distro = merger.distro or _distro(component)
            continue
        if kind in NOT_PACKAGES:
            continue
        pkg = _package(component)
        if pkg is None:
            merger.skips["cyclonedx: component without a usable name or purl"] += 1
            continue
        merger.add(pkg, _locations(component))
    return merger.result()


def _read(source, max_bytes):
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as error:
            raise ValueError(f"cannot read SBOM {source}: {error}") from None
    else:
        raise ValueError(f"SBOM source must be a path or bytes, not {type(source).__name__}")
    if len(data) > max_bytes:
        raise ValueError(f"SBOM larger than {max_bytes} bytes")
    return data


def _document(data):
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise ValueError(f"SBOM is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise ValueError("not a CycloneDX JSON document (bomFormat is not 'CycloneDX')")
    if doc.get("specVersion") not in SPEC_VERSIONS:
        raise ValueError(f"unsupported CycloneDX specVersion {str(doc.get('specVersion'))[:20]!r}")
    if doc.get("components") is not None and not isinstance(doc["components"], list):
        raise ValueError("CycloneDX 'components' is not a list")
    return doc


def _components(doc, skips):
    """Every component object, nested ones included, depth and count bounded."""
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    stack = [(item, 0) for item in reversed(doc.get("components") or [])]
    if isinstance(metadata.get("component"), dict):
        # The described target is not a package, but what it contains is.
        stack += [(item, 0) for item in _list(metadata["component"].get("components"))]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > MAX_COMPONENTS:
            raise ValueError(f"SBOM has more than {MAX_COMPONENTS} components")
        if not isinstance(item, dict):
            skips["cyclonedx: component is not an object"] += 1
            continue
        children = _list(item.get("components"))
        if children and depth >= MAX_NESTING:
            raise ValueError(f"SBOM components nest deeper than {MAX_NESTING} levels")
        stack += [(child, depth + 1) for child in reversed(children)]
        yield item


def _package(component):
    name = clean(component.get("name"))
    purl = clean(component.get("purl"), MAX_PURL)
    if not name or not purl.startswith("pkg:"):
        return None
    props = _properties(component)
    default_type, default_language = PURL_TYPES.get(_purl_type(purl), (_purl_type(purl), ""))
    cpes = [component.get("cpe"), *props.get(PROP_CPE, []), *props.get(SYFT_CPE, [])]
    return {
        "name": name,
        "version": clean(component.get("version")),
        "type": _first(props, PROP_TYPE, SYFT_TYPE, default=default_type),
        "language": _first(props, PROP_LANGUAGE, SYFT_LANGUAGE, default=default_language),
        "licenses": clean_licenses(_license_texts(component.get("licenses"))),
        "cpes": list(dict.fromkeys(c for c in (clean(cpe, 1024) for cpe in cpes) if c)),
        "purl": purl,  # the merger canonicalises it (or counts it as bad)
    }


def _purl_type(purl):
    return purl[4:].lstrip("/").split("/", 1)[0].lower()


def _properties(component):
    """name -> [values] of the component's well-formed properties."""
    found = {}
    for prop in _list(component.get("properties"))[:MAX_PROPERTIES]:
        if isinstance(prop, dict) and isinstance(prop.get("name"), str):
            value = prop.get("value", "")
            if isinstance(value, str):
                found.setdefault(prop["name"], []).append(value)
    return found


def _first(props, *names, default=""):
    """The first of the named properties present (even if empty: we write empty on purpose)."""
    for name in names:
        if name in props:
            return clean(props[name][0])
    return default


def _license_texts(entries):
    for entry in _list(entries):
        entry = entry if isinstance(entry, dict) else {}
        if isinstance(entry.get("expression"), str):
            yield entry["expression"]
        lic = entry.get("license") if isinstance(entry.get("license"), dict) else {}
        value = lic.get("id") or lic.get("name")
        if isinstance(value, str):
            yield value


def _locations(component):
    evidence = component.get("evidence") if isinstance(component.get("evidence"), dict) else {}
    paths = [o.get("location") for o in _list(evidence.get("occurrences")) if isinstance(o, dict)]
    props = _properties(component)
    paths += [v for name, values in props.items() if SYFT_LOCATION.fullmatch(name) for v in values]
    return list(dict.fromkeys(p for p in (clean(path, 4096) for path in paths) if p))


def _distro(component):
    name = clean(component.get("name"))
    if not name:
        return None
    props = _properties(component)
    id_like = [clean(v) for v in props.get(PROP_ID_LIKE, []) + props.get(SYFT_ID_LIKE, [])]
    return {"name": name, "version": clean(component.get("version")),
            "IDLike": list(dict.fromkeys(v for v in id_like if v))}


def _list(value):
    return value if isinstance(value, list) else []
