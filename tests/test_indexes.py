"""The hot API filters are served by indexes on both databases."""

import pytest

from app import odata
from app.db import is_postgres
from app.models import AssetScan, Finding


def explain(db, query):
    sql, params = query.sql()
    if is_postgres():
        db.execute_sql("SET enable_seqscan = off")
        return "\n".join(row[0] for row in db.execute_sql(f"EXPLAIN {sql}", params))
    return "\n".join(str(row) for row in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize("model, text, index", [
    (Finding, "findingInfo/objectType eq 'Vulnerability' and findingInfo/severity eq 'CRITICAL'",
     "finding_type_severity"),
    (Finding, "findingInfo/objectType eq 'Package'", "finding_type_"),
    (AssetScan, "status/state eq 'ReadyToScan'", "asset_scan_status_state"),
])
def test_filter_uses_the_json_index(db, model, text, index):
    query = model.select(model.data).where(odata.filter_expression(model, text))
    assert index in explain(db, query)


def test_a_findings_tab_newest_first_reads_the_type_and_last_seen_index(db):
    """The UI's findings tab: one type, `$orderby=lastSeen desc`, first page."""
    from app.odata import dialect as dialects

    order = odata._orderby(Finding, "lastSeen desc", dialects.current())
    query = (Finding.select(Finding.data)
             .where(odata.filter_expression(Finding, "findingInfo/objectType eq 'Vulnerability'"))
             .order_by(*order).limit(25))
    assert "finding_type_last_seen" in explain(db, query)
