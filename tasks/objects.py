"""Reading and writing API objects from actors, through the app's store (rules, revisions, signals)."""

import datetime

from app import store
from app.errors import Conflict, PreconditionFailed
from app.resources import RESOURCES_BY_MODEL


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def timestamp(moment=None):
    return (moment or now()).isoformat().replace("+00:00", "Z")


def parse_time(text):
    """An RFC 3339 time from a document, or None."""
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def status(state, reason, message=None):
    value = {"state": state, "reason": reason, "lastTransitionTime": timestamp()}
    if message:
        value["message"] = message
    return value


def load(model, object_id):
    """The stored document, or None when it is gone."""
    row = model.get_or_none(model.id == object_id)
    return row.data if row else None


class Stale(Exception):
    """The object changed since it was read; the reconcile must run again on the new state."""


def patch(model, document, body):
    """Merge-patch `body` onto the object if it still has `document`'s revision; return the new one."""
    try:
        return store.patch(RESOURCES_BY_MODEL[model], document["id"], body, document["revision"])
    except PreconditionFailed:
        raise Stale(f"{model.schema_name} {document['id']} changed meanwhile") from None


def create(model, body):
    """Create the object; None when an equal one exists already (idempotent re-runs)."""
    try:
        return store.create(RESOURCES_BY_MODEL[model], body)
    except Conflict:
        return None
