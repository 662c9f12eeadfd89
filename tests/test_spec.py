"""Our OpenAPI document is valid, and describes the same contract as upstream's."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from app.spec import openapi_document

# CI clones the repo next to shared/, so look beside the repo, not inside it.
UPSTREAM = Path(__file__).resolve().parents[2] / "shared/reference/vmclarity-api/openapi.yaml"

# The facts a client or the OData compiler relies on; prose is ours to write.
KEPT = ("type", "format", "enum", "readOnly", "nullable", "minimum", "maximum", "minLength", "minProperties")
MISSING = "<missing>"
METHODS = ("get", "post", "put", "patch", "delete")


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: upstream's bare `Yes`/`No` enum values are strings."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@pytest.fixture(scope="module")
def ours():
    return openapi_document()


@pytest.fixture(scope="module")
def upstream():
    if not UPSTREAM.exists():
        pytest.skip(f"upstream spec not found at {UPSTREAM}")
    document = yaml.load(UPSTREAM.read_text(), Loader=Yaml12Loader)
    return json.loads(json.dumps(document))  # response codes load as ints


def parts(schema, schemas):
    """The schema and each of its allOf members, references resolved."""
    yield schema
    for member in schema.get("allOf", ()):
        if "$ref" in member:
            member = schemas[member["$ref"].rsplit("/", 1)[1]]
        yield from parts(member, schemas)


def shape(schema, schemas):
    """Reduce a schema to its contract, with allOf flattened and $ref targets kept by name."""
    out = {key: schema[key] for key in (*KEPT, "$ref", "discriminator") if key in schema}
    properties, required = {}, set()
    for part in parts(schema, schemas):
        for name, prop in part.get("properties", {}).items():
            # A list, because upstream sometimes declares a property twice via allOf.
            properties.setdefault(name, []).append(shape(prop, schemas))
        required.update(part.get("required", ()))
    if properties:
        out["properties"] = properties
    if required:
        out["required"] = sorted(required)
    for key in ("items", "additionalProperties"):
        if key in schema:
            value = schema[key]
            out[key] = shape(value, schemas) if isinstance(value, dict) else value
    for key in ("anyOf", "oneOf"):
        if key in schema:
            out[key] = [member["$ref"] for member in schema[key]]
    return out


def differences(mine, theirs, where):
    """Yield one line per leaf where the two structures disagree."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(mine.keys() | theirs.keys()):
            yield from differences(mine.get(key, MISSING), theirs.get(key, MISSING), f"{where}.{key}")
    elif isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for index, (a, b) in enumerate(zip(mine, theirs)):
            yield from differences(a, b, f"{where}[{index}]")
    elif mine != theirs:
        yield f"{where}: ours {mine!r}, upstream {theirs!r}"


def schema_differences(mine, theirs):
    mine_schemas, their_schemas = mine["components"]["schemas"], theirs["components"]["schemas"]
    for name in sorted(their_schemas):
        if name in mine_schemas:
            yield from differences(
                shape(mine_schemas[name], mine_schemas), shape(their_schemas[name], their_schemas), name
            )


def operations(document):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def target(response):
    """The component a response points at: a shared response or the body schema."""
    if "$ref" in response:
        return response["$ref"]
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


def is_list(op):
    return {"$ref": "#/components/parameters/odataFilter"} in op.get("parameters", ())


def test_document_is_valid_openapi(ours):
    validate(ours)
    json.dumps(ours)


def test_callers_get_their_own_copy():
    openapi_document()["paths"].clear()
    assert openapi_document()["paths"]


def test_every_operation_requires_a_bearer_token(ours):
    assert ours["security"] == [{"bearerAuth": []}]
    assert ours["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    for path, method, op in operations(ours):
        assert target(op["responses"]["401"]) == "#/components/responses/Unauthorized", (path, method)
        assert target(op["responses"]["403"]) == "#/components/responses/Forbidden", (path, method)


def test_comparison_notices_drift(ours):
    broken = copy.deepcopy(ours)
    asset = broken["components"]["schemas"]["Asset"]["allOf"][1]["properties"]
    asset["scansCount"]["type"] = "string"
    del asset["lastSeen"]
    found = list(schema_differences(broken, ours))
    assert found == [
        "Asset.properties.lastSeen: ours '<missing>', upstream [{'type': 'string', 'format': 'date-time'}]",
        "Asset.properties.scansCount[0].type: ours 'string', upstream 'integer'",
    ]


def test_same_info_and_schema_names(ours, upstream):
    assert ours["openapi"] == upstream["openapi"]
    assert ours["info"]["title"] == upstream["info"]["title"]
    assert ours["info"]["version"] == upstream["info"]["version"]
    assert set(ours["components"]["schemas"]) == set(upstream["components"]["schemas"])


def test_schemas_match_upstream(ours, upstream):
    found = list(schema_differences(ours, upstream))
    assert not found, "\n".join(found)


def test_same_operations(ours, upstream):
    def ids(document):
        return {(path, method): op["operationId"] for path, method, op in operations(document)}

    assert ids(ours) == ids(upstream)


def test_operations_take_the_same_input(ours, upstream):
    theirs = {(path, method): op for path, method, op in operations(upstream)}
    for path, method, op in operations(ours):
        other = theirs[path, method]
        assert op.get("parameters") == other.get("parameters"), (path, method)
        assert op.get("requestBody", {}).get("required") == other.get("requestBody", {}).get("required")
        assert target(op.get("requestBody", {})) == target(other.get("requestBody", {})), (path, method)


def test_responses_are_upstream_plus_ours(ours, upstream):
    theirs = {(path, method): op for path, method, op in operations(upstream)}
    for path, method, op in operations(ours):
        other = theirs[path, method]["responses"]
        added = {"401", "403", "400"} if is_list(op) else {"401", "403"}
        assert set(op["responses"]) == set(other) | added, (path, method)
        for code, response in other.items():
            assert target(op["responses"][code]) == target(response), (path, method, code)


def test_shared_parameters_and_responses_match(ours, upstream):
    def facts(parameter):
        return {k: v for k, v in parameter.items() if not k.startswith("x-") and k != "description"}

    mine, theirs = ours["components"], upstream["components"]
    assert {k: facts(v) for k, v in mine["parameters"].items()} == {
        k: facts(v) for k, v in theirs["parameters"].items()
    }
    for name, response in theirs["responses"].items():
        assert target(mine["responses"][name]) == target(response), name
