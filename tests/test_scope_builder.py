"""The scope builder: rows -> OData and back, without a database."""

import pytest

from app.ui.scope_builder import Row, ScopeError, from_odata, rows_from_form, to_odata

ROUND_TRIPS = [
    ([Row("location", "eq", "eu-west-1/vpc-1")], "assetInfo/location eq 'eu-west-1/vpc-1'"),
    ([Row("objectType", "eq", "VMInfo"), Row("dirName", "startswith", "/srv")],
     "assetInfo/objectType eq 'VMInfo' and startswith(assetInfo/dirName, '/srv')"),
    ([Row("instanceID", "notcontains", "test")], "not contains(assetInfo/instanceID, 'test')"),
    ([Row("location", "endswith", "it's")], "endswith(assetInfo/location, 'it''s')"),
    ([Row("tag", "eq", "env=prod")], "assetInfo/tags/any(t: t/key eq 'env' and t/value eq 'prod')"),
    ([Row("tag", "notcontains", "team=ops")],
     "assetInfo/tags/any(t: t/key eq 'team' and not contains(t/value, 'ops'))"),
    ([Row("tagKey", "startswith", "kubernetes.io")], "assetInfo/tags/any(t: startswith(t/key, 'kubernetes.io'))"),
    ([Row("terminatedOn", "gt", "2026-01-01T00:00:00Z")], "terminatedOn gt '2026-01-01T00:00:00Z'"),
    ([Row("instanceProvider", "ne", "AWS"), Row("lastSeen", "le", "2026-02-01T00:00:00Z")],
     "assetInfo/instanceProvider ne 'AWS' and lastSeen le '2026-02-01T00:00:00Z'"),
]


@pytest.mark.parametrize("rows, odata", ROUND_TRIPS)
def test_rows_make_odata_and_read_back(rows, odata):
    assert to_odata(rows) == odata
    assert from_odata(odata) == rows


def test_blank_rows_are_left_out_and_no_rows_is_no_scope():
    assert to_odata([Row("location", "eq", "  "), Row("dirName", "eq", "/a")]) == "assetInfo/dirName eq '/a'"
    assert to_odata([]) == ""
    assert from_odata("") == [] and from_odata(None) == []


def test_numbered_form_fields_become_rows_in_order():
    form = {"scope_field_10": "tag", "scope_op_10": "contains", "scope_value_10": "a=b",
            "scope_field_2": "location", "scope_op_2": "eq", "scope_value_2": "x", "scope_field_x": "dirName"}
    assert rows_from_form(form) == [Row("location", "eq", "x"), Row("tag", "contains", "a=b")]


def test_hostile_values_stay_string_literals():
    odata = to_odata([Row("location", "eq", "x') or (1 eq 1")])
    assert odata == "assetInfo/location eq 'x'') or (1 eq 1'"
    assert from_odata(odata) == [Row("location", "eq", "x') or (1 eq 1")]


@pytest.mark.parametrize("row, message", [
    (Row("bogus", "eq", "x"), "row 1: unknown field 'bogus'"),
    (Row("objectType", "contains", "VM"), "row 1: Asset type cannot use 'contains'"),
    (Row("lastSeen", "startswith", "2026"), "row 1: Last seen cannot use 'starts with'"),
    (Row("tag", "eq", "novalue"), "row 1: write the tag as key=value"),
    (Row("location", "like", "x"), "row 1: Location cannot use 'like'"),
])
def test_rows_that_make_no_sense_are_refused(row, message):
    with pytest.raises(ScopeError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        to_odata([row])


@pytest.mark.parametrize("odata", [
    "assetInfo/location eq 'a' or assetInfo/location eq 'b'",
    "(assetInfo/location eq 'a' or assetInfo/dirName eq 'b') and assetInfo/objectType eq 'DirInfo'",
    "terminatedOn eq null",
    "scansCount gt 3",
    "assetInfo/tags/all(t: t/key eq 'a')",
    "assetInfo/tags/any(t: t/value eq 'a')",
    "assetInfo/tags/any(t: t/key eq 'a=b' and t/value eq 'c')",
    "assetInfo/objectType eq 'VMInfo' and contains(assetInfo/objectType, 'VM')",
    "not (assetInfo/location eq 'a')",
    "assetInfo/location eq",
])
def test_scopes_the_rows_cannot_show_are_reported_not_dropped(odata):
    assert from_odata(odata) is None
