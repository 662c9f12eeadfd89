"""A small, strict reader for package URLs (pkg:type/namespace/name@version?qualifiers#subpath)."""

from typing import NamedTuple
from urllib.parse import unquote

MAX_PURL = 4096


class Purl(NamedTuple):
    type: str
    namespace: str  # "" when absent; segments joined with "/"
    name: str
    version: str  # "" when absent
    qualifiers: dict


def parse_purl(text):
    """Return a Purl, or None when the text is not a package URL."""
    if not isinstance(text, str) or len(text) > MAX_PURL or not text.startswith("pkg:"):
        return None
    rest = text[4:].lstrip("/")
    rest, _, _subpath = rest.partition("#")
    rest, _, query = rest.partition("?")
    path, at, version = rest.rpartition("@")
    if not at or "/" in version:  # an "@" inside the path (an unescaped npm scope)
        path, version = rest, ""
    segments = [unquote(s) for s in path.strip("/").split("/") if s]
    if len(segments) < 2:
        return None
    purl_type, *namespace, name = segments
    if not name or not purl_type.isascii():
        return None
    return Purl(purl_type.lower(), "/".join(namespace), name, unquote(version), _qualifiers(query))


def _qualifiers(query):
    result = {}
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        if eq and key and value:
            result[key.lower()] = unquote(value)
    return result
