"""Field kinds of every API object, derived from the OpenAPI components.

The compiler needs to know, for each property path, whether it holds a string,
a number, a datetime, an object, a collection, a discriminated union or a
relationship to another stored object; the OpenAPI document already says so,
so we read it rather than keep a second hand-written map.
"""

import functools
from dataclasses import dataclass, field

from app.models import MODELS_BY_SCHEMA

REF_PREFIX = "#/components/schemas/"
RELATIONSHIP_SUFFIX = "Relationship"

#: Primitive kinds a value can be compared as.
STRING, INTEGER, NUMBER, BOOLEAN, DATETIME, ANY = "string", "integer", "number", "boolean", "datetime", "any"


@dataclass(eq=False)
class Prim:
    type: str

    def describe(self):
        return self.type


@dataclass(eq=False)
class Array:
    items: object = None

    def describe(self):
        return "a collection"


@dataclass(eq=False)
class Obj:
    properties: dict = field(default_factory=dict)
    #: Kind of the values of a map (`additionalProperties`), else None.
    extra: object = None

    def describe(self):
        return "an object"

    def lookup(self, name, more_follows):
        if name in self.properties:
            return self.properties[name]
        return self.extra


@dataclass(eq=False)
class Union:
    """A discriminated oneOf/anyOf: a path may name a property of any variant."""

    discriminator: str = None
    variants: list = field(default_factory=list)

    def describe(self):
        return "an object"

    def lookup(self, name, more_follows):
        # Variants may disagree (VMInfo.image is a string, ContainerInfo.image an
        # object): a path that goes on needs the structured one, a leaf the primitive.
        candidates = [k for v in self.variants if (k := v.lookup(name, more_follows)) is not None]
        if not candidates:
            return None
        structured = [k for k in candidates if not isinstance(k, Prim)]
        primitive = [k for k in candidates if isinstance(k, Prim)]
        preferred = structured if more_follows else primitive
        return (preferred or candidates)[0]


@dataclass(eq=False)
class Rel:
    """A `{id}` reference to another stored object (`<Schema>Relationship`)."""

    schema: str

    @property
    def model(self):
        return MODELS_BY_SCHEMA[self.schema]

    def describe(self):
        return "a relationship"


def _schemas():
    from app import spec

    return spec.openapi_document()["components"]["schemas"]


class _Resolver:
    """Turns schema objects into kinds; named schemas are cached, so cycles terminate."""

    def __init__(self, schemas):
        self.schemas = schemas
        self.named = {}

    def ref(self, ref):
        name = ref[len(REF_PREFIX):]
        target = name[: -len(RELATIONSHIP_SUFFIX)] if name.endswith(RELATIONSHIP_SUFFIX) else None
        if target in MODELS_BY_SCHEMA:
            return Rel(target)
        if name not in self.named:
            schema = self.schemas[name]
            if "oneOf" in schema or "anyOf" in schema or _is_object(schema):
                # Register an empty shell first: a schema that refers back to
                # itself gets the shell, which is filled in below.
                shell = Union() if ("oneOf" in schema or "anyOf" in schema) else Obj()
                self.named[name] = shell
                self.fill(shell, schema)
            else:
                self.named[name] = self.kind(schema)
        return self.named[name]

    def kind(self, schema):
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "oneOf" in schema or "anyOf" in schema:
            return self.fill(Union(), schema)
        if _is_object(schema):
            return self.fill(Obj(), schema)
        kind = schema.get("type")
        if kind == "array":
            return Array(self.kind(schema.get("items", {})))
        if kind == "string":
            return Prim(DATETIME if schema.get("format") == "date-time" else STRING)
        if kind in (INTEGER, NUMBER, BOOLEAN):
            return Prim(kind)
        return Prim(ANY)

    def fill(self, shell, schema):
        if isinstance(shell, Union):
            shell.discriminator = (schema.get("discriminator") or {}).get("propertyName")
            shell.variants = [self.kind(v) for v in schema.get("oneOf") or schema.get("anyOf")]
            return shell
        for part in schema.get("allOf", []):
            merged = self.kind(part)
            if isinstance(merged, Obj):
                shell.properties.update(merged.properties)
                shell.extra = shell.extra or merged.extra
        for name, prop in (schema.get("properties") or {}).items():
            shell.properties[name] = self.kind(prop)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            shell.extra = self.kind(extra)
        elif extra is True or (extra is None and not shell.properties and "allOf" not in schema):
            shell.extra = Prim(ANY)  # a free-form object: any key
        return shell


def _is_object(schema):
    keys = ("allOf", "properties", "additionalProperties")
    return schema.get("type") == "object" or any(key in schema for key in keys)


@functools.lru_cache(maxsize=None)
def _resolver():
    return _Resolver(_schemas())


def root_kind(model):
    """The object kind of a stored model's documents."""
    return _resolver().ref(REF_PREFIX + model.schema_name)
