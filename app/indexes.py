"""Indexes on JSON paths that hot API filters and the dashboard compare.

Each index is built on exactly the SQL expression the OData compiler emits for
the path (`odata.json_path_sql`), so the database can use it for `$filter`.
Date-time paths compile to their instant (epoch milliseconds), so an index on
them serves range comparisons without parsing the text of every row.

They are created when missing on every `migrations.upgrade()`, so a database
made by an older version gets the indexes added here since.
"""

from peewee import SQL

from app.db import database, is_postgres
from app.models import Asset, AssetFinding, AssetScan, Finding
from app.odata import dialect as dialects
from app.odata import json_path_sql

#: (model, index name, paths) — the paths of one composite index, most selective last; a path
#: ending in " desc" is indexed in the order `$orderby=<path> desc` asks for.
JSON_INDEXES = (
    (Finding, "finding_type_severity", ("findingInfo/objectType", "findingInfo/severity")),
    # The UI's findings tabs: one type, newest first.
    (Finding, "finding_type_last_seen", ("findingInfo/objectType", "lastSeen desc")),
    (AssetScan, "asset_scan_status_state", ("status/state",)),
    # findingsTrends (app/dashboard.py): asset findings first seen / invalidated in a time range.
    (AssetFinding, "asset_finding_first_seen_invalidated", ("firstSeen", "invalidatedOn")),
    (AssetFinding, "asset_finding_invalidated_first_seen", ("invalidatedOn", "firstSeen")),
)

#: PostgreSQL (14+) statistics on the JSON text at a path, for filters that test it for null
#: (the dashboard's `invalidatedOn eq null`, `terminatedOn eq null`): without them the planner
#: guesses that 0.5% of the rows pass and picks nested loops over the whole table. (model, name, path)
JSON_STATISTICS = (
    (AssetFinding, "asset_finding_invalidated_on_text", ("invalidatedOn",)),
    (Asset, "asset_terminated_on_text", ("terminatedOn",)),
)


def json_text_sql(model, path):
    """SQL of the JSON text at `path` (a tuple of property names), the column unqualified."""
    ref = dialects.current().ref(SQL('"data"'))
    for name in path:
        ref = ref.child(name)
    sql, params = database.get_sql_context().sql(dialects.current().text(ref)).query()
    assert not params, "a statistics expression cannot take parameters"
    return sql


def create_json_indexes():
    """Create the JSON path indexes (and PostgreSQL statistics) that do not exist yet."""
    for model, name, paths in JSON_INDEXES:
        expressions = []
        for path in paths:
            path, descending = path.removesuffix(" desc"), path.endswith(" desc")
            sql, params = json_path_sql(model, path)
            assert not params, "an index expression cannot take parameters"
            expression = f"({sql})" if is_postgres() else sql
            # As the OData compiler orders: PostgreSQL says NULLS LAST, SQLite puts them last anyway.
            expressions.append(expression + (" DESC NULLS LAST" if is_postgres() else " DESC") * descending)
        table = model._meta.table_name
        database.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({", ".join(expressions)})')
    if is_postgres() and int(database.execute_sql("SHOW server_version_num").fetchone()[0]) >= 140000:
        for model, name, path in JSON_STATISTICS:
            database.execute_sql(f'CREATE STATISTICS IF NOT EXISTS "{name}" ON ({json_text_sql(model, path)}) '
                                 f'FROM "{model._meta.table_name}"')
