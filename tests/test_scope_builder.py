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
    # Several values in a row: one (a or b) clause, as the original's filter builder made them.
    ([Row("location", "eq", ("us-east-1", "eu-west-1"))],
     "(assetInfo/location eq 'us-east-1' or assetInfo/location eq 'eu-west-1')"),
    ([Row("objectType", "eq", ("VMInfo", "DirInfo", "PodInfo")), Row("dirName", "contains", ("a'b", "c"))],
     "(assetInfo/objectType eq 'VMInfo' or assetInfo/objectType eq 'DirInfo' or assetInfo/objectType eq 'PodInfo')"
     " and (contains(assetInfo/dirName, 'a''b') or contains(assetInfo/dirName, 'c'))"),
    ([Row("tag", "eq", ("env=prod", "env=dev"))],
     "(assetInfo/tags/any(t: t/key eq 'env' and t/value eq 'prod') or "
     "assetInfo/tags/any(t: t/key eq 'env' and t/value eq 'dev'))"),
    ([Row("tagKey", "startswith", ("a", "b")), Row("lastSeen", "ge", ("2026-01-01T00:00:00Z",))],
     "(assetInfo/tags/any(t: startswith(t/key, 'a')) or assetInfo/tags/any(t: startswith(t/key, 'b')))"
     " and lastSeen ge '2026-01-01T00:00:00Z'"),
]


@pytest.mark.parametrize("rows, odata", ROUND_TRIPS)
def test_rows_make_odata_and_read_back(rows, odata):
    assert to_odata(rows) == odata
    assert from_odata(odata) == rows


def test_a_row_is_one_value_or_several():
    assert Row("location", "eq", "a") == Row("location", "eq", ("a",)) and Row().values == ("",)
    assert Row("location", "eq", []).values == ("",)


def test_an_or_without_parentheses_reads_back_as_one_row():
    rows = from_odata("assetInfo/location eq 'a' or assetInfo/location eq 'b'")
    assert rows == [Row("location", "eq", ("a", "b"))]
    assert to_odata(rows) == "(assetInfo/location eq 'a' or assetInfo/location eq 'b')"


def test_blank_rows_are_left_out_and_no_rows_is_no_scope():
    assert to_odata([Row("location", "eq", "  "), Row("dirName", "eq", "/a")]) == "assetInfo/dirName eq '/a'"
    assert to_odata([Row("location", "eq", ("", "a", " "))]) == "assetInfo/location eq 'a'"
    assert to_odata([]) == ""
    assert from_odata("") == [] and from_odata(None) == []


def test_numbered_form_fields_become_rows_in_order():
    form = {"scope_field_10": "tag", "scope_op_10": "contains", "scope_value_10": "a=b",
            "scope_field_2": "location", "scope_op_2": "eq", "scope_value_2": "x", "scope_field_x": "dirName"}
    assert rows_from_form(form) == [Row("location", "eq", "x"), Row("tag", "contains", "a=b")]


def test_a_rows_further_values_come_in_the_order_of_their_numbers():
    form = {"scope_field_0": "location", "scope_op_0": "eq", "scope_value_0": "a",
            "scope_value_0_12": "c", "scope_value_0_3": "b", "scope_value_7_1": "no such row",
            "scope_field_1": "dirName", "scope_op_1": "eq", "scope_value_1_1": "only a later value"}
    assert rows_from_form(form) == [Row("location", "eq", ("a", "b", "c")),
                                    Row("dirName", "eq", ("", "only a later value"))]
    assert to_odata(rows_from_form(form)) == ("(assetInfo/location eq 'a' or assetInfo/location eq 'b' or "
                                              "assetInfo/location eq 'c') and assetInfo/dirName eq 'only a later value'")


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
    (Row("tag", "eq", ("a=b", "c")), "row 1: write the tag as key=value"),
    (Row("location", "ne", ("a", "b")), "row 1: 'is not' takes one value (several would be ORed and match "
                                        "nearly every asset); add a row for each value"),
    (Row("dirName", "notcontains", ("a", "b")), "row 1: 'doesn't contain' takes one value (several would be "
                                                "ORed and match nearly every asset); add a row for each value"),
])
def test_rows_that_make_no_sense_are_refused(row, message):
    with pytest.raises(ScopeError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        to_odata([row])


@pytest.mark.parametrize("odata", [
    "assetInfo/location eq 'a' or assetInfo/dirName eq 'b'",
    "(assetInfo/location eq 'a' or assetInfo/dirName eq 'b') and assetInfo/objectType eq 'DirInfo'",
    "assetInfo/location eq 'a' or startswith(assetInfo/location, 'b')",
    "assetInfo/location ne 'a' or assetInfo/location ne 'b'",
    "not contains(assetInfo/location, 'a') or not contains(assetInfo/location, 'b')",
    "assetInfo/location eq 'a' or (assetInfo/location eq 'b' and assetInfo/dirName eq 'c')",
    "assetInfo/location eq 'a' or assetInfo/location eq ''",
    "assetInfo/location eq ' '",
    "assetInfo/tags/any(t: t/key eq 'a' or t/key eq 'b')",
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
