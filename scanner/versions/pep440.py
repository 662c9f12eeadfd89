"""Python package versions (PEP 440), using the `packaging` library's implementation."""

from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from scanner.versions.base import InvalidVersion, clean


def parse(text):
    try:
        return Version(clean(text))
    except _PackagingInvalid as error:
        raise InvalidVersion(str(error)) from None


def compare(a, b):
    x, y = parse(a), parse(b)
    return (x > y) - (x < y)
