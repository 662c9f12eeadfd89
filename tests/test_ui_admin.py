"""Users & tokens: admins manage who signs in and which API tokens exist; nobody else sees it."""

import pytest

from app import auth, users
from app.models import ApiToken, User
from conftest import UI_PASSWORD, csrf_of, race, sign_in

HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def roles():
    return {user.username: user.role for user in User.select()}


def new_user(data):
    return {"username": "bob", "role": "operator", "password": UI_PASSWORD, "password_again": UI_PASSWORD, **data}


@pytest.fixture
def other(admin_browser):
    return users.create_user("other", UI_PASSWORD, "viewer")


# ---- who may open it ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_see_and_use_users_and_tokens(browser_as, role):
    browser = browser_as(role)
    assert "/admin/users" not in browser.get("/").text
    assert browser.get("/admin/users").status_code == 403
    assert browser.get("/admin/users", htmx=True).status_code == 403
    victim = users.create_user("victim", UI_PASSWORD, "viewer")
    assert browser.post("/admin/users", new_user({})).status_code == 403
    assert browser.post(f"/admin/users/{victim.id}/role", {"role": "admin"}).status_code == 403
    assert browser.post(f"/admin/users/{victim.id}/delete").status_code == 403
    assert browser.post("/admin/tokens", {"name": "mine", "role": "admin"}).status_code == 403
    token = auth.create_token("kept", "viewer")
    row = ApiToken.get(ApiToken.name == "kept")
    assert browser.post(f"/admin/tokens/{row.id}/revoke").status_code == 403
    assert roles() == {f"{role}-user": role, "victim": "viewer"}
    assert [t.name for t in ApiToken.select()] == ["kept"] and token


def test_the_admin_page_lists_users_and_tokens(admin_browser, other):
    auth.create_token("report script", "viewer")
    page = admin_browser.get("/admin/users")
    assert page.status_code == 200
    assert 'href="/admin/users" aria-current="page"' in page.text
    html = page.text
    assert "admin-user" in html and "(you)" in html and "other" in html
    tokens = html.split('id="tokens"')[1]
    assert "report script" in tokens and "viewer" in tokens
    assert ApiToken.get().token_hash not in html


# ---- users -------------------------------------------------------------------------------------

def test_create_a_user_who_can_then_sign_in(app, admin_browser):
    response = admin_browser.post("/admin/users", new_user({}), htmx=True)
    assert response.status_code == 200
    assert response.text.startswith('<section class="card" id="users"') and "<html" not in response.text
    assert "bob can sign in now, as operator." in response.text
    assert roles()["bob"] == "operator"
    assert sign_in(app.test_client(), "bob").status_code == 302


@pytest.mark.parametrize("data, message", [
    ({"password_again": "something else"}, "the two passwords differ"),
    ({"password": "short", "password_again": "short"}, "the password must have at least 8 characters"),
    ({"username": "  "}, "the username must not be empty"),
    ({"username": "admin-user"}, "a user named &#39;admin-user&#39; already exists"),
    ({"role": "scanner"}, "unknown role &#39;scanner&#39;"),
    ({"username": "x" * 151}, "the username must have at most 150 characters"),
    ({"username": "bob\nadmin"}, "the username may hold only printable characters"),
    ({"username": "bob\x1b[2J"}, "the username may hold only printable characters"),
])
def test_a_refused_user_says_why_in_place(admin_browser, data, message):
    response = admin_browser.post("/admin/users", new_user(data), htmx=True)
    assert response.status_code == 422
    assert response.text.startswith('<section class="card" id="users"')
    assert f'<p class="alert" role="alert">{message}' in response.text
    assert set(roles()) == {"admin-user"} | ({"admin-user"} if data.get("username") == "admin-user" else set())
    full = admin_browser.post("/admin/users", new_user(data))  # without htmx: the whole page, same message
    assert full.status_code == 422 and "<html" in full.text and message in full.text


def test_change_a_role(admin_browser, other):
    response = admin_browser.post(f"/admin/users/{other.id}/role", {"role": "operator"}, htmx=True)
    assert response.status_code == 200 and "other is operator now." in response.text
    assert roles()["other"] == "operator"
    bad = admin_browser.post(f"/admin/users/{other.id}/role", {"role": "root"}, htmx=True)
    assert bad.status_code == 422 and "unknown role" in bad.text
    assert admin_browser.post("/admin/users/9999/role", {"role": "viewer"}, htmx=True).status_code == 404


def test_delete_a_user(admin_browser, other):
    response = admin_browser.post(f"/admin/users/{other.id}/delete", htmx=True)
    assert response.status_code == 200 and "other was deleted." in response.text
    assert "other" not in roles()
    assert admin_browser.post(f"/admin/users/{other.id}/delete", htmx=True).status_code == 404


def test_an_admin_cannot_demote_or_delete_themselves(admin_browser):
    me = User.get(User.username == "admin-user")
    page = admin_browser.get("/admin/users").text
    assert f"/admin/users/{me.id}/delete" not in page and f"/admin/users/{me.id}/role" not in page
    demote = admin_browser.post(f"/admin/users/{me.id}/role", {"role": "viewer"}, htmx=True)
    assert demote.status_code == 422 and "you cannot demote yourself" in demote.text
    delete = admin_browser.post(f"/admin/users/{me.id}/delete", htmx=True)
    assert delete.status_code == 422 and "you cannot delete yourself" in delete.text
    assert roles() == {"admin-user": "admin"}


def test_the_last_admin_is_never_removed(db):
    only = users.create_user("only", UI_PASSWORD, "admin")
    # Someone else acting (say, an admin demoted a moment ago): the rule still holds.
    bystander = users.create_user("bystander", UI_PASSWORD, "operator")
    with pytest.raises(ValueError, match="'only' is the last admin and cannot be demoted"):
        users.change_role(only.id, "operator", bystander)
    with pytest.raises(ValueError, match="'only' is the last admin and cannot be deleted"):
        users.delete_user(only.id, bystander)
    second = users.create_user("second", UI_PASSWORD, "admin")
    users.change_role(only.id, "viewer", second)  # another admin remains: allowed
    assert roles() == {"only": "viewer", "bystander": "operator", "second": "admin"}
    with pytest.raises(LookupError):
        users.delete_user(12345, second)


def test_another_admin_can_be_demoted_and_deleted(admin_browser):
    second = users.create_user("second", UI_PASSWORD, "admin")
    assert admin_browser.post(f"/admin/users/{second.id}/role", {"role": "viewer"}).status_code == 200
    assert admin_browser.post(f"/admin/users/{second.id}/delete").status_code == 200
    assert roles() == {"admin-user": "admin"}


def test_user_writes_need_the_csrf_token(admin_browser, other):
    client = admin_browser.client
    for url, data in (("/admin/users", new_user({})), (f"/admin/users/{other.id}/role", {"role": "admin"}),
                      (f"/admin/users/{other.id}/delete", {})):
        assert client.post(url, data=data).status_code == 400
        assert client.post(url, data={**data, "csrf_token": "forged"}, headers={"HX-Request": "true"}).status_code == 400
    assert roles() == {"admin-user": "admin", "other": "viewer"}


def test_a_hostile_username_is_text(admin_browser):
    response = admin_browser.post("/admin/users", new_user({"username": HOSTILE}), htmx=True)
    assert response.status_code == 200
    duplicate = admin_browser.post("/admin/users", new_user({"username": HOSTILE}), htmx=True)
    for html in (response.text, duplicate.text, admin_browser.get("/admin/users").text):
        assert HOSTILE not in html and ESCAPED in html


# ---- tokens ------------------------------------------------------------------------------------

def test_a_new_token_is_shown_once_and_works(admin_browser, client):
    response = admin_browser.post("/admin/tokens", {"name": "report script", "role": "viewer"}, htmx=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.text.startswith('<section class="card" id="tokens"')
    assert "Copy it now" in response.text
    secret = response.text.split('aria-label="the new token"')[0].rsplit('value="', 1)[1].split('"')[0]
    assert secret.startswith(auth.TOKEN_PREFIX)
    assert client.get("/api/assets", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert client.post("/api/assets", json={}, headers={"Authorization": f"Bearer {secret}"}).status_code == 403
    again = admin_browser.get("/admin/users").text
    assert "report script" in again and secret not in again and "Copy it now" not in again


@pytest.mark.parametrize("data, message", [
    ({"name": "  ", "role": "viewer"}, "the token needs a name"),
    ({"name": "x" * 151, "role": "viewer"}, "the token name must have at most 150 characters"),
    ({"name": "ci\rbot", "role": "viewer"}, "the token name may hold only printable characters"),
    ({"name": "scanner", "role": "scanner"}, "choose one of admin, operator, viewer"),
])
def test_a_refused_token_says_why_in_place(admin_browser, data, message):
    response = admin_browser.post("/admin/tokens", data, htmx=True)
    assert response.status_code == 422 and message in response.text
    assert response.text.startswith('<section class="card" id="tokens"')
    assert ApiToken.select().count() == 0


def test_revoke_a_token(admin_browser, client):
    secret = auth.create_token("old script", "operator")
    row = ApiToken.get(ApiToken.name == "old script")
    response = admin_browser.post(f"/admin/tokens/{row.id}/revoke", htmx=True)
    assert response.status_code == 200 and "The token was revoked" in response.text
    assert "old script" not in response.text
    assert client.get("/api/assets", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert admin_browser.post(f"/admin/tokens/{row.id}/revoke", htmx=True).status_code == 404


def test_scanner_tokens_are_neither_listed_nor_revoked(admin_browser, api):
    asset = api.post("/api/assets", json={"assetInfo": {"objectType": "DirInfo", "dirName": "/d", "location": "h"}})
    asset_scan = api.post("/api/assetScans", json={"asset": {"id": asset.get_json()["id"]}}).get_json()
    auth.mint_scanner_token(asset_scan["id"])
    row = ApiToken.get(ApiToken.role == "scanner")
    assert "scanner " not in admin_browser.get("/admin/users").text.split('id="tokens"')[1]
    assert admin_browser.post(f"/admin/tokens/{row.id}/revoke", htmx=True).status_code == 404
    assert ApiToken.select().count() == 1


def test_token_writes_need_the_csrf_token(admin_browser):
    auth.create_token("kept", "viewer")
    row = ApiToken.get()
    client = admin_browser.client
    assert client.post("/admin/tokens", data={"name": "new", "role": "admin"}).status_code == 400
    assert client.post(f"/admin/tokens/{row.id}/revoke", data={"csrf_token": "forged"}).status_code == 400
    assert [token.name for token in ApiToken.select()] == ["kept"]


def test_a_hostile_token_name_is_text(admin_browser):
    response = admin_browser.post("/admin/tokens", {"name": HOSTILE, "role": "viewer"}, htmx=True)
    for html in (response.text, admin_browser.get("/admin/users").text):
        assert HOSTILE not in html and ESCAPED in html


def test_a_demoted_admin_loses_the_page_at_once(app, admin_browser):
    second = users.create_user("second", UI_PASSWORD, "admin")
    client = app.test_client()
    sign_in(client, "second")
    assert client.get("/admin/users").status_code == 200
    admin_browser.post(f"/admin/users/{second.id}/role", {"role": "viewer"})
    assert client.get("/admin/users").status_code == 403
    csrf = csrf_of(client.get("/").text)
    assert client.post("/admin/tokens", data={"name": "x", "role": "admin", "csrf_token": csrf}).status_code == 403


def test_two_admins_demoting_each_other_at_once_leave_one_admin(db):
    first = users.create_user("first", UI_PASSWORD, "admin")
    second = users.create_user("second", UI_PASSWORD, "admin")
    db.close()

    def demote(user, acting):
        try:
            users.change_role(user.id, "viewer", acting)
            return "demoted"
        except ValueError as error:
            return str(error)

    results = race([lambda: demote(first, second), lambda: demote(second, first)])
    db.connect(reuse_if_open=True)
    assert results.count("demoted") == 1
    assert "is the last admin" in next(result for result in results if result != "demoted")
    assert sorted(roles().values()) == ["admin", "viewer"]
