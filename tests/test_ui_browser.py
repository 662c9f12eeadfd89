"""The web UI in a real browser (Playwright driving Debian's chromium) against the whole system.

The app is served over HTTP with the orchestrator hooked in and a Dramatiq worker
consuming; the local provider scans real directories with the real scanner. The
test signs in, creates a scan configuration through the form, starts it, watches
its progress move without a reload, opens a finding and exports CSV. Screenshots
of every page go to test-output/screenshots/.
"""

import socket
import time
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

import tasks
from app import store, users
from app.db import database
from app.models import Finding
from app.resources import RESOURCES_BY_MODEL
from conftest import (CVE, OSV_RECORD, UI_PASSWORD, SlowExploitHandler, http_server, need, orchestrated,
                      plant_python_package, write_file, write_osv)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def chromium():
    need(CHROMIUM)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def machines(tmp_path):
    """Two directory 'machines', each with a vulnerable Python package installed."""
    roots = [tmp_path / f"machine{index}" for index in range(2)]
    for root in roots:
        plant_python_package(root, "vmclarity-demo", "1.0")
        write_file(root, "/etc/os-release", 'ID=debian\nVERSION_ID="12"\n')
    return roots


@pytest.fixture
def system(database_url, tmp_path, machines, monkeypatch):
    """The whole system on this machine, with one admin user; its base URL."""
    osv = write_osv(tmp_path / "osv", [OSV_RECORD])
    # Exploit lookups that take seconds keep each asset scan running long enough to watch.
    with http_server(SlowExploitHandler) as exploits, orchestrated(
            database_url, tmp_path, monkeypatch, machines,
            SCANNER_OSV_DB_PATH=osv, SCANNER_EXPLOITDB_URL=exploits.url) as (_, url):
        database.connect(reuse_if_open=True)
        users.create_user("ada", UI_PASSWORD, "admin")
        tasks.discover_assets.fn()
        database.close()
        yield url


@pytest.fixture
def page(chromium, system, request):
    context = chromium.new_context(base_url=system, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems = []
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}") or dialog.dismiss())
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.problems = problems
    yield page
    context.close()


def shoot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def htmx_idle(page):
    page.locator(".htmx-request, .htmx-settling, .htmx-swapping").first.wait_for(state="detached")


def sign_in(page):
    page.goto("/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", UI_PASSWORD)
    shoot(page, "01-login")
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Dashboard"


def test_a_first_scan_from_the_browser(page, machines):
    sign_in(page)
    shoot(page, "02-dashboard-empty")

    # A scan configuration through the four-step form: both machines, daily, one scanner at a time.
    # Each htmx swap settles before the next action, as it has long before a person acts again.
    page.goto("/scans/configs/new")
    page.fill("input[name=name]", "browser scan")
    page.click("button:has-text('Add row')")
    htmx_idle(page)
    page.select_option("select[name=scope_field_0]", "location")
    htmx_idle(page)
    page.select_option("select[name=scope_op_0]", "eq")
    htmx_idle(page)
    page.fill("input[name=scope_value_0]", socket.gethostname())  # the local provider's location
    page.wait_for_selector(f"#scope-preview:has-text(\"assetInfo/location eq '{socket.gethostname()}'\")")
    page.click("button:has-text('or…')")
    htmx_idle(page)
    page.fill("input[name=scope_value_0_1]", "elsewhere")
    page.wait_for_selector(f"#scope-preview:has-text(\"(assetInfo/location eq '{socket.gethostname()}' or "
                           f"assetInfo/location eq 'elsewhere')\")")
    page.wait_for_selector("#scope-preview:has-text('2 current assets match')")
    page.check("input[name=family_exploits]")
    page.check("input[name=time_mode][value=cron]")
    page.fill("input[name=max_parallel]", "1")
    shoot(page, "03-new-scan-configuration")
    page.click("button:has-text('Save')")
    page.wait_for_url("**/scans/configs")
    row = page.locator("tr", has_text="browser scan")
    assert "repetitive" in row.inner_text()
    shoot(page, "04-scan-configurations")

    # Start it, then watch the scan's progress move on the Scans tab without a reload.
    row.locator("button:has-text('Start')").click()
    page.wait_for_selector("text=Started")
    page.goto("/scans")
    scan_row = page.locator("tr", has_text="browser scan")
    if not scan_row.count():  # the orchestrator makes the scan just after the start
        page.wait_for_timeout(1000)
        page.reload()
    page.evaluate("window.notReloaded = true")
    first = scan_row.inner_text()
    shoot(page, "05-scan-running")
    scan_row.locator("text=2 / 2").wait_for(timeout=120_000)
    assert page.evaluate("window.notReloaded") is True
    assert first != scan_row.inner_text()
    page.wait_for_selector("tr:has-text('browser scan') .state.done", timeout=60_000)
    shoot(page, "06-scan-done")

    # The vulnerability it found, its detail with both machines, and the CSV export of the view.
    wait_for_findings()
    page.goto("/findings?type=vulnerabilities")
    shoot(page, "07-findings")
    page.click(f"a:has-text('{CVE}')")
    page.wait_for_url("**/findings/*")
    for root in machines:
        assert str(root) in page.inner_text("main")
    shoot(page, "08-finding")
    page.goto("/findings?type=vulnerabilities")
    with page.expect_download() as download:
        page.click("a:has-text('CSV')")
    text = Path(download.value.path()).read_text()
    assert CVE in text and "vmclarity-demo" in text
    page.goto("/")
    shoot(page, "09-dashboard")
    assert page.problems == []


def wait_for_findings(timeout=60):
    deadline = time.monotonic() + timeout
    database.connect(reuse_if_open=True)
    try:
        while time.monotonic() < deadline:
            if Finding.select().where(Finding.object_type == "Vulnerability").exists():
                return
            time.sleep(0.2)
    finally:
        database.close()
    raise AssertionError("no vulnerability finding was stored")


def test_a_hostile_finding_renders_as_text(page):
    database.connect(reuse_if_open=True)
    finding = store.create(RESOURCES_BY_MODEL[Finding], {"findingInfo": {
        "objectType": "Malware", "malwareName": HOSTILE, "malwareType": "TROJAN", "path": HOSTILE,
        "ruleName": HOSTILE}, "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": "2026-01-01T00:00:00Z"})
    database.close()
    sign_in(page)
    for url in ("/findings?type=malware", f"/findings/{finding['id']}"):
        page.goto(url)
        assert HOSTILE in page.inner_text("main")
        assert page.locator("main img").count() == 0
    shoot(page, "10-hostile-finding")
    assert page.problems == []
