"""Server-side tables of the UI: one page of API documents, sorted, filtered and counted.

Views describe a table with Columns and turn the request's query string into a
TableState; `page_of` runs it as an OData query (the same compiler as /api), so
sorting and filtering behave exactly as the API does.
"""

import math
from urllib.parse import urlencode
from dataclasses import dataclass

from flask import request

from app import odata

PER_PAGE = 25
MAX_PER_PAGE = 200
#: Past any real table; keeps $skip inside the databases' 64-bit integers (a typed ?page= was a 500).
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class Column:
    key: str                 # name in the query string (?sort=key)
    label: str
    sort: str | None = None  # OData path to order by; None: not sortable
    rank: tuple = ()         # the values at `sort`, lowest first: it sorts by rank, not by text


@dataclass
class TableState:
    sort: str
    descending: bool
    page: int
    per_page: int

    @classmethod
    def from_request(cls, columns, default_sort, default_descending=False):
        """The table's sort and page from the query string; unknown values fall back to defaults."""
        sortable = {column.key for column in columns if column.sort}
        sort = request.args.get("sort", default_sort)
        if sort not in sortable:
            sort = default_sort
        descending = request.args.get("dir", "desc" if default_descending else "asc") == "desc"
        return cls(sort, descending, min(_positive(request.args.get("page"), 1), MAX_PAGE),
                   min(_positive(request.args.get("per_page"), PER_PAGE), MAX_PER_PAGE))

    def orderby(self, columns):
        """The OData $orderby of the sort column; none for a ranked one (see `order_first`)."""
        column = self._column(columns)
        if column.rank:
            return ""
        return ", ".join(f"{part.strip()} {'desc' if self.descending else 'asc'}" for part in column.sort.split(","))

    def order_first(self, model, columns):
        """The peewee ORDER BY terms before $orderby's: a ranked sort column's rank."""
        column = self._column(columns)
        return [odata.ranked_order(model, column.sort, column.rank, self.descending)] if column.rank else []

    def _column(self, columns):
        return next(column for column in columns if column.key == self.sort)


@dataclass
class Page:
    items: list
    count: int
    number: int
    per_page: int

    @property
    def pages(self):
        return max(1, math.ceil(self.count / self.per_page))


def page_of(model, columns, state, filters=(), expand=None, restrict=None):
    """One page of `model` documents matching every OData filter in `filters`.

    `restrict` is a peewee condition ANDed in, for what OData cannot say (e.g. a
    finding that some valid asset finding still points at).
    """
    args = {"$orderby": state.orderby(columns), "$top": str(state.per_page),
            "$skip": str((state.page - 1) * state.per_page), "$count": "true"}
    where = all_of(filters)
    if where:
        args["$filter"] = where
    if expand:
        args["$expand"] = expand
    result = odata.list_documents(model, args, restrict=restrict, order_first=state.order_first(model, columns))
    return Page(result["items"], result["count"], state.page, state.per_page)


def count(model, *filters):
    """How many `model` documents match every OData filter in `filters`."""
    args = {"$top": "0", "$count": "true"}
    where = all_of(filters)
    if where:
        args["$filter"] = where
    return odata.list_documents(model, args)["count"]


def all_of(filters):
    return " and ".join(f"({text})" for text in filters if text)


def quote(text):
    """`text` as an OData string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def url_with(**changes):
    """The current URL with query arguments changed (None removes one); a new sort or filter starts at page 1."""
    args = request.args.to_dict()
    if "page" not in changes:
        args.pop("page", None)
    for name, value in changes.items():
        if value is None:
            args.pop(name, None)
        else:
            args[name] = str(value)
    query = urlencode(args)
    return request.path + ("?" + query if query else "")


def _positive(text, default):
    try:
        value = int(text)
    except (TypeError, ValueError):
        return default
    return value if value > 0 else default
