"""A small recursive-descent parser for the OData query options we support.

We write our own rather than use `odata-query`: its lexer matches keywords
inside longer names (`allowed`, `nullable`, `trueValue` fail to parse) and its
errors point at whitespace, while every error here names the offending token
and its position in the option's text.

Positions are character offsets into the query parameter as the client sent
it; nested options inside `$expand` are parsed with their offset in the outer
text, so their errors point into the whole `$expand` value.
"""

import re
from dataclasses import dataclass, field

from app.odata.errors import fail
from app.validation import unstorable

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
KEYWORD_LITERALS = {"true": True, "false": False, "null": None}

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T[0-9:.]*(?:Z|[+-]\d{2}:\d{2})?)?)
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<ident>\$?[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[(),/:])
    """,
    re.VERBOSE,
)
DATETIME_LITERAL = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?(Z|[+-]\d{2}:\d{2})$"
)


@dataclass
class Token:
    kind: str  # string number datetime ident punct end
    text: str
    pos: int
    value: object = None


# --- AST -------------------------------------------------------------------------------


@dataclass
class Literal:
    kind: str  # string int float bool null datetime
    value: object
    text: str
    pos: int


@dataclass
class Lambda:
    op: str  # any | all
    var: str
    body: object  # None for `any()`
    pos: int


@dataclass
class Path:
    segments: list  # [(name, pos)]
    pos: int
    text: str
    lambda_: Lambda = None


@dataclass
class Call:
    name: str
    args: list
    pos: int


@dataclass
class Compare:
    op: str
    left: object
    right: object
    pos: int


@dataclass
class BoolOp:
    op: str  # and | or
    left: object
    right: object
    pos: int


@dataclass
class Not:
    operand: object
    pos: int


@dataclass
class OrderItem:
    path: Path
    descending: bool


@dataclass
class ExpandItem:
    name: str
    pos: int
    select: str = None
    expand: str = None
    filter: str = None
    orderby: str = None
    offsets: dict = field(default_factory=dict)


# --- tokens ---------------------------------------------------------------------------


def tokenize(text, option, offset=0):
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            _bad_character(text, pos, option, offset)
        kind, lexeme = match.lastgroup, match.group()
        if kind != "ws":
            tokens.append(_token(kind, lexeme, pos + offset, option))
        pos = match.end()
    tokens.append(Token("end", "", len(text) + offset))
    return tokens


def _bad_character(text, pos, option, offset):
    char = text[pos]
    if char == "'":
        fail(option, "unterminated string literal", pos + offset)
    hint = " (path segments are separated by '/')" if char == "." else ""
    fail(option, f"unexpected character {char!r}{hint}", pos + offset)


def _token(kind, lexeme, pos, option):
    token = Token(kind, lexeme, pos)
    if kind == "string":
        token.value = lexeme[1:-1].replace("''", "'")
        problem = unstorable(token.value)
        if problem:
            fail(option, f"string literal {problem}", pos)
    elif kind == "number":
        token.value = float(lexeme) if any(c in lexeme for c in ".eE") else int(lexeme)
    elif kind == "datetime" and not DATETIME_LITERAL.match(lexeme):
        fail(option, f"invalid datetime literal {lexeme!r} (expected e.g. 2024-01-02T03:04:05Z)", pos)
    return token


# --- $filter --------------------------------------------------------------------------


#: Limits of one expression: far beyond any real filter, within Python's recursion limit and
#: SQLite's parser stack (each `not` nests two levels of its SQL).
MAX_BOOLEAN_OPERATORS = 200
MAX_NESTING = 16


class _Parser:
    def __init__(self, text, option, offset=0):
        self.option = option
        self.text = text
        self.offset = offset
        self.tokens = tokenize(text, option, offset)
        self.i = 0
        self.operators = 0
        self.depth = 0

    @property
    def peek(self):
        return self.tokens[self.i]

    def next(self):
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at(self, kind, text=None, ahead=0):
        token = self.tokens[min(self.i + ahead, len(self.tokens) - 1)]
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind, text=None):
        if not self.at(kind, text):
            self.unexpected()
        return self.next()

    def unexpected(self, token=None):
        token = token or self.peek
        if token.kind == "end":
            fail(self.option, "unexpected end of input", token.pos)
        fail(self.option, f"unexpected token {token.text!r}", token.pos)

    def finish(self):
        if not self.at("end"):
            self.unexpected()

    # expr := or ; or := and ('or' and)* ; and := unary ('and' unary)*
    def expression(self):
        self.deeper()
        left = self.conjunction()
        while self.at("ident", "or"):
            pos = self.boolean_operator()
            left = BoolOp("or", left, self.conjunction(), pos)
        self.depth -= 1
        return left

    def conjunction(self):
        left = self.unary()
        while self.at("ident", "and"):
            pos = self.boolean_operator()
            left = BoolOp("and", left, self.unary(), pos)
        return left

    def unary(self):
        # `not` binds looser than comparisons, so `not a eq 1` reads as `not (a eq 1)`.
        if self.at("ident", "not") and not self.at("punct", "/", ahead=1):
            pos = self.next().pos
            self.deeper()
            operand = self.unary()
            self.depth -= 1
            return Not(operand, pos)
        return self.comparison()

    # The tree is walked recursively when compiled: bound its size and depth, so a huge
    # filter is a 400 naming the limit, never a RecursionError (a 500).
    def boolean_operator(self):
        token = self.next()
        self.operators += 1
        if self.operators > MAX_BOOLEAN_OPERATORS:
            fail(self.option, f"too many 'and'/'or' operators (at most {MAX_BOOLEAN_OPERATORS})", token.pos)
        return token.pos

    def deeper(self):
        self.depth += 1
        if self.depth > MAX_NESTING:
            fail(self.option, f"nested too deeply (at most {MAX_NESTING} levels)", self.peek.pos)

    def comparison(self):
        left = self.primary()
        if self.peek.kind == "ident" and self.peek.text in COMPARISONS:
            token = self.next()
            return Compare(token.text, left, self.primary(), token.pos)
        return left

    def primary(self):
        token = self.peek
        if token.kind == "punct" and token.text == "(":
            self.next()
            inner = self.expression()
            self.expect("punct", ")")
            return inner
        if token.kind in ("string", "number", "datetime"):
            self.next()
            kind = {"string": "string", "datetime": "datetime"}.get(token.kind)
            kind = kind or ("float" if isinstance(token.value, float) else "int")
            return Literal(kind, token.value if kind != "datetime" else token.text, token.text, token.pos)
        if token.kind == "ident" and token.text in KEYWORD_LITERALS:
            self.next()
            value = KEYWORD_LITERALS[token.text]
            return Literal("null" if value is None else "bool", value, token.text, token.pos)
        if token.kind == "ident" and self.at("punct", "(", ahead=1):
            return self.call()
        if token.kind == "ident":
            return self.path()
        self.unexpected()

    def call(self):
        name = self.next()
        self.expect("punct", "(")
        args = []
        if not self.at("punct", ")"):
            args.append(self.expression())
            while self.at("punct", ","):
                self.next()
                args.append(self.expression())
        self.expect("punct", ")")
        return Call(name.text, args, name.pos)

    def path(self):
        first = self.expect("ident")
        segments = [(first.text, first.pos)]
        lambda_ = None
        while self.at("punct", "/"):
            self.next()
            segment = self.expect("ident")
            if segment.text in ("any", "all") and self.at("punct", "("):
                lambda_ = segment
                break
            segments.append((segment.text, segment.pos))
        for name, pos in segments[1:]:
            if name.startswith("$"):
                fail(self.option, f"unexpected token {name!r}", pos)
        last_name, last_pos = segments[-1]
        text = self.text[first.pos - self.offset: last_pos - self.offset + len(last_name)]
        return Path(segments, first.pos, text, lambda_ and self.lambda_(lambda_))

    def lambda_(self, op):
        self.expect("punct", "(")
        if self.at("punct", ")"):
            self.next()
            return Lambda(op.text, None, None, op.pos)
        var = self.expect("ident")
        if var.text.startswith("$") or var.text in KEYWORD_LITERALS:
            self.unexpected(var)
        self.expect("punct", ":")
        body = self.expression()
        self.expect("punct", ")")
        return Lambda(op.text, var.text, body, op.pos)


def parse_filter(text, option="$filter", offset=0):
    """Parse a $filter expression into an AST."""
    parser = _Parser(text, option, offset)
    if parser.at("end"):
        fail(option, "empty expression", offset)
    tree = parser.expression()
    parser.finish()
    return tree


def parse_path(text, option, offset=0):
    """Parse one `a/b/c` property path (no lambda)."""
    parser = _Parser(text, option, offset)
    path = parser.path()
    if path.lambda_ is not None:
        fail(option, "unexpected lambda", path.lambda_.pos)
    parser.finish()
    return path


def parse_orderby(text, option="$orderby", offset=0):
    """Parse `path [asc|desc], ...` into OrderItems."""
    parser = _Parser(text, option, offset)
    items = []
    while True:
        path = parser.path()
        if path.lambda_ is not None:
            fail(option, "cannot order by a lambda", path.lambda_.pos)
        descending = False
        if parser.at("ident", "asc") or parser.at("ident", "desc"):
            descending = parser.next().text == "desc"
        items.append(OrderItem(path, descending))
        if not parser.at("punct", ","):
            break
        parser.next()
    parser.finish()
    return items


# --- $select / $expand ----------------------------------------------------------------


def split_top_level(text, separator, option, offset=0):
    """Split on `separator` outside parentheses and string literals: [(part, offset)]."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            end = text.find("'", i + 1)
            while end != -1 and text[end + 1: end + 2] == "'":
                end = text.find("'", end + 2)
            if end == -1:
                fail(option, "unterminated string literal", offset + i)
            i = end
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                fail(option, "unexpected token ')'", offset + i)
        elif char == separator and depth == 0:
            parts.append((text[start:i], offset + start))
            start = i + 1
        i += 1
    if depth:
        fail(option, "unbalanced '('", offset + len(text))
    parts.append((text[start:], offset + start))
    return parts


def _stripped(part, pos, option):
    """Trim whitespace, keeping the offset right; an empty item is an error."""
    lead = len(part) - len(part.lstrip())
    part = part.strip()
    if not part:
        fail(option, "empty item", pos + lead)
    return part, pos + lead


def parse_select(text, option="$select", offset=0):
    """Parse a comma-separated list of paths; `*` selects everything (returns None)."""
    paths = []
    for part, pos in split_top_level(text, ",", option, offset):
        part, pos = _stripped(part, pos, option)
        if part == "*":
            return None
        paths.append(parse_path(part, option, pos))
    return paths


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPAND_OPTIONS = {"$select": "select", "$expand": "expand", "$filter": "filter", "$orderby": "orderby"}


def parse_expand(text, option="$expand", offset=0):
    """Parse `rel(opt=..;opt=..),rel` into ExpandItems (nested options kept as text + offset)."""
    items = []
    for part, pos in split_top_level(text, ",", option, offset):
        part, pos = _stripped(part, pos, option)
        name = _NAME.match(part)
        if name is None:
            fail(option, f"unexpected token {part[0]!r}", pos)
        item = ExpandItem(name.group(), pos)
        rest = part[name.end():]
        rest_pos = pos + name.end() + len(rest) - len(rest.lstrip())
        rest = rest.strip()
        if rest:
            if rest[0] != "(":
                fail(option, f"unexpected token {rest[0]!r}", rest_pos)
            close = _closing_paren(rest)
            if close != len(rest) - 1:
                after = close + 1 + len(rest[close + 1:]) - len(rest[close + 1:].lstrip())
                fail(option, f"unexpected token {rest[after]!r}", rest_pos + after)
            _expand_options(item, rest[1:-1], rest_pos + 1, option)
        items.append(item)
    return items


def _closing_paren(text):
    """Index of the parenthesis closing text[0] (balance was checked by split_top_level)."""
    depth, i = 0, 0
    while i < len(text):
        if text[i] == "'":
            i = text.index("'", i + 1)
            while text[i + 1: i + 2] == "'":
                i = text.index("'", i + 2)
        elif text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text) - 1


def _expand_options(item, text, offset, option):
    for part, pos in split_top_level(text, ";", option, offset):
        part, pos = _stripped(part, pos, option)
        name, equals, value = part.partition("=")
        key = _EXPAND_OPTIONS.get(name.strip())
        if not equals or key is None:
            fail(option, f"unsupported option {name.strip()!r} in $expand of '{item.name}'", pos)
        value_pos = pos + len(name) + 1
        lead = len(value) - len(value.lstrip())
        setattr(item, key, value.strip())
        item.offsets[key] = value_pos + lead
