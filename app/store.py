"""Writes of API documents: create, replace, merge-patch and delete.

Every write checks the document against our OpenAPI schema and the resource's
rules, keeps `revision` (optimistic concurrency through If-Match), answers a
uniqueness clash with the existing object, and deletes children with their
parent so nothing is left pointing at an object that is gone.
"""

import uuid

import peewee

from app import signals, validation
from app.db import is_postgres, write_transaction
from app.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from app.models import AssetScan, Finding
from app.resources import RESOURCES_BY_MODEL


def create(resource, body):
    """Store a new object; return its document."""
    document = _checked_body(resource, body)
    if "id" in document:
        raise BadRequest("id: is assigned by the server and must not be sent")
    document["id"] = str(uuid.uuid4())
    document["revision"] = 1
    columns = resource.columns(document, None)
    try:
        with write_transaction():
            _check_relations(resource, columns, document["id"])
            resource.model.insert(id=document["id"], revision=1, data=document, **columns).execute()
    except peewee.IntegrityError:
        _explain_integrity_error(resource, columns, document["id"])
    signals.changed(resource.schema_name, document["id"], document, None)
    return document


def replace(resource, object_id, body, if_match):
    """PUT: replace the whole stored document."""
    return _update(resource, object_id, if_match, lambda stored: _checked_body(resource, body))


def patch(resource, object_id, body, if_match):
    """PATCH: apply an RFC 7386 merge patch to the stored document."""
    if not isinstance(body, dict):
        raise BadRequest("body: a merge patch must be a JSON object")
    return _update(resource, object_id, if_match,
                   lambda stored: _checked_body(resource, merge_patch(stored, body)))


def delete(resource, object_id):
    """Delete the object and, first, every object that belongs to it."""
    with write_transaction():
        previous = _locked_row(resource, object_id).data
        _delete_rows(resource.model, [object_id])
    signals.changed(resource.schema_name, object_id, None, previous)


def merge_patch(target, patch_body):
    """Return `target` with an RFC 7386 merge patch applied (null removes a member)."""
    if not isinstance(patch_body, dict):
        return patch_body
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch_body.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _checked_body(resource, body):
    if not isinstance(body, dict):
        raise BadRequest(f"body: must be a JSON object describing a {resource.schema_name}")
    document = dict(body)
    document.pop("revision", None)
    validation.validate(resource.schema_name, document)
    return document


def _update(resource, object_id, if_match, make_document):
    """Read, change and write the object under a row lock, so no update is lost."""
    model = resource.model
    columns = {}
    try:
        with write_transaction():
            stored = _locked_row(resource, object_id)
            if if_match is not None and if_match != stored.revision:
                raise PreconditionFailed(
                    f"revision {if_match} does not match the stored revision {stored.revision}")
            document = make_document(stored.data)
            if document.get("id", object_id) != object_id:
                raise BadRequest(f"id: {document['id']!r} does not match the path id {object_id!r}")
            document["id"] = object_id
            document["revision"] = stored.revision + 1
            columns = resource.columns(document, stored.data)
            _check_relations(resource, columns, object_id)
            (model
             .update(revision=document["revision"], data=document, **columns)
             .where(model.id == object_id)
             .execute())
    except peewee.IntegrityError:
        _explain_integrity_error(resource, columns, object_id)
    signals.changed(resource.schema_name, object_id, document, stored.data)
    return document


def _locked_row(resource, object_id):
    query = resource.model.select().where(resource.model.id == object_id)
    if is_postgres():
        query = query.for_update()
    row = query.first()
    if row is None:
        raise NotFound(f"{resource.schema_name} {object_id!r} not found")
    return row


def _check_relations(resource, columns, own_id):
    """Refuse links to objects that do not exist and clashes with another object's keys."""
    model = resource.model
    for prop, field_name in model.relationships.items():
        target = model._meta.fields[field_name].rel_model
        target_id = columns.get(field_name)
        if target_id is not None and not target.select().where(target.id == target_id).exists():
            raise BadRequest(f"{prop}: {target.schema_name} {target_id!r} does not exist")
    _raise_on_conflict(resource, columns, own_id)


def _explain_integrity_error(resource, columns, own_id):
    # A concurrent writer took the unique key, or deleted a target, after our checks.
    _raise_on_conflict(resource, columns, own_id)
    raise Conflict(f"{resource.schema_name}: a concurrent change conflicts with this one; retry")


def _unique_keys(model):
    """Yield the tuples of field names that must be unique together."""
    for field in model._meta.sorted_fields:
        if field.unique and field.name not in ("pk", "id"):
            yield (field.name,)
    for fields, unique in model._meta.indexes:
        if unique:
            yield fields


def _raise_on_conflict(resource, columns, own_id):
    model = resource.model
    for key in _unique_keys(model):
        values = [columns.get(name) for name in key]
        if None in values:
            continue
        condition = model.id != own_id
        for name, value in zip(key, values):
            condition &= getattr(model, name) == value
        existing = model.get_or_none(condition)
        if existing is not None:
            message = f"{resource.schema_name} already exists with the same {', '.join(key)}"
            raise Conflict(message, body={"message": message, resource.exists_key: existing.data})


def _delete_rows(model, ids):
    for child, fk in RESOURCES_BY_MODEL[model].children:
        child_ids = child.select(child.id).where(getattr(child, fk).in_(ids))
        _delete_rows(child, child_ids)
    if model is AssetScan:
        _forget_last_seen_by(ids)
    model.delete().where(model.id.in_(ids)).execute()


def _forget_last_seen_by(asset_scan_ids):
    """Findings keep their history but stop pointing at asset scans that are deleted."""
    without = (peewee.SQL("data - 'lastSeenBy'") if is_postgres()
               else peewee.SQL("json_remove(data, '$.lastSeenBy')"))
    (Finding
     .update(last_seen_by=None, data=without)
     .where(Finding.last_seen_by.in_(asset_scan_ids))
     .execute())
