"""Process definitions: list, get by id or key, BPMN XML, and start (by id, by key, by key and unit)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from engine.accounts import Actor
from engine.errors import NotFound
from engine.views import DefinitionView, InstanceView
from web.rest.common import actor, arg_bool, arg_int, json_body, paging, service, sorting
from web.rest.errors import RestError, bad_request
from web.rest.variables import ALUR_UNIT_VARIABLE, variables_from_rest, variables_to_rest

bp = Blueprint("definitions", __name__)
CATEGORY = "http://bpmn.io/schema/bpmn"


def definition_json(d: DefinitionView) -> dict[str, Any]:
    return {"id": d.id, "key": d.key, "category": CATEGORY, "description": None, "name": d.name,
            "version": d.version, "resource": d.resource, "deploymentId": d.deployment_id, "diagram": None,
            "suspended": False, "tenantId": None, "versionTag": None, "historyTimeToLive": None,
            "startableInTasklist": True}


def instance_json(view: InstanceView) -> dict[str, Any]:
    return {
        "links": [{"method": "GET", "href": url_for("rest.instances.get_instance", instance_id=view.id,
                                                    _external=True), "rel": "self"}],
        "id": view.id, "definitionId": view.definition_id, "businessKey": view.business_key,
        "caseInstanceId": None, "ended": view.status not in ("running", "suspended"),
        "suspended": view.status == "suspended", "tenantId": view.unit_code,
    }


_SORT = {"id": "id", "key": "key", "name": "name", "version": "version", "deploymentId": "deployment_id"}


def _filtered() -> list[DefinitionView]:
    key = request.args.get("key") or None
    latest = bool(arg_bool("latestVersion"))
    rows = service().definitions(key=key, latest_only=latest)
    keys_in = request.args.get("keysIn")
    wanted_keys = set(keys_in.split(",")) if keys_in else None
    checks = [
        ("processDefinitionId", lambda d, v: d.id == v), ("deploymentId", lambda d, v: d.deployment_id == v),
        ("name", lambda d, v: d.name == v), ("resourceName", lambda d, v: d.resource == v),
        ("nameLike", lambda d, v: v.replace("%", "").lower() in d.name.lower()),
        ("keyLike", lambda d, v: v.replace("%", "").lower() in d.key.lower()),
    ]
    version = arg_int("version", 0) if request.args.get("version") else None
    out = []
    for d in rows:
        if wanted_keys is not None and d.key not in wanted_keys:
            continue
        if version is not None and d.version != version:
            continue
        if all(request.args.get(p) in (None, "") or f(d, request.args[p]) for p, f in checks):
            out.append(d)
    if arg_bool("suspended"):
        return []
    if request.args.get("tenantIdIn") or arg_bool("withoutTenantId") is False:
        return []  # definitions belong to no unit
    return out


@bp.get("/process-definition")
def list_definitions() -> Response:
    first, limit = paging()
    order, descending = sorting(_SORT, "key")
    rows = sorted(_filtered(), key=lambda d: (getattr(d, order), d.version, d.id), reverse=descending)
    return jsonify([definition_json(d) for d in rows[first:first + limit]])


@bp.get("/process-definition/count")
def count_definitions() -> Response:
    return jsonify({"count": len(_filtered())})


def _latest(key: str) -> DefinitionView:
    rows = service().definitions(key=key, latest_only=True)
    if not rows:
        raise NotFound(f"No matching process definition with key: {key} and no tenant-id")
    return rows[-1]


@bp.get("/process-definition/<definition_id>")
def get_definition(definition_id: str) -> Response:
    return jsonify(definition_json(service().definition(definition_id)))


@bp.get("/process-definition/key/<key>")
def get_definition_by_key(key: str) -> Response:
    return jsonify(definition_json(_latest(key)))


@bp.get("/process-definition/<definition_id>/xml")
def get_xml(definition_id: str) -> Response:
    return jsonify({"id": definition_id, "bpmn20Xml": service().definition_xml(definition_id)})


@bp.get("/process-definition/key/<key>/xml")
def get_xml_by_key(key: str) -> Response:
    d = _latest(key)
    return jsonify({"id": d.id, "bpmn20Xml": service().definition_xml(d.id)})


def resolve_unit(who: Actor, values: dict[str, Any], tenant_id: str | None) -> str:
    """The unit an instance starts in (Camunda has no units): the variable `alurUnit`, else the tenant id
    in the URL, else the caller's only unit, else ALUR_REST_DEFAULT_UNIT; otherwise a 400 that says so."""
    unit = values.pop(ALUR_UNIT_VARIABLE, None)
    if unit is not None and not isinstance(unit, str):
        raise bad_request(f"variable '{ALUR_UNIT_VARIABLE}' must be a String: the unit code")
    if unit and tenant_id and unit != tenant_id:
        raise bad_request(f"variable '{ALUR_UNIT_VARIABLE}' ({unit}) and tenant id ({tenant_id}) differ")
    unit = unit or tenant_id
    if unit:
        return unit
    if len(who.unit_ids) == 1:
        (unit_id,) = who.unit_ids
        codes = {u["id"]: u["code"] for u in service().units()}
        return str(codes[unit_id])
    default = current_app.config.get("ALUR_REST_DEFAULT_UNIT")
    if default:
        return str(default)
    held = "no unit" if not who.unit_ids else f"roles in {len(who.unit_ids)} units"
    raise bad_request(f"Alur starts every process instance in a unit and {who.username} holds {held}: "
                      f"give the unit code as the String variable '{ALUR_UNIT_VARIABLE}' "
                      "(or start through /process-definition/key/{key}/tenant-id/{unit}/start)")


def _start(definition_id: str | None, key: str | None, tenant_id: str | None = None) -> Response:
    body = json_body()
    for unsupported in ("startInstructions", "caseInstanceId"):
        if body.get(unsupported):
            raise RestError(400, f"'{unsupported}' is not supported by Alur", "InvalidRequestException")
    business_key = body.get("businessKey")
    if business_key is not None and not isinstance(business_key, str):
        raise bad_request("'businessKey' must be a string")
    values = variables_from_rest(body.get("variables"))
    who = actor()
    unit = resolve_unit(who, values, tenant_id)
    if definition_id is None:
        definition_id = _latest(key or "").id
    view = service().start(definition_id=definition_id, unit=unit, business_key=business_key or None,
                           variables=values, actor=who)
    result = instance_json(view)
    if body.get("withVariablesInReturn") is True:
        result["variables"] = variables_to_rest(view.data)
    return jsonify(result)


@bp.post("/process-definition/<definition_id>/start")
def start_by_id(definition_id: str) -> Response:
    service().definition(definition_id)  # 404 before anything else
    return _start(definition_id, None)


@bp.post("/process-definition/key/<key>/start")
def start_by_key(key: str) -> Response:
    return _start(None, key)


@bp.post("/process-definition/key/<key>/tenant-id/<tenant_id>/start")
def start_by_key_and_unit(key: str, tenant_id: str) -> Response:
    return _start(None, key, tenant_id)
