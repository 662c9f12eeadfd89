"""Views of the JSON API: one generic set of views serves all nine resources."""

import copy
import re

from flask import current_app, g, jsonify, request

from app import auth, odata, store
from app.api import bp
from app.errors import BadRequest, MethodNotAllowed, NotFound
from app.resources import RESOURCES
from app.spec import openapi_document
from app.validation import unstorable

RESOURCES_BY_PLURAL = {resource.plural: resource for resource in RESOURCES}
IF_MATCH = re.compile(r'^(?:W/)?"?(\d+)"?$')


@bp.before_request
def check_access():
    g.principal = auth.authenticate(request.headers.get("Authorization"), current_app.config["ADMIN_TOKEN"])
    args = request.view_args or {}
    body = request.get_json(force=True, silent=True) if request.method in ("PUT", "PATCH", "POST") else None
    auth.authorize(g.principal, request.method, args.get("collection"), args.get("object_id"), body)
    if args.get("object_id") is not None and unstorable(args["object_id"]):
        raise NotFound("no object has that id")


@bp.get("/openapi.json")
def openapi_json():
    document = copy.deepcopy(openapi_document())
    document["servers"] = [{"url": request.host_url.rstrip("/") + bp.url_prefix}]
    return jsonify(document)


@bp.get("/<collection>")
def list_objects(collection):
    model = _resource(collection).model
    return jsonify(odata.list_documents(model, request.args, max_top=current_app.config["API_MAX_PAGE"]))


@bp.post("/<collection>")
def create_object(collection):
    return jsonify(store.create(_resource(collection), _body())), 201


@bp.get("/<collection>/<object_id>")
def get_object(collection, object_id):
    resource = _resource(collection)
    document = odata.get_document(resource.model, object_id, request.args)
    if document is None:
        raise NotFound(f"{resource.schema_name} {object_id!r} not found")
    return jsonify(document)


@bp.put("/<collection>/<object_id>")
def replace_object(collection, object_id):
    return jsonify(store.replace(_resource(collection), object_id, _body(), _if_match()))


@bp.patch("/<collection>/<object_id>")
def patch_object(collection, object_id):
    return jsonify(store.patch(_resource(collection), object_id, _body(), _if_match()))


@bp.delete("/<collection>/<object_id>")
def delete_object(collection, object_id):
    resource = _resource(collection)
    if not resource.deletable:
        raise MethodNotAllowed(f"{resource.schema_name} objects cannot be deleted")
    store.delete(resource, object_id)
    return jsonify({"message": f"{resource.schema_name} {object_id} deleted"})


def _resource(collection):
    resource = RESOURCES_BY_PLURAL.get(collection)
    if resource is None:
        raise NotFound(f"no such collection: /api/{collection}")
    return resource


def _body():
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise BadRequest("body: must be a JSON document")
    return body


def _if_match():
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = IF_MATCH.match(header.strip())
    if match is None:
        raise BadRequest(f"If-Match: {header!r} is not a revision number")
    return int(match.group(1))
