"""The left-to-right navigation of every page."""

from flask import current_app, g, request, url_for

#: (endpoint, label, role needed or None) in the order the bar shows them.
NAV = (
    ("ui.dashboard_page", "Dashboard", None),
    ("ui.assets", "Assets", None),
    ("ui.asset_scans", "Asset scans", None),
    ("ui.findings", "Findings", None),
    ("ui.scans", "Scans", None),
    ("ui.users", "Users & tokens", "admin"),
)


def nav_links():
    """[(url, label, is current)] for the pages this user may open."""
    links = [(url_for(endpoint), label) for endpoint, label, role in NAV
             if endpoint in current_app.view_functions and (role is None or g.user.role == role)]
    return [(url, label, _is_section(url)) for url, label in links]


def _is_section(url):
    """Whether the current page belongs under `url` (/assets holds /assets/<id>, not /asset-scans)."""
    return request.path == url or (url != "/" and request.path.startswith(url.rstrip("/") + "/"))
