"""The asset scans pages: the table (sort, search, state, one asset's scans) and one asset scan's details."""

import pytest

from app import store
from app.models import Asset, AssetScan, Finding, Scan
from app.resources import RESOURCES_BY_MODEL

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
#: AssetScanStatus reason of each state the tests move an asset scan through.
REASONS = {"Scheduled": "Provisioning", "ReadyToScan": "ResourcesReady", "InProgress": "ScannerIsRunning",
           "Done": "Success", "Failed": "Error", "Aborted": "Cancellation"}


def create(model, document):
    return store.create(RESOURCES_BY_MODEL[model], document)


def make_asset(name, location="host-a"):
    return create(Asset, {"assetInfo": {"objectType": "DirInfo", "dirName": name, "location": location}})


def make_scan(name, start="2026-01-01T00:00:00Z"):
    return create(Scan, {"name": name, "scope": "", "startTime": start,
                         "assetScanTemplate": {"scanFamiliesConfig": {}}})


def make_asset_scan(asset, scan=None, *states, message=None, **more):
    """An asset scan of `asset`, moved through `states` (the last one may carry `message`)."""
    document = {"asset": {"id": asset["id"]}, **more}
    if scan:
        document["scan"] = {"id": scan["id"]}
    asset_scan = create(AssetScan, document)
    for index, state in enumerate(states):
        status = {"state": state, "reason": REASONS[state], "lastTransitionTime": f"2026-01-0{index + 2}T00:00:00Z"}
        if message and index == len(states) - 1:
            status["message"] = message
        asset_scan = store.patch(RESOURCES_BY_MODEL[AssetScan], asset_scan["id"], {"status": status}, None)
    return asset_scan


DONE = ("Scheduled", "ReadyToScan", "InProgress", "Done")


def asset_names(html):
    return [cell.split(">", 1)[1].split("<", 1)[0] for cell in html.split('<td><a href="/asset-scans/')[1:]]


def test_the_table_shows_asset_scan_and_scan(viewer):
    asset = make_asset("/srv/app", location="rack-7")
    make_asset_scan(asset, make_scan("nightly", "2026-02-03T04:05:00Z"), *DONE[:-1], "Failed",
                    message="scanner exited with 3")
    page = viewer.get("/asset-scans")
    assert page.status_code == 200
    row = page.text.split("<tbody>")[1]
    for text in ("/srv/app", "Directory", "rack-7", "nightly", "2026-02-03 04:05", "Failed", "Error",
                 "scanner exited with 3"):
        assert text in row


def test_sort_search_state_and_one_asset(viewer):
    scan = make_scan("weekly")
    assets = {name: make_asset(name) for name in ("/b", "/a", "/c")}
    make_asset_scan(assets["/a"], scan, *DONE)
    make_asset_scan(assets["/b"], scan)
    make_asset_scan(assets["/c"], scan, "Scheduled")
    make_asset_scan(assets["/a"], make_scan("monthly"))
    assert asset_names(viewer.get("/asset-scans?sort=asset&dir=asc").text) == ["/a", "/a", "/b", "/c"]
    assert asset_names(viewer.get("/asset-scans?sort=asset&dir=desc").text) == ["/c", "/b", "/a", "/a"]
    assert asset_names(viewer.get("/asset-scans?q=b").text) == ["/b"]
    assert asset_names(viewer.get("/asset-scans?status=Pending&sort=asset&dir=asc").text) == ["/a", "/b"]
    one = viewer.get(f"/asset-scans?asset={assets['/a']['id']}&sort=scan&dir=asc")
    assert asset_names(one.text) == ["/a", "/a"] and "one asset only" in one.text
    assert one.text.index("monthly") < one.text.index("weekly")
    assert asset_names(viewer.get(f"/asset-scans?scan={scan['id']}").text).count("/a") == 1
    quoted = viewer.get("/asset-scans?q=it's&status=Nonsense")  # literal text; an unknown state is ignored
    assert quoted.status_code == 200 and "No asset scans match" in quoted.text


def test_pages_of_the_table(viewer):
    scan = make_scan("big")
    for index in range(27):
        make_asset_scan(make_asset(f"/d/{index:02d}"), scan)
    first = viewer.get("/asset-scans?sort=asset")
    assert "27 in all" in first.text and "page 1 of 2" in first.text
    assert asset_names(viewer.get("/asset-scans?sort=asset&dir=asc&page=2").text) == ["/d/25", "/d/26"]


def test_htmx_gets_only_the_table(viewer):
    make_asset_scan(make_asset("/srv/a"))
    partial = viewer.get("/asset-scans?sort=status", htmx=True)
    assert partial.text.lstrip().startswith('<div id="asset-scans-table">') and "<html" not in partial.text
    assert "HX-Request" in partial.headers["Vary"]
    full = viewer.get("/asset-scans?sort=status")
    assert "<html" in full.text and 'id="asset-scans-filter"' in full.text


def test_unfinished_asset_scans_refresh_their_row_until_they_finish(viewer):
    scan = make_scan("nightly")
    running = make_asset_scan(make_asset("/running"), scan, "Scheduled", "ReadyToScan")
    done = make_asset_scan(make_asset("/done"), scan, *DONE)
    failed = make_asset_scan(make_asset("/failed"), scan, "Scheduled", "Failed")
    page = viewer.get("/asset-scans").text
    row_of = {asset_scan["id"]: page.split(f'<tr id="asset-scan-{asset_scan["id"]}"')[1].split(">", 1)[0]
              for asset_scan in (running, done, failed)}
    assert row_of[running["id"]] == (f' hx-get="/asset-scans/{running["id"]}/row" hx-trigger="every 2s"'
                                     ' hx-target="this" hx-swap="outerHTML"')
    assert row_of[done["id"]] == row_of[failed["id"]] == ""

    live = viewer.get(f"/asset-scans/{running['id']}/row", htmx=True)
    assert live.status_code == 200 and "<html" not in live.text
    assert live.text.lstrip().startswith(f'<tr id="asset-scan-{running["id"]}" hx-get=')
    assert "ReadyToScan" in live.text and "nightly" in live.text and "/running" in live.text
    for state in ("InProgress", "Done"):
        status = {"state": state, "reason": REASONS[state], "lastTransitionTime": "2026-02-01T00:00:00Z"}
        store.patch(RESOURCES_BY_MODEL[AssetScan], running["id"], {"status": status}, None)
    ended = viewer.get(f"/asset-scans/{running['id']}/row", htmx=True)
    assert ended.status_code == 286  # htmx stops an `every` poll on 286
    assert "Done" in ended.text and "hx-trigger" not in ended.text and "2026-02-01 00:00" in ended.text
    assert viewer.get("/asset-scans/no-such-id/row", htmx=True).status_code == 404


def test_one_scans_table_waits_for_the_asset_scans_the_scan_has_not_made_yet(viewer):
    scan = make_scan("just started")
    waiting = viewer.get(f"/asset-scans?scan={scan['id']}", htmx=True)
    assert waiting.status_code == 200 and "finding the assets in its scope" in waiting.text
    assert (f'hx-get="/asset-scans?scan={scan["id"]}" hx-trigger="every 2s" hx-target="#asset-scans-table"'
            in waiting.text)
    make_asset_scan(make_asset("/found"), scan, "Scheduled")
    arrived = viewer.get(f"/asset-scans?scan={scan['id']}", htmx=True).text
    assert "/found" in arrived and "finding the assets" not in arrived
    assert 'every 2s" hx-target="#asset-scans-table"' not in arrived and 'hx-target="this"' in arrived  # the row polls now
    ended = make_scan("found nothing")
    status = {"state": "Done", "reason": "NothingToScan", "lastTransitionTime": "2026-01-02T00:00:00Z"}
    store.patch(RESOURCES_BY_MODEL[Scan], ended["id"], {"status": status, "endTime": "2026-01-02T00:00:00Z"}, None)
    nothing = viewer.get(f"/asset-scans?scan={ended['id']}").text
    assert "No asset scans match" in nothing and "every 2s" not in nothing
    assert "every 2s" not in viewer.get("/asset-scans?scan=no-such-scan").text


def finished_asset_scan(asset, scan):
    """A Done asset scan with every kind of detail the page shows."""
    families = {"sbom": {"enabled": True}, "vulnerabilities": {"enabled": True}, "malware": {"enabled": True}}
    asset_scan = make_asset_scan(
        asset, scan, *DONE, scanFamiliesConfig=families,
        sbom={"status": {"state": "Done", "reason": "Success", "lastTransitionTime": "2026-01-05T00:00:00Z",
                         "message": "3 packages"},
              "packages": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
        malware={"status": {"state": "Failed", "reason": "Error", "lastTransitionTime": "2026-01-05T00:00:00Z",
                            "message": f"clamd: {HOSTILE}"}, "malware": None},
        stats={"general": {"scanTime": {"startTime": "2026-01-05T00:00:00Z", "endTime": "2026-01-05T01:02:03Z"}},
               "sbom": [{"type": "DIR", "path": "/mnt/snapshot", "size": 512,
                         "scanTime": {"startTime": "2026-01-05T00:00:00Z", "endTime": "2026-01-05T00:00:42Z"}}]},
        summary={"totalPackages": 3, "totalVulnerabilities": {"totalHighVulnerabilities": 2}},
    )
    return asset_scan


def test_an_asset_scan_shows_families_stats_errors_and_summary(viewer):
    asset = make_asset("/srv/app")
    scan = make_scan("nightly")
    asset_scan = finished_asset_scan(asset, scan)
    page = viewer.get(f"/asset-scans/{asset_scan['id']}")
    assert page.status_code == 200
    html = page.text
    assert f'href="/assets/{asset["id"]}"' in html and f'<a href="/scans/{scan["id"]}">nightly</a>' in html
    families = html.split("<h2>Scan families</h2>")[1]
    sbom = families.split("<td>SBOM")[1].split("</tr>")[0]
    assert "Done" in sbom and "3 packages" in sbom and '<td class="num">3</td>' in sbom
    assert "DIR /mnt/snapshot" in sbom and "512 MB" in sbom and "42s" in sbom
    assert "not asked for" in families.split("<td>Secrets")[1].split("</tr>")[0]
    assert "not asked for" not in families.split("<td>Malware")[1].split("</tr>")[0]
    errors = html.split("<h2>Errors</h2>")[1].split("</section>")[0]
    assert "Malware:" in errors and f"clamd: {ESCAPED}" in errors
    assert "(1h 2m 3s)" in html  # the whole scan's time
    summary = html.split("<h2>Summary</h2>")[1].split("</section>")[0]
    assert "<dt>Vulnerabilities</dt><dd>2</dd>" in summary and "<dt>Packages</dt><dd>3</dd>" in summary
    assert "Pending</span> AssetScanCreated" in html  # cleanup not done yet


def test_a_finished_asset_scan_lists_the_findings_it_saw_last(viewer):
    asset = make_asset("/srv/app")
    asset_scan = finished_asset_scan(asset, make_scan("nightly"))
    create(Finding, {"findingInfo": {"objectType": "Vulnerability", "vulnerabilityName": "CVE-2099-1",
                                     "severity": "HIGH", "package": {"name": "flask", "version": "1.0"}},
                     "lastSeenBy": {"id": asset_scan["id"]}, "firstSeen": "2026-01-05T00:00:00Z"})
    create(Finding, {"findingInfo": {"objectType": "Package", "name": HOSTILE, "version": "1"},
                     "lastSeenBy": {"id": asset_scan["id"]}})
    create(Finding, {"findingInfo": {"objectType": "Package", "name": "elsewhere", "version": "1"}})
    html = viewer.get(f"/asset-scans/{asset_scan['id']}").text
    findings = html.split("<h2>Findings</h2>")[1]
    assert "2 findings were last seen" in findings
    assert f'href="/findings?asset={asset["id"]}"' in findings
    vulnerability = Finding.get(Finding.object_type == "Vulnerability").id
    assert f'<a href="/findings/{vulnerability}">CVE-2099-1</a> <span class="severity high">HIGH</span>' in findings
    assert ESCAPED in findings and "elsewhere" not in findings


def test_an_unfinished_asset_scan_has_no_findings_yet(viewer):
    asset_scan = make_asset_scan(make_asset("/srv/a"), None, "Scheduled")
    html = viewer.get(f"/asset-scans/{asset_scan['id']}").text
    assert "<h2>Findings</h2>" not in html and "on its own" in html
    assert "<h2>Errors</h2>" not in html


def test_an_unknown_asset_scan_is_a_404_page(viewer):
    page = viewer.get("/asset-scans/no-such-id")
    assert page.status_code == 404 and "no asset scan has that id" in page.text
    partial = viewer.get("/asset-scans/no-such-id", htmx=True)
    assert partial.status_code == 404 and partial.text.startswith('<p class="alert"')


def test_hostile_values_are_shown_as_text(viewer):
    asset = make_asset(f"/srv/{HOSTILE}", location=HOSTILE)
    asset_scan = make_asset_scan(asset, make_scan(HOSTILE), *DONE[:-1], "Failed", message=HOSTILE)
    for url in ("/asset-scans", f"/asset-scans/{asset_scan['id']}", f"/asset-scans?q={HOSTILE}"):
        html = viewer.get(url).text
        assert HOSTILE not in html and ESCAPED in html, url


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads_asset_scans(browser_as, role):
    browser = browser_as(role)
    asset_scan = make_asset_scan(make_asset("/srv/a"))
    assert browser.get("/asset-scans").status_code == 200
    assert browser.get(f"/asset-scans/{asset_scan['id']}").status_code == 200
    assert 'href="/asset-scans"' in browser.get("/").text  # in the navigation


def test_asset_scans_need_a_login(client, db):
    assert client.get("/asset-scans").status_code == 302
