"""Compile parsed $filter / $orderby trees into peewee nodes over one model's table.

Paths walk the schema kinds (schema_meta): nested objects and union members
become JSON paths, collections are reached only through any()/all()/length(),
and a relationship hops to the target table by id, as a correlated scalar
sub-select for values or as `fk IN (SELECT id FROM target WHERE ...)` for
conditions that are false when the target is missing (so the target's
indexes serve them).

Logic is OData's two-valued one: a comparison with a missing value is false,
`ne` is true for it, and `not` turns SQL's unknown into false first.
"""

import datetime
import decimal
from dataclasses import dataclass, field

from peewee import SQL

from app.odata import dialect as dialects
from app.odata import parser
from app.odata.dialect import sql
from app.odata.errors import fail
from app.odata.schema_meta import ANY, BOOLEAN, DATETIME, INTEGER, NUMBER, STRING, Array, Obj, Prim, Rel, Union
from app.odata.schema_meta import root_kind

SQL_OPERATORS = {"eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
MATCH_FUNCTIONS = {"contains": (True, True), "startswith": (False, True), "endswith": (True, False)}
LITERAL_FAMILIES = {"string": STRING, "int": NUMBER, "float": NUMBER, "bool": BOOLEAN, "datetime": DATETIME}
LITERAL_NAMES = {"string": "string", "int": "number", "float": "number", "bool": "boolean", "datetime": "datetime"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


@dataclass
class Row:
    """A table row in scope: the query's own model (alias None) or a hop's alias."""

    model: object
    alias: str = None

    def column(self, name):
        field_ = self.model._meta.fields[name]
        if self.alias is None:
            return field_
        prefix = f'"{self.alias}".' if self.alias else ""
        return SQL(f'{prefix}"{field_.column_name}"')


@dataclass
class Hop:
    """Step into `model` as `alias`, whose id equals `id_expr` (evaluated one level out)."""

    model: object
    alias: str
    id_expr: object

    def table(self):
        return f'"{self.model._meta.table_name}" AS "{self.alias}"'


@dataclass
class Operand:
    """A compiled comparison side: typed SQL inside `hops`, or a literal."""

    kind: object
    text: str
    pos: int
    hops: list = field(default_factory=list)
    ref: object = None  # JSON location (None for columns and literals)
    column: object = None  # a plain column holding the value (id, relationship id)
    literal: parser.Literal = None

    @property
    def is_literal(self):
        return self.literal is not None


class Compiler:
    def __init__(self, model, option, dialect=None, root=None):
        self.model = model
        self.option = option
        self.dialect = dialect or dialects.current()
        self.root = root or Row(model)
        self.aliases = 0

    def fail(self, message, pos):
        fail(self.option, message, pos)

    def alias(self, prefix):
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    # --- predicates ------------------------------------------------------------------

    def predicate(self, node, scope):
        if isinstance(node, parser.BoolOp):
            # One flat (a OR b OR c): SQLite's parser overflows on a few hundred nested parentheses.
            terms = _chain(node)
            return sql("(" + f" {node.op.upper()} ".join(["{}"] * len(terms)) + ")",
                       *(self.predicate(term, scope) for term in terms))
        if isinstance(node, parser.Not):
            return sql("(NOT COALESCE({}, {}))", self.predicate(node.operand, scope), self.dialect.false)
        if isinstance(node, parser.Compare):
            return self.compare(node, scope)
        if isinstance(node, parser.Call):
            return self.call_predicate(node, scope)
        if isinstance(node, parser.Path) and node.lambda_ is not None:
            return self.lambda_(node, scope)
        operand = self.operand(node, scope)
        if self.family(operand, strict=False) == BOOLEAN:
            return self.where_in(operand, sql("({} = {})", self.typed(operand, BOOLEAN), self.dialect.true))
        self.fail(f"{operand.text!r} is not a condition (compare it with eq, ne, gt, ge, lt or le)", operand.pos)

    def compare(self, node, scope):
        left, right, op = self.operand(node.left, scope), self.operand(node.right, scope), node.op
        if left.is_literal and not right.is_literal:
            left, right, op = right, left, FLIPPED[op]
        if right.is_literal and right.literal.kind == "null" or left.is_literal and left.literal.kind == "null":
            return self.compare_null(left, right, op, node.pos)
        family = self.common_family(left, right)
        a, b = self.typed(left, family), self.typed(right, family)
        if not right.is_literal:
            a, b = self.scalar(left.hops, a), self.scalar(right.hops, b)
            if op in ("eq", "ne"):
                return (self.dialect.same if op == "eq" else self.dialect.distinct)(a, b)
            return self.ordering(a, op, b, family)
        if op == "ne":
            # True for a missing value, so it cannot be pushed into the target table.
            return self.dialect.distinct(self.scalar(left.hops, a), b)
        return self.where_in(left, self.ordering(a, op, b, family))

    def ordering(self, a, op, b, family):
        if family == STRING and op != "eq":
            a = self.dialect.ordered_text(a)
        return sql(f"({{}} {SQL_OPERATORS[op]} {{}})", a, b)

    def compare_null(self, left, right, op, pos):
        if op not in ("eq", "ne"):
            self.fail(f"null can only be compared with eq or ne, not {op!r}", pos)
        if left.is_literal:
            same = (left.literal.kind == "null") == (right.literal.kind == "null")
            return self.dialect.true if same == (op == "eq") else self.dialect.false
        raw = self.scalar(left.hops, self.raw(left))
        return sql("({} IS NULL)" if op == "eq" else "({} IS NOT NULL)", raw)

    def call_predicate(self, node, scope):
        if node.name not in MATCH_FUNCTIONS:
            if node.name == "length":
                self.fail("length() is a number, not a condition (compare it, e.g. length(x) gt 0)", node.pos)
            self.fail(f"unknown function {node.name!r}", node.pos)
        self.arity(node, 2)
        subject = self.operand(node.args[0], scope)
        needle = node.args[1]
        if subject.is_literal or self.family(subject) not in (STRING, DATETIME, ANY):
            self.fail(f"{node.name}() needs a string property, not {subject.text!r}", subject.pos)
        if not isinstance(needle, parser.Literal) or needle.kind != "string":
            pos = getattr(needle, "pos", node.pos)
            self.fail(f"{node.name}() needs a string literal as its second argument", pos)
        prefix, suffix = MATCH_FUNCTIONS[node.name]
        return self.where_in(subject, self.dialect.match(self.raw(subject), prefix, needle.value, suffix))

    def lambda_(self, node, scope):
        lam = node.lambda_
        collection = self.resolve(node, scope)
        if not isinstance(collection.kind, Array):
            self.fail(f"{collection.text!r} is not a collection, so it has no {lam.op}()", lam.pos)
        if lam.body is None and lam.op == "all":
            self.fail("all() needs a condition, e.g. all(x: x/key eq 'v')", lam.pos)
        alias = self.alias("j")
        source, guard = self.dialect.each(collection.ref, alias)
        body = None
        if lam.body is not None:
            element = (self.dialect.element(collection.ref, alias), collection.kind.items)
            body = self.predicate(lam.body, {**scope, lam.var: element})
        if lam.op == "any":
            condition = guard if body is None else sql("{} AND {}", guard, body)
            return self.where_in(collection, sql("EXISTS (SELECT 1 FROM {} WHERE {})", source, condition))
        failing = sql("{} AND NOT COALESCE({}, {})", guard, body, self.dialect.false)
        every = sql("(NOT EXISTS (SELECT 1 FROM {} WHERE {}))", source, failing)
        if not collection.hops:
            return every
        # A missing target has no elements, so all() holds for it.
        return sql("COALESCE({}, {})", self.scalar(collection.hops, every), self.dialect.true)

    # --- operands --------------------------------------------------------------------

    def operand(self, node, scope):
        if isinstance(node, parser.Literal):
            return Operand(kind=node.kind, text=node.text, pos=node.pos, literal=node)
        if isinstance(node, parser.Path) and node.lambda_ is None:
            return self.resolve(node, scope)
        if isinstance(node, parser.Call) and node.name == "length":
            return self.length(node, scope)
        if isinstance(node, parser.Call) and node.name not in MATCH_FUNCTIONS:
            self.fail(f"unknown function {node.name!r}", node.pos)
        pos = getattr(node, "pos", 0)
        self.fail("expected a property, literal or length(), not a condition", pos)

    def length(self, node, scope):
        self.arity(node, 1)
        target = self.operand(node.args[0], scope)
        if target.is_literal or target.ref is None or not (
            isinstance(target.kind, Array) or self.family(target, strict=False) in (STRING, ANY)
        ):
            self.fail(f"length() needs a collection or string property, not {target.text!r}", target.pos)
        text = f"length({target.text})"
        return Operand(Prim(INTEGER), text, node.pos, hops=target.hops, column=self.dialect.length(target.ref))

    def arity(self, node, count):
        if len(node.args) != count:
            self.fail(f"{node.name}() takes {count} argument{'s' if count > 1 else ''}, got {len(node.args)}", node.pos)

    def resolve(self, path, scope):
        """Walk a path through the schema: its kind, JSON location and relationship hops."""
        segments = path.segments
        first, _ = segments[0]
        row, hops = None, []
        if first in scope:
            ref, kind = scope[first]
            segments = segments[1:]
        else:
            if first == "$it":
                segments = segments[1:]
            row = self.root
            ref, kind = self.dialect.ref(row.column("data")), root_kind(row.model)
        rel_id = self.dialect.text(ref.child("id")) if isinstance(kind, Rel) else None
        column = None
        for i, (name, pos) in enumerate(segments):
            more = i < len(segments) - 1
            if isinstance(kind, Rel):
                if name == "id" and not more:
                    return Operand(Prim(STRING), path.text, path.pos, hops, ref.child("id"), column=rel_id)
                row = Row(kind.model, self.alias("r"))
                hops = hops + [Hop(kind.model, row.alias, rel_id)]
                ref, kind = self.dialect.ref(row.column("data")), root_kind(kind.model)
            child = self.child(kind, name, pos, more, segments[i - 1][0] if i else first)
            if row is not None and isinstance(child, Rel) and name in row.model.relationships:
                rel_id = row.column(row.model.relationships[name])
            elif isinstance(child, Rel):
                rel_id = self.dialect.text(ref.child(name).child("id"))
            # The indexed id column rather than its copy in the document.
            column = row.column("id") if row is not None and name == "id" else None
            row, ref, kind = None, ref.child(name), child
        return Operand(kind, path.text, path.pos, hops, ref, column=rel_id if isinstance(kind, Rel) else column)

    def child(self, kind, name, pos, more, parent):
        if isinstance(kind, Array):
            self.fail(f"{parent!r} is a collection: use {parent}/any(...) or {parent}/all(...) to reach {name!r}", pos)
        if isinstance(kind, Prim):
            if kind.type == ANY:
                return Prim(ANY)
            self.fail(f"{parent!r} is {kind.type} and has no property {name!r}", pos)
        found = kind.lookup(name, more) if isinstance(kind, (Obj, Union)) else None
        if found is None:
            self.fail(f"unknown property {name!r}", pos)
        return found

    # --- typing ----------------------------------------------------------------------

    def family(self, operand, strict=True):
        """The comparison family of an operand: string, number, boolean, datetime or any."""
        if operand.is_literal:
            return LITERAL_FAMILIES.get(operand.literal.kind)
        kind = operand.kind
        if isinstance(kind, Prim):
            return NUMBER if kind.type in (INTEGER, NUMBER) else kind.type
        if not strict:
            return None
        hint = f" (compare {operand.text}/id)" if isinstance(kind, Rel) else ""
        self.fail(f"{operand.text!r} is {kind.describe()} and can only be compared with null{hint}", operand.pos)

    def common_family(self, left, right):
        a, b = self.family(left), self.family(right)
        a, b = (b if a == ANY else a), (a if b == ANY else b)
        if a == b:
            return STRING if a == ANY else a
        if {a, b} == {STRING, DATETIME}:
            return DATETIME
        self.fail(f"type mismatch: {self.describe(left)} cannot be compared with {self.describe(right)}", right.pos)

    def describe(self, operand):
        if operand.is_literal:
            return f"{LITERAL_NAMES[operand.literal.kind]} {operand.text}"
        kind = operand.kind.type if isinstance(operand.kind, Prim) else "complex"
        return f"{kind} property {operand.text!r}"

    def typed(self, operand, family):
        if operand.is_literal:
            return dialects.param(self.literal_value(operand.literal, family))
        if operand.column is not None:
            return self.dialect.datetime(operand.column) if family == DATETIME else operand.column
        if family == NUMBER:
            return self.dialect.number(operand.ref)
        if family == BOOLEAN:
            return self.dialect.boolean(operand.ref)
        if family == DATETIME:
            return self.dialect.datetime(self.dialect.text(operand.ref))
        return self.dialect.text(operand.ref)

    def raw(self, operand):
        """The value as stored (NULL when missing), for null tests and text matching."""
        return operand.column if operand.column is not None else self.dialect.text(operand.ref)

    def literal_value(self, literal, family):
        if family != DATETIME:
            return literal.value
        millis = datetime_millis(literal.value if literal.kind == "string" else literal.text)
        if millis is None:
            shown = literal.text if literal.kind == "string" else repr(literal.text)
            self.fail(f"invalid datetime literal {shown} (expected e.g. 2024-01-02T03:04:05Z)", literal.pos)
        return millis

    # --- relationship hops -----------------------------------------------------------

    def scalar(self, hops, node):
        """Evaluate `node` in the innermost hop's row: NULL when a target is missing."""
        for hop in reversed(hops):
            node = sql(f'(SELECT {{}} FROM {hop.table()} WHERE "{hop.alias}"."id" = {{}})', node, hop.id_expr)
        return node

    def where_in(self, operand, condition):
        """A condition that is false for a missing target, pushed into the target tables."""
        for hop in reversed(operand.hops):
            condition = sql(f'({{}} IN (SELECT "{hop.alias}"."id" FROM {hop.table()} WHERE {{}}))',
                            hop.id_expr, condition)
        return condition

    # --- $orderby --------------------------------------------------------------------

    def order_terms(self, items):
        terms = []
        for item in items:
            operand = self.resolve(item.path, {})
            family = self.family(operand, strict=False)
            if family is None and not isinstance(operand.kind, Rel):
                self.fail(f"cannot order by {operand.text!r}: it is {operand.kind.describe()}", operand.pos)
            family = STRING if family in (None, ANY) else family
            node = self.scalar(operand.hops, self.typed(operand, family))
            if family == STRING:
                node = self.dialect.ordered_text(node)
            terms.append(self.dialect.order(node, item.descending))
        return terms


def _chain(node):
    """The operands of a run of one boolean operator, left to right (the parser nests them leftwards)."""
    op, terms = node.op, []
    while isinstance(node, parser.BoolOp) and node.op == op:
        terms.append(node.right)
        node = node.left
    terms.append(node)
    return terms[::-1]


def datetime_millis(text):
    """Milliseconds since the epoch of an RFC 3339 literal, rounded like the SQL side; None if invalid."""
    match = parser.DATETIME_LITERAL.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, seconds, offset = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute),
                                   tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    millis = (moment - EPOCH) // datetime.timedelta(milliseconds=1)
    millis += int((decimal.Decimal(seconds or "0") * 1000).quantize(decimal.Decimal(1), decimal.ROUND_HALF_UP))
    if offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        millis -= sign * (int(offset[1:3]) * 60 + int(offset[4:6])) * 60000
    return millis
