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


@pytest.fixture
def viewer(browser_as):
    return browser_as("viewer")


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
