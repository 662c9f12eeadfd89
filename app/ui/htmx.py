"""The one place that reads htmx's request headers and chooses page or partial."""

from flask import make_response, render_template, request


def is_htmx():
    """True for an htmx request that swaps a part of the page (not a history restore)."""
    return request.headers.get("HX-Request") == "true" and "HX-History-Restore-Request" not in request.headers


def render(page_template, partial_template, **context):
    """Render the full page or, for htmx, only its partial; both come from one URL."""
    response = make_response(render_template(partial_template if is_htmx() else page_template, **context))
    response.vary.add("HX-Request")
    return response
