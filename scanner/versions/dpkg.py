"""Debian version ordering (Debian Policy 5.6.12, dpkg's verrevcmp).

A version is [epoch:]upstream[-revision]. Epochs compare as numbers; upstream and revision
compare part by part: a run of non-digits (letters sort before non-letters, "~" before
everything, even the end of the string), then a run of digits compared as a number.
"""

from scanner.versions.base import InvalidVersion, OrderedVersion, clean, is_alpha, is_digit, sign


def _order(char):
    # dpkg's order(): "~" sorts before the end of the string, letters before other symbols.
    if char == "~":
        return -1
    if is_alpha(char):
        return ord(char)
    return ord(char) + 256


def _parts(text):
    """Split into (non-digit weights, number) pairs; trailing ("", 0) pairs mean nothing."""
    parts = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and not is_digit(text[j]):
            j += 1
        k = j
        while k < len(text) and is_digit(text[k]):
            k += 1
        weights = tuple(_order(c) for c in text[i:j])
        parts.append((weights, int(text[j:k]) if k > j else 0))
        i = k
    while parts and parts[-1] == ((), 0):
        parts.pop()
    return tuple(parts)


def _compare_weights(a, b):
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else 0  # the end of the string weighs 0
        y = b[i] if i < len(b) else 0
        if x != y:
            return sign(x - y)
    return 0


def _compare_parts(a, b):
    """verrevcmp over pre-split parts; a missing part is ("", 0), as when dpkg runs out."""
    for i in range(max(len(a), len(b))):
        weights_a, number_a = a[i] if i < len(a) else ((), 0)
        weights_b, number_b = b[i] if i < len(b) else ((), 0)
        result = _compare_weights(weights_a, weights_b)
        if result:
            return result
        if number_a != number_b:
            return sign(number_a - number_b)
    return 0


class DpkgVersion(OrderedVersion):
    __slots__ = ()

    def __init__(self, text, epoch, upstream, revision):
        self.text = text
        self.canon = (epoch, _parts(upstream), _parts(revision))

    def _cmp(self, other):
        if self.canon[0] != other.canon[0]:
            return sign(self.canon[0] - other.canon[0])
        return _compare_parts(self.canon[1], other.canon[1]) or _compare_parts(
            self.canon[2], other.canon[2]
        )


def parse(text):
    """Parse like dpkg's parseversion: reject what dpkg rejects, accept what it only warns on."""
    text = clean(text)
    if any(c.isspace() for c in text):
        raise InvalidVersion("version contains whitespace")
    epoch, colon, rest = text.partition(":")
    if colon:
        if not epoch.isascii() or not epoch.isdigit():
            raise InvalidVersion("epoch is not a number")
        if not rest:
            raise InvalidVersion("nothing after the epoch colon")
    else:
        epoch, rest = "0", text
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    elif not revision:
        raise InvalidVersion("revision is empty")
    if not upstream:
        raise InvalidVersion("upstream version is empty")
    return DpkgVersion(text, int(epoch), upstream, revision)


def compare(a, b):
    """-1, 0 or 1 as version text a sorts before, equal to or after b."""
    return parse(a)._cmp(parse(b))
