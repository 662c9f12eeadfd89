"""The scan scope filter builder: rows of (field, operator, values) <-> an OData $filter over assets.

Pure: no database and no Flask. `to_odata` writes the rows as one clause each,
ANDed; a row with several values is one `(a or b)` clause, as the original
UI's filter builder made them. `from_odata` reads such a filter back into
rows, or answers None when the text holds something the rows cannot show (an
`or` across fields, another field...), so the form can keep that scope as raw
OData instead of losing it.
"""

import re
from dataclasses import dataclass

from app.odata import ODataError
from app.odata.parser import BoolOp, Call, Compare, Literal, Not, Path, parse_filter
from app.ui.listing import quote

STRING, DATETIME, CHOICE = "string", "datetime", "choice"
TAG_VAR = "t"
ROW_FIELD = re.compile(r"^scope_field_(\d{1,3})$")
#: A row's values after its first (scope_value_<row>): scope_value_<row>_<k>.
MORE_VALUES = re.compile(r"^scope_value_(\d{1,3})_(\d{1,3})$")


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    path: str           # OData path; for tags, the part inside any()
    kind: str
    choices: tuple = ()


@dataclass(frozen=True)
class Operator:
    key: str
    label: str


FIELDS = (
    Field("objectType", "Asset type", "assetInfo/objectType", CHOICE,
          ("VMInfo", "DirInfo", "ContainerInfo", "ContainerImageInfo", "PodInfo")),
    Field("location", "Location", "assetInfo/location", STRING),
    Field("instanceID", "Instance ID", "assetInfo/instanceID", STRING),
    Field("dirName", "Directory", "assetInfo/dirName", STRING),
    Field("instanceProvider", "Cloud provider", "assetInfo/instanceProvider", CHOICE,
          ("AWS", "Azure", "GCP", "Docker", "External", "Kubernetes")),
    Field("containerName", "Container name", "assetInfo/containerName", STRING),
    Field("imageID", "Image ID", "assetInfo/imageID", STRING),
    Field("tagKey", "Tag key", "key", STRING),
    Field("tag", "Tag (key=value)", "value", STRING),
    Field("firstSeen", "First seen", "firstSeen", DATETIME),
    Field("lastSeen", "Last seen", "lastSeen", DATETIME),
    Field("terminatedOn", "Terminated on", "terminatedOn", DATETIME),
)
FIELDS_BY_KEY = {field.key: field for field in FIELDS}
TAG_FIELDS = ("tagKey", "tag")

OPERATORS = (
    Operator("eq", "equals"),
    Operator("ne", "is not"),
    Operator("startswith", "starts with"),
    Operator("endswith", "ends with"),
    Operator("contains", "contains"),
    Operator("notcontains", "doesn't contain"),
    Operator("gt", "after / greater than"),
    Operator("ge", "from / at least"),
    Operator("lt", "before / less than"),
    Operator("le", "until / at most"),
)
OPERATORS_BY_KEY = {operator.key: operator for operator in OPERATORS}
FUNCTIONS = ("startswith", "endswith", "contains")
#: Negative operators take one value: ORed, `ne 'a' or ne 'b'` would match (nearly) every asset.
SINGLE_VALUE = ("ne", "notcontains")
#: Operators each kind of field offers.
KIND_OPERATORS = {
    STRING: tuple(operator.key for operator in OPERATORS),
    CHOICE: ("eq", "ne"),
    DATETIME: ("eq", "ne", "gt", "ge", "lt", "le"),
}


class ScopeError(ValueError):
    """A row the builder cannot turn into OData; the message names the row."""


@dataclass(frozen=True)
class Row:
    """One condition; its values are alternatives (ORed). A single string is one value."""

    field: str = "location"
    op: str = "eq"
    values: tuple = ("",)

    def __post_init__(self):
        values = (self.values,) if isinstance(self.values, str) else tuple(self.values)
        object.__setattr__(self, "values", values or ("",))

    @property
    def filled(self):
        """The values that say something: a blank one is an input not filled in yet."""
        return [value for value in self.values if value.strip()]

    @property
    def blank(self):
        return not self.filled


def operators_for(field_key):
    field = FIELDS_BY_KEY.get(field_key, FIELDS_BY_KEY["location"])
    return [OPERATORS_BY_KEY[key] for key in KIND_OPERATORS[field.kind]]


def rows_from_form(values):
    """Rows from form fields scope_field_<n>, scope_op_<n>, scope_value_<n>, in the order of n.

    Numbered names, not repeated ones: htmx sends the element that triggered a
    request once more besides the included form, which would shift parallel lists.
    A row's further values are scope_value_<n>_<k>, in the order of k.
    """
    numbers = sorted({int(match.group(1)) for match in map(ROW_FIELD.match, values) if match})
    more = {}
    for match in filter(None, map(MORE_VALUES.match, values)):
        more.setdefault(int(match.group(1)), []).append(int(match.group(2)))
    return [Row(values.get(f"scope_field_{n}", ""), values.get(f"scope_op_{n}", ""),
                [values.get(f"scope_value_{n}", "")]
                + [values.get(f"scope_value_{n}_{k}", "") for k in sorted(more.get(n, ()))])
            for n in numbers]


def to_odata(rows):
    """The $filter the rows mean, every row ANDed; rows without a value are left out."""
    return " and ".join(_clause(number, row) for number, row in enumerate(rows, 1) if not row.blank)


def _clause(number, row):
    field = FIELDS_BY_KEY.get(row.field)
    if field is None:
        raise ScopeError(f"row {number}: unknown field {row.field!r}")
    if row.op not in KIND_OPERATORS[field.kind]:
        raise ScopeError(f"row {number}: {field.label} cannot use {_op_label(row.op)}")
    values = row.filled
    if len(values) > 1 and row.op in SINGLE_VALUE:
        raise ScopeError(f"row {number}: {_op_label(row.op)} takes one value (several would be ORed and "
                         "match nearly every asset); add a row for each value")
    conditions = [_value_clause(number, field, row.op, value) for value in values]
    return conditions[0] if len(conditions) == 1 else "(" + " or ".join(conditions) + ")"


def _value_clause(number, field, op, value):
    if field.key == "tag":
        key, equals, value = value.partition("=")
        if not equals or not key.strip():
            raise ScopeError(f"row {number}: write the tag as key=value")
        inner = _condition(f"{TAG_VAR}/value", op, value)
        return f"assetInfo/tags/any({TAG_VAR}: {TAG_VAR}/key eq {quote(key.strip())} and {inner})"
    if field.key == "tagKey":
        return f"assetInfo/tags/any({TAG_VAR}: {_condition(f'{TAG_VAR}/key', op, value)})"
    return _condition(field.path, op, value.strip() if field.kind != STRING else value)


def _condition(path, op, value):
    if op == "notcontains":
        return f"not contains({path}, {quote(value)})"
    if op in FUNCTIONS:
        return f"{op}({path}, {quote(value)})"
    return f"{path} {op} {quote(value)}"


def _op_label(op):
    operator = OPERATORS_BY_KEY.get(op)
    return f"'{operator.label}'" if operator else repr(op)


def from_odata(text):
    """The rows `text` was built from, or None when rows cannot represent it ([] for no scope)."""
    if not (text or "").strip():
        return []
    try:
        tree = parse_filter(text)
    except ODataError:
        return None
    rows = []
    for clause in _conjuncts(tree):
        row = _row(clause)
        if row is None:
            return None
        rows.append(row)
    return rows


def _conjuncts(node):
    if isinstance(node, BoolOp) and node.op == "and":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _row(node):
    """The Row for one clause, or None; an `or` of one field and operator is one row of several values."""
    if isinstance(node, BoolOp) and node.op == "or":
        return _or_row(_disjuncts(node))
    row = _single_row(node)
    # The builder reads a blank value as "not filled in" and drops it: such a scope is not its own.
    return row if row is not None and not row.blank else None


def _disjuncts(node):
    if isinstance(node, BoolOp) and node.op == "or":
        return _disjuncts(node.left) + _disjuncts(node.right)
    return [node]


def _or_row(nodes):
    rows = [_row(node) for node in nodes]
    if any(row is None for row in rows):
        return None
    first = rows[0]
    if first.op in SINGLE_VALUE or any((row.field, row.op) != (first.field, first.op) for row in rows):
        return None
    return Row(first.field, first.op, [row.values[0] for row in rows])


def _single_row(node):
    if isinstance(node, Path) and node.lambda_ is not None:
        return _tag_row(node)
    matched = _condition_of(node, {field.path: field for field in FIELDS if field.key not in TAG_FIELDS})
    if matched is None:
        return None
    field, op, value = matched
    return Row(field.key, op, value)


def _tag_row(node):
    lam = node.lambda_
    if node.text != "assetInfo/tags" or lam.op != "any" or lam.body is None:
        return None
    key_field, value_field = FIELDS_BY_KEY["tagKey"], FIELDS_BY_KEY["tag"]
    fields = {f"{lam.var}/key": key_field, f"{lam.var}/value": value_field}
    body = lam.body
    if isinstance(body, BoolOp) and body.op == "and":
        key = _condition_of(body.left, fields)
        value = _condition_of(body.right, fields)
        if (key is None or value is None or key[0] is not key_field or key[1] != "eq"
                or value[0] is not value_field or "=" in key[2]):
            return None
        return Row("tag", value[1], f"{key[2]}={value[2]}")
    matched = _condition_of(body, fields)
    if matched is None or matched[0] is not key_field:
        return None
    return Row("tagKey", matched[1], matched[2])


def _condition_of(node, fields):
    """(field, op, value) when `node` is `<path> <op> '<text>'` or `[not] fn(<path>, '<text>')`."""
    if isinstance(node, Compare):
        path, literal, op = node.left, node.right, node.op
    elif isinstance(node, Call) and node.name in FUNCTIONS and len(node.args) == 2:
        (path, literal), op = node.args, node.name
    elif isinstance(node, Not) and isinstance(node.operand, Call) and node.operand.name == "contains":
        matched = _condition_of(node.operand, fields)
        return matched and (matched[0], "notcontains", matched[2])
    else:
        return None
    if not isinstance(path, Path) or path.lambda_ is not None or not isinstance(literal, Literal):
        return None
    field = fields.get(path.text)
    if field is None or literal.kind not in ("string", "datetime") or op not in KIND_OPERATORS[field.kind]:
        return None
    return field, op, str(literal.value)
