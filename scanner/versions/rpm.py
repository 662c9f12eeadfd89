"""RPM version ordering (rpm's rpmvercmp, with "~" and "^", over epoch:version-release).

rpmvercmp splits a string into alphanumeric segments (anything else only separates them).
Digit segments compare as numbers and beat letter segments; letter segments compare as
strings. "~" sorts before anything, even the end ("1.0~rc1" < "1.0"); "^" sorts after the
end but before any further segment ("1.0" < "1.0^git1" < "1.0.1").
"""

from scanner.versions.base import InvalidVersion, OrderedVersion, clean, is_alpha, is_digit, sign

TILDE = ("~",)
CARET = ("^",)
END = ("",)


def _segments(text):
    """Tokens: TILDE, CARET, (1, number) or (0, letters). Separators vanish."""
    tokens = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "~^":
            tokens.append(TILDE if char == "~" else CARET)
            i += 1
        elif is_digit(char) or is_alpha(char):
            same_kind = is_digit if is_digit(char) else is_alpha
            j = i
            while j < len(text) and same_kind(text[j]):
                j += 1
            run = text[i:j]
            tokens.append((1, int(run)) if is_digit(char) else (0, run))
            i = j
        else:
            i += 1
    return tuple(tokens)


def _step(a, b):
    """Compare one position of two token streams as rpmvercmp does; None means go on."""
    if a is TILDE or b is TILDE:
        if a is not TILDE:
            return 1
        if b is not TILDE:
            return -1
        return None
    if a is CARET or b is CARET:
        if a is END:
            return -1
        if b is END:
            return 1
        if a is not CARET:
            return 1
        if b is not CARET:
            return -1
        return None
    if a is END or b is END:
        return -1 if a is END else 1
    if a[0] != b[0]:
        return 1 if a[0] == 1 else -1  # a number beats letters
    if a[1] != b[1]:
        return 1 if a[1] > b[1] else -1
    return None


def rpmvercmp(a, b):
    """Compare two token streams from _segments()."""
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else END
        y = b[i] if i < len(b) else END
        result = _step(x, y)
        if result is not None:
            return result
    return 0


class RpmVersion(OrderedVersion):
    __slots__ = ()

    def __init__(self, text, epoch, version, release):
        self.text = text
        self.canon = (epoch, _segments(version), _segments(release))

    def _cmp(self, other):
        if self.canon[0] != other.canon[0]:
            return sign(self.canon[0] - other.canon[0])
        return rpmvercmp(self.canon[1], other.canon[1]) or rpmvercmp(self.canon[2], other.canon[2])


def parse(text):
    """Parse [epoch:]version[-release] as rpm's parseEVR does; a missing epoch is 0.

    rpm ignores the release when either side lacks one; we compare a missing release as
    empty instead, so that the order stays total (sets, sorting) — "1.0" < "1.0-1".
    """
    text = clean(text)
    epoch = 0
    head, colon, rest = text.partition(":")
    if colon and head.isascii() and head.isdigit():
        epoch, text_evr = int(head), rest
    elif colon and not head:
        text_evr = rest
    else:
        text_evr = text
    version, dash, release = text_evr.rpartition("-")
    if not dash:
        version, release = text_evr, ""
    if not _segments(version):
        raise InvalidVersion("version has no digits or letters")
    return RpmVersion(text, epoch, version, release)


def compare(a, b):
    return parse(a)._cmp(parse(b))
