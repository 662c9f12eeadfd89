"""Security of the whole web UI, checked generically over every route of the `ui` blueprint.

Each route is found in app.url_map, so a new view is covered without touching this file:
signed-out visitors are sent to the login page, every write needs the session's CSRF
token, viewers read everything but write nothing (and see no write action), operators
never reach user or token administration, and no page carries inline script or style
or shows hostile document text unescaped. Then the login itself: redirects, session
binding, timing, and error pages that give nothing away.
"""

import re
from html.parser import HTMLParser
from urllib.parse import quote as quote_url

import pytest

from app import auth, store, users
from app.models import ApiToken, Asset, AssetFinding, AssetScan, Finding, Scan, ScanConfig, User
from app.resources import RESOURCES_BY_MODEL
from app.ui.listing import quote
from conftest import UI_PASSWORD, csrf_of, sign_in

#: Hostile text in element, attribute and URL contexts.
HOSTILE = "\"'><img src=x onerror=alert(1)>"
HOSTILE_LINK = "javascript:alert(1)//https://"
#: GET pages a viewer is deliberately refused (they exist only to write).
VIEWER_FORBIDDEN_PAGES = {"ui.new_scan_config", "ui.edit_scan_config", "ui.scope_builder", "ui.scope_preview",
                          "ui.users"}
ADMIN_ENDPOINTS = {"ui.users", "ui.create_user", "ui.change_user_role", "ui.delete_user", "ui.create_token",
                   "ui.revoke_token"}
PUBLIC_ENDPOINTS = {"ui.login"}
#: What a template must never hold: inline script, inline handlers or style, script URLs.
INLINE = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=|<style|hx-on|javascript:", re.I)
#: Attributes whose value a browser or htmx follows as a URL.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "hx-get", "hx-post", "hx-put", "hx-patch", "hx-delete",
                  "hx-push-url", "hx-replace-url", "xlink:href", "data"}


class PageChecker(HTMLParser):
    """Collects what a page must never hold, tag by tag (escaped text cannot open a tag)."""

    def __init__(self):
        super().__init__()
        self.problems = []
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag in ("style", "iframe", "object", "embed", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith(("on", "hx-on", "data-hx-on")) or name == "style":
                self.problems.append(f"attribute {name}")
            if name in ("hx-vals", "hx-headers", "hx-vars") and "csrf" not in (value or "").lower():
                self.problems.append(f"attribute {name}={value!r}")
            if name in URL_ATTRIBUTES and re.match(r"[\x00-\x20]*(javascript|data|vbscript):",
                                                   value or "", re.I) and tag != "link":
                self.problems.append(f"{name}={value!r}")
            if name in URL_ATTRIBUTES and name.startswith("hx-") and value not in ("true", "false") \
                    and not re.match(r"/(?![/\\])", value or ""):
                self.problems.append(f"{name}={value!r} is not a path on this site")

    handle_startendtag = handle_starttag


def page_problems(html):
    checker = PageChecker()
    checker.feed(html)
    return checker.problems, checker.tags


def create(model, document):
    return store.create(RESOURCES_BY_MODEL[model], document)


@pytest.fixture
def world(db):
    """One object of every kind a UI route names, each holding hostile text; -> {route argument: id}."""
    asset = create(Asset, {"assetInfo": {"objectType": "DirInfo", "dirName": HOSTILE, "location": HOSTILE,
                                         "tags": [{"key": HOSTILE, "value": HOSTILE}]},
                           "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": "2026-01-02T00:00:00Z"})
    finding = create(Finding, {"findingInfo": {"objectType": "Vulnerability", "vulnerabilityName": HOSTILE,
                                               "severity": "HIGH", "description": HOSTILE,
                                               "links": [HOSTILE_LINK], "package": {"name": HOSTILE}},
                               "firstSeen": "2026-01-10T00:00:00Z", "lastSeen": "2026-01-20T00:00:00Z"})
    create(AssetFinding, {"asset": {"id": asset["id"]}, "finding": {"id": finding["id"]},
                          "firstSeen": "2026-01-10T00:00:00Z", "lastSeen": "2026-01-20T00:00:00Z"})
    families = {"scanFamiliesConfig": {"sbom": {"enabled": True}}}
    config = create(ScanConfig, {"name": HOSTILE, "scheduled": {"cronLine": "0 0 * * *"},
                                 "scanTemplate": {"scope": f"assetInfo/location eq {quote(HOSTILE)}",
                                                  "assetScanTemplate": families}})
    scan = create(Scan, {"name": HOSTILE, "scope": f"assetInfo/location eq {quote(HOSTILE)}",
                         "startTime": "2026-01-01T00:00:00Z", "assetScanTemplate": families})
    for state, reason in (("Discovered", "AssetsDiscovered"), ("InProgress", "AssetScansRunning")):
        # Running, so that writers see Stop and pages poll it.
        status = {"state": state, "reason": reason, "message": HOSTILE, "lastTransitionTime": "2026-01-01T00:00:00Z"}
        store.patch(RESOURCES_BY_MODEL[Scan], scan["id"], {"status": status}, None)
    asset_scan = create(AssetScan, {"asset": {"id": asset["id"]}, "scan": {"id": scan["id"]}})
    auth.create_token(HOSTILE, "viewer")
    other = users.create_user(HOSTILE, UI_PASSWORD, "viewer")
    return {"asset_id": asset["id"], "finding_id": finding["id"], "config_id": config["id"], "scan_id": scan["id"],
            "asset_scan_id": asset_scan["id"], "user_id": other.id,
            "token_id": ApiToken.select().where(ApiToken.role == "viewer").get().id}


def ui_rules(app, method):
    return sorted((rule for rule in app.url_map.iter_rules()
                   if rule.endpoint.startswith("ui.") and method in rule.methods), key=lambda rule: rule.rule)


def url_of(rule, world):
    url = rule.rule
    for argument in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{argument}>", str(world[argument]), url)
    return url


def state_of_the_world():
    """Enough of the database to see that a refused write changed nothing."""
    counts = [model.select().count() for model in (User, ApiToken, Asset, Scan, ScanConfig, AssetScan)]
    return counts, [(user.username, user.role) for user in User.select().order_by(User.id)], \
        [(row.id, row.revision) for row in ScanConfig.select().order_by(ScanConfig.id)]


def test_the_route_table_is_covered(app):
    """Guards the generic tests: they see every kind of route, GET and POST."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("ui.")}
    assert {"ui.assets", "ui.findings", "ui.scans", "ui.users", "ui.create_token", "ui.logout"} <= endpoints
    assert len(ui_rules(app, "POST")) >= 10


def test_every_route_needs_a_login(app, world):
    client = app.test_client()
    for rule in ui_rules(app, "GET"):
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = url_of(rule, world)
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
        htmx = client.get(url, headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login"), url
    before = state_of_the_world()
    token = csrf_of(client.get("/login").text)  # a real token of a signed-out session changes nothing
    for rule in ui_rules(app, "POST"):
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = url_of(rule, world)
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
        assert client.post(url, headers={"HX-Request": "true"}).status_code == 401, url
    assert state_of_the_world() == before


@pytest.mark.parametrize("how", ["missing", "forged form field", "forged header", "empty"])
def test_every_write_needs_the_csrf_token(app, world, admin_browser, how):
    client = admin_browser.client
    before = state_of_the_world()
    for rule in ui_rules(app, "POST"):
        url = url_of(rule, world)
        data, headers = {"name": "x", "role": "admin", "username": "x", "password": "p" * 10,
                         "password_again": "p" * 10}, {}
        if how == "forged form field":
            data["csrf_token"] = admin_browser.csrf[:-2] + "xx"
        elif how == "forged header":
            headers["X-CSRF-Token"] = "forged"
        elif how == "empty":
            data["csrf_token"] = ""
        for htmx in ({}, {"HX-Request": "true"}):
            response = client.post(url, data=data, headers={**headers, **htmx})
            assert response.status_code == 400, (url, response.status_code)
    assert state_of_the_world() == before
    assert admin_browser.get("/").status_code == 200  # still signed in


def test_a_viewer_reads_every_page_and_is_refused_only_the_writing_ones(app, world, viewer):
    answers = {}
    for rule in ui_rules(app, "GET"):
        url = url_of(rule, world)
        answers[rule.endpoint] = viewer.get(url).status_code
        assert viewer.get(url, htmx=True).status_code == answers[rule.endpoint], url
    refused = {endpoint for endpoint, status in answers.items() if status == 403}
    assert refused == VIEWER_FORBIDDEN_PAGES
    assert {status for endpoint, status in answers.items() if endpoint not in refused} == {200}


def test_a_viewer_writes_nothing(app, world, viewer):
    before = state_of_the_world()
    for rule in ui_rules(app, "POST"):
        if rule.endpoint in PUBLIC_ENDPOINTS | {"ui.logout"}:
            continue
        url = url_of(rule, world)
        assert viewer.post(url, {"role": "admin", "name": "x"}).status_code == 403, url
        assert viewer.post(url, {"role": "admin"}, htmx=True).status_code == 403, url
    assert state_of_the_world() == before


def test_an_operator_never_reaches_user_and_token_admin(app, world, operator):
    before = state_of_the_world()
    for rule in ui_rules(app, "GET") + ui_rules(app, "POST"):
        if rule.endpoint in ADMIN_ENDPOINTS:
            url = url_of(rule, world)
            assert operator.get(url).status_code in (403, 405), url
            assert operator.post(url, {"role": "admin", "name": "x", "username": "x"}).status_code == 403, url
    assert state_of_the_world() == before
    assert "/admin/" not in operator.get("/").text


def post_actions(html):
    return re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', html)


def test_a_viewer_sees_no_write_action(app, world, viewer, operator):
    for url in ("/scans", f"/scans/{world['scan_id']}", "/scans/configs", f"/assets/{world['asset_id']}"):
        assert set(post_actions(operator.get(url).text)) - {"/logout"}, url  # the world has write actions
    for rule in ui_rules(app, "GET"):
        url = url_of(rule, world)
        for htmx in (False, True):
            response = viewer.get(url, htmx=htmx)
            if response.status_code != 200:
                continue
            assert set(post_actions(response.text)) <= {"/logout"}, url
            assert "hx-post" not in response.text and "hx-delete" not in response.text, url


def test_no_page_has_inline_script_or_shows_hostile_text(app, world, admin_browser):
    for rule in ui_rules(app, "GET"):
        url = url_of(rule, world)
        for htmx in (False, True):
            response = admin_browser.get(url, htmx=htmx)
            assert response.status_code == 200, url
            response.close()  # exports stream: end them before the next request
            if response.mimetype != "text/html":
                continue
            problems, tags = page_problems(response.text)
            assert problems == [], (url, problems)
            assert "img" not in tags, url
            assert "Content-Security-Policy" in response.headers


def test_templates_have_no_inline_script_style_or_unescaped_output(app):
    loader = app.jinja_env.loader
    names = [name for name in app.jinja_env.list_templates() if name.startswith("ui/")]
    assert len(names) > 20
    for name in names:
        source = loader.get_source(app.jinja_env, name)[0]
        assert not INLINE.search(source), (name, INLINE.search(source).group())
        assert not re.search(r"\|\s*safe\b|Markup\(|autoescape\s+false", source), name
        # An attribute value that is not quoted can be broken out of even when escaped.
        assert not re.search(r"=\{\{", source), name


def test_htmx_may_not_evaluate_script(app, viewer):
    page = viewer.get("/").text
    config = re.search(r'<meta name="htmx-config" content=\'([^\']*)\'', page).group(1)
    assert '"allowEval": false' in config and '"allowScriptTags": false' in config
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/vendor/htmx.min.js" defer>']


#: Query strings a person could type or a link could carry, at every parameter the UI reads.
HOSTILE_QUERIES = [
    "q=x%27)%20or%20(1%20eq%201&asset=%27&scan=%27&status=%27",
    "sort=name%20desc,%20id&dir=x&page=-3&per_page=100000",
    f"page={10 ** 30}&per_page={10 ** 30}",
    "page=99999999",
    "first_seen_from=9999-12-31&first_seen_to=9999-12-31",
    "first_seen_from=0001-01-01&first_seen_to=nope",
    "type=%27&hide_history=1&asset=x%27%20or%201%20eq%201",
    "range=%27&view=%27&from=%27&add=1&remove=-1",
    "scope_field_0=%27&scope_op_0=%27&scope_value_0=%27&scope_raw=%27)",
    "_external=1&_scheme=javascript&_anchor=x",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_query_strings_never_break_a_page(app, world, admin_browser, query):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for rule in ui_rules(app, "GET"):
        url = f"{url_of(rule, world)}?{query}"
        response = admin_browser.get(url)
        response.get_data()
        response.close()  # exports stream: end them before the next request
        assert response.status_code in (200, 400, 404), (url, response.status_code)
        if response.mimetype == "text/html":
            assert page_problems(response.text)[0] == [], url


@pytest.mark.parametrize("path, names", [("/assets", ("q",)), ("/asset-scans", ("q", "asset", "scan")),
                                         ("/findings", ("q", "asset"))])
def test_a_search_is_a_literal_not_odata(world, viewer, path, names):
    everything = viewer.get(path).text
    assert "1 in all" in everything
    for text in ("x' or 'a' eq 'a", "x') or (1 eq 1", "x' or true or 'x"):
        for name in names:
            response = viewer.get(f"{path}?{name}={quote_url(text)}")
            assert response.status_code == 200 and "1 in all" not in response.text, (path, name, text)


def test_sort_keys_are_whitelisted(world, viewer):
    for path in ("/assets", "/asset-scans", "/findings", "/scans", "/scans/configs"):
        for key in ("id", "assetInfo/dirName", "name desc, id", "x'", "lastSeen,(1 eq 1)"):
            response = viewer.get(f"{path}?sort={quote_url(key)}")
            assert response.status_code == 200, (path, key)
            assert f'name="sort" value="{key}"' not in response.text


# ---- the login -------------------------------------------------------------------------------


@pytest.fixture
def person(db):
    return users.create_user("alice", UI_PASSWORD, "operator")


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
    "/\r\nSet-Cookie: a=b", "\t//evil.example", " //evil.example", "/\x0b/evil.example", "javascript:alert(1)",
    "/%09/evil.example/..", "/\x00/evil.example",
])
def test_login_never_redirects_off_site(app, client, person, target):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    form = {"username": "alice", "password": UI_PASSWORD, "csrf_token": csrf_of(client.get("/login").text)}
    response = client.post(f"/login?next={quote_url(target, safe='')}", data=form)
    assert response.status_code == 302, response.status_code
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location, location
    assert not re.search(r"[\x00-\x1f\x7f]", location), location


def test_login_keeps_a_harmless_next(client, person):
    form = {"username": "alice", "password": UI_PASSWORD, "csrf_token": csrf_of(client.get("/login").text)}
    response = client.post("/login?next=" + quote_url("/findings?type=secrets&q=a b", safe=""), data=form)
    assert response.headers["Location"] == "/findings?type=secrets&q=a%20b"


def test_logout_is_a_post(client, person):
    sign_in(client, "alice")
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_signing_in_starts_a_new_session(client, person):
    client.get("/login")
    before = client.get_cookie("session").value
    sign_in(client, "alice")
    with client.session_transaction() as session:
        assert set(session) == {"user_id", "csrf", "user_key"}
    assert client.get_cookie("session").value != before


def test_a_session_does_not_outlive_its_user(app, client, db):
    """SQLite reuses the highest rowid: a deleted user's cookie must not sign in the next user made."""
    admin = users.create_user("root", UI_PASSWORD, "admin")
    mallory = users.create_user("mallory", UI_PASSWORD, "viewer")
    sign_in(client, "mallory")
    users.delete_user(mallory.id, admin)
    successor = users.create_user("bob", UI_PASSWORD, "admin")
    if successor.id != mallory.id:  # PostgreSQL: never the same id, so test the binding directly
        User.update(id=mallory.id).where(User.id == successor.id).execute()
    response = client.get("/admin/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_unknown_users_cost_a_password_check_too(db, person, monkeypatch):
    """No quick answer for a username that does not exist: it would tell which ones do."""
    checked = []
    real = users.check_password_hash
    monkeypatch.setattr(users, "check_password_hash", lambda *args: checked.append(args) or real(*args))
    assert users.check_password("nobody", UI_PASSWORD) is None
    assert users.check_password("alice", "wrong password") is None
    assert len(checked) == 2
    assert checked[0][0].split("$")[0] == checked[1][0].split("$")[0]  # the same algorithm and cost
    assert users.check_password("alice", UI_PASSWORD) == person


def test_unknown_user_and_wrong_password_read_the_same(client, person):
    unknown = sign_in(client, "nobody", UI_PASSWORD)
    wrong = sign_in(client, "alice", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("nobody", "alice") == wrong.text.replace("nobody", "alice")


# ---- error pages -----------------------------------------------------------------------------


def test_an_unexpected_error_shows_no_internals(app, viewer, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*args, **kwargs):
        raise RuntimeError("password=hunter2 at /srv/secret/path.py")
    monkeypatch.setattr("app.ui.views_assets.page_of", broken)
    for htmx in (False, True):
        response = viewer.get("/assets", htmx=htmx)
        assert response.status_code == 500
        assert "hunter2" not in response.text and "Traceback" not in response.text and ".py" not in response.text


# ---- exports ---------------------------------------------------------------------------------


def test_exports_defuse_formulas_and_name_their_file_safely(world, viewer):
    finding = {"objectType": "Vulnerability", "vulnerabilityName": "=HYPERLINK(\"http://evil\")",
               "severity": "HIGH", "package": {"name": "+cmd|' /C calc'!A0", "version": "@SUM(1)"},
               "fix": {"versions": ["-2+3"]}}
    create(Finding, {"findingInfo": finding, "firstSeen": "2026-01-10T00:00:00Z", "lastSeen": "2026-01-20T00:00:00Z"})
    response = viewer.get("/findings/export.csv?type=vulnerabilities&q=" + quote_url("\"'><"))
    assert response.status_code == 200 and response.text.startswith("id,")
    assert re.fullmatch(r'attachment; filename="vmclarity-vulnerabilities-\d{8}\.csv"',
                        response.headers["Content-Disposition"])
    response = viewer.get("/findings/export.csv?type=vulnerabilities")
    for cell in re.findall(r'(?:^|,)"?([^,\r\n"]*)', response.text.split("\r\n", 1)[1]):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    sarif = viewer.get("/findings/export.sarif?type=vulnerabilities")
    assert sarif.status_code == 200 and "javascript:" not in sarif.text
    assert re.fullmatch(r'attachment; filename="vmclarity-vulnerabilities-\d{8}\.sarif"',
                        sarif.headers["Content-Disposition"])
