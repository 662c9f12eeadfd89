"""The dashboard page: counters, the empty state and a card per widget that loads its own partial
(riskiest regions, trends and their range switch, riskiest assets, findings impact); every value
from a scanned machine shown as text.

Documents are written through app.store with the same shapes as the dashboard API's
tests (tests/test_ui_api.py), whose pure document builders `vm` and `summary` are reused.
"""

import datetime

import pytest

from app import store
from app.errors import ApiError
from app.models import Asset, AssetFinding, Finding, Scan
from app.resources import RESOURCES_BY_MODEL
from test_ui_api import summary, vm

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def create(model, document):
    return store.create(RESOURCES_BY_MODEL[model], document)


def make_scan(final_state=None):
    """A scan, moved from Pending straight to `final_state` (Done, Failed or Aborted) when given."""
    scan = create(Scan, {"name": f"scan {final_state}", "scope": ""})
    reasons = {"Done": "Success", "Failed": "Error", "Aborted": "Cancellation"}
    if final_state:
        status = {"state": final_state, "reason": reasons[final_state], "lastTransitionTime": "2026-01-01T00:00:00Z"}
        scan = store.patch(RESOURCES_BY_MODEL[Scan], scan["id"], {"status": status}, None)
    return scan


def make_asset(info, asset_summary, terminated=None):
    document = {"assetInfo": info, "summary": asset_summary}
    if terminated:
        document["terminatedOn"] = terminated
    return create(Asset, document)["id"]


def make_finding(info):
    return create(Finding, {"findingInfo": info, "firstSeen": "2026-01-01T00:00:00Z"})["id"]


def link(asset_id, finding_id, first_seen):
    create(AssetFinding, {"asset": {"id": asset_id}, "finding": {"id": finding_id}, "firstSeen": first_seen})


def ago(**delta):
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**delta)
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def scanned():
    """Three scans (two finished), VMs in two regions (one named by an attacker), findings linked to them."""
    for state in ("Done", "Failed", None):
        make_scan(state)
    assets = {
        "east": make_asset(vm("i-east", "AWS", "us-east-1/vpc-1"),
                           summary({"totalCriticalVulnerabilities": 2}, malware=1, secrets=4)),
        "hostile": make_asset(vm(HOSTILE, "AWS", f"{HOSTILE}/vpc-2"), summary({"totalHighVulnerabilities": 1},
                                                                                rootkits=3)),
        "gone": make_asset(vm("i-gone", "AWS", "eu-west-1/vpc-3"), summary(malware=9),
                           terminated="2026-01-01T00:00:00Z"),
    }
    cve = make_finding({"objectType": "Vulnerability", "vulnerabilityName": HOSTILE, "severity": "CRITICAL",
                        "package": {"name": "flask", "version": "1.0"}})
    malware = make_finding({"objectType": "Malware", "malwareName": "Eicar", "malwareType": "Virus",
                            "ruleName": "r", "path": "/tmp/eicar"})
    link(assets["east"], cve, ago(hours=23))
    link(assets["hostile"], cve, ago(days=3))
    link(assets["east"], malware, ago(days=20))
    return assets


def section(html, heading):
    return html.split(f"<h2>{heading}</h2>")[1].split("</section>")[0]


# ---- before the first scan ---------------------------------------------------------------------

@pytest.mark.parametrize("role, hint", [("viewer", "An operator or an admin can start the first scan"),
                                        ("operator", "Start one from the Scans page")])
def test_the_empty_state_before_the_first_scan(browser_as, role, hint):
    make_asset(vm("i-1", "AWS", "us-east-1/vpc-1"), summary(malware=1))
    page = browser_as(role).get("/")
    assert page.status_code == 200
    assert "No scans yet" in page.text and hint in page.text
    assert '<span class="number">0</span> finished scans' in page.text
    assert '<span class="number">1</span> assets' in page.text
    assert "Riskiest regions" not in page.text and "<svg" not in page.text and "hx-get" not in page.text


def test_a_running_first_scan_shows_the_charts(viewer):
    make_scan()  # not finished: no finished scans, but no longer "no scans yet"
    page = viewer.get("/")
    assert "No scans yet" not in page.text and "Riskiest regions" in page.text
    assert '<span class="number">0</span> finished scans' in page.text
    assert "No live virtual machines with findings yet." in viewer.get("/dashboard/regions", htmx=True).text


# ---- after scans -------------------------------------------------------------------------------

def test_counters(viewer, scanned):
    make_scan("Aborted")
    html = viewer.get("/").text
    assert '<span class="number">3</span> finished scans' in html  # Done, Failed, Aborted; not Pending
    assert '<span class="number">3</span> assets' in html  # terminated ones too
    assert '<span class="number">2</span> findings' in html


WIDGETS = {"regions-card": "/dashboard/regions", "trends-card": "/dashboard/trends?range=week",
           "riskiest-card": "/dashboard/assets", "impact-card": "/dashboard/impact"}


def test_the_page_answers_before_the_widgets_load(viewer, scanned, monkeypatch):
    for query in ("riskiest_regions", "findings_trends", "riskiest_assets", "findings_impact"):
        monkeypatch.setattr(f"app.dashboard.{query}", lambda *args, query=query: pytest.fail(f"page ran {query}"))
    html = viewer.get("/").text
    for card, url in WIDGETS.items():
        card_html = html.split(f'<section class="card" id="{card}"')[1].split("</section>")[0]
        assert card_html.startswith(f' hx-get="{url}" hx-trigger="load">')
        assert "loading…" in card_html
        assert f'<noscript><p><a href="{url}">' in card_html  # without script, a link to the widget's page
    assert "<svg" not in html and "<table" not in html and "i-east" not in html and ESCAPED not in html


def test_a_widget_followed_without_script_is_a_page_of_its_own(viewer, scanned):
    for card, url in WIDGETS.items():
        page = viewer.get(url)
        assert page.status_code == 200 and "<html" in page.text and "Back to the dashboard" in page.text
        assert f'<section class="card" id="{card}">' in page.text and "loading…" not in page.text
        assert "HX-Request" in page.headers["Vary"]
    assert "i-east" in viewer.get("/dashboard/assets").text


def test_a_widget_error_is_shown_in_its_card(viewer, scanned, monkeypatch):
    def broken():
        raise ApiError(f"database unavailable {HOSTILE}")
    monkeypatch.setattr("app.dashboard.findings_impact", broken)
    response = viewer.get("/dashboard/impact", htmx=True)
    assert response.status_code == 400  # htmx swaps error answers in (layout's responseHandling)
    assert response.text == f'<p class="alert" role="alert">database unavailable {ESCAPED}</p>'
    assert viewer.get("/dashboard/assets", htmx=True).status_code == 200  # the other cards load on
    page = viewer.get("/dashboard/impact")
    assert page.status_code == 400 and "<html" in page.text and ESCAPED in page.text


def test_riskiest_regions_draw_one_escaped_bar_per_region(viewer, scanned):
    chart = section(viewer.get("/dashboard/regions", htmx=True).text, "Riskiest regions")
    assert chart.count('<text class="label"') == 2  # the terminated VM's region is left out
    labels = [part.split(">", 1)[1].split("<", 1)[0] for part in chart.split('<text class="label"')[1:]]
    assert labels == ["us-east-1", ESCAPED]  # most findings first: 2 + 1 + 4 against 1 + 3
    assert HOSTILE not in chart
    assert f"<title>{ESCAPED}: 3 rootkits</title>" in chart
    assert '<title>us-east-1: 4 secrets</title>' in chart
    assert 'viewBox="0 0 640 52"' in chart  # 26 units a bar


def test_the_trends_chart_counts_findings_over_the_week(viewer, scanned):
    card = viewer.get("/dashboard/trends?range=week", htmx=True).text
    assert 'aria-current="true">Last week</a>' in card
    assert card.count("<polyline") == 7  # one line per finding type
    assert "vulnerability (2)" in card and "malware (1)" in card and "package (0)" in card


def test_the_range_switch_redraws_only_the_trends(viewer, scanned):
    response = viewer.get("/dashboard/trends?range=day", htmx=True)
    assert response.status_code == 200 and "<html" not in response.text
    assert response.text.lstrip().startswith('<div class="card-head">')
    assert 'aria-current="true">Last day</a>' in response.text
    assert "vulnerability (2)" in response.text and "malware (1)" in response.text
    # Findings are counted where they were active at each point: over the day both links to the
    # vulnerability were there all along (a flat line); over the week they came one after the other.
    assert len(line_heights(response.text, "vulnerability")) == 1
    assert len(line_heights(viewer.get("/dashboard/trends?range=week", htmx=True).text, "vulnerability")) == 3
    year = viewer.get("/dashboard/trends?range=year", htmx=True).text
    assert f"{datetime.datetime.now(datetime.timezone.utc):%b %Y}</text>" in year
    assert 'aria-label="Findings over the last year"' in year
    for name in ("hour", "day", "week", "month", "year"):
        # htmx swaps in the partial; without script (or in a new tab) the link opens the whole dashboard.
        assert f'<a href="/?range={name}" hx-get="/dashboard/trends?range={name}"' in response.text


def test_the_dashboard_opens_on_a_range(viewer, scanned):
    page = viewer.get("/?range=month")
    assert page.status_code == 200 and "<html" in page.text and "Riskiest assets" in page.text
    assert 'id="trends-card" hx-get="/dashboard/trends?range=month" hx-trigger="load"' in page.text
    assert 'aria-current="true">Last month</a>' in viewer.get("/dashboard/trends?range=month", htmx=True).text
    bad = viewer.get("/?range=decade")
    assert bad.status_code == 400 and "range: choose one of" in bad.text


def line_heights(html, series):
    """The distinct heights of a trend line's points."""
    points = html.split(f'<polyline class="series {series}" points="')[1].split('"')[0]
    return {point.split(",")[1] for point in points.split()}


def test_a_bad_range_is_an_alert_in_place(viewer, scanned):
    response = viewer.get(f"/dashboard/trends?range={HOSTILE}", htmx=True)
    assert response.status_code == 400
    assert response.text.startswith('<p class="alert" role="alert">range: choose one of hour, day, week')
    assert HOSTILE not in response.text
    assert viewer.get("/dashboard/trends?range=decade").status_code == 400


def test_riskiest_assets_tabs(viewer, scanned):
    tabs = section(viewer.get("/dashboard/assets", htmx=True).text, "Riskiest assets")
    for kind in ("vulnerabilities", "exploits", "misconfigurations", "secrets", "malware", "rootkits"):
        assert f'id="riskiest-{kind}"' in tabs
    vulnerabilities = tabs.split('id="riskiest-vulnerabilities"')[1].split('id="riskiest-exploits"')[0]
    assert vulnerabilities.index("i-east") < vulnerabilities.index(ESCAPED)  # critical before high
    assert '<td class="num">2 / 0 / 0 / 0</td>' in vulnerabilities
    rootkits = tabs.split('id="riskiest-rootkits"')[1]
    assert ESCAPED in rootkits and '<td class="num">3</td>' in rootkits
    assert "i-gone" not in tabs and HOSTILE not in tabs
    assert "No assets with exploits." in tabs


def test_findings_impact_tabs(viewer, scanned):
    tabs = section(viewer.get("/dashboard/impact", htmx=True).text, "Findings impact")
    vulnerabilities = tabs.split('id="impact-vulnerabilities"')[1].split('id="impact-exploits"')[0]
    assert ESCAPED in vulnerabilities and '<span class="severity critical">CRITICAL</span>' in vulnerabilities
    assert '<td class="num">2</td>' in vulnerabilities  # two live assets have it
    assert "Eicar" in tabs.split('id="impact-malware"')[1]
    assert "No packages found." in tabs and HOSTILE not in tabs


def test_the_dashboard_needs_a_login(client, db):
    assert client.get("/").status_code == 302
    for url in ("/dashboard/regions", "/dashboard/trends?range=day", "/dashboard/assets", "/dashboard/impact"):
        assert client.get(url).status_code == 302
        htmx = client.get(url, headers={"HX-Request": "true"})  # a card loading after the session ended
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")
