"""A fallback ordering for schemes we do not model (RubyGems, NuGet, Packagist, ...).

Numbers and letter runs are compared in turn; anything else separates them. A number
beats letters and a missing part counts as 0, so "1.0" == "1.0.0", "1.0.a" < "1.0" (a
RubyGems pre-release) and "1.0.0-beta" < "1.0.0". Letters compare case-insensitively.
"""

import re

from scanner.versions.base import InvalidVersion, OrderedVersion, clean

_PART = re.compile(r"[0-9]+|[A-Za-z]+")
_ZERO = (1, 0)


def _parts(text):
    parts = [(1, int(p)) if p[0].isdigit() else (0, p.lower()) for p in _PART.findall(text)]
    while parts and parts[-1] == _ZERO:
        parts.pop()
    return tuple(parts)


class GenericVersion(OrderedVersion):
    __slots__ = ()

    def __init__(self, text):
        self.text = text
        self.canon = _parts(text)

    def _cmp(self, other):
        a, b = self.canon, other.canon
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else _ZERO
            y = b[i] if i < len(b) else _ZERO
            if x != y:
                return 1 if x > y else -1
        return 0


def parse(text):
    text = clean(text)
    if not _PART.search(text):
        raise InvalidVersion("no digits or letters")
    return GenericVersion(text)


def compare(a, b):
    return parse(a)._cmp(parse(b))
