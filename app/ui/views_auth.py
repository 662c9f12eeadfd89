"""Signing in and out."""

from flask import redirect, render_template, request, session, url_for

from app import login_throttle
from app.ui import bp
from app.ui.security import sign_in


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "GET":
        return render_template("ui/login.html")
    try:
        user = login_throttle.authenticate(request.form.get("username", ""), request.form.get("password", ""),
                                           request.remote_addr)
    except login_throttle.LockedOut as locked:
        return render_template("ui/login.html", error=str(locked)), 429, {"Retry-After": str(locked.seconds)}
    if user is None:
        return render_template("ui/login.html", error="wrong username or password"), 401
    sign_in(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("ui.login"))


def _safe_next(target):
    """Only a path on this site: never an absolute or scheme-relative URL.

    Control characters are refused too: browsers drop tabs and newlines
    from a Location, so `/<tab>/evil.example` would arrive as `//evil.example`
    (and a newline cannot go into a header at all).
    """
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(char < " " or char == "\x7f" for char in target)):
        return url_for("ui.dashboard_page")
    return target
