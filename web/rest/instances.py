"""Running process instances: list/count, get, cancel (DELETE), variables, activity instances."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from engine.errors import InvalidState, NotFound
from engine.views import InstanceView
from web.rest.common import actor, arg_bool, paging, service, sorting
from web.rest.definitions import instance_json
from web.rest.errors import bad_request
from web.rest.variables import variables_to_rest

bp = Blueprint("instances", __name__)
_SORT = {"instanceId": "id", "definitionKey": "process_key", "definitionId": "definition_id",
         "businessKey": "business_key", "tenantId": "started_at"}


def status_filter(active: bool | None, suspended: bool | None) -> list[str]:
    """Camunda's `active`/`suspended` flags (only `true` narrows; `false` is the default, no filter) as the
    instance statuses to keep. Both true leaves nothing, as in Camunda."""
    statuses = ["running", "suspended"]
    if active:
        statuses = [s for s in statuses if s == "running"]
    if suspended:
        statuses = [s for s in statuses if s == "suspended"]
    return statuses


def _query(first: int, limit: int) -> tuple[list[InstanceView], int]:
    a = request.args
    statuses = status_filter(arg_bool("active"), arg_bool("suspended"))
    if not statuses or a.get("withoutTenantId") == "true":
        return [], 0
    ids = [i for i in (a.get("processInstanceIds") or "").split(",") if i]
    units = [u for u in (a.get("tenantIdIn") or "").split(",") if u]
    if len(units) > 1:
        raise bad_request("tenantIdIn: give one unit code")
    order, descending = sorting(_SORT, "started_at")
    return service().query_instances(
        actor(), instance_ids=ids or None, definition_id=a.get("processDefinitionId") or None,
        process_key=a.get("processDefinitionKey") or None, business_key=a.get("businessKey") or None,
        statuses=statuses, unit=units[0] if units else None, first=first, limit=limit,
        order_by=order, descending=descending)


@bp.get("/process-instance")
def list_instances() -> Response:
    first, limit = paging()
    rows, _ = _query(first, limit)
    return jsonify([instance_json(v) for v in rows])


@bp.get("/process-instance/count")
def count_instances() -> Response:
    return jsonify({"count": _query(0, 0)[1]})


def _running(instance_id: str) -> InstanceView:
    rows, _ = service().query_instances(actor(), instance_ids=[instance_id], statuses=["running", "suspended"],
                                        limit=1)
    if not rows:
        raise NotFound(f"Process instance with id {instance_id} does not exist")
    return rows[0]


@bp.get("/process-instance/<instance_id>")
def get_instance(instance_id: str) -> Response:
    return jsonify(instance_json(_running(instance_id)))


@bp.delete("/process-instance/<instance_id>")
def cancel_instance(instance_id: str) -> tuple[str, int]:
    reason = request.args.get("deleteReason") or None
    try:
        service().cancel_instance(instance_id, actor(), reason=reason)
    except InvalidState as exc:
        raise NotFound(f"Process instance with id {instance_id} does not exist ({exc})") from exc
    return "", 204


@bp.get("/process-instance/<instance_id>/variables")
def get_variables(instance_id: str) -> Response:
    data = service().instance(instance_id, actor()).data
    return jsonify(variables_to_rest(data))


@bp.get("/process-instance/<instance_id>/activity-instances")
def get_activity_instances(instance_id: str) -> Response:
    view = _running(instance_id)
    tasks, _ = service().query_tasks(actor(), states=["READY"], instance_id=instance_id, limit=1000)
    children: list[dict[str, Any]] = [{
        "id": f"{t.element_id}:{t.id}", "parentActivityInstanceId": instance_id, "activityId": t.element_id,
        "activityType": "userTask", "processInstanceId": instance_id, "processDefinitionId": t.definition_id,
        "childActivityInstances": [], "childTransitionInstances": [], "executionIds": [instance_id],
        "activityName": t.name, "name": t.name, "incidentIds": [], "incidents": [],
    } for t in tasks]
    return jsonify({
        "id": instance_id, "parentActivityInstanceId": None, "activityId": view.definition_id,
        "activityType": "processDefinition", "processInstanceId": instance_id,
        "processDefinitionId": view.definition_id, "childActivityInstances": children,
        "childTransitionInstances": [], "executionIds": [instance_id], "activityName": view.process_name,
        "name": view.process_name, "incidentIds": [], "incidents": [],
    })
