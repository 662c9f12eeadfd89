"""The findings pages: a tab per type, filters, sorting, htmx partials, one finding and its assets."""

import re

import pytest

from app import store
from app.models import Asset, AssetFinding, Finding
from app.resources import RESOURCES_BY_MODEL

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def make_finding(info, first_seen="2026-01-10T00:00:00Z", last_seen="2026-01-20T00:00:00Z"):
    return store.create(RESOURCES_BY_MODEL[Finding], {"findingInfo": info, "firstSeen": first_seen,
                                                      "lastSeen": last_seen})


def make_asset(name, terminated=None):
    document = {"assetInfo": {"objectType": "DirInfo", "dirName": name, "location": "host-a"},
                "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": "2026-01-02T00:00:00Z"}
    if terminated:
        document["terminatedOn"] = terminated
    return store.create(RESOURCES_BY_MODEL[Asset], document)


def link(asset, finding, invalidated=None, last_seen="2026-01-20T00:00:00Z"):
    document = {"asset": {"id": asset["id"]}, "finding": {"id": finding["id"]},
                "firstSeen": "2026-01-10T00:00:00Z", "lastSeen": last_seen}
    if invalidated:
        document["invalidatedOn"] = invalidated
    return store.create(RESOURCES_BY_MODEL[AssetFinding], document)


def vulnerability(name, severity="HIGH", package="requests", version="2.0.0", score=7.5, **extra):
    return {"objectType": "Vulnerability", "vulnerabilityName": name, "severity": severity,
            "package": {"name": package, "version": version}, "fix": {"versions": ["2.31.0"], "state": "fixed"},
            "cvss": [{"version": "3.1", "vector": "AV:N", "metrics": {"baseScore": score}}], **extra}


#: One finding of every type, with the text each tab must show for it.
SAMPLES = {
    "vulnerabilities": (vulnerability("CVE-2023-32681"), ["CVE-2023-32681", "HIGH 7.5", "requests", "2.0.0",
                                                          "2.31.0"]),
    "exploits": ({"objectType": "Exploit", "name": "51234", "title": "Remote thing", "cveID": "CVE-2021-1",
                  "sourceDB": "exploitdb", "urls": ["https://www.exploit-db.com/exploits/51234"]},
                 ["51234", "Remote thing", "CVE-2021-1", "exploitdb", "https://www.exploit-db.com/exploits/51234"]),
    "misconfigurations": ({"objectType": "Misconfiguration", "scannerName": "lynis", "id": "SSH-7408",
                           "category": "ssh", "severity": "MisconfigurationHighSeverity",
                           "message": "PermitRootLogin yes", "location": "/etc/ssh/sshd_config"},
                          ["SSH-7408", "lynis", "ssh", "HIGH", "PermitRootLogin yes", "/etc/ssh/sshd_config"]),
    "secrets": ({"objectType": "Secret", "filePath": "/home/a/.env", "startLine": 3, "endLine": 3,
                 "startColumn": 5, "endColumn": 45, "fingerprint": "ab" * 16, "description": "AWS access key"},
                ["/home/a/.env", "3:5", "ab" * 16, "AWS access key"]),
    "malware": ({"objectType": "Malware", "malwareName": "Eicar-Signature", "malwareType": "VIRUS",
                 "ruleName": "clamav", "path": "/tmp/eicar.com"},
                ["Eicar-Signature", "VIRUS", "clamav", "/tmp/eicar.com"]),
    "rootkits": ({"objectType": "Rootkit", "rootkitName": "Adore", "rootkitType": "KERNEL",
                  "message": "adore found"}, ["Adore", "KERNEL", "adore found"]),
    "packages": ({"objectType": "Package", "name": "flask", "version": "3.1.0", "purl": "pkg:pypi/flask@3.1.0",
                  "language": "python", "type": "python", "licenses": ["BSD-3-Clause"]},
                 ["flask", "3.1.0", "pkg:pypi/flask@3.1.0", "python / python", "BSD-3-Clause"]),
    "ssh-topology": ({"objectType": "InfoFinder", "scannerName": "sshTopology",
                      "type": "SSHAuthorizedKeyFingerprint", "data": "256 SHA256:abc user@host (ED25519)",
                      "path": "/root/.ssh/authorized_keys"},
                     ["SSHAuthorizedKeyFingerprint", "256 SHA256:abc user@host (ED25519)",
                      "/root/.ssh/authorized_keys", "sshTopology"]),
}


def first_cells(html):
    """The text of each row's first cell (the link to the finding), in table order."""
    return re.findall(r'<td[^>]*><a href="/findings/[^"]+">([^<]*)</a>', html)


@pytest.mark.parametrize("slug", SAMPLES)
def test_each_tab_lists_its_own_type_with_its_columns(viewer, slug):
    for info, _ in SAMPLES.values():
        make_finding(info)
    page = viewer.get(f"/findings?type={slug}")
    assert page.status_code == 200
    assert f'aria-current="page">{page_tab_label(slug)}</a>' in page.text
    body = page.text.split('<div id="findings-table">')[1]
    assert "1 in all" in body
    for text in SAMPLES[slug][1]:
        assert text in body, text
    others = [values[0] for other, (_, values) in SAMPLES.items() if other != slug]
    for text in others:
        assert f">{text}</a>" not in body


def page_tab_label(slug):
    from app.ui.finding_types import TYPES_BY_SLUG
    return TYPES_BY_SLUG[slug].label


def test_vulnerabilities_are_the_default_tab(viewer):
    make_finding(vulnerability("CVE-1"))
    for url in ("/findings", "/findings?type=nonsense"):
        page = viewer.get(url)
        assert page.status_code == 200 and first_cells(page.text) == ["CVE-1"]


def test_sort_and_pages(viewer):
    for index in range(30):
        make_finding(vulnerability(f"CVE-2026-{index:04d}"), last_seen=f"2026-02-{index % 28 + 1:02d}T00:00:00Z")
    ascending = viewer.get("/findings?sort=vulnerabilityName&dir=asc")
    assert first_cells(ascending.text)[:2] == ["CVE-2026-0000", "CVE-2026-0001"]
    assert "page 1 of 2" in ascending.text
    second = viewer.get("/findings?sort=vulnerabilityName&dir=asc&page=2")
    assert first_cells(second.text) == [f"CVE-2026-{index:04d}" for index in range(25, 30)]
    newest = viewer.get("/findings")  # default: last seen, newest first
    assert first_cells(newest.text)[0] == "CVE-2026-0027"
    assert viewer.get("/findings?sort=data;drop&dir=up&page=-1").status_code == 200


def plant_mixed_severities():
    """Vulnerabilities in creation order: two HIGH ties, one without a severity, one the API enum lacks."""
    for name, severity in [("v-high-1", "HIGH"), ("v-low", "LOW"), ("v-critical", "CRITICAL"), ("v-none", None),
                           ("v-negligible", "NEGLIGIBLE"), ("v-high-2", "HIGH"), ("v-medium", "MEDIUM"),
                           ("v-odd", "HIGH")]:
        info = vulnerability(name, severity=severity)
        if severity is None:
            del info["severity"]
        finding = make_finding(info)
    # A client may store a value outside the enum; it sorts with the unknown ones.
    Finding.update(data={**finding, "findingInfo": {**finding["findingInfo"], "severity": "Unknown"}}).where(
        Finding.id == finding["id"]).execute()


#: By rank, highest first; ties (and the unknown ones) keep creation order in both directions.
BY_SEVERITY_DESCENDING = ["v-critical", "v-high-1", "v-high-2", "v-medium", "v-low", "v-negligible", "v-none",
                          "v-odd"]
BY_SEVERITY_ASCENDING = ["v-none", "v-odd", "v-negligible", "v-low", "v-medium", "v-high-1", "v-high-2",
                         "v-critical"]


def test_sort_by_severity_is_by_rank_with_stable_ties(viewer):
    plant_mixed_severities()
    descending = viewer.get("/findings?sort=severity&dir=desc")
    assert first_cells(descending.text) == BY_SEVERITY_DESCENDING
    assert 'aria-sort="descending">Severity</a>' in descending.text
    ascending = viewer.get("/findings?sort=severity&dir=asc", htmx=True)
    assert first_cells(ascending.text) == BY_SEVERITY_ASCENDING
    # the header toggles, and the pages keep the order
    assert 'href="/findings?sort=severity&amp;dir=desc"' in ascending.text
    second = viewer.get("/findings?sort=severity&dir=desc&per_page=3&page=2")
    assert first_cells(second.text) == BY_SEVERITY_DESCENDING[3:6]
    assert "sort=severity&amp;dir=desc&amp;per_page=3&amp;page=3" in second.text


def test_sort_misconfigurations_by_severity(viewer):
    info = SAMPLES["misconfigurations"][0]
    for index, level in enumerate(("Info", "High", "Low", "Medium", "High")):
        make_finding({**info, "id": f"{level}-{index}", "severity": f"Misconfiguration{level}Severity"})
    page = viewer.get("/findings?type=misconfigurations&sort=severity&dir=desc")
    assert first_cells(page.text) == ["High-1", "High-4", "Medium-3", "Low-2", "Info-0"]
    page = viewer.get("/findings?type=misconfigurations&sort=severity&dir=asc")
    assert first_cells(page.text) == ["Info-0", "Low-2", "Medium-3", "High-1", "High-4"]


def test_filter_by_severity(viewer):
    plant_mixed_severities()
    high = viewer.get("/findings?severity=HIGH&sort=vulnerabilityName&dir=asc")
    assert high.status_code == 200
    assert first_cells(high.text) == ["v-high-1", "v-high-2"] and "2 in all" in high.text
    assert '<option value="HIGH" selected>HIGH</option>' in high.text
    # kept by the sort headers, and lower case names the same severity
    lower = viewer.get("/findings?severity=critical", htmx=True)
    assert first_cells(lower.text) == ["v-critical"] and "1 in all" in lower.text
    assert 'href="/findings?severity=critical&amp;sort=vulnerabilityName&amp;dir=asc"' in lower.text
    assert len(first_cells(viewer.get("/findings?severity=").text)) == len(BY_SEVERITY_DESCENDING)
    exports = re.findall(r'href="(/findings/export\.[a-z]+\?[^"]+)"', lower.text)
    assert len(exports) == 2 and all("severity=critical" in href for href in exports)
    misconfiguration = {**SAMPLES["misconfigurations"][0], "severity": "MisconfigurationInfoSeverity"}
    make_finding(misconfiguration)
    make_finding({**misconfiguration, "id": "other", "severity": "MisconfigurationLowSeverity"})
    info = viewer.get("/findings?type=misconfigurations&severity=INFO")
    assert first_cells(info.text) == ["SSH-7408"] and "1 in all" in info.text


@pytest.mark.parametrize("url, message", [
    ("/findings?severity=SEVERE", "severity must be one of CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE"),
    ("/findings?severity=" + HOSTILE, "severity must be one of"),
    ("/findings?type=misconfigurations&severity=CRITICAL", "severity must be one of HIGH, MEDIUM, LOW, INFO"),
    ("/findings?type=exploits&severity=HIGH", "Exploits have no severity"),
    ("/findings/export.csv?severity=SEVERE", "severity must be one of"),
])
def test_an_unknown_severity_is_a_400(viewer, url, message):
    page = viewer.get(url)
    assert page.status_code == 400 and message in page.text
    assert HOSTILE not in page.text


def test_the_severity_select_is_only_on_types_with_a_severity(viewer):
    assert '<select name="severity">' in viewer.get("/findings?type=vulnerabilities").text
    assert '<select name="severity">' in viewer.get("/findings?type=misconfigurations").text
    for slug in ("exploits", "rootkits", "malware", "secrets", "packages", "ssh-topology"):
        assert 'name="severity"' not in viewer.get(f"/findings?type={slug}").text


def test_search_looks_in_the_types_text_fields_as_a_literal(viewer):
    make_finding(vulnerability("CVE-1", package="urllib3"))
    make_finding(vulnerability("CVE-2", package="requests"))
    make_finding(vulnerability("GHSA-xxxx", package="jinja2", description="it's a sandbox escape"))
    assert first_cells(viewer.get("/findings?q=urllib").text) == ["CVE-1"]
    assert sorted(first_cells(viewer.get("/findings?q=CVE-").text)) == ["CVE-1", "CVE-2"]
    assert first_cells(viewer.get("/findings?q=it's").text) == ["GHSA-xxxx"]
    odd = viewer.get("/findings?q=') or (1 eq 1")
    assert odd.status_code == 200 and "No vulnerabilities findings match" in odd.text


def test_first_seen_range_includes_both_days(viewer):
    make_finding(vulnerability("CVE-early"), first_seen="2026-01-01T10:00:00Z")
    make_finding(vulnerability("CVE-mid"), first_seen="2026-01-15T23:59:00Z")
    make_finding(vulnerability("CVE-late"), first_seen="2026-02-01T00:00:00Z")
    found = viewer.get("/findings?first_seen_from=2026-01-02&first_seen_to=2026-01-15")
    assert first_cells(found.text) == ["CVE-mid"]
    assert sorted(first_cells(viewer.get("/findings?first_seen_from=2026-01-15").text)) == ["CVE-late", "CVE-mid"]
    assert first_cells(viewer.get("/findings?first_seen_to=2026-01-01").text) == ["CVE-early"]
    bad = viewer.get("/findings?first_seen_from=yesterday")
    assert bad.status_code == 400 and "first_seen_from" in bad.text


def test_hide_history_keeps_what_some_live_asset_still_has(viewer):
    live, gone = make_asset("/srv/live"), make_asset("/srv/gone", terminated="2026-01-25T00:00:00Z")
    present = make_finding(vulnerability("CVE-present"))
    link(live, present)
    link(gone, present, invalidated="2026-01-21T00:00:00Z")
    fixed = make_finding(vulnerability("CVE-fixed"))
    link(live, fixed, invalidated="2026-01-21T00:00:00Z")
    on_terminated = make_finding(vulnerability("CVE-terminated"))
    link(gone, on_terminated)
    make_finding(vulnerability("CVE-no-asset"))
    everything = viewer.get("/findings?sort=vulnerabilityName&dir=asc")
    assert first_cells(everything.text) == ["CVE-fixed", "CVE-no-asset", "CVE-present", "CVE-terminated"]
    current = viewer.get("/findings?hide_history=1")
    assert first_cells(current.text) == ["CVE-present"]
    assert "checked" in current.text


def test_findings_of_one_asset(viewer):
    first, second = make_asset("/srv/one"), make_asset("/srv/two")
    link(first, make_finding(vulnerability("CVE-one")))
    link(second, make_finding(vulnerability("CVE-two")))
    page = viewer.get(f"/findings?asset={first['id']}&hide_history=1&q=x&sort=vulnerabilityName")
    assert first_cells(page.text) == []
    page = viewer.get(f"/findings?asset={first['id']}")
    assert first_cells(page.text) == ["CVE-one"]
    assert f'href="/assets/{first["id"]}"' in page.text
    # the tabs keep the asset, not the filters that htmx changes under them
    tabs = viewer.get(f"/findings?asset={first['id']}&hide_history=1&q=x&sort=vulnerabilityName").text
    assert f'href="/findings?type=malware&amp;asset={first["id"]}"' in tabs


def test_htmx_gets_only_the_table_and_every_url_is_a_page(viewer):
    make_finding(vulnerability("CVE-1"))
    partial = viewer.get("/findings?type=vulnerabilities&sort=vulnerabilityName", htmx=True)
    assert partial.text.lstrip().startswith('<div id="findings-table">')
    assert "<html" not in partial.text and "CVE-1" in partial.text
    assert "HX-Request" in partial.headers["Vary"]
    full = viewer.get("/findings?type=vulnerabilities&sort=vulnerabilityName")
    assert "<html" in full.text and 'id="findings-table"' in full.text
    assert "HX-Request" in full.headers["Vary"]
    restore = viewer.client.get("/findings", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_export_links_carry_the_current_view(viewer):
    page = viewer.get("/findings?type=secrets&q=key&hide_history=1&sort=filePath&page=2")
    hrefs = re.findall(r'href="(/findings/export\.[a-z]+\?[^"]+)"', page.text)
    assert len(hrefs) == 2
    for href in hrefs:
        for part in ("type=secrets", "q=key", "hide_history=1", "sort=filePath"):
            assert part in href
        assert "page=" not in href


def test_export_links_take_no_orders_from_the_query_string(viewer):
    page = viewer.get("/findings?_external=1&_scheme=javascript&_anchor=x&endpoint=y&q=a")
    assert page.status_code == 200
    hrefs = re.findall(r'href="([^"]*export[^"]*)"', page.text)
    assert hrefs == ["/findings/export.csv?q=a&amp;type=vulnerabilities",
                     "/findings/export.sarif?q=a&amp;type=vulnerabilities"]


def test_detail_shows_every_field_and_the_affected_assets(viewer):
    finding = make_finding(vulnerability("CVE-2023-32681", description="Leaks Proxy-Authorization",
                                         links=["https://osv.dev/CVE-2023-32681", "javascript:alert(1)"]))
    fixed_on, live_on = make_asset("/srv/fixed"), make_asset("/srv/live")
    link(fixed_on, finding, invalidated="2026-01-21T00:00:00Z", last_seen="2026-01-15T00:00:00Z")
    link(live_on, finding)
    page = viewer.get(f"/findings/{finding['id']}")
    assert page.status_code == 200
    for text in ("CVE-2023-32681", "Leaks Proxy-Authorization", "requests", "2.31.0", "AV:N", "7.5",
                 "Vulnerability details"):
        assert text in page.text, text
    assert '<a href="https://osv.dev/CVE-2023-32681"' in page.text
    assert 'href="javascript:' not in page.text  # shown, but never a link
    assets = page.text.split('<div id="finding-assets">')[1]
    assert f'href="/assets/{fixed_on["id"]}"' in assets and f'href="/assets/{live_on["id"]}"' in assets
    assert "2026-01-21 00:00" in assets and "still present" in assets
    assert assets.index("/srv/live") < assets.index("/srv/fixed")  # last seen, newest first


def test_detail_assets_page_with_htmx(viewer):
    finding = make_finding(vulnerability("CVE-many"))
    for index in range(27):
        link(make_asset(f"/srv/{index:02d}"), finding)
    partial = viewer.get(f"/findings/{finding['id']}?page=2", htmx=True)
    assert partial.text.lstrip().startswith('<div id="finding-assets">')
    assert "27 in all" in partial.text and "page 2 of 2" in partial.text
    assert "HX-Request" in partial.headers["Vary"]
    assert "<html" in viewer.get(f"/findings/{finding['id']}?page=2").text


def test_secret_detail_never_shows_more_than_its_safe_fields(viewer):
    info = {**SAMPLES["secrets"][0]}
    finding = make_finding(info)
    # A client may store fields of its own; a secret's could hold the secret itself.
    Finding.update(data={**finding, "findingInfo": {**info, "match": "AKIAREALSECRETVALUE"}}).where(
        Finding.id == finding["id"]).execute()
    page = viewer.get(f"/findings/{finding['id']}")
    assert page.status_code == 200 and "/home/a/.env" in page.text
    assert "AKIAREALSECRETVALUE" not in page.text
    export = viewer.get("/findings/export.csv?type=secrets")
    assert "AKIAREALSECRETVALUE" not in export.text


def test_an_unknown_finding_is_a_404(viewer):
    page = viewer.get("/findings/no-such-id")
    assert page.status_code == 404 and "no finding has that id" in page.text
    partial = viewer.get("/findings/no-such-id", htmx=True)
    assert partial.status_code == 404 and 'class="alert"' in partial.text and "<html" not in partial.text


@pytest.mark.parametrize("slug, info", [
    ("malware", {"objectType": "Malware", "malwareName": HOSTILE, "malwareType": "VIRUS", "ruleName": HOSTILE,
                 "path": HOSTILE}),
    ("secrets", {"objectType": "Secret", "filePath": HOSTILE, "startLine": 1, "startColumn": 1,
                 "endColumn": 9, "fingerprint": HOSTILE, "description": HOSTILE}),
])
def test_hostile_values_are_shown_as_text(viewer, slug, info):
    finding = make_finding(info)
    for url in (f"/findings?type={slug}", f"/findings?type={slug}&q=img", f"/findings/{finding['id']}"):
        html = viewer.get(url).text
        assert HOSTILE not in html, url
        assert ESCAPED in html, url
    assert HOSTILE not in viewer.get(f"/findings?type={slug}", htmx=True).text


def test_a_signed_out_visitor_is_sent_to_login(client, db):
    for url in ("/findings", "/findings/x", "/findings/export.csv", "/findings/export.sarif"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
