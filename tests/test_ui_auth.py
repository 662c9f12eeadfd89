"""Signing in to the web UI, sessions, roles, CSRF and the protective headers."""

import pytest

from app import users
from conftest import UI_PASSWORD, csrf_of, sign_in


@pytest.fixture
def person(db):
    return users.create_user("alice", UI_PASSWORD, "operator")


def test_pages_need_a_login(client, db):
    response = client.get("/assets?q=x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/assets?q%3Dx"


def test_htmx_requests_are_sent_to_the_login_page(client, db):
    response = client.get("/assets", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_sign_in_and_out(client, person):
    response = sign_in(client, "alice")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and "alice (operator)" in page.text
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client, person):
    response = sign_in(client, "alice", "not the password")
    assert response.status_code == 401
    assert "wrong username or password" in response.text
    assert client.get("/").status_code == 302


def test_next_returns_to_the_page_asked_for_but_never_off_site(client, person):
    token = csrf_of(client.get("/login").text)
    form = {"username": "alice", "password": UI_PASSWORD, "csrf_token": token}
    assert client.post("/login?next=/assets", data=form).headers["Location"] == "/assets"
    token = csrf_of(client.get("/login").text)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        form["csrf_token"] = csrf_of(client.get("/login").text)
        assert client.post(f"/login?next={target}", data=form).headers["Location"] == "/"


def test_login_without_the_csrf_token_is_rejected(client, person):
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": UI_PASSWORD})
    assert response.status_code == 400
    assert "reload the page" in response.text
    assert client.get("/").status_code == 302


def test_writes_need_the_session_csrf_token(admin_browser):
    response = admin_browser.client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert admin_browser.get("/").status_code == 200  # still signed in
    header = admin_browser.client.post("/logout", headers={"X-CSRF-Token": admin_browser.csrf})
    assert header.status_code == 302


def test_session_cookie_flags(client, person):
    response = sign_in(client, "alice")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = client.post("/login", base_url="https://localhost",
                         data={"username": "alice", "password": UI_PASSWORD,
                               "csrf_token": csrf_of(client.get("/login", base_url="https://localhost").text)})
    assert "Secure" in secure.headers["Set-Cookie"]


def test_pages_forbid_inline_script(admin_browser):
    response = admin_browser.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.text and " on" + "click=" not in response.text


def test_htmx_is_served_locally_and_pinned(client):
    with client.get("/static/vendor/htmx.min.js") as response:
        assert response.status_code == 200
        assert b'version:"2.0.8"' in response.data


def test_a_deleted_user_is_signed_out(client, person):
    sign_in(client, "alice")
    person.delete_instance()
    assert client.get("/").status_code == 302


def test_the_first_admin_gets_a_generated_password_once(db):
    generated = users.first_admin()
    assert generated and users.check_password("admin", generated)
    assert users.first_admin() is None


def test_the_first_admin_password_can_be_given(db):
    assert users.first_admin("given password") is None
    assert users.check_password("admin", "given password")
