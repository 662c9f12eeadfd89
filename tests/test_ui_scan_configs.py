"""Scan configurations in the UI: the table, its actions, and the four-step form with its scope builder."""

import datetime

import pytest

from app import odata, store
from app.models import Asset, Scan, ScanConfig
from app.resources import RESOURCES_BY_MODEL

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
CONFIGS = RESOURCES_BY_MODEL[ScanConfig]


def make_config(name="nightly", scope="assetInfo/location eq 'eu-west-1'", **scheduled):
    return store.create(CONFIGS, {
        "name": name,
        "scheduled": scheduled or {"cronLine": "0 0 * * *"},
        "scanTemplate": {"scope": scope, "maxParallelScanners": 3, "timeoutSeconds": 600,
                         "assetScanTemplate": {
                             "scanFamiliesConfig": {"sbom": {"enabled": True, "analyzers": ["syft"]},
                                                    "secrets": {"enabled": True}},
                             "scannerInstanceCreationConfig": {"useSpotInstances": True,
                                                               "retryMaxAttempts": 4}}}})


def stored(config_id):
    return odata.get_document(ScanConfig, config_id, {})


def all_configs():
    return odata.list_documents(ScanConfig, {"$orderby": "name"})["items"]


def later(**delta):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**delta)


def form(name="weekly", time_mode="now", rows=(("location", "startswith", "eu-"),), **extra):
    data = {"name": name, "time_mode": time_mode, "family_sbom": "on", "family_vulnerabilities": "on",
            "max_parallel": "2", "cron_preset": "0 0 * * *",
            **{f"scope_{part}_{n}": value for n, row in enumerate(rows)
               for part, value in zip(("field", "op", "value"), row)}}
    data.update(extra)
    return data


# ---- the table -------------------------------------------------------------------------


def test_the_table_lists_configs_with_scope_time_and_types(viewer):
    make_config("daily")
    make_config("later", operationTime=(later(days=2)).isoformat().replace("+00:00", "Z"))
    page = viewer.get("/scans/configs")
    assert page.status_code == 200
    assert 'aria-current="page">Configurations</a>' in page.text
    assert "repetitive <code" in page.text and "0 0 * * *" in page.text
    assert "at 20" in page.text  # "at <date>" for the one in the future
    assert "SBOM, Secrets" in page.text
    assert "assetInfo/location eq &#39;eu-west-1&#39;" in page.text


def test_viewers_get_no_write_actions_and_403_on_writes(viewer):
    config = make_config()
    page = viewer.get("/scans/configs").text
    for action in ("New scan configuration", "/start", "/edit", "/delete", "?from="):
        assert action not in page
    assert viewer.get("/scans/configs/new").status_code == 403
    assert viewer.get(f"/scans/configs/{config['id']}/edit").status_code == 403
    for url in ("/scans/configs/new", f"/scans/configs/{config['id']}/edit",
                f"/scans/configs/{config['id']}/start", f"/scans/configs/{config['id']}/delete"):
        assert viewer.post(url, form()).status_code == 403
    assert viewer.get("/scans/configs/scope/preview?scope_field_0=location&scope_op_0=eq&scope_value_0=x").status_code == 403
    assert len(all_configs()) == 1


def test_writes_need_the_csrf_token(operator):
    config = make_config()
    for url in (f"/scans/configs/{config['id']}/start", f"/scans/configs/{config['id']}/delete",
                "/scans/configs/new"):
        assert operator.client.post(url, data={**form(), "csrf_token": "forged"}).status_code == 400
    assert stored(config["id"])["revision"] == 1 and len(all_configs()) == 1


# ---- start, delete ------------------------------------------------------------------------


def test_start_sets_the_operation_time_to_now_and_enables(operator):
    config = store.patch(CONFIGS, make_config()["id"], {"disabled": True}, None)
    before = datetime.datetime.now(datetime.timezone.utc)
    response = operator.post(f"/scans/configs/{config['id']}/start", htmx=True)
    assert response.status_code == 200 and "Started" in response.text
    assert response.text.lstrip().startswith(f'<tr id="scan-config-{config["id"]}"')
    now = stored(config["id"])
    assert now["disabled"] is False and now["scheduled"]["cronLine"] == "0 0 * * *"
    started = datetime.datetime.fromisoformat(now["scheduled"]["operationTime"].replace("Z", "+00:00"))
    assert before - datetime.timedelta(seconds=1) <= started <= datetime.datetime.now(datetime.timezone.utc)
    plain = operator.post(f"/scans/configs/{config['id']}/start")
    assert plain.status_code == 303 and plain.headers["Location"] == "/scans"


def test_start_is_disabled_for_a_one_off_scheduled_later(operator):
    config = make_config(operationTime=later(days=1).isoformat().replace("+00:00", "Z"))
    page = operator.get("/scans/configs").text
    assert 'disabled title="scheduled for a later time">Start' in page
    refused = operator.post(f"/scans/configs/{config['id']}/start", htmx=True)
    assert refused.status_code == 409 and "later time" in refused.text
    assert stored(config["id"])["revision"] == 1


def test_start_is_refused_while_a_scan_of_the_config_runs(operator):
    config = make_config()
    store.create(RESOURCES_BY_MODEL[Scan], {"name": "run", "scanConfig": {"id": config["id"]}})
    refused = operator.post(f"/scans/configs/{config['id']}/start", htmx=True)
    assert refused.status_code == 409 and "still running" in refused.text
    assert refused.text.lstrip().startswith(f'<tr id="scan-config-{config["id"]}"')
    assert stored(config["id"])["revision"] == 1


def test_delete_asks_first_and_removes_the_config_and_its_scans(operator):
    config = make_config(name=HOSTILE)
    store.create(RESOURCES_BY_MODEL[Scan], {"name": "run", "scanConfig": {"id": config["id"]}})
    page = operator.get("/scans/configs").text
    assert f'hx-confirm="Delete the scan configuration {ESCAPED} and every scan it made?"' in page
    response = operator.post(f"/scans/configs/{config['id']}/delete", htmx=True)
    assert response.status_code == 200 and response.text == ""
    assert all_configs() == [] and Scan.select().count() == 0
    assert operator.post(f"/scans/configs/{config['id']}/delete", htmx=True).status_code == 404


# ---- the form: create ---------------------------------------------------------------------


def test_the_new_form_has_four_steps_and_the_defaults(operator):
    page = operator.get("/scans/configs/new")
    assert page.status_code == 200
    for step in ("1. General", "2. Scan types", "3. Time", "4. Advanced"):
        assert step in page.text
    assert 'name="family_sbom" value="on" checked' in page.text
    assert 'name="family_vulnerabilities" value="on" checked' in page.text
    assert 'name="family_malware" value="on">' in page.text
    assert 'name="max_parallel" min="1" max="20" value="2"' in page.text
    for line in ("0 */12 * * *", "0 0 * * *", "0 0 * * 5"):
        assert f'value="{line}"' in page.text
    assert 'name="time_mode" value="now" checked' in page.text
    assert 'hx-post="/scans/configs/new"' in page.text and 'name="revision"' not in page.text


def test_create_now_starts_at_once(operator):
    response = operator.post("/scans/configs/new", form(rows=[("location", "startswith", "eu-"),
                                                              ("tag", "eq", "env=prod")], spot="on",
                                                        family_malware="on"), htmx=True)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/scans/configs"
    [config] = all_configs()
    assert config["name"] == "weekly" and config["disabled"] is False
    assert config["scanTemplate"]["scope"] == ("startswith(assetInfo/location, 'eu-') and "
                                               "assetInfo/tags/any(t: t/key eq 'env' and t/value eq 'prod')")
    assert config["scanTemplate"]["maxParallelScanners"] == 2
    families = config["scanTemplate"]["assetScanTemplate"]["scanFamiliesConfig"]
    assert {key for key, value in families.items() if value["enabled"]} == {"sbom", "vulnerabilities", "malware"}
    assert config["scanTemplate"]["assetScanTemplate"]["scannerInstanceCreationConfig"] == {"useSpotInstances": True}
    moment = datetime.datetime.fromisoformat(config["scheduled"]["operationTime"].replace("Z", "+00:00"))
    assert abs((moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 10


def test_create_at_a_specified_time(operator):
    response = operator.post("/scans/configs/new", form(time_mode="at", at_time="2099-03-04T05:06"))
    assert response.status_code == 303 and response.headers["Location"] == "/scans/configs"
    assert all_configs()[0]["scheduled"] == {"operationTime": "2099-03-04T05:06:00Z"}


@pytest.mark.parametrize("preset, custom, line", [
    ("0 */12 * * *", "", "0 */12 * * *"),
    ("0 0 * * 5", "", "0 0 * * 5"),
    ("custom", " 30 2 * * 1-5 ", "30 2 * * 1-5"),
])
def test_create_repetitive(operator, preset, custom, line):
    response = operator.post("/scans/configs/new", form(time_mode="cron", cron_preset=preset, cron_custom=custom))
    assert response.status_code == 303
    scheduled = all_configs()[0]["scheduled"]
    assert scheduled["cronLine"] == line and scheduled["operationTime"]  # the API fills the next tick


def test_a_bad_cron_is_shown_in_place_with_the_input_kept(operator):
    response = operator.post("/scans/configs/new", form(name=HOSTILE, time_mode="cron", cron_preset="custom",
                                                        cron_custom="61 * * * *"), htmx=True)
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="scan-config-form"')
    assert 'id="error-cron"' in response.text and "not a cron expression" in response.text
    assert 'value="61 * * * *"' in response.text and f'value="{ESCAPED}"' in response.text
    assert 'name="time_mode" value="cron" checked' in response.text
    assert 'value="eu-"' in response.text  # the scope rows are kept too
    assert all_configs() == []


def test_missing_fields_are_explained_next_to_them(operator):
    response = operator.post("/scans/configs/new", {"name": " ", "time_mode": "at", "at_time": "2001-01-01T00:00",
                                                    "max_parallel": "99"})
    assert response.status_code == 422 and "<html" in response.text
    for field, message in (("name", "give the configuration a name"),
                           ("at_time", "choose a time in the future"),
                           ("max_parallel", "a whole number from 1 to 20"),
                           ("families", "choose at least one scan type")):
        assert f'id="error-{field}"' in response.text and message in response.text


def test_a_duplicate_name_is_a_409_in_place(operator):
    make_config(name="nightly")
    response = operator.post("/scans/configs/new", form(name="nightly"), htmx=True)
    assert response.status_code == 409
    assert "a configuration named nightly already exists" in response.text and 'id="error-name"' in response.text
    assert len(all_configs()) == 1


def test_an_invalid_scope_is_refused_with_the_compilers_message(operator):
    response = operator.post("/scans/configs/new", form(rows=[("lastSeen", "gt", "yesterday")]), htmx=True)
    assert response.status_code == 422
    assert "invalid datetime literal" in response.text and "lastSeen gt &#39;yesterday&#39;" in response.text
    nonsense = operator.post("/scans/configs/new", form(rows=[("objectType", "contains", "VM")]), htmx=True)
    assert nonsense.status_code == 422 and "Asset type cannot use" in nonsense.text
    assert all_configs() == []


def test_hostile_scope_values_stay_literals_and_escaped(operator):
    value = f"x') or (1 eq 1 {HOSTILE}"
    response = operator.post("/scans/configs/new", form(rows=[("location", "eq", value)]))
    assert response.status_code == 303
    config = all_configs()[0]
    assert config["scanTemplate"]["scope"] == "assetInfo/location eq '" + value.replace("'", "''") + "'"
    html = operator.get("/scans/configs").text + operator.get(f"/scans/configs/{config['id']}/edit").text
    assert HOSTILE not in html and ESCAPED in html


# ---- the scope builder ----------------------------------------------------------------------


def test_the_preview_shows_the_odata_and_how_many_assets_match(operator):
    for location in ("eu-west-1", "eu-north-1", "us-east-1"):
        store.create(RESOURCES_BY_MODEL[Asset], {"assetInfo": {"objectType": "DirInfo", "dirName": f"/{location}",
                                                               "location": location}})
    preview = operator.get("/scans/configs/scope/preview?scope_field_0=location&scope_op_0=startswith&scope_value_0=eu-",
                           htmx=True)
    assert preview.status_code == 200
    assert "startswith(assetInfo/location, &#39;eu-&#39;)" in preview.text and "2 current assets match" in preview.text
    everything = operator.get("/scans/configs/scope/preview", htmx=True)
    assert "every asset" in everything.text and "3 current assets match" in everything.text


def test_add_and_remove_rows_re_render_the_builder(operator):
    base = ("/scans/configs/scope?scope_field_0=location&scope_op_0=eq&scope_value_0=a"
            "&scope_field_1=dirName&scope_op_1=eq&scope_value_1=b")
    added = operator.get(base + "&action=add", htmx=True)
    assert added.text.lstrip().startswith('<div id="scope-builder"')
    assert added.text.count('class="scope-row"') == 3
    removed = operator.get(base + "&action=remove:0", htmx=True)
    assert removed.text.count('class="scope-row"') == 1
    assert "assetInfo/dirName eq &#39;b&#39;" in removed.text and "&#39;a&#39;" not in removed.text
    assert 'name="scope_value_0" value="b"' in removed.text  # renumbered
    # a new field: the row offers that field's operators and values
    changed = operator.get("/scans/configs/scope?scope_field_0=objectType&scope_op_0=eq&scope_value_0=", htmx=True)
    assert '<option value="contains"' not in changed.text and "<option>VMInfo</option>" in changed.text


def test_a_row_takes_several_values_that_are_ored(operator):
    base = "/scans/configs/scope?scope_field_0=location&scope_op_0=eq&scope_value_0=us-east-1"
    more = operator.get(base + "&action=or:0", htmx=True)
    assert more.status_code == 200 and more.text.lstrip().startswith('<div id="scope-builder"')
    assert 'name="scope_value_0" value="us-east-1"' in more.text and 'name="scope_value_0_1" value=""' in more.text
    assert "action=drop:0:1" in more.text and "action=or:0" in more.text
    two = operator.get(base + "&scope_value_0_1=eu-west-1", htmx=True).text
    assert ("(assetInfo/location eq &#39;us-east-1&#39; or assetInfo/location eq &#39;eu-west-1&#39;)" in two)
    dropped = operator.get(base + "&scope_value_0_1=eu-west-1&scope_value_0_2=x&action=drop:0:1", htmx=True).text
    assert 'name="scope_value_0_1" value="x"' in dropped and "eu-west-1" not in dropped  # renumbered
    choices = operator.get("/scans/configs/scope?scope_field_0=objectType&scope_op_0=eq&scope_value_0=VMInfo"
                           "&action=or:0", htmx=True).text
    assert choices.count('<select name="scope_value_0') == 2
    refused = operator.get("/scans/configs/scope/preview?scope_field_0=location&scope_op_0=ne&scope_value_0=a"
                           "&scope_value_0_1=b", htmx=True).text
    assert "&#39;is not&#39; takes one value" in refused


def test_several_values_are_saved_edited_and_shown_again(operator):
    data = form(name="two regions", rows=[("location", "eq", "us-east-1")], scope_value_0_1="eu-west-1")
    assert operator.post("/scans/configs/new", data).status_code == 303
    config = all_configs()[0]
    scope = "(assetInfo/location eq 'us-east-1' or assetInfo/location eq 'eu-west-1')"
    assert config["scanTemplate"]["scope"] == scope
    page = operator.get(f"/scans/configs/{config['id']}/edit").text
    assert 'name="scope_value_0" value="us-east-1"' in page and 'name="scope_value_0_1" value="eu-west-1"' in page
    assert 'name="scope_raw"' not in page
    # without htmx, the or… and × buttons submit the form, which comes back with the row changed
    more = operator.post(f"/scans/configs/{config['id']}/edit",
                         {**data, "revision": "1", "time_mode": "keep", "scope_action": "or:0"})
    assert more.status_code == 200 and 'name="scope_value_0_2" value=""' in more.text
    fewer = operator.post(f"/scans/configs/{config['id']}/edit",
                          {**data, "revision": "1", "time_mode": "keep", "scope_action": "drop:0:1"})
    assert 'name="scope_value_0_1"' not in fewer.text and stored(config["id"])["revision"] == 1


def test_without_htmx_the_form_adds_and_removes_rows_itself(operator):
    added = operator.post("/scans/configs/new", form(scope_action="add"))
    assert added.status_code == 200 and added.text.count('class="scope-row"') == 2
    removed = operator.post("/scans/configs/new", form(scope_action="remove:0"))
    assert removed.text.count('class="scope-row"') == 0
    assert all_configs() == []


# ---- edit and duplicate --------------------------------------------------------------------


def test_edit_shows_the_stored_config_and_keeps_what_the_form_does_not_show(operator):
    config = make_config(scope="assetInfo/location eq 'eu-west-1' and assetInfo/tags/any(t: t/key eq 'team')")
    page = operator.get(f"/scans/configs/{config['id']}/edit")
    assert page.status_code == 200
    assert 'value="eu-west-1"' in page.text and 'value="team"' in page.text
    assert 'name="time_mode" value="keep" checked' in page.text and 'name="revision" value="1"' in page.text
    assert f'hx-post="/scans/configs/{config["id"]}/edit"' in page.text
    assert 'name="family_secrets" value="on" checked' in page.text and 'name="spot" value="on" checked' in page.text
    data = form(name="nightly renamed", time_mode="keep", rows=[("location", "eq", "eu-west-2")], revision="1",
                family_secrets="on")
    response = operator.post(f"/scans/configs/{config['id']}/edit", data)
    assert response.status_code == 303
    now = stored(config["id"])
    assert now["revision"] == 2 and now["name"] == "nightly renamed"
    assert now["scheduled"] == config["scheduled"] and now["scanTemplate"]["timeoutSeconds"] == 600
    assert now["scanTemplate"]["scope"] == "assetInfo/location eq 'eu-west-2'"
    families = now["scanTemplate"]["assetScanTemplate"]["scanFamiliesConfig"]
    assert families["sbom"] == {"enabled": True, "analyzers": ["syft"]} and families["secrets"]["enabled"]
    instance = now["scanTemplate"]["assetScanTemplate"]["scannerInstanceCreationConfig"]
    assert instance == {"useSpotInstances": False, "retryMaxAttempts": 4}


def test_edit_with_a_stale_revision_is_a_clear_error_and_nothing_is_lost(operator):
    config = make_config()
    store.patch(CONFIGS, config["id"], {"name": "changed elsewhere"}, None)
    response = operator.post(f"/scans/configs/{config['id']}/edit",
                             form(name="mine", time_mode="keep", revision="1"), htmx=True)
    assert response.status_code == 409
    assert "someone else changed this configuration" in response.text and 'value="mine"' in response.text
    assert stored(config["id"])["name"] == "changed elsewhere"


def test_a_scope_the_builder_cannot_show_is_kept_as_text(operator):
    scope = "assetInfo/location eq 'a' or assetInfo/dirName eq 'b'"
    config = make_config(scope=scope)
    page = operator.get(f"/scans/configs/{config['id']}/edit").text
    assert "the row builder cannot show it" in page
    assert 'name="scope_raw"' in page and "assetInfo/location eq &#39;a&#39; or" in page
    assert 'class="scope-row"' not in page
    response = operator.post(f"/scans/configs/{config['id']}/edit",
                             {**form(name="nightly", time_mode="keep", revision="1", rows=[]), "scope_raw": scope})
    assert response.status_code == 303 and stored(config["id"])["scanTemplate"]["scope"] == scope
    broken = operator.post(f"/scans/configs/{config['id']}/edit",
                           {**form(time_mode="keep", revision="2", rows=[]), "scope_raw": "assetInfo/nope eq 1"})
    assert broken.status_code == 422 and "unknown property" in broken.text


def test_edit_to_a_cron_schedule_enables_the_config(operator):
    config = store.patch(CONFIGS, make_config(operationTime="2020-01-01T00:00:00Z")["id"], {"disabled": True}, None)
    page = operator.get(f"/scans/configs/{config['id']}/edit").text
    assert "once at 2020-01-01 00:00 UTC" in page
    response = operator.post(f"/scans/configs/{config['id']}/edit",
                             form(name="nightly", time_mode="cron", cron_preset="0 */12 * * *", revision="2"))
    assert response.status_code == 303
    now = stored(config["id"])
    assert now["disabled"] is False and now["scheduled"]["cronLine"] == "0 */12 * * *"


def test_duplicate_opens_the_form_prefilled_as_a_copy(operator):
    config = make_config(name="nightly")
    page = operator.get(f"/scans/configs/new?from={config['id']}")
    assert page.status_code == 200
    assert 'value="nightly copy"' in page.text and 'value="eu-west-1"' in page.text
    assert 'name="revision"' not in page.text and 'value="keep"' not in page.text
    assert 'name="time_mode" value="cron" checked' in page.text
    response = operator.post("/scans/configs/new", form(name="nightly copy", time_mode="cron"))
    assert response.status_code == 303
    assert [c["name"] for c in all_configs()] == ["nightly", "nightly copy"]
