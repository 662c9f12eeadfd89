"""Components that keep themselves up to date while what they show is running.

Such a component polls its own endpoint (the `poll` macro of _macros.html) and
is swapped for the answer; the endpoint answers with STOP_POLLING once the
thing has ended, the status at which htmx stops an `every` poll.
"""

from flask import make_response, render_template

STOP_POLLING = 286


def component(template, running, **context):
    """`template` rendered, as the answer to a poll: with STOP_POLLING once it no longer runs."""
    response = make_response(render_template(template, **context))
    if not running:
        response.status_code = STOP_POLLING
    return response
