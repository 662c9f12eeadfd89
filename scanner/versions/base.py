"""What every version scheme shares: the error type and an ordering mixin."""

MAX_LENGTH = 256  # longer "versions" are garbage or an attack; real ones are far shorter


class InvalidVersion(ValueError):
    """The text is not a version in this scheme."""


def clean(text):
    """Return the stripped version text, or raise InvalidVersion."""
    if not isinstance(text, str):
        raise InvalidVersion(f"not a string: {type(text).__name__}")
    text = text.strip()
    if not text:
        raise InvalidVersion("empty version")
    if len(text) > MAX_LENGTH:
        raise InvalidVersion(f"version longer than {MAX_LENGTH} characters")
    return text


def is_digit(char):
    # str.isdigit() accepts other scripts' digits; the schemes are defined on ASCII.
    return "0" <= char <= "9"


def is_alpha(char):
    return "a" <= char <= "z" or "A" <= char <= "Z"


class OrderedVersion:
    """A parsed version ordered by a scheme's compare function.

    Subclasses set `text` and `canon` and implement `_cmp(other) -> int`. `canon` must be
    equal exactly when `_cmp` returns 0, so that versions can live in sets and dicts.
    """

    __slots__ = ("text", "canon")

    def _cmp(self, other):
        raise NotImplementedError

    def __eq__(self, other):
        return type(other) is type(self) and self.canon == other.canon

    def __hash__(self):
        return hash(self.canon)

    def __lt__(self, other):
        return self._cmp(other) < 0

    def __le__(self, other):
        return self._cmp(other) <= 0

    def __gt__(self, other):
        return self._cmp(other) > 0

    def __ge__(self, other):
        return self._cmp(other) >= 0

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"{type(self).__name__}({self.text!r})"


def sign(number):
    return (number > 0) - (number < 0)
