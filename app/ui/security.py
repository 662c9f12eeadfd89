"""Who is signed in, what they may do, and the protections every page carries.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure whenever the
request came over HTTPS). Every write needs the session's CSRF token, sent as the
`csrf_token` form field or, by htmx, as the `X-CSRF-Token` header.
"""

import functools
import hashlib
import hmac
import secrets

from flask import abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from app import config
from app.auth import READ_METHODS
from app.models import User
from app.ui import bp
from app.ui.htmx import is_htmx

#: Views that answer without a signed-in user.
PUBLIC_ENDPOINTS = frozenset({"ui.login", "static"})
WRITER_ROLES = ("admin", "operator")
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


class SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure when the request itself was HTTPS."""

    def get_cookie_secure(self, app):
        return app.config["SESSION_COOKIE_SECURE"] or request.is_secure


def init_app(app):
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SECRET_KEY"] = config.secret_key(app.config.get("SECRET_KEY"), app.config["DATA_DIR"])
    app.session_interface = SessionInterface()
    app.after_request(_protective_headers)
    app.jinja_env.globals.update(csrf_token=csrf_token, can_write=can_write)


def _protective_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def csrf_token():
    """This session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def can_write():
    return g.get("user") is not None and g.user.role in WRITER_ROLES


def sign_in(user):
    session.clear()
    session["user_id"] = user.id
    session["user_key"] = _user_key(user)
    session["csrf"] = secrets.token_urlsafe(32)


@bp.before_request
def check_session():
    if request.endpoint in PUBLIC_ENDPOINTS:
        g.user = None
    else:
        g.user = _signed_in_user()
        if g.user is None:
            return _to_login()
    if request.method not in READ_METHODS:
        _check_csrf()
    return None


def _signed_in_user():
    user_id = session.get("user_id")
    user = None if user_id is None else User.get_or_none(User.id == user_id)
    if user is None or not hmac.compare_digest(session.get("user_key", ""), _user_key(user)):
        return None
    return user


def _user_key(user):
    """Binds a session to this very user, not just an id: SQLite gives a deleted user's id to the
    next user made, whose password hash (salted) differs. A keyed digest: the cookie is readable."""
    key = current_app.secret_key
    return hmac.new(key.encode() if isinstance(key, str) else key, user.password_hash.encode(),
                    hashlib.sha256).hexdigest()


def _to_login():
    target = url_for("ui.login", next=request.full_path.rstrip("?") if request.method == "GET" else None)
    if is_htmx():
        response = current_app.response_class(status=401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _check_csrf():
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, "the form has expired or did not come from this site: reload the page and try again")


def role_required(*roles):
    """Answer 403 unless the signed-in user has one of `roles`."""
    def decorate(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if g.user is None or g.user.role not in roles:
                abort(403, f"this needs the {' or '.join(roles)} role")
            return view(*args, **kwargs)
        return wrapped
    return decorate


writer_required = role_required(*WRITER_ROLES)
admin_required = role_required("admin")
