"""The scans pages: the table with live progress, stopping a scan, and one scan with its asset scans."""

import re

from app import store
from app.models import Asset, AssetScan, Finding, Scan
from app.resources import RESOURCES_BY_MODEL
from app.ui.scans_queries import get_scan

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
SCANS = RESOURCES_BY_MODEL[Scan]


def status(state, reason, message=None):
    value = {"state": state, "reason": reason, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    return {**value, "message": message} if message else value


def make_scan(name="nightly", scope="assetInfo/objectType eq 'DirInfo'", started="2026-01-01T00:00:00Z"):
    return store.create(SCANS, {"name": name, "scope": scope, "startTime": started, "maxParallelScanners": 2,
                                "assetScanTemplate": {"scanFamiliesConfig": {"sbom": {"enabled": True}}}})


def run(scan, done=1, left=2):
    """Move a scan to InProgress with `done` of `done + left` asset scans finished."""
    scan = store.patch(SCANS, scan["id"], {"status": status("Discovered", "AssetsDiscovered")}, None)
    return store.patch(SCANS, scan["id"], {"status": status("InProgress", "AssetScansRunning"),
                                           "summary": {"jobsCompleted": done, "jobsLeftToRun": left}}, None)


def finish(scan, succeeded=3, failed=0):
    total = succeeded + failed
    message = f"{succeeded} succeeded, {failed} failed out of {total} total asset scans"
    final = status("Failed", "Error", message) if failed else status("Done", "Success", message)
    return store.patch(SCANS, scan["id"], {"status": final, "endTime": "2026-01-01T01:00:00Z",
                                           "summary": {"jobsCompleted": total, "jobsLeftToRun": 0}}, None)


def test_the_table_shows_scans_newest_first_with_their_progress(viewer):
    run(make_scan("older", started="2026-01-01T00:00:00Z"), done=1, left=2)
    finish(make_scan("newer", started="2026-02-01T00:00:00Z"), succeeded=2, failed=1)
    page = viewer.get("/scans")
    assert page.status_code == 200
    assert page.text.index("newer") < page.text.index("older")
    assert '<progress max="3" value="1"' in page.text and "1 / 3" in page.text
    assert '<progress max="3" value="3"' in page.text and "(1 failed)" in page.text
    assert "2 succeeded, 1 failed out of 3 total asset scans" in page.text
    assert "assetInfo/objectType eq &#39;DirInfo&#39;" in page.text
    assert 'aria-current="page">Scans</a>' in page.text


def test_a_running_scan_polls_itself_and_a_finished_one_does_not(viewer):
    running = run(make_scan("running"))
    done = finish(make_scan("done"))
    page = viewer.get("/scans").text
    assert f'hx-get="/scans/{running["id"]}/progress?view=row"' in page
    assert 'hx-trigger="every 2s"' in page
    assert f'/scans/{done["id"]}/progress' not in page


def test_the_progress_component_follows_the_scan_and_stops_polling_when_it_ends(viewer):
    scan = run(make_scan(), done=1, left=2)
    live = viewer.get(f"/scans/{scan['id']}/progress?view=row", htmx=True)
    assert live.status_code == 200
    assert live.text.lstrip().startswith(f'<tr id="scan-{scan["id"]}"') and "<html" not in live.text
    assert "1 / 3" in live.text and 'hx-trigger="every 2s"' in live.text
    store.patch(SCANS, scan["id"], {"summary": {"jobsCompleted": 2, "jobsLeftToRun": 1}}, None)
    assert "2 / 3" in viewer.get(f"/scans/{scan['id']}/progress?view=row", htmx=True).text
    finish(scan, succeeded=3)
    ended = viewer.get(f"/scans/{scan['id']}/progress?view=row", htmx=True)
    assert ended.status_code == 286  # htmx stops an `every` poll on 286
    assert "3 / 3" in ended.text and "hx-trigger" not in ended.text and "Done" in ended.text
    facts = viewer.get(f"/scans/{scan['id']}/progress?view=facts", htmx=True)
    assert facts.status_code == 286 and 'id="scan-facts"' in facts.text


def test_a_scan_still_finding_its_assets_shows_an_open_progress(viewer):
    scan = make_scan()
    live = viewer.get(f"/scans/{scan['id']}/progress", htmx=True)
    assert live.status_code == 200 and "finding assets" in live.text and "<progress aria-label" in live.text


def test_a_writer_stops_a_running_scan(operator):
    scan = run(make_scan())
    page = operator.get("/scans").text
    assert f'hx-post="/scans/{scan["id"]}/stop"' in page and "hx-confirm=" in page
    stopped = operator.post(f"/scans/{scan['id']}/stop", {"view": "row"}, htmx=True)
    assert stopped.status_code == 200
    assert stopped.text.lstrip().startswith("<tr") and "Aborted" in stopped.text
    status_now = get_scan(scan["id"])["status"]
    assert (status_now["state"], status_now["reason"]) == ("Aborted", "Cancellation")
    assert status_now["message"] == "stopped by operator-user"
    again = operator.post(f"/scans/{scan['id']}/stop", {"view": "row"}, htmx=True)
    assert again.status_code == 409 and "cannot be stopped" in again.text
    assert again.text.lstrip().startswith("<tr")  # the row again, with the reason in it
    plain = operator.post(f"/scans/{scan['id']}/stop", {"view": "row"})
    assert plain.status_code == 409 and "<html" in plain.text and "cannot be stopped" in plain.text


def test_stop_without_htmx_redirects_back(operator):
    scan = run(make_scan())
    response = operator.post(f"/scans/{scan['id']}/stop", {"view": "facts"})
    assert response.status_code == 303 and response.headers["Location"] == f"/scans/{scan['id']}"


def test_viewers_see_no_stop_and_may_not_stop(viewer):
    scan = run(make_scan())
    page = viewer.get("/scans").text
    assert "/stop" not in page and "Actions" not in page
    assert "/stop" not in viewer.get(f"/scans/{scan['id']}").text
    assert viewer.post(f"/scans/{scan['id']}/stop", {"view": "row"}).status_code == 403
    assert get_scan(scan["id"])["status"]["state"] == "InProgress"


def test_stop_needs_the_csrf_token(operator):
    scan = run(make_scan())
    forged = operator.client.post(f"/scans/{scan['id']}/stop", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert get_scan(scan["id"])["status"]["state"] == "InProgress"


def test_scan_detail_shows_its_facts_and_asset_scans(viewer):
    asset = store.create(RESOURCES_BY_MODEL[Asset], {"assetInfo": {"objectType": "DirInfo", "dirName": "/srv/app",
                                                                   "location": "host-a"}})
    scan = make_scan("weekly")
    store.create(RESOURCES_BY_MODEL[AssetScan], {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]},
                                                  "summary": {"totalSecrets": 4}})
    run(scan, done=0, left=1)
    page = viewer.get(f"/scans/{scan['id']}")
    assert page.status_code == 200
    assert "weekly" in page.text and "SBOM" in page.text and "0 / 1" in page.text
    assert f'href="/assets/{asset["id"]}">/srv/app</a>' in page.text
    assert "/asset-scans/" in page.text and '<td class="num">4</td>' in page.text
    assert 'hx-get="/scans/' in page.text and "view=facts" in page.text


def scanned(scan, name):
    """An asset scan of a new asset `name` in `scan`."""
    asset = store.create(RESOURCES_BY_MODEL[Asset], {"assetInfo": {"objectType": "DirInfo", "dirName": name}})
    return store.create(RESOURCES_BY_MODEL[AssetScan], {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}})


def seen_by(asset_scan, info):
    return store.create(RESOURCES_BY_MODEL[Finding], {"findingInfo": info, "lastSeenBy": {"id": asset_scan["id"]},
                                                      "firstSeen": "2026-01-01T00:00:00Z",
                                                      "lastSeen": "2026-01-01T00:00:00Z"})


def secret(fingerprint):
    return {"objectType": "Secret", "fingerprint": fingerprint, "description": fingerprint, "filePath": "/a"}


def test_the_findings_tab_counts_what_the_scan_saw_and_links_to_those_findings(viewer):
    scan = finish(make_scan("weekly"), succeeded=2)
    scan = store.patch(SCANS, scan["id"], {"summary": {"totalSecrets": 5, "totalVulnerabilities": {
        "totalHighVulnerabilities": 2, "totalLowVulnerabilities": 1}}}, None)
    first, second = scanned(scan, "/a"), scanned(scan, "/b")
    other = scanned(make_scan("other"), "/c")
    seen_by(first, secret("one")), seen_by(second, secret("two")), seen_by(other, secret("elsewhere"))
    seen_by(first, {"objectType": "Vulnerability", "vulnerabilityName": "CVE-1", "severity": "HIGH"})

    page = viewer.get(f"/scans/{scan['id']}/findings")
    assert page.status_code == 200 and "<html" in page.text and "<h1>weekly</h1>" in page.text
    assert f'href="/scans/{scan["id"]}/findings" hx-get="/scans/{scan["id"]}/findings"' in page.text
    assert 'aria-current="page">Findings</a>' in page.text and "<h2>Asset scans</h2>" not in page.text
    secrets_link = f'href="/findings?type=secrets&amp;scan={scan["id"]}">2</a>'
    assert re.search(r'<td>Secrets</td>\s*<td class="num">5</td>', page.text) and secrets_link in page.text
    assert f'href="/findings?type=vulnerabilities&amp;scan={scan["id"]}">1</a>' in page.text
    assert re.search(r'<td>Vulnerabilities</td>\s*<td class="num">3</td>', page.text)  # every severity

    tab = viewer.get(f"/scans/{scan['id']}/findings", htmx=True)
    assert tab.text.lstrip().startswith('<div id="scan-tab">') and "<html" not in tab.text
    assert "HX-Request" in tab.headers["Vary"]
    details = viewer.get(f"/scans/{scan['id']}", htmx=True)
    assert details.text.lstrip().startswith('<div id="scan-tab">') and "<h2>Asset scans</h2>" in details.text
    assert 'aria-current="page">Scan details</a>' in details.text

    linked = viewer.get(f"/findings?type=secrets&scan={scan['id']}")
    assert linked.status_code == 200 and "one" in linked.text and "two" in linked.text
    assert "elsewhere" not in linked.text and 'name="scan" value="' + scan["id"] in linked.text
    assert f'href="/findings?type=vulnerabilities&amp;scan={scan["id"]}"' in linked.text  # the type tabs keep it
    assert f'href="/scans/{scan["id"]}/findings">Back to the scan</a>' in linked.text
    exported = viewer.get(f"/findings/export.csv?type=secrets&scan={scan['id']}")
    assert exported.headers["X-Total-Count"] == "2"


def test_the_findings_tab_of_an_unknown_scan_is_a_404(viewer):
    assert viewer.get("/scans/no-such-scan/findings").status_code == 404


def test_an_unknown_scan_is_a_404(viewer):
    response = viewer.get("/scans/no-such-scan")
    assert response.status_code == 404 and "no scan has that id" in response.text


def test_htmx_gets_only_the_table(viewer):
    make_scan()
    partial = viewer.get("/scans?sort=name", htmx=True)
    assert partial.text.lstrip().startswith('<div id="scans-table">') and "<html" not in partial.text
    assert "HX-Request" in partial.headers["Vary"]


def test_hostile_names_and_scopes_are_escaped(operator):
    scan = run(make_scan(name=HOSTILE, scope=f"assetInfo/location eq '{HOSTILE}'"))
    for url in ("/scans", f"/scans/{scan['id']}", f"/scans/{scan['id']}/progress", f"/scans/{scan['id']}/findings"):
        html = operator.get(url).text
        assert HOSTILE not in html and ESCAPED in html
