"""Checks request bodies against our OpenAPI schemas; a failure is a 400 naming the field."""

import functools

from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30Validator

from app.errors import BadRequest
from app.spec import openapi_document


@functools.cache
def _validator(schema_name):
    schema = {
        "$ref": f"#/components/schemas/{schema_name}",
        "components": openapi_document()["components"],
    }
    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


def validate(schema_name, document):
    """Raise BadRequest when `document` is not a valid `schema_name` object."""
    error = best_match(_validator(schema_name).iter_errors(document))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "body"
        raise BadRequest(f"{where}: {error.message}")
