"""OData queries over the stored API documents, compiled to SQL for SQLite and PostgreSQL.

The API layer calls `list_documents` and `get_document`; the orchestrator calls
`filter_expression` for a scan config's scope; the index module calls
`json_path_sql` to index exactly the expression a filter on a path compiles to.
Every malformed option raises ODataError, whose message is the 400 answer.
"""

import re

from peewee import SQL, fn

from app.db import database
from app.odata import dialect as dialects
from app.odata import parser, projection
from app.odata.compiler import Compiler, Row
from app.odata.errors import ODataError, fail

__all__ = ["ODataError", "filter_expression", "get_document", "json_path_sql", "list_documents", "ranked_order"]

_NON_NEGATIVE = re.compile(r"^\d+$")


def list_documents(model, args, restrict=None, max_top=None, order_first=()):
    """One page of `model` documents for the query options in `args` (a mapping like request.args).

    `restrict` is a peewee expression ANDed into the WHERE clause (e.g. a scanner
    token's own asset scan); `max_top` caps the page size, $top or not;
    `order_first` are peewee ORDER BY terms put before $orderby's (e.g. a `ranked_order`).
    Returns {"items": [...]} plus "count" for $count=true.
    """
    dialect = dialects.current()
    where = _filter(model, args.get("$filter"), dialect)
    order = [*order_first, *_orderby(model, args.get("$orderby"), dialect)]
    top, skip, count = _number(args, "$top"), _number(args, "$skip"), _boolean(args, "$count")
    if max_top is not None:
        top = max_top if top is None else min(top, max_top)
    selection, plans = _shape(model, args, dialect)
    conditions = [c for c in (where, restrict) if c is not None]

    query = model.select(model.data)
    for condition in conditions:
        query = query.where(condition)
    # pk last: rows that tie on every $orderby key still page in a stable order.
    query = query.order_by(*order, model.pk)
    if top is not None:
        query = query.limit(top)
    if skip:
        query = query.offset(skip)
    docs = [data for (data,) in query.tuples()]
    result = {"items": _finish(docs, selection, plans, dialect)}
    if count:
        counting = model.select(fn.COUNT(SQL("*")))
        for condition in conditions:
            counting = counting.where(condition)
        result["count"] = counting.scalar()
    return result


def get_document(model, id, args):
    """The document with `id`, shaped by $select/$expand in `args`; None when absent."""
    dialect = dialects.current()
    selection, plans = _shape(model, args, dialect)
    row = model.select(model.data).where(model.id == id).tuples().first()
    if row is None:
        return None
    return _finish([row[0]], selection, plans, dialect)[0]


def filter_expression(model, text):
    """A peewee condition for an OData $filter over `model` (blank text matches everything)."""
    return _filter(model, text, dialects.current()) or SQL("1 = 1")


def ranked_order(model, path, ranking, descending=False):
    """An ORDER BY term for the string at `path` by its place in `ranking`, which lists values lowest first.

    For what $orderby cannot say: severities by rank, not alphabetically. Any
    other value, and a missing one, ranks below them all. The string is read with
    the expression a $filter on `path` compares, on either database.
    """
    option = "ranked order"
    dialect = dialects.current()
    compiler = Compiler(model, option, dialect)
    text = compiler.raw(_own_field(compiler, path, option))
    cases = "".join(f" WHEN {{}} THEN {rank}" for rank, _ in enumerate(ranking, start=1))
    return dialect.order(dialects.sql("CASE {}" + cases + " ELSE 0 END", text, *ranking), descending)


def json_path_sql(model, path):
    """(sql, params) of the expression a filter compares for `path` (e.g. "findingInfo/objectType").

    The column is written unqualified ("data"), ready for
    `CREATE INDEX ... ON <table> (<sql>)`; a `$filter` of `path eq '...'` emits
    this same expression (qualified with the query's table alias), so the index serves it.
    """
    option = "index path"
    compiler = Compiler(model, option, root=Row(model, alias=""))
    operand = _own_field(compiler, path, option, "; index the target table instead")
    node = compiler.typed(operand, compiler.family(operand))
    return database.get_sql_context().sql(node).query()


def _own_field(compiler, path, option, advice=""):
    """The resolved operand of `path`, which must stay in the compiler's own table."""
    operand = compiler.resolve(parser.parse_path(path, option), {})
    if operand.hops:
        fail(option, f"{path!r} crosses a relationship{advice}", 0)
    return operand


def _filter(model, text, dialect):
    if text is None or not text.strip():
        return None
    return Compiler(model, "$filter", dialect).predicate(parser.parse_filter(text), {})


def _orderby(model, text, dialect):
    if text is None or not text.strip():
        return []
    return Compiler(model, "$orderby", dialect).order_terms(parser.parse_orderby(text))


def _shape(model, args, dialect):
    plans = projection.parse_expansions(model, args.get("$expand"), dialect=dialect)
    selection = projection.parse_selection(model, args.get("$select"))
    return projection.including(selection, [plan.prop for plan in plans]), plans


def _finish(docs, selection, plans, dialect):
    projection.expand(docs, plans, dialect)
    return [projection.project(doc, selection) for doc in docs]


def _number(args, name):
    value = args.get(name)
    if value is None or value == "":
        return None
    if not _NON_NEGATIVE.match(str(value)):
        fail(name, f"expected a non-negative integer, got {value!r}")
    return int(value)


def _boolean(args, name):
    value = args.get(name)
    if value is None or value == "":
        return False
    if str(value).lower() not in ("true", "false"):
        fail(name, f"expected true or false, got {value!r}")
    return str(value).lower() == "true"
