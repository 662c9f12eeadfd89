"""Installed Python distributions: *.dist-info/METADATA, *.egg-info/PKG-INFO and *.egg-info files."""

from scanner.sbom.common import Findings, clean, header_fields, make_purl, package, pep503
from scanner.walker import WholeFileVisitor

MAX_SIZE = 4 << 20  # METADATA carries the long description after the headers; 4 MiB is generous
HEADER_LIMIT = 1 << 20  # the headers we read come before the description


def parse_metadata(data):
    """(name, version, licences) from core metadata; ValueError when name or version is missing."""
    name = version = license_field = expression = ""
    classifiers = []
    for key, value in header_fields(data, limit=HEADER_LIMIT):
        key = key.lower()
        if key == "name" and not name:
            name = clean(value, 256)
        elif key == "version" and not version:
            version = clean(value, 256)
        elif key == "license-expression":
            expression = clean(value, 200)
        elif key == "license" and not license_field:
            license_field = clean(value, 100)  # longer is usually the whole licence text: no name
        elif key == "classifier" and value.startswith("License ::"):
            classifiers.append(value.rsplit("::", 1)[-1].strip())
    if not name or not version or " " in version:
        raise ValueError("no name or version")
    if expression:
        licenses = [expression]
    else:
        licenses = ([license_field] if license_field else []) + [c for c in classifiers if c != "OSI Approved"]
    return name, version, licenses


def is_metadata(path):
    """True for .../x.dist-info/METADATA, .../x.egg-info/PKG-INFO and .../x.egg-info (a file)."""
    directory, _, base = path.rpartition("/")
    return ((base == "METADATA" and directory.endswith(".dist-info"))
            or (base == "PKG-INFO" and directory.endswith(".egg-info"))
            or base.endswith(".egg-info"))


class PythonVisitor(WholeFileVisitor):
    name = "python"
    max_file_size = MAX_SIZE

    def __init__(self):
        self.findings = Findings(self.name)

    def wants(self, entry):
        return is_metadata(entry.path) and self.findings.fits(entry, MAX_SIZE)

    def handle(self, entry, data):
        try:
            name, version, licenses = parse_metadata(data)
            purl = make_purl("pypi", None, pep503(name), version)
        except ValueError:
            self.findings.skip("no name or version")
            return
        self.findings.add(package(name, version, "python", "python", purl, licenses), entry.path)
