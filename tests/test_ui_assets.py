"""The assets pages: the server-side table (sort, search, terminated, pages) and one asset."""

import pytest

from app import store
from app.resources import RESOURCES_BY_MODEL
from app.models import Asset, AssetScan, Scan

HOSTILE = "<img src=x onerror=alert(1)>"


def make_asset(name, location="host-a", terminated=None, last_seen="2026-01-02T00:00:00Z", **summary):
    document = {"assetInfo": {"objectType": "DirInfo", "dirName": name, "location": location},
                "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": last_seen}
    if terminated:
        document["terminatedOn"] = terminated
    if summary:
        document["summary"] = summary
    return store.create(RESOURCES_BY_MODEL[Asset], document)


def names_in(html):
    return [line.split(">")[1].split("<")[0] for line in html.split('<td><a href="/assets/')[1:]]


def test_the_table_lists_live_assets_newest_first(viewer):
    make_asset("/srv/old", last_seen="2026-01-01T00:00:00Z")
    make_asset("/srv/new", last_seen="2026-03-01T00:00:00Z", totalSecrets=3,
               totalVulnerabilities={"totalCriticalVulnerabilities": 2, "totalLowVulnerabilities": 5})
    make_asset("/srv/gone", terminated="2026-02-01T00:00:00Z")
    page = viewer.get("/assets")
    assert page.status_code == 200
    assert names_in(page.text) == ["/srv/new", "/srv/old"]
    assert '<td class="num">7</td>' in page.text  # vulnerabilities: every severity summed
    shown = viewer.get("/assets?terminated=show")
    assert "/srv/gone" in shown.text and "Terminated on" in shown.text


def test_sort_search_and_pages(viewer):
    for index in range(30):
        make_asset(f"/data/{index:02d}", location="rack-1" if index % 2 else "rack-2")
    ascending = viewer.get("/assets?sort=name&dir=asc")
    assert names_in(ascending.text)[:2] == ["/data/00", "/data/01"]
    assert "page 1 of 2" in ascending.text
    second = viewer.get("/assets?sort=name&dir=asc&page=2")
    assert names_in(second.text) == [f"/data/{index}" for index in range(25, 30)]
    found = viewer.get("/assets?q=rack-1")
    assert "15 in all" in found.text
    quoted = viewer.get("/assets?q=it's")  # a quote in the search is a literal, not OData
    assert quoted.status_code == 200 and "No assets match" in quoted.text


def test_htmx_gets_only_the_table(viewer):
    make_asset("/srv/a")
    partial = viewer.get("/assets?sort=location", htmx=True)
    assert partial.text.lstrip().startswith('<div id="assets-table">')
    assert "<html" not in partial.text
    assert "HX-Request" in partial.headers["Vary"]
    full = viewer.get("/assets?sort=location")
    assert "<html" in full.text and "HX-Request" in full.headers["Vary"]


def test_unknown_sort_falls_back_to_the_default(viewer):
    make_asset("/srv/a")
    assert viewer.get("/assets?sort=data;drop&dir=sideways&page=-3").status_code == 200


def test_asset_detail_shows_its_scans(viewer):
    asset = make_asset("/srv/app")
    scan = store.create(RESOURCES_BY_MODEL[Scan], {"name": "nightly", "scope": "", "maxParallelScanners": 1,
                                                    "assetScanTemplate": {"scanFamiliesConfig": {}}})
    store.create(RESOURCES_BY_MODEL[AssetScan], {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}})
    page = viewer.get(f"/assets/{asset['id']}")
    assert page.status_code == 200
    assert "nightly" in page.text and "Pending" in page.text and "rack" not in page.text


def test_an_unknown_asset_is_a_404_page(viewer):
    page = viewer.get("/assets/no-such-id")
    assert page.status_code == 404 and "no asset has that id" in page.text


def test_hostile_names_are_shown_as_text(viewer):
    asset = make_asset(f"/srv/{HOSTILE}", location=HOSTILE)
    for url in ("/assets", f"/assets/{asset['id']}"):
        html = viewer.get(url).text
        assert HOSTILE not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


# ---- scanning one asset now ------------------------------------------------------------------

def scans():
    return [row.data for row in Scan.select().order_by(Scan.pk)]


def test_scan_now_starts_a_scan_of_exactly_this_asset(browser_as):
    operator = browser_as("operator")
    asset = make_asset("/srv/app")
    make_asset("/srv/other")
    page = operator.get(f"/assets/{asset['id']}")
    assert "Scan this asset now" in page.text
    response = operator.post(f"/assets/{asset['id']}/scan", {"family": ["sbom", "vulnerabilities", "malware"]})
    assert response.status_code == 303
    [scan] = scans()
    assert response.headers["Location"] == f"/asset-scans?scan={scan['id']}"  # its asset scans, live
    assert scan["scope"] == f"id eq '{asset['id']}'"
    assert scan["status"]["state"] == "Pending" and scan["startTime"] and scan["maxParallelScanners"] == 1
    assert scan["name"].startswith("/srv/app now ")
    template = scan["assetScanTemplate"]
    assert template["scanFamiliesConfig"] == {key: {"enabled": True} for key in ("sbom", "vulnerabilities", "malware")}
    assert template["scannerInstanceCreationConfig"] == {"useSpotInstances": False}
    # The scope is a filter the orchestrator can run, and it selects this asset alone.
    from app import odata
    assert [row.id for row in Asset.select().where(odata.filter_expression(Asset, scan["scope"]))] == [asset["id"]]
    assert operator.get(response.headers["Location"]).status_code == 200


def test_scan_now_offers_the_default_families_ticked(admin_browser):
    asset = make_asset("/srv/app")
    form = admin_browser.get(f"/assets/{asset['id']}").text.split('id="scan-now"')[1].split("</form>")[0]
    ticked = [part.split('"')[0] for part in form.split('name="family" value="')[1:] if '" checked' in part[:40]]
    assert ticked == ["sbom", "vulnerabilities", "secrets", "misconfigurations"]
    assert 'value="malware"' in form and 'value="rootkits"' in form and 'value="infoFinder"' in form


@pytest.mark.parametrize("families, message", [
    ([], "choose at least one scan family"),
    (["sbom", "plugins"], "unknown scan family &#39;plugins&#39;"),
])
def test_scan_now_refuses_a_bad_choice_in_place(admin_browser, families, message):
    asset = make_asset("/srv/app")
    response = admin_browser.post(f"/assets/{asset['id']}/scan", {"family": families})
    assert response.status_code == 422
    assert message in response.text.split('id="scan-now"')[1]
    assert scans() == []


def test_a_terminated_asset_is_not_scanned(admin_browser):
    asset = make_asset("/srv/gone", terminated="2026-02-01T00:00:00Z")
    response = admin_browser.post(f"/assets/{asset['id']}/scan", {"family": ["sbom"]})
    assert response.status_code == 422 and "this asset is terminated" in response.text
    assert scans() == []


def test_viewers_cannot_scan(viewer):
    asset = make_asset("/srv/app")
    page = viewer.get(f"/assets/{asset['id']}")
    assert "Scan this asset now" not in page.text and f"/assets/{asset['id']}/scan" not in page.text
    response = viewer.post(f"/assets/{asset['id']}/scan", {"family": ["sbom"]})
    assert response.status_code == 403
    assert scans() == []


def test_scan_now_needs_the_csrf_token(admin_browser):
    asset = make_asset("/srv/app")
    response = admin_browser.client.post(f"/assets/{asset['id']}/scan", data={"family": "sbom"})
    assert response.status_code == 400
    forged = admin_browser.client.post(f"/assets/{asset['id']}/scan", data={"family": "sbom", "csrf_token": "x"})
    assert forged.status_code == 400
    assert scans() == []


def test_scanning_an_unknown_asset_is_a_404(admin_browser):
    assert admin_browser.post("/assets/no-such-id/scan", {"family": ["sbom"]}).status_code == 404
    assert scans() == []


def test_a_hostile_asset_name_in_the_scan_name_is_text(admin_browser):
    asset = make_asset(f"/srv/{HOSTILE}")
    admin_browser.post(f"/assets/{asset['id']}/scan", {"family": ["sbom"]})
    [scan] = scans()
    store.create(RESOURCES_BY_MODEL[AssetScan], {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}})
    for url in (f"/assets/{asset['id']}", f"/asset-scans?asset={asset['id']}"):
        html = admin_browser.get(url).text
        assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_findings_counters_link_to_the_findings_of_this_asset(viewer):
    asset = make_asset("/srv/app", totalSecrets=3)
    html = viewer.get(f"/assets/{asset['id']}").text.split("<h2>Findings</h2>")[1].split("</section>")[0]
    assert f'<dt>Secrets</dt><dd><a href="/findings?type=secrets&amp;asset={asset["id"]}">3</a>' in html
    assert f'<a href="/findings?type=vulnerabilities&amp;asset={asset["id"]}">0</a>' in html
    findings = viewer.get(f"/findings?type=secrets&asset={asset['id']}")
    assert findings.status_code == 200 and 'aria-current' in findings.text
