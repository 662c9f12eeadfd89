"""Semantic Versioning 2.0 precedence (npm, Go, crates.io, Hex, Pub).

A leading "v" is accepted because Go writes versions that way. Build metadata ("+...")
is ignored for precedence, as the spec says. The parsed value is a plain tuple, so it
hashes and sorts natively: (major, minor, patch, (1,)) for a release and
(major, minor, patch, (0, identifiers...)) for a pre-release, which sorts before it.
"""

import re

from scanner.versions.base import InvalidVersion, clean

_NUMBER = r"0|[1-9][0-9]*"
_PRE_ID = r"0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*"
_SEMVER = re.compile(
    rf"v?({_NUMBER})\.({_NUMBER})\.({_NUMBER})"
    rf"(?:-((?:{_PRE_ID})(?:\.(?:{_PRE_ID}))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


def _identifier(text):
    # Numeric identifiers sort below alphanumeric ones, and numerically among themselves.
    return (0, int(text)) if text.isdigit() else (1, text)


def parse(text):
    text = clean(text)
    match = _SEMVER.fullmatch(text)
    if not match:
        raise InvalidVersion("not a semantic version")
    major, minor, patch, pre = match.groups()
    tail = (0, *(_identifier(part) for part in pre.split("."))) if pre else (1,)
    return (int(major), int(minor), int(patch), tail)


def compare(a, b):
    x, y = parse(a), parse(b)
    return (x > y) - (x < y)
