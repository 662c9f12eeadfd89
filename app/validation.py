"""Checks request bodies against our OpenAPI schemas; a failure is a 400 naming the field."""

import functools

from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30Validator

from app.errors import BadRequest
from app.spec import openapi_document


@functools.cache
def schema_validator(schema_name):
    """A validator of `schema_name` objects of our API (formats such as date-time checked)."""
    schema = {
        "$ref": f"#/components/schemas/{schema_name}",
        "components": openapi_document()["components"],
    }
    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


def unstorable(text):
    """Why `text` cannot be stored in both databases (NUL, lone surrogate), or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (lone surrogate)"
    return None


def _check_storable(value, where):
    if isinstance(value, str):
        problem = unstorable(value)
        if problem:
            shown = (where or "body").encode("ascii", "backslashreplace").decode()
            raise BadRequest(f"{shown}: {problem}")
    elif isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}/{key}" if where else key
            _check_storable(key, path)
            _check_storable(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{where}/{index}" if where else str(index))


def validate(schema_name, document):
    """Raise BadRequest when `document` is not a valid `schema_name` object."""
    _check_storable(document, "")
    error = best_match(schema_validator(schema_name).iter_errors(document))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "body"
        raise BadRequest(f"{where}: {error.message}")
