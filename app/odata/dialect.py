"""JSON access and typed values in SQL, once per database, with identical results.

Everything returns peewee nodes. User values always travel as bound parameters;
the only text we splice into SQL is JSON path literals built from property names
that the schema (or the tokenizer's identifier rule) has already validated, so
expression indexes can be created on exactly the expression a query uses.

Missing keys and JSON nulls both read as SQL NULL. Values of the wrong JSON type
read as NULL instead of raising (PostgreSQL casts would abort the whole query).
Datetimes compare as integer milliseconds since the epoch, computed the same way
on both databases.
"""

import json
import re

from peewee import SQL, Node, NodeList, Value

from app.db import is_postgres

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# RFC 3339 date-times as the API writes them; anything else is not an instant.
# SQLite's julianday() accepts a few more shapes (space separator, no offset), so
# its guard below narrows it to the same set the PostgreSQL regex accepts.
_PG_DATETIME = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-4]):[0-5]\d:[0-5]\d(\.\d+)?"
    r"(Z|[+-](0\d|1[0-4]):[0-5]\d)$"
)
_SQLITE_DATETIME_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*"
_SQLITE_OFFSET_GLOB = "*[+-][0-9][0-9]:[0-9][0-9]"


def sql(template, *args):
    """Build a node from `template`, replacing each `{}` with a node or a bound parameter."""
    chunks = template.split("{}")
    assert len(chunks) == len(args) + 1, template
    nodes = []
    for i, chunk in enumerate(chunks):
        if chunk:
            nodes.append(SQL(chunk))
        if i < len(args):
            nodes.append(args[i] if isinstance(args[i], Node) else param(args[i]))
    return NodeList(nodes, glue="")


def param(value):
    return Value(value, converter=False, unpack=False)


def string_literal(text):
    """An SQL string literal for trusted text (validated property names only)."""
    return SQL("'" + text.replace("'", "''") + "'")


def checked_name(name):
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a property name: {name!r}")
    return name


def current():
    return POSTGRES if is_postgres() else SQLITE


class SqliteRef:
    """A JSON location: document `doc` at a `$.a.b` path, optionally below a json_each row's fullkey."""

    def __init__(self, doc, base=None, segments=()):
        self.doc, self.base, self.segments = doc, base, segments

    def child(self, name):
        return SqliteRef(self.doc, self.base, self.segments + (checked_name(name),))

    def path(self):
        suffix = "".join("." + s for s in self.segments)
        if self.base is None:
            return string_literal("$" + suffix)
        return sql("({} || {})", self.base, string_literal(suffix)) if suffix else self.base


class PgRef:
    """A JSON location: jsonb `root` at a `#>` path."""

    def __init__(self, root, segments=()):
        self.root, self.segments = root, segments

    def child(self, name):
        return PgRef(self.root, self.segments + (checked_name(name),))

    def path(self):
        return string_literal("{" + ",".join(self.segments) + "}")

    def jsonb(self):
        return sql("({} #> {})", self.root, self.path()) if self.segments else self.root


class Sqlite:
    name = "sqlite"
    false, true = SQL("0"), SQL("1")

    def ref(self, doc):
        return SqliteRef(doc)

    def element(self, collection, alias):
        # The element's own full path, so nested reads never parse a non-object as JSON.
        return SqliteRef(collection.doc, SQL(f'"{alias}"."fullkey"'))

    def text(self, ref):
        return sql("json_extract({}, {})", ref.doc, ref.path())

    def _type(self, ref):
        return sql("json_type({}, {})", ref.doc, ref.path())

    def number(self, ref):
        return sql("CASE WHEN {} IN ('integer', 'real') THEN {} END", self._type(ref), self.text(ref))

    def boolean(self, ref):
        return sql("CASE {} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END", self._type(ref))

    def datetime(self, text):
        guard = sql(
            "{} GLOB {} AND ({} GLOB '*Z' OR {} GLOB {}) AND NOT {} GLOB '* *'",
            text, string_literal(_SQLITE_DATETIME_GLOB), text, text, string_literal(_SQLITE_OFFSET_GLOB), text,
        )
        millis = sql("CAST(round((julianday({}) - 2440587.5) * 86400000.0) AS INTEGER)", text)
        return sql("CASE WHEN {} THEN {} END", guard, millis)

    def length(self, ref):
        return sql(
            "CASE {} WHEN 'array' THEN json_array_length({}, {}) WHEN 'text' THEN length({}) END",
            self._type(ref), ref.doc, ref.path(), self.text(ref),
        )

    def each(self, ref, alias):
        """FROM-item iterating the array at `ref`, and the guard that it is an array."""
        source = sql(f'json_each({{}}, {{}}) AS "{alias}"', ref.doc, ref.path())
        return source, sql("{} = 'array'", self._type(ref))

    def same(self, a, b):
        return sql("({} IS {})", a, b)

    def distinct(self, a, b):
        return sql("({} IS NOT {})", a, b)

    def ordered_text(self, node):
        return node

    def match(self, text, prefix, needle, suffix):
        # GLOB is case-sensitive (LIKE is not on SQLite); bracket its metacharacters.
        escaped = re.sub(r"([*?\[])", r"[\1]", needle)
        return sql("({} GLOB {})", text, ("*" if prefix else "") + escaped + ("*" if suffix else ""))

    def order(self, node, descending):
        # SQLite already puts NULLs first ascending and last descending.
        return sql("{} DESC" if descending else "{} ASC", node)

    def id_in(self, column, ids):
        return sql("{} IN (SELECT value FROM json_each({}))", column, json.dumps(ids))


class Postgres:
    name = "postgresql"
    false, true = SQL("FALSE"), SQL("TRUE")

    def ref(self, doc):
        return PgRef(doc)

    def element(self, collection, alias):
        return PgRef(SQL(f'"{alias}"."value"'))

    def text(self, ref):
        return sql("({} #>> {})", ref.root, ref.path())

    def number(self, ref):
        return sql("CASE WHEN jsonb_typeof({}) = 'number' THEN ({})::numeric END", ref.jsonb(), ref.jsonb())

    def boolean(self, ref):
        return sql("CASE WHEN jsonb_typeof({}) = 'boolean' THEN ({})::boolean END", ref.jsonb(), ref.jsonb())

    def datetime(self, text):
        # Calendar arithmetic on a `timestamp` (no time zone, so no session TimeZone
        # and no DST) with make_interval, which rolls over out-of-range days the way
        # SQLite's julianday() does instead of raising like a ::timestamptz cast.
        fields = sql(
            "make_interval(months => (substr({}, 1, 4)::int - 1) * 12 + substr({}, 6, 2)::int - 1,"
            " days => substr({}, 9, 2)::int - 1, hours => substr({}, 12, 2)::int,"
            " mins => substr({}, 15, 2)::int)",
            text, text, text, text, text,
        )
        seconds = sql("(substring({} FROM 18 FOR 2)::numeric + coalesce(substring({} FROM {})::numeric, 0))",
                      text, text, string_literal(r"^.{19}(\.\d+)"))
        offset = sql(
            "CASE WHEN right({}, 1) = 'Z' THEN 0 ELSE (CASE WHEN substr(right({}, 6), 1, 1) = '-' THEN -1 ELSE 1 END)"
            " * (substr(right({}, 5), 1, 2)::int * 60 + right({}, 2)::int) END",
            text, text, text, text,
        )
        millis = sql(
            # floor(x + 0.5): half a millisecond rounds up, as in SQLite, also before 1970.
            "floor(extract(epoch FROM timestamp '0001-01-01 00:00:00' + {}) * 1000 + {} * 1000 + 0.5) - {} * 60000",
            fields, seconds, offset,
        )
        return sql("CASE WHEN {} ~ {} THEN {} END", text, string_literal(_PG_DATETIME), millis)

    def length(self, ref):
        return sql(
            "CASE jsonb_typeof({}) WHEN 'array' THEN jsonb_array_length({}) WHEN 'string' THEN length({}) END",
            ref.jsonb(), ref.jsonb(), self.text(ref),
        )

    def each(self, ref, alias):
        array = sql("CASE WHEN jsonb_typeof({}) = 'array' THEN {} ELSE '[]'::jsonb END", ref.jsonb(), ref.jsonb())
        return sql(f'jsonb_array_elements({{}}) AS "{alias}"("value")', array), SQL("TRUE")

    def same(self, a, b):
        return sql("({} IS NOT DISTINCT FROM {})", a, b)

    def distinct(self, a, b):
        return sql("({} IS DISTINCT FROM {})", a, b)

    def ordered_text(self, node):
        # Byte order, as SQLite's BINARY collation, whatever the database's locale.
        return sql('({}) COLLATE "C"', node)

    def match(self, text, prefix, needle, suffix):
        escaped = re.sub(r"([\\%_])", r"\\\1", needle)
        pattern = ("%" if prefix else "") + escaped + ("%" if suffix else "")
        return sql("({} LIKE {} ESCAPE '\\')", text, pattern)

    def order(self, node, descending):
        return sql("{} DESC NULLS LAST" if descending else "{} ASC NULLS FIRST", node)

    def id_in(self, column, ids):
        return sql("{} = ANY({})", column, list(ids))


SQLITE, POSTGRES = Sqlite(), Postgres()
