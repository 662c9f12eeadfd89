"""Indexes on JSON paths that hot API filters compare.

Each index is built on exactly the SQL expression the OData compiler emits for
the path (`odata.json_path_sql`), so the database can use it for `$filter`.
"""

from app.db import database, is_postgres
from app.models import AssetScan, Finding
from app.odata import json_path_sql

#: (model, index name, paths) — the paths of one composite index, most selective last.
JSON_INDEXES = (
    (Finding, "finding_type_severity", ("findingInfo/objectType", "findingInfo/severity")),
    (AssetScan, "asset_scan_status_state", ("status/state",)),
)


def create_json_indexes():
    """Create the JSON path indexes that do not exist yet."""
    for model, name, paths in JSON_INDEXES:
        expressions = []
        for path in paths:
            sql, params = json_path_sql(model, path)
            assert not params, "an index expression cannot take parameters"
            expressions.append(f"({sql})" if is_postgres() else sql)
        table = model._meta.table_name
        database.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ({", ".join(expressions)})')
