"""Alpine (apk-tools) version ordering.

Format: digits{.digits}[letter]{_suffix[number]}[-rN]. Pre-release suffixes _alpha < _beta
< _pre < _rc sort before the bare version; post-release _cvs < _svn < _git < _hg < _p after
it. A dotted component with leading zeros sorts as a fraction (1.01 < 1.1, 1.00 < 1.0).

This is apk-tools' token machine (src/version.c), with one deliberate difference: after
a zero-only component such as the "0" of "1.0_rc1", the old code kept reading digits and
so ranked 1.0_rc1 above 1.0. apk-tools' own test table says 6.0_pre1 < 6.0; we continue
with the next token as the code does everywhere else, which gives that answer.
"""

from scanner.versions.base import InvalidVersion, OrderedVersion, clean, is_digit

DIGIT_OR_ZERO, DIGIT, LETTER, SUFFIX, SUFFIX_NO, REVISION_NO, END = range(7)
INVALID = -1
PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")
# A token kind may follow a lower kind only in these pairs (new, previous).
ALLOWED_STEPS_BACK = {(DIGIT_OR_ZERO, DIGIT), (SUFFIX, SUFFIX_NO), (DIGIT, LETTER)}


def _next_kind(kind, text, pos):
    """The kind of the token starting at pos, after `kind`; returns (kind, new pos)."""
    if pos >= len(text):
        return END, pos
    char = text[pos]
    if kind in (DIGIT, DIGIT_OR_ZERO) and "a" <= char <= "z":
        new = LETTER
    elif kind == LETTER and is_digit(char):
        new = DIGIT
    elif kind == SUFFIX and is_digit(char):
        new = SUFFIX_NO
    elif char == ".":
        new, pos = DIGIT_OR_ZERO, pos + 1
    elif char == "_":
        new, pos = SUFFIX, pos + 1
    elif char == "-" and text[pos + 1 : pos + 2] == "r":
        new, pos = REVISION_NO, pos + 2
    else:
        return INVALID, pos
    if new < kind and (new, kind) not in ALLOWED_STEPS_BACK:
        return INVALID, pos
    return new, pos


def _read_number(text, pos):
    end = pos
    while end < len(text) and is_digit(text[end]):
        end += 1
    return (int(text[pos:end]) if end > pos else 0), end


def _read_suffix(text, pos):
    for index, name in enumerate(PRE_SUFFIXES):
        if text.startswith(name, pos):
            return index - len(PRE_SUFFIXES), pos + len(name)
    for index, name in enumerate(POST_SUFFIXES):
        if text.startswith(name, pos):
            return index, pos + len(name)
    raise InvalidVersion(f"unknown suffix at {text[pos:pos + 8]!r}")


def _read_value(kind, text, pos):
    """Read one token's value; returns (value, new pos, whether digits may follow)."""
    if kind == DIGIT_OR_ZERO and text[pos] == "0":
        end = pos
        while end < len(text) and text[end] == "0":
            end += 1
        return -(end - pos), end, True  # leading zeros: a fraction-like component
    if kind in (DIGIT_OR_ZERO, DIGIT, SUFFIX_NO, REVISION_NO):
        value, end = _read_number(text, pos)
        return value, end, False
    if kind == LETTER:
        return ord(text[pos]), pos + 1, False
    value, end = _read_suffix(text, pos)
    return value, end, False


def tokens(text):
    """The (kind, value) tokens of a version, ending with (END, 0)."""
    result = []
    kind, pos = DIGIT, 0
    while kind != END:
        if pos >= len(text):  # after a trailing "." or "_": an empty token, as in apk-tools
            result.append((kind, 0))
            break
        value, pos, digits_follow = _read_value(kind, text, pos)
        result.append((kind, value))
        if digits_follow and pos < len(text) and is_digit(text[pos]):
            kind = DIGIT
        else:
            kind, pos = _next_kind(kind, text, pos)
        if kind == INVALID:
            raise InvalidVersion(f"unexpected {text[pos:pos + 8]!r}")
    result.append((END, 0))
    return tuple(result)


def _compare_tokens(a, b):
    i = 0
    while a[i] == b[i] and a[i][0] != END:
        i += 1
    (kind_a, value_a), (kind_b, value_b) = a[i], b[i]
    if kind_a == kind_b:
        return (value_a > value_b) - (value_a < value_b)
    # Same leading tokens, different kinds: the longer version wins unless it goes on
    # with a pre-release suffix (apk_version_compare_blob).
    if kind_a == SUFFIX and value_a < 0:
        return -1
    if kind_b == SUFFIX and value_b < 0:
        return 1
    return -1 if kind_a > kind_b else 1


class ApkVersion(OrderedVersion):
    __slots__ = ()

    def __init__(self, text):
        self.text = text
        self.canon = tokens(text)

    def _cmp(self, other):
        return _compare_tokens(self.canon, other.canon)


def parse(text):
    text = clean(text)
    if not is_digit(text[0]):
        raise InvalidVersion("apk versions start with a digit")
    return ApkVersion(text)


def compare(a, b):
    return parse(a)._cmp(parse(b))
