"""The one error type of the OData engine: a bad query, answered with 400."""


class ODataError(ValueError):
    """A query option the engine cannot accept; the message names the option, token and position."""


def fail(option, message, pos=None):
    """Raise ODataError as "<option>: <message> at position <pos>"."""
    where = "" if pos is None else f" at position {pos}"
    raise ODataError(f"{option}: {message}{where}")
