"""Deployments: list, get, create (multipart, exactly what Camunda Modeler sends), delete."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from engine.service import MAX_DEPLOY_FILE_BYTES
from web.rest.common import actor, arg_bool, format_date, paging, service
from web.rest.definitions import definition_json
from web.rest.errors import RestError, bad_request, error_response

bp = Blueprint("deployments", __name__)

# Multipart fields that are settings, not resources (Camunda's names).
SETTINGS = {"deployment-name", "deployment-source", "enable-duplicate-filtering", "deploy-changed-only",
            "tenant-id", "deployment-activation-time"}
MAX_RESOURCE_BYTES = MAX_DEPLOY_FILE_BYTES  # the web deploy page uses the same cap


def deployment_json(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "links": [{"method": "GET", "href": url_for("rest.deployments.get_deployment", deployment_id=d["id"],
                                                    _external=True), "rel": "self"}],
        "id": d["id"], "name": d["name"], "source": d["source"], "deploymentTime": format_date(d["deployed_at"]),
        "tenantId": None,
    }


def _one(deployment_id: str) -> dict[str, Any]:
    rows, _ = service().deployments(deployment_id=deployment_id, limit=1)
    if not rows:
        from engine.errors import NotFound

        raise NotFound(f"Deployment with id '{deployment_id}' does not exist")
    return rows[0]


@bp.get("/deployment")
def list_deployments() -> Response:
    first, limit = paging()
    rows, _ = service().deployments(deployment_id=request.args.get("id") or None,
                                    name=request.args.get("name") or None,
                                    source=request.args.get("source") or None, first=first, limit=limit)
    return jsonify([deployment_json(d) for d in rows])


@bp.get("/deployment/count")
def count_deployments() -> Response:
    _, total = service().deployments(deployment_id=request.args.get("id") or None,
                                     name=request.args.get("name") or None,
                                     source=request.args.get("source") or None, limit=0)
    return jsonify({"count": total})


@bp.get("/deployment/<deployment_id>")
def get_deployment(deployment_id: str) -> Response:
    return jsonify(deployment_json(_one(deployment_id)))


def _flag(name: str) -> bool:
    value = (request.form.get(name) or "").strip().lower()
    if value in ("", "false"):
        return False
    if value == "true":
        return True
    raise bad_request(f"'{name}' must be true or false")


@bp.post("/deployment/create")
def create_deployment() -> tuple[Response, int] | Response:
    if not request.mimetype.startswith("multipart/form-data"):
        return error_response(400, "InvalidRequestException",
                              "Send the deployment as multipart/form-data with one part per resource")
    files: dict[str, bytes] = {}
    for field_name, storage in request.files.items(multi=True):
        resource = storage.filename or field_name
        content = storage.read(MAX_RESOURCE_BYTES + 1)
        if len(content) > MAX_RESOURCE_BYTES:
            # 413 as for a request over the whole limit, and as the web deploy page answers
            raise RestError(413, f"resource {resource!r} is larger than {MAX_RESOURCE_BYTES // (1024 * 1024)} MB",
                            "RestException")
        if resource in files:
            raise bad_request(f"resource {resource!r} is given twice")
        files[resource] = content
    # A resource sent as a plain field (no filename) still counts, named by its field.
    for field_name, value in request.form.items(multi=True):
        if field_name not in SETTINGS and field_name not in files:
            files[field_name] = value.encode("utf-8")
    if not files:
        raise bad_request("No deployment resources contained in the form upload.")
    duplicate_filtering = _flag("enable-duplicate-filtering") or _flag("deploy-changed-only")
    name = (request.form.get("deployment-name") or "").strip()[:200] or None
    source = (request.form.get("deployment-source") or "").strip()[:200] or None
    result = service().deploy(files, name=name, source=source, actor=actor(),
                              duplicate_filtering=duplicate_filtering)
    deployment_id = result.deployment_id
    if deployment_id is None:  # nothing new: answer with the deployment that holds what was sent
        holders = [d.deployment_id for d in result.definitions] + [f.deployment_id for f in result.forms]
        deployment_id = holders[0] if holders else None
    d = _one(deployment_id) if deployment_id else {"id": None, "name": result.name, "source": source,
                                                   "deployed_at": None}
    body = deployment_json(d)
    definitions: dict[str, Any] = {v.id: definition_json(v) for v in result.definitions}
    body.update({
        # Duplicates map to the existing definitions (Camunda would answer null, which the Modeler cannot start).
        "deployedProcessDefinitions": definitions or None,
        "deployedCaseDefinitions": None,
        "deployedDecisionDefinitions": None,
        "deployedDecisionRequirementsDefinitions": None,
    })
    return jsonify(body), 200


@bp.delete("/deployment/<deployment_id>")
def delete_deployment(deployment_id: str) -> tuple[str, int]:
    cascade = bool(arg_bool("cascade"))
    service().delete_deployment(deployment_id, actor(), cascade=cascade)
    return "", 204


