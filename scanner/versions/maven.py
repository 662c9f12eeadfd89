"""Maven version ordering: a pragmatic port of Maven 3's ComparableVersion.

The version is split on ".", "-" and digit/letter transitions into numbers, qualifiers
and sub-lists (a "-" or a transition opens a sub-list). Known qualifiers sort
alpha < beta < milestone < rc (= cr) < snapshot < release (= "", ga, final) < sp, and
unknown ones after sp, alphabetically; a number beats any qualifier. Trailing zeros and
release qualifiers are dropped, so 1 == 1.0 == 1.0.0 == 1-ga == 1.0-final.
Like Maven's own, the order is not transitive for some odd strings ("0" vs ".-B4zy");
real versions are not affected.
"""

from scanner.versions.base import InvalidVersion, OrderedVersion, clean, is_digit

QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}  # only when a digit follows: 1a1
RELEASE = str(QUALIFIERS.index(""))
INT, STR, LIST = 0, 1, 2


def _qualifier(text, followed_by_digit):
    if followed_by_digit and text in SHORT:
        text = SHORT[text]
    text = ALIASES.get(text, text)
    if text in QUALIFIERS:
        return (STR, str(QUALIFIERS.index(text)))
    return (STR, f"{len(QUALIFIERS)}-{text}")  # unknown qualifiers sort after all known


def _item(text, digits):
    return (INT, int(text)) if digits else _qualifier(text, False)


def _is_null(item):
    kind, value = item
    return (kind == INT and value == 0) or (kind == STR and value == RELEASE) or (
        kind == LIST and not value
    )


def _normalize(items):
    """Drop null items (0, "", ga, empty lists) that are last or precede a qualifier.

    1.0 == 1, and 2.0.a == 2.a (so 2.0.a < 2-1, as Maven orders them).
    """
    for i in range(len(items) - 1, -1, -1):
        if not _is_null(items[i]):
            continue
        following = items[i + 1] if i + 1 < len(items) else None
        if following is None or following[0] == STR:
            del items[i]
        elif following[0] == LIST and following[1] and following[1][0][0] == STR:
            del items[i]


def _cmp(a, b):
    """Compare two items; either may be None (a missing item)."""
    if a is None:
        return -_cmp(b, None) if b is not None else 0
    kind, value = a
    if b is None:
        if kind == INT:
            return 1 if value else 0
        if kind == STR:
            return (value > RELEASE) - (value < RELEASE)
        return next((r for r in (_cmp(item, None) for item in value) if r), 0)
    if kind != b[0]:
        return _CROSS[(kind, b[0])]
    if kind == LIST:
        for i in range(max(len(value), len(b[1]))):
            result = _cmp(value[i] if i < len(value) else None, b[1][i] if i < len(b[1]) else None)
            if result:
                return result
        return 0
    return (value > b[1]) - (value < b[1])


# Mixed kinds: a number beats a list beats a qualifier.
_CROSS = {
    (INT, STR): 1, (INT, LIST): 1,
    (STR, INT): -1, (STR, LIST): -1,
    (LIST, INT): -1, (LIST, STR): 1,
}


def _freeze(items):
    return tuple((LIST, _freeze(v)) if k == LIST else (k, v) for k, v in items)


def _split(text):
    """ComparableVersion.parseVersion: returns the normalized nested item list."""
    root = current = []
    stack = [root]
    digits, start = False, 0

    def open_sublist():
        nonlocal current
        sub = []
        current.append((LIST, sub))
        current = sub
        stack.append(sub)

    for i, char in enumerate(text):
        if char in ".-":
            current.append((INT, 0) if i == start else _item(text[start:i], digits))
            start = i + 1
            if char == "-":
                open_sublist()
        elif is_digit(char):
            if not digits and i > start:
                current.append(_qualifier(text[start:i], True))
                start = i
                open_sublist()
            digits = True
        else:
            if digits and i > start:
                current.append(_item(text[start:i], True))
                start = i
                open_sublist()
            digits = False
    if len(text) > start:
        current.append(_item(text[start:], digits))
    while stack:
        _normalize(stack.pop())
    return _freeze(root)


class MavenVersion(OrderedVersion):
    __slots__ = ()

    def __init__(self, text):
        self.text = text
        self.canon = _split(text.lower())

    def _cmp(self, other):
        return _cmp((LIST, self.canon), (LIST, other.canon))


def parse(text):
    text = clean(text)
    if any(c.isspace() for c in text):
        raise InvalidVersion("version contains whitespace")
    return MavenVersion(text)


def compare(a, b):
    return parse(a)._cmp(parse(b))
