"""/api/providers: CRUD, the required status, merge patch, If-Match, delete."""

import uuid

import pytest

URL = "/api/providers"
T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"


def provider_status(state="Healthy", reason="HeartbeatReceived", **extra):
    return {"state": state, "reason": reason, "lastTransitionTime": T0, **extra}


def provider(name="local", **extra):
    return {"displayName": name, "status": provider_status(), "providerRuntimeVersion": "0.1.0",
            "lastHeartbeatTime": T0, **extra}


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


# ---- create -----------------------------------------------------------------

@pytest.mark.parametrize("body", [
    provider(),
    {"status": provider_status("Unknown", "NoHeartbeatReceived")},
    provider(annotations=[{"key": "zone", "value": "a"}], status=provider_status(message="ok")),
], ids=["full", "minimal", "extras"])
def test_create_assigns_id_and_first_revision(api, body):
    response = api.post(URL, json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert uuid.UUID(created["id"]).version == 4
    assert created == {**body, "id": created["id"], "revision": 1}
    assert fetch(api, created["id"]) == created


def test_create_needs_a_status(api):
    body = provider()
    del body["status"]
    assert_error(api.post(URL, json=body), 400, "status")
    assert count(api) == 0


def test_there_is_no_uniqueness_rule(api):
    """The original declares ProviderExists but checks no key; two equal providers may exist."""
    create(api, provider())
    create(api, provider())
    assert count(api) == 2


def test_create_with_id_is_rejected(api):
    assert_error(api.post(URL, json={**provider(), "id": str(uuid.uuid4())}), 400, "id")
    assert count(api) == 0


@pytest.mark.parametrize("body, field", [
    (provider(displayName=7), "displayName"),
    (provider(lastHeartbeatTime="just now"), "lastHeartbeatTime"),
    (provider(status=provider_status(state="Sick")), "state"),
    (provider(status=provider_status(reason="Silence")), "reason"),
    (provider(status={"state": "Healthy", "reason": "HeartbeatReceived"}), "lastTransitionTime"),
    (provider(status="Healthy"), "status"),
])
def test_create_breaking_the_schema_names_the_field(api, body, field):
    assert_error(api.post(URL, json=body), 400, field)
    assert count(api) == 0


# ---- read, list -------------------------------------------------------------

def test_get_unknown_is_404(api):
    assert_error(api.get(f"{URL}/{uuid.uuid4()}"), 404)


def test_list_filters_and_counts(api):
    local = create(api, provider("local"))
    create(api, provider("aws", status=provider_status("Unhealthy", "NoHeartbeatReceived")))
    create(api, provider("azure"))
    body = api.get(f"{URL}?$filter=displayName eq 'local'&$count=true").get_json()
    assert body["count"] == 1
    assert body["items"] == [local]
    assert count(api, URL, "&$filter=status/state eq 'Healthy'") == 2


# ---- PUT, PATCH, If-Match ----------------------------------------------------

def test_put_replaces_the_whole_document(api):
    created = create(api, provider())
    body = {"status": provider_status("Unhealthy", "NoHeartbeatReceived")}
    response = api.put(f"{URL}/{created['id']}", json=body)
    assert response.status_code == 200
    expected = {**body, "id": created["id"], "revision": 2}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_put_without_a_status_is_400(api):
    created = create(api, provider())
    assert_error(api.put(f"{URL}/{created['id']}", json={"displayName": "x"}), 400, "status")
    assert fetch(api, created["id"]) == created


def test_put_with_another_id_is_rejected(api):
    created = create(api, provider())
    assert_error(api.put(f"{URL}/{created['id']}", json={**provider(), "id": str(uuid.uuid4())}), 400, "id")
    assert fetch(api, created["id"]) == created


def test_patch_merges_nested_objects_and_null_removes(api):
    created = create(api, provider(status=provider_status(message="fine")))
    patch = {"lastHeartbeatTime": T1, "providerRuntimeVersion": None,
             "status": {"message": None, "lastTransitionTime": T1}}
    response = api.patch(f"{URL}/{created['id']}", json=patch)
    assert response.status_code == 200
    expected = {"id": created["id"], "revision": 2, "displayName": "local", "lastHeartbeatTime": T1,
                "status": {"state": "Healthy", "reason": "HeartbeatReceived", "lastTransitionTime": T1}}
    assert response.get_json() == expected
    assert fetch(api, created["id"]) == expected


def test_provider_status_may_move_freely(api):
    """Provider status is not a validated state machine."""
    created = create(api, provider())
    url = f"{URL}/{created['id']}"
    for state, reason in [("Unhealthy", "NoHeartbeatReceived"), ("Unknown", "NoHeartbeatReceived"),
                          ("Healthy", "HeartbeatReceived")]:
        assert api.patch(url, json={"status": provider_status(state, reason)}).status_code == 200
    assert fetch(api, created["id"])["revision"] == 4


def test_patch_cannot_remove_the_status(api):
    created = create(api, provider())
    assert_error(api.patch(f"{URL}/{created['id']}", json={"status": None}), 400, "status")
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, method):
    created = create(api, provider())
    response = getattr(api, method)(f"{URL}/{created['id']}", json=provider("renamed"), headers={"If-Match": "9"})
    assert_error(response, 412)
    assert fetch(api, created["id"]) == created


@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_equal_to_the_revision_succeeds(api, method):
    created = create(api, provider())
    response = getattr(api, method)(f"{URL}/{created['id']}", json=provider("renamed"), headers={"If-Match": "1"})
    assert response.status_code == 200
    assert fetch(api, created["id"]) == {**provider("renamed"), "id": created["id"], "revision": 2}


# ---- delete -----------------------------------------------------------------

def test_delete(api):
    created = create(api, provider())
    kept = create(api, provider("kept"))
    response = api.delete(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert set(response.get_json()) == {"message"}
    assert_error(api.get(f"{URL}/{created['id']}"), 404)
    assert_error(api.delete(f"{URL}/{created['id']}"), 404)
    assert count(api) == 1
    assert fetch(api, kept["id"]) == kept
