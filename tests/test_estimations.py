"""Scan estimations on the local provider: the two actors driven step by step.

No worker runs here: each test calls the actors as plain functions, over and
over, until the state settles (what the triggers and the sweep do in service).
Messages the writes enqueue go to the test Redis and are flushed.
"""

import datetime
import math

import dramatiq
import pytest

import tasks.estimations
from app import odata
from app.models import AssetScanEstimation, ScanEstimation
from tasks.estimations import (latest_stats, reconcile_asset_scan_estimation, reconcile_scan_estimation,
                               sweep_queries)
from tasks.objects import parse_time, timestamp

GiB = 1024 ** 3
THROUGHPUT = 50 * 1000 * 1000  # the local provider's default bytes per second
SMALL = 1000                   # bytes in the small directory
BIG = 5 * GiB // 2             # bytes in the big one (a sparse file: no disk used)
LOCATION = "lab"


@pytest.fixture
def env(api, tmp_path, monkeypatch):
    """The local provider on a tmp tree; the broker's queues empty before and after."""
    monkeypatch.setenv("VMCLARITY_PROVIDER", "local")
    monkeypatch.setenv("VMCLARITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VMCLARITY_LOCAL_ASSETS", str(tmp_path / "assets"))
    monkeypatch.delenv("VMCLARITY_MAX_PARALLEL_SCANNERS", raising=False)
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield api
    broker.flush_all()


@pytest.fixture
def dirs(tmp_path):
    small = tmp_path / "assets/small"
    (small / "sub").mkdir(parents=True)
    (small / "a").write_bytes(b"x" * 600)
    (small / "sub/b").write_bytes(b"y" * 400)
    big = tmp_path / "assets/big"
    big.mkdir(parents=True)
    with open(big / "disk", "wb") as handle:
        handle.truncate(BIG)
    return {"small": small, "big": big}


# ---- helpers ------------------------------------------------------------------------


def post(api, url, body):
    response = api.post(url, json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def get(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def dir_asset(api, path, location=LOCATION, **extra):
    info = {"objectType": "DirInfo", "dirName": str(path), "location": location}
    return post(api, "/api/assets", {"assetInfo": info, **extra})


def scan_estimation(api, scope=f"assetInfo/location eq '{LOCATION}'", **template):
    return post(api, "/api/scanEstimations", {"scanTemplate": {"scope": scope, **template}})


def fetch(api, scan_estimation_id):
    return get(api, f"/api/scanEstimations/{scan_estimation_id}")


def children(api, scan_estimation_id):
    query = f"$filter=scanEstimation/id eq '{scan_estimation_id}'"
    return {item["asset"]["id"]: item for item in get(api, f"/api/assetScanEstimations?{query}")["items"]}


def settle(api, scan_estimation_id, rounds=10):
    """Drive both actors until the scan estimation is finished; return the states it went through."""
    states = [fetch(api, scan_estimation_id)["status"]["state"]]
    for _ in range(rounds):
        reconcile_scan_estimation.fn(scan_estimation_id)
        for child in children(api, scan_estimation_id).values():
            if child["status"]["state"] == "Pending":
                reconcile_asset_scan_estimation.fn(child["id"])
        state = fetch(api, scan_estimation_id)["status"]["state"]
        if state != states[-1]:
            states.append(state)
        if state in ("Done", "Failed"):
            return states
    raise AssertionError(f"still {states[-1]} after {rounds} rounds")


def state_and_reason(document):
    return document["status"]["state"], document["status"]["reason"]


def api_status(state, reason):
    return {"state": state, "reason": reason, "lastTransitionTime": timestamp()}


def seconds(start, end):
    return (parse_time(end) - parse_time(start)).total_seconds()


def done_asset_scan(api, asset_id, stats):
    """An asset scan walked through the states a scanner takes it to Done, with `stats`."""
    scan = post(api, "/api/assetScans", {
        "asset": {"id": asset_id},
        "status": api_status("Pending", "Created"),
        "resourceCleanupStatus": api_status("Pending", "AssetScanCreated"),
    })
    steps = [("Scheduled", "Provisioning"), ("ReadyToScan", "ResourcesReady"),
             ("InProgress", "ScannerIsRunning"), ("Done", "Success")]
    for state, reason in steps:
        body = {"status": api_status(state, reason)}
        if state == "Done":
            body["stats"] = stats
        response = api.patch(f"/api/assetScans/{scan['id']}", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
    return scan


def scan_time(seconds_taken):
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    end = start + datetime.timedelta(seconds=seconds_taken)
    return {"startTime": timestamp(start), "endTime": timestamp(end)}


def shift_clock(monkeypatch, delta):
    moment = datetime.datetime.now(datetime.timezone.utc) + delta
    monkeypatch.setattr(tasks.estimations, "now", lambda: moment)


# ---- the happy path -----------------------------------------------------------------


@pytest.mark.parametrize("max_parallel, divisor", [(None, 2), (1, 1), (5, 2)])
def test_estimates_every_asset_in_scope_and_rolls_them_up(env, dirs, tmp_path, max_parallel, divisor):
    small = dir_asset(env, dirs["small"])
    big = dir_asset(env, dirs["big"])
    dir_asset(env, tmp_path, location="elsewhere")  # out of scope
    dir_asset(env, dirs["small"] / "sub", terminatedOn="2024-01-01T00:00:00Z")  # gone
    families = {"sbom": {"enabled": True}}
    template = {"assetScanTemplate": {"scanFamiliesConfig": families}}
    if max_parallel:
        template["maxParallelScanners"] = max_parallel
    created = scan_estimation(env, **template)

    assert settle(env, created["id"]) == ["Pending", "Discovered", "InProgress", "Done"]

    final = fetch(env, created["id"])
    assert state_and_reason(final) == ("Done", "Success")
    assert final["assetIDs"] == [small["id"], big["id"]]
    estimations = children(env, created["id"])
    assert sorted(item["id"] for item in final["assetScanEstimations"]) == sorted(
        item["id"] for item in estimations.values())
    durations = {small["id"]: 1, big["id"]: math.ceil(BIG / THROUGHPUT)}
    sizes = {small["id"]: math.ceil(SMALL / GiB), big["id"]: math.ceil(BIG / GiB)}
    assert sizes == {small["id"]: 1, big["id"]: 3}  # the API counts GB, rounded up
    for asset_id, item in estimations.items():
        assert state_and_reason(item) == ("Done", "Success")
        assert item["estimation"] == {"duration": durations[asset_id], "size": sizes[asset_id],
                                      "cost": 0.0, "costBreakdown": []}
        assert item["assetScanTemplate"] == {"scanFamiliesConfig": families}
        assert seconds(item["endTime"], item["deleteAfter"]) == 7200
        assert parse_time(item["startTime"]) <= parse_time(item["endTime"])
    assert final["summary"] == {
        "jobsLeftToRun": 0,
        "jobsCompleted": 2,
        "totalScanTime": math.ceil(sum(durations.values()) / divisor),
        "totalScanSize": 4,
        "totalScanCost": 0.0,
    }
    assert parse_time(final["startTime"]) <= parse_time(final["endTime"])
    assert seconds(final["endTime"], final["deleteAfter"]) == 7200


def test_a_scope_matching_nothing_has_nothing_to_estimate(env, dirs):
    dir_asset(env, dirs["small"])
    created = scan_estimation(env, scope="assetInfo/location eq 'nowhere'")

    assert settle(env, created["id"]) == ["Pending", "Done"]

    final = fetch(env, created["id"])
    assert state_and_reason(final) == ("Done", "NothingToEstimate")
    assert children(env, created["id"]) == {}
    assert final["summary"]["jobsCompleted"] == 0 and final["summary"]["totalScanTime"] == 0
    assert seconds(final["endTime"], final["deleteAfter"]) == 7200


def test_a_bad_scope_fails_the_estimation(env):
    created = scan_estimation(env, scope="assetInfo/nosuchfield eq 1 and")

    assert settle(env, created["id"]) == ["Pending", "Failed"]
    final = fetch(env, created["id"])
    assert state_and_reason(final) == ("Failed", "Error")
    assert "scope" in final["status"]["message"]


def test_a_provider_error_fails_that_asset_and_the_roll_up(env, dirs, tmp_path):
    good = dir_asset(env, dirs["small"])
    missing = dir_asset(env, tmp_path / "assets/missing")
    created = scan_estimation(env)

    assert settle(env, created["id"])[-1] == "Failed"

    estimations = children(env, created["id"])
    assert state_and_reason(estimations[good["id"]]) == ("Done", "Success")
    failed = estimations[missing["id"]]
    assert state_and_reason(failed) == ("Failed", "Error")
    assert "no such directory" in failed["status"]["message"]
    assert "deleteAfter" in failed and "estimation" not in failed
    final = fetch(env, created["id"])
    assert state_and_reason(final) == ("Failed", "Error")
    assert final["status"]["message"] == "1 succeeded, 1 failed out of 2 total asset scan estimations"
    assert final["summary"]["jobsCompleted"] == 2 and final["summary"]["totalScanTime"] == 1


# ---- stats of earlier scans ---------------------------------------------------------


def test_the_duration_comes_from_the_assets_latest_done_scans(env, dirs):
    asset = dir_asset(env, dirs["big"])
    other = dir_asset(env, dirs["small"])
    sbom = [{"type": "DIR", "path": str(dirs["big"]), "size": 1, "scanTime": scan_time(30)}]
    done_asset_scan(env, asset["id"], {"general": {"scanTime": scan_time(600)}, "sbom": sbom})
    done_asset_scan(env, asset["id"], {"general": {"scanTime": scan_time(120)}})
    done_asset_scan(env, other["id"], {"general": {"scanTime": scan_time(5)}})

    # Per family the newest there is: general from the second scan, sbom from the first.
    assert latest_stats(asset["id"]) == {"general": {"scanTime": scan_time(120)}, "sbom": sbom}

    parent = post(env, "/api/scanEstimations", {})
    item = post(env, "/api/assetScanEstimations", {"asset": {"id": asset["id"]},
                                                   "scanEstimation": {"id": parent["id"]}})
    reconcile_asset_scan_estimation.fn(item["id"])

    done = get(env, f"/api/assetScanEstimations/{item['id']}")
    assert state_and_reason(done) == ("Done", "Success")
    assert done["estimation"]["duration"] == 120
    assert done["estimation"]["size"] == 3


def test_an_asset_never_scanned_has_no_stats(env, dirs):
    asset = dir_asset(env, dirs["small"])
    assert latest_stats(asset["id"]) == {}


# ---- lifetime -----------------------------------------------------------------------


def test_finished_estimations_are_deleted_after_their_ttl(env, dirs, monkeypatch):
    dir_asset(env, dirs["small"])
    created = post(env, "/api/scanEstimations",
                   {"scanTemplate": {"scope": ""}, "ttlSecondsAfterFinished": 60})
    settle(env, created["id"])
    final = fetch(env, created["id"])
    assert seconds(final["endTime"], final["deleteAfter"]) == 60
    (child,) = children(env, created["id"]).values()
    assert seconds(child["endTime"], child["deleteAfter"]) == 7200  # its own TTL: the default

    shift_clock(monkeypatch, datetime.timedelta(seconds=30))
    reconcile_scan_estimation.fn(created["id"])
    assert fetch(env, created["id"])["revision"] == final["revision"]  # not yet

    shift_clock(monkeypatch, datetime.timedelta(seconds=90))
    reconcile_scan_estimation.fn(created["id"])
    assert env.get(f"/api/scanEstimations/{created['id']}").status_code == 404
    # Its asset scan estimations go with it.
    assert env.get(f"/api/assetScanEstimations/{child['id']}").status_code == 404
    reconcile_asset_scan_estimation.fn(child["id"])  # a late message finds nothing to do


def test_an_asset_scan_estimation_is_deleted_after_its_own_ttl(env, dirs, monkeypatch):
    asset = dir_asset(env, dirs["small"])
    parent = post(env, "/api/scanEstimations", {})
    item = post(env, "/api/assetScanEstimations", {"asset": {"id": asset["id"]},
                                                   "scanEstimation": {"id": parent["id"]}})
    reconcile_asset_scan_estimation.fn(item["id"])
    shift_clock(monkeypatch, datetime.timedelta(seconds=7201))
    reconcile_asset_scan_estimation.fn(item["id"])
    assert env.get(f"/api/assetScanEstimations/{item['id']}").status_code == 404
    assert env.get(f"/api/scanEstimations/{parent['id']}").status_code == 200


def test_one_finished_by_a_client_gets_a_delete_after(env):
    created = post(env, "/api/scanEstimations", {"ttlSecondsAfterFinished": 10})
    response = env.patch(f"/api/scanEstimations/{created['id']}", json={
        "status": api_status("Done", "NothingToEstimate"), "endTime": "2024-01-01T00:00:00Z"})
    assert response.status_code == 200
    reconcile_scan_estimation.fn(created["id"])
    assert fetch(env, created["id"])["deleteAfter"] == "2024-01-01T00:00:10Z"
    reconcile_scan_estimation.fn(created["id"])  # long past: gone
    assert env.get(f"/api/scanEstimations/{created['id']}").status_code == 404


# ---- timeout, abort, re-runs --------------------------------------------------------


def in_progress(api, dirs):
    """A scan estimation InProgress whose one asset scan estimation is still Pending."""
    dir_asset(api, dirs["small"])
    created = scan_estimation(api)
    for _ in range(3):
        reconcile_scan_estimation.fn(created["id"])
    assert fetch(api, created["id"])["status"]["state"] == "InProgress"
    (child,) = children(api, created["id"]).values()
    return created, child


def test_an_estimation_past_48_hours_times_out(env, dirs, monkeypatch):
    created, child = in_progress(env, dirs)
    shift_clock(monkeypatch, datetime.timedelta(hours=47))
    reconcile_scan_estimation.fn(created["id"])
    assert fetch(env, created["id"])["status"]["state"] == "InProgress"

    shift_clock(monkeypatch, datetime.timedelta(hours=48, seconds=1))
    reconcile_scan_estimation.fn(created["id"])
    assert state_and_reason(fetch(env, created["id"])) == ("Failed", "TimeOut")
    assert state_and_reason(children(env, created["id"])[child["asset"]["id"]]) == ("Aborted", "Cancellation")


def test_an_aborted_estimation_aborts_its_asset_estimations_and_fails(env, dirs):
    created, child = in_progress(env, dirs)
    response = env.patch(f"/api/scanEstimations/{created['id']}",
                         json={"status": api_status("Aborted", "Cancellation")})
    assert response.status_code == 200

    reconcile_scan_estimation.fn(created["id"])

    final = fetch(env, created["id"])
    assert state_and_reason(final) == ("Failed", "Aborted")
    assert "endTime" in final and "deleteAfter" in final
    assert state_and_reason(children(env, created["id"])[child["asset"]["id"]]) == ("Aborted", "Cancellation")
    reconcile_asset_scan_estimation.fn(child["id"])  # aborted: only its lifetime is left
    assert get(env, f"/api/assetScanEstimations/{child['id']}")["deleteAfter"]


def test_a_rerun_of_discovered_makes_no_duplicates(env, dirs):
    first = dir_asset(env, dirs["small"])
    dir_asset(env, dirs["big"])
    created = scan_estimation(env)
    reconcile_scan_estimation.fn(created["id"])
    assert fetch(env, created["id"])["status"]["state"] == "Discovered"
    # As if an earlier run had created one and died before recording it.
    earlier = post(env, "/api/assetScanEstimations", {"asset": {"id": first["id"]},
                                                      "scanEstimation": {"id": created["id"]}})

    reconcile_scan_estimation.fn(created["id"])

    after = fetch(env, created["id"])
    assert after["status"]["state"] == "InProgress"
    assert len(after["assetScanEstimations"]) == 2
    assert {"id": earlier["id"]} in after["assetScanEstimations"]
    assert after["summary"]["jobsLeftToRun"] == 2
    assert settle(env, created["id"])[-1] == "Done"


def test_a_deleted_scan_estimation_is_left_alone(env):
    reconcile_scan_estimation.fn("no-such-id")
    reconcile_asset_scan_estimation.fn("no-such-id")


# ---- the sweep ----------------------------------------------------------------------


def test_sweep_queries_pick_unfinished_and_expired_ones(env, dirs, monkeypatch):
    asset = dir_asset(env, dirs["small"])
    pending = scan_estimation(env)
    kept = post(env, "/api/scanEstimations", {"scanTemplate": {"scope": ""}})
    settle(env, kept["id"])  # Done, deleteAfter 2 h ahead
    expired = post(env, "/api/scanEstimations", {"scanTemplate": {"scope": "id eq 'none'"},
                                                 "ttlSecondsAfterFinished": 0})
    settle(env, expired["id"])  # Done, deleteAfter now: due
    waiting = post(env, "/api/assetScanEstimations", {"asset": {"id": asset["id"]},
                                                      "scanEstimation": {"id": pending["id"]}})
    (finished_child,) = children(env, kept["id"]).values()

    queries = sweep_queries()
    assert [(model, actor) for model, _, actor in queries] == [
        (ScanEstimation, reconcile_scan_estimation), (AssetScanEstimation, reconcile_asset_scan_estimation)]
    later = timestamp(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1))
    picked = {}
    for model, text, _ in queries:
        condition = odata.filter_expression(model, text.format(now=later))
        picked[model] = {row.id for row in model.select(model.id).where(condition)}
    assert picked[ScanEstimation] == {pending["id"], expired["id"]}
    assert picked[AssetScanEstimation] == {waiting["id"]}
    assert finished_child["id"] not in picked[AssetScanEstimation]
