"""/api/scanConfigs: CRUD, name and schedule rules, If-Match, uniqueness and the cascade to scans."""

import datetime
import uuid

import pytest

URL = "/api/scanConfigs"
T0 = "2024-05-01T10:00:00Z"
LATER = "2031-01-01T06:30:00Z"


def scan_config(name="nightly", scheduled=None, **extra):
    return {
        "name": name,
        "scanTemplate": {
            "scope": "assetInfo/objectType eq 'DirInfo'",
            "maxParallelScanners": 2,
            "timeoutSeconds": 3600,
            "assetScanTemplate": {
                "scanFamiliesConfig": {"sbom": {"enabled": True}, "vulnerabilities": {"enabled": True}},
                "scannerInstanceCreationConfig": {"useSpotInstances": False},
            },
        },
        "scheduled": scheduled or {"operationTime": LATER},
        "disabled": False,
        **extra,
    }


def dir_asset(dir_name="/srv/www"):
    return {"assetInfo": {"objectType": "DirInfo", "dirName": dir_name, "location": "host-1"}}


def assert_error(response, code, *words):
    assert response.status_code == code, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message"} and body["message"], body
    for word in words:
        assert word in body["message"], body
    return body


def create(api, body, url=URL):
    response = api.post(url, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def fetch(api, object_id, url=URL):
    response = api.get(f"{url}/{object_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def count(api, url=URL, query=""):
    response = api.get(f"{url}?$count=true{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["count"]


def gone(api, url, object_id):
    return api.get(f"{url}/{object_id}").status_code == 404


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- create -----------------------------------------------------------------

@pytest.mark.parametrize("body", [
    scan_config(),
    scan_config(scheduled={"operationTime": LATER, "cronLine": "0 3 * * *"}),
    scan_config(disabled=True, annotations=[{"key": "owner", "value": "ops"}]),
    {"name": "minimal", "scheduled": {"operationTime": T0}},
], ids=["full", "cron-and-time", "extras", "minimal"])
def test_create_assigns_id_and_first_revision(api, body):
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created == {**body, "id": created["id"], "revision": 1}
    assert fetch(api, created["id"]) == created


def test_create_with_id_is_rejected(api):
    assert_error(api.post(URL, json={**scan_config(), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("body, field", [
    (scan_config(name=5), "name"),
    (scan_config(disabled="no"), "disabled"),
    ({**scan_config(), "scanTemplate": {"maxParallelScanners": 21}}, "maxParallelScanners"),
    ({**scan_config(), "scanTemplate": {"timeoutSeconds": -1}}, "timeoutSeconds"),
    ({**scan_config(), "scanTemplate": {"assetScanTemplate": {"scannerInstanceCreationConfig": {}}}},
     "useSpotInstances"),
    (scan_config(scheduled={"operationTime": "tomorrow"}), "operationTime"),
    (scan_config(scheduled={"cronLine": "0 * * * *", "every": "hour"}), "scheduled"),
])
def test_create_breaking_the_schema_names_the_field(api, body, field):
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


# ---- name rules --------------------------------------------------------------

def test_name_must_be_a_non_empty_string(api):
    for name in (None, "", "   "):
        body = scan_config()
        if name is None:
            del body["name"]
        else:
            body["name"] = name
        assert_error(api.post(URL, json=body), 400, "name")
    assert count(api) == 0


def test_name_is_unique(api):
    first = create(api, scan_config("weekly"))
    response = api.post(URL, json=scan_config("weekly", scheduled={"cronLine": "0 0 * * 5"}))
    assert response.status_code == 409
    body = response.get_json()
    assert set(body) == {"message", "scanConfig"}
    assert body["scanConfig"] == first
    assert count(api) == 1
    create(api, scan_config("weekly-2"))
    assert count(api) == 2


@pytest.mark.parametrize("method", ["put", "patch"])
def test_renaming_onto_another_name_is_409_and_changes_nothing(api, method):
    first = create(api, scan_config("a"))
    second = create(api, scan_config("b"))
    body = scan_config("a") if method == "put" else {"name": "a"}
    response = getattr(api, method)(f"{URL}/{second['id']}", json=body)
    assert response.status_code == 409
    assert response.get_json()["scanConfig"] == first
    assert fetch(api, second["id"]) == second


@pytest.mark.parametrize("method", ["put", "patch"])
def test_keeping_its_own_name_is_no_clash(api, method):
    created = create(api, scan_config("a"))
    body = scan_config("a", disabled=True) if method == "put" else {"disabled": True}
    assert getattr(api, method)(f"{URL}/{created['id']}", json=body).status_code == 200
    assert fetch(api, created["id"])["disabled"] is True


@pytest.mark.parametrize("name", ["", "  "])
def test_patch_cannot_blank_the_name(api, name):
    created = create(api, scan_config())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"name": name}), 400, "name")
    assert_error(api.patch(f"{URL}/{created['id']}", json={"name": None}), 400, "name")
    assert fetch(api, created["id"]) == created


# ---- schedule rules ----------------------------------------------------------

def test_scheduled_needs_cron_line_or_operation_time(api):
    for scheduled in (None, {}, {"cronLine": ""}):
        body = scan_config()
        if scheduled is None:
            del body["scheduled"]
        else:
            body["scheduled"] = scheduled
        assert_error(api.post(URL, json=body), 400, "scheduled")
    assert count(api) == 0


def test_bad_cron_line_is_400(api):
    for cron_line in ("not a cron", "61 * * * *", "0 25 * * *", "* * 32 * *", "* *"):
        assert_error(api.post(URL, json=scan_config(scheduled={"cronLine": cron_line})), 400, "cronLine")
    assert count(api) == 0


def test_only_cron_line_fills_operation_time_with_the_next_tick(api):
    before = datetime.datetime.now(datetime.timezone.utc)
    created = create(api, scan_config(scheduled={"cronLine": "0 0 * * *"}))
    tick = parse_time(created["scheduled"]["operationTime"])
    assert created["scheduled"]["cronLine"] == "0 0 * * *"
    assert (tick.hour, tick.minute, tick.second) == (0, 0, 0)
    assert tick.utcoffset() == datetime.timedelta(0)
    assert before < tick <= before + datetime.timedelta(days=1, seconds=5)
    assert fetch(api, created["id"])["scheduled"] == created["scheduled"]


def test_every_five_minutes_ticks_within_five_minutes(api):
    before = datetime.datetime.now(datetime.timezone.utc)
    created = create(api, scan_config(scheduled={"cronLine": "*/5 * * * *"}))
    tick = parse_time(created["scheduled"]["operationTime"])
    assert tick.minute % 5 == 0 and tick.second == 0
    assert before < tick <= before + datetime.timedelta(minutes=5, seconds=5)


def test_given_operation_time_is_kept_beside_a_cron_line(api):
    created = create(api, scan_config(scheduled={"cronLine": "0 0 * * *", "operationTime": LATER}))
    assert created["scheduled"] == {"cronLine": "0 0 * * *", "operationTime": LATER}


def test_only_operation_time_is_kept_as_given(api):
    created = create(api, scan_config(scheduled={"operationTime": T0}))
    assert fetch(api, created["id"])["scheduled"] == {"operationTime": T0}


def test_put_with_only_a_cron_line_fills_operation_time(api):
    created = create(api, scan_config())
    response = api.put(f"{URL}/{created['id']}", json=scan_config(scheduled={"cronLine": "30 2 * * *"}))
    assert response.status_code == 200
    scheduled = fetch(api, created["id"])["scheduled"]
    assert scheduled["cronLine"] == "30 2 * * *"
    tick = parse_time(scheduled["operationTime"])
    assert (tick.hour, tick.minute) == (2, 30)


def test_put_without_scheduled_is_400(api):
    created = create(api, scan_config())
    body = scan_config()
    del body["scheduled"]
    assert_error(api.put(f"{URL}/{created['id']}", json=body), 400, "scheduled")
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("patch", [
    {"scheduled": None},
    {"scheduled": {"operationTime": None}},
    {"scheduled": {"cronLine": "99 * * * *"}},
], ids=["remove", "remove-only-field", "bad-cron"])
def test_patch_breaking_the_schedule_is_400_and_changes_nothing(api, patch):
    created = create(api, scan_config(scheduled={"operationTime": LATER}))
    assert_error(api.patch(f"{URL}/{created['id']}", json=patch), 400)
    assert fetch(api, created["id"]) == created


def test_patch_start_now(api):
    """The UI's Start action: PATCH operationTime=now and disabled=false."""
    created = create(api, scan_config(disabled=True, scheduled={"operationTime": LATER}))
    response = api.patch(f"{URL}/{created['id']}", json={"scheduled": {"operationTime": T0}, "disabled": False})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**created, "scheduled": {"operationTime": T0}, "disabled": False,
                                         "revision": 2}


# ---- read and list ----------------------------------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api):
    create(api, scan_config("a"))
    b = create(api, scan_config("b", disabled=True))
    create(api, scan_config("c"))
    body = api.get(f"{URL}?$filter=name eq 'b'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [b]
    body = api.get(f"{URL}?$filter=disabled eq false&$count=true").get_json()
    assert body["count"] == 2
    assert sorted(item["name"] for item in body["items"]) == ["a", "c"]


# ---- PUT, PATCH, If-Match --------------------------------------------------

def test_put_replaces_the_whole_document(api):
    created = create(api, scan_config(annotations=[{"key": "k", "value": "v"}]))
    body = {"name": "renamed", "scheduled": {"operationTime": T0}}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_put_with_another_id_is_rejected(api):
    created = create(api, scan_config())
    assert_error(api.put(f"{URL}/{created['id']}", json={**scan_config(), "id": str(uuid.uuid4())}), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api):
    created = create(api, scan_config())
    patch = {
        "scanTemplate": {
            "maxParallelScanners": 5,
            "timeoutSeconds": None,
            "assetScanTemplate": {"scanFamiliesConfig": {"vulnerabilities": None, "secrets": {"enabled": True}}},
        },
    }
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    template = created["scanTemplate"]
    expected = {
        **created,
        "revision": 2,
        "scanTemplate": {
            "scope": template["scope"],
            "maxParallelScanners": 5,
            "assetScanTemplate": {
                "scanFamiliesConfig": {"sbom": {"enabled": True}, "secrets": {"enabled": True}},
                "scannerInstanceCreationConfig": {"useSpotInstances": False},
            },
        },
    }
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, method):
    created = create(api, scan_config())
    response = getattr(api, method)(f"{URL}/{created['id']}", json=scan_config(disabled=True),
                                    headers={"If-Match": "2"})
    assert_error(response, 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, method):
    created = create(api, scan_config())
    response = getattr(api, method)(f"{URL}/{created['id']}", json=scan_config(disabled=True),
                                    headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**scan_config(disabled=True), "id": created["id"], "revision": 2}


# ---- delete and cascade -----------------------------------------------------

def test_delete(api):
    created = create(api, scan_config())
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert count(api) == 0
    create(api, scan_config())  # the name is free again


def test_delete_removes_its_scans_and_their_asset_scans(api):
    config = create(api, scan_config("doomed"))
    other_config = create(api, scan_config("kept"))
    asset = create(api, dir_asset(), "/api/assets")
    ended = create(api, {"name": "old", "scanConfig": {"id": config["id"]}, "endTime": T0}, "/api/scans")
    running = create(api, {"name": "new", "scanConfig": {"id": config["id"]}}, "/api/scans")
    kept_scan = create(api, {"name": "other", "scanConfig": {"id": other_config["id"]}}, "/api/scans")
    doomed_asset_scans = [
        create(api, {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}}, "/api/assetScans")
        for scan in (ended, running)
    ]
    kept_asset_scan = create(api, {"asset": {"id": asset["id"]}, "scan": {"id": kept_scan["id"]}}, "/api/assetScans")
    finding = create(api, {"findingInfo": {"objectType": "Package", "name": "openssl", "version": "3.0.1"},
                           "lastSeenBy": {"id": doomed_asset_scans[1]["id"]}, "firstSeen": T0}, "/api/findings")
    link = create(api, {"asset": {"id": asset["id"]}, "finding": {"id": finding["id"]}}, "/api/assetFindings")

    assert api.delete(f"{URL}/{config['id']}").status_code == 200

    assert gone(api, URL, config["id"])
    assert gone(api, "/api/scans", ended["id"]) and gone(api, "/api/scans", running["id"])
    assert all(gone(api, "/api/assetScans", item["id"]) for item in doomed_asset_scans)
    assert count(api, "/api/scans", f"&$filter=scanConfig/id eq '{config['id']}'") == 0
    # The finding and its history survive; it just stops pointing at the deleted asset scan.
    survivor = fetch(api, finding["id"], "/api/findings")
    assert "lastSeenBy" not in survivor
    assert {k: v for k, v in survivor.items() if k not in ("lastSeenBy", "revision")} == \
        {k: v for k, v in finding.items() if k not in ("lastSeenBy", "revision")}
    assert fetch(api, link["id"], "/api/assetFindings") == link
    # Unrelated objects are untouched.
    assert fetch(api, other_config["id"]) == other_config
    assert fetch(api, kept_scan["id"], "/api/scans") == kept_scan
    assert fetch(api, kept_asset_scan["id"], "/api/assetScans") == kept_asset_scan
    assert fetch(api, asset["id"], "/api/assets") == asset
    assert count(api, "/api/scans") == 1
    assert count(api, "/api/assetScans") == 1
