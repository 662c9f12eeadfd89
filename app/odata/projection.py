"""$select and $expand: which properties come back, and related objects in place of `{id}` stubs.

Selection is projection of documents the database already chose, so it runs in
Python. Expansion fetches each relationship's targets for a whole page in one
query (ids passed as one array parameter), with any nested $filter/$orderby
compiled to SQL like the top-level ones.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from app.odata import parser
from app.odata.compiler import Compiler
from app.odata.errors import fail
from app.odata.schema_meta import ANY, Array, Obj, Prim, Rel, Union, root_kind


@dataclass
class Selection:
    """Selected properties: name -> nested Selection, or None for the whole value."""

    fields: dict = field(default_factory=dict)
    #: Discriminators kept so a projected union member can still be told apart.
    keep: tuple = ()


@dataclass
class ExpandPlan:
    prop: str
    model: object
    many: bool
    where: object = None
    order: list = field(default_factory=list)
    selection: Selection = None
    children: list = field(default_factory=list)


# --- $select ------------------------------------------------------------------------------


def parse_selection(model, text, option="$select", offset=0):
    """Validate a $select against the schema; None means everything."""
    if text is None or not text.strip():
        return None
    paths = parser.parse_select(text, option, offset)
    if paths is None:
        return None
    root = Selection()
    for path in paths:
        _add_path(root, root_kind(model), path.segments, option)
    return root


def _add_path(node, kind, segments, option):
    parent = None
    for i, (name, pos) in enumerate(segments):
        while isinstance(kind, Array):
            kind = kind.items
        if isinstance(kind, Rel):
            fail(option, f"cannot select inside relationship {parent!r}; use $expand={parent}($select=...)", pos)
        child = _lookup(kind, name, i < len(segments) - 1, parent, pos, option)
        if isinstance(kind, Union) and kind.discriminator:
            node.keep = (kind.discriminator,)
        if i == len(segments) - 1:
            node.fields[name] = None
        elif node.fields.get(name, Selection()) is None:
            return  # the whole property is already selected
        else:
            node = node.fields.setdefault(name, Selection())
        kind, parent = child, name


def _lookup(kind, name, more, parent, pos, option):
    if name.startswith("$"):
        fail(option, f"unexpected token {name!r}", pos)
    if isinstance(kind, Prim):
        if kind.type == ANY:
            return Prim(ANY)
        fail(option, f"{parent!r} is {kind.type} and has no property {name!r}", pos)
    found = kind.lookup(name, more) if isinstance(kind, (Obj, Union)) else None
    if found is None:
        fail(option, f"unknown property {name!r}", pos)
    return found


def project(value, selection):
    """Keep only the selected parts of a document (element-wise through arrays)."""
    if selection is None:
        return value
    if isinstance(value, list):
        return [project(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {name: value[name] for name in selection.keep if name in value}
    kept.update({name: project(value[name], sub) for name, sub in selection.fields.items() if name in value})
    return kept


def including(selection, names):
    """An expanded property is returned whole, even when $select does not name it."""
    if selection is None or not names:
        return selection
    return Selection({**selection.fields, **{name: None for name in names}}, selection.keep)


# --- $expand ------------------------------------------------------------------------------


def parse_expansions(model, text, option="$expand", offset=0, dialect=None):
    """Validate and compile a $expand (recursively) before anything is fetched."""
    if text is None or not text.strip():
        return []
    return [_plan(model, item, option, dialect) for item in parser.parse_expand(text, option, offset)]


def _plan(model, item, option, dialect):
    kind = root_kind(model).lookup(item.name, False)
    if kind is None:
        fail(option, f"unknown property {item.name!r}", item.pos)
    many = isinstance(kind, Array) and isinstance(kind.items, Rel)
    if not (many or isinstance(kind, Rel)):
        fail(option, f"{item.name!r} is not a relationship and cannot be expanded", item.pos)
    target = (kind.items if many else kind).model
    plan = ExpandPlan(item.name, target, many)
    compiler = Compiler(target, option, dialect)
    if item.filter:
        tree = parser.parse_filter(item.filter, option, item.offsets["filter"])
        plan.where = compiler.predicate(tree, {})
    if item.orderby:
        plan.order = compiler.order_terms(parser.parse_orderby(item.orderby, option, item.offsets["orderby"]))
    if item.expand:
        plan.children = parse_expansions(target, item.expand, option, item.offsets["expand"], dialect)
    if item.select:
        plan.selection = parse_selection(target, item.select, option, item.offsets["select"])
    plan.selection = including(plan.selection, [child.prop for child in plan.children])
    return plan


def expand(docs, plans, dialect):
    """Replace relationship stubs in `docs` (in place) with the selected target documents."""
    for plan in plans:
        ids = list(dict.fromkeys(i for doc in docs for i in _stub_ids(doc.get(plan.prop), plan.many)))
        rows = _fetch(plan, ids, dialect) if ids else []
        expand([data for _, data in rows], plan.children, dialect)
        found = {target_id: project(data, plan.selection) for target_id, data in rows}
        if plan.many:
            _attach_many(docs, plan, rows, found)
        else:
            for doc in docs:
                if isinstance(doc.get(plan.prop), dict):
                    doc[plan.prop] = found.get(doc[plan.prop].get("id"))


def _stub_ids(value, many):
    stubs = value if many and isinstance(value, list) else [value]
    return [stub["id"] for stub in stubs if isinstance(stub, dict) and isinstance(stub.get("id"), str)]


def _fetch(plan, ids, dialect):
    model = plan.model
    query = model.select(model.id, model.data).where(dialect.id_in(model.id, ids))
    if plan.where is not None:
        query = query.where(plan.where)
    return list(query.order_by(*plan.order, model.pk).tuples())


def _attach_many(docs, plan, rows, found):
    """Fill each collection: in the document's own order, or in the SQL order of a nested $orderby."""
    lists = {}
    for index, doc in enumerate(docs):
        if isinstance(doc.get(plan.prop), list):
            lists[index] = _stub_ids(doc[plan.prop], True)
    if not plan.order:
        for index, ids in lists.items():
            docs[index][plan.prop] = [found[i] for i in ids if i in found]
        return
    owners = defaultdict(list)
    for index, ids in lists.items():
        docs[index][plan.prop] = []
        for target_id in ids:
            owners[target_id].append(index)
    for target_id, _ in rows:
        for index in owners[target_id]:
            docs[index][plan.prop].append(found[target_id])
