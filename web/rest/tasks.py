"""Tasks (user tasks that are READY): list/count with Camunda's filters, get, claim, unclaim, complete
(typed variables, validated against the step's form exactly like the web form), form variables."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from engine.errors import NotFound, PermissionDenied
from engine.views import TaskView
from web.rest.common import actor, arg_bool, arg_date, format_date, json_body, paging, service, sorting
from web.rest.errors import bad_request
from web.rest.variables import fit_to_form, form_variables, variables_from_rest, variables_to_rest

bp = Blueprint("tasks", __name__)
LATE_REASON_VARIABLE = "alurLateReason"
_SORT = {"created": "created_at", "dueDate": "due_at", "followUpDate": "follow_up_at", "name": "name",
         "id": "id", "assignee": "assignee", "instanceId": "instance_id", "lastUpdated": "created_at"}


class TaskInfo:
    """Per-request cache of the user-task metadata (form reference, documentation) of each definition."""

    def __init__(self) -> None:
        self._infos: dict[str, dict[str, Any]] = {}

    def of(self, t: TaskView) -> dict[str, Any]:
        info = self._infos.get(t.definition_id)
        if info is None:
            try:
                info = self._infos[t.definition_id] = service().definition_info(t.definition_id) or {}
            except NotFound:
                info = self._infos[t.definition_id] = {}
        return dict((info.get("user_tasks") or {}).get(t.element_id) or {})


def task_json(t: TaskView, infos: TaskInfo) -> dict[str, Any]:
    meta = infos.of(t)
    ext = meta.get("extensions") or {}
    form_ref = None
    if ext.get("formRef"):
        version = ext.get("formVersion")
        form_ref = {"key": ext["formRef"], "binding": ext.get("formRefBinding") or "latest",
                    "version": int(version) if str(version or "").isdigit() else None}
    return {
        "id": t.id, "name": t.name, "assignee": t.assignee, "created": format_date(t.created_at),
        "due": format_date(t.due_at), "followUp": format_date(t.follow_up_at),
        "lastUpdated": format_date(t.claimed_at or t.created_at), "delegationState": None,
        "description": meta.get("documentation") or None, "executionId": t.instance_id, "owner": None,
        "parentTaskId": None, "priority": 50, "processDefinitionId": t.definition_id,
        "processInstanceId": t.instance_id, "taskDefinitionKey": t.element_id, "caseExecutionId": None,
        "caseInstanceId": None, "caseDefinitionId": None, "suspended": False,
        "formKey": ext.get("formKey") or None, "camundaFormRef": form_ref, "tenantId": t.unit_code,
    }


def _query(first: int, limit: int) -> tuple[list[TaskView], int]:
    a = request.args
    if arg_bool("suspended") or a.get("withoutTenantId") == "true":
        return [], 0
    assigned = True if arg_bool("assigned") else (False if arg_bool("unassigned") else None)
    units = [u for u in (a.get("tenantIdIn") or "").split(",") if u]
    if len(units) > 1:
        raise bad_request("tenantIdIn: give one unit code")
    order, descending = sorting(_SORT, "created_at")
    return service().query_tasks(
        actor(), states=["READY"], task_id=a.get("taskId") or None, instance_id=a.get("processInstanceId") or None,
        definition_id=a.get("processDefinitionId") or None, process_key=a.get("processDefinitionKey") or None,
        element_id=a.get("taskDefinitionKey") or None, assignee=a.get("assignee") or None, assigned=assigned,
        candidate_group=a.get("candidateGroup") or None, candidate_user=a.get("candidateUser") or None,
        unit=units[0] if units else None, name=a.get("name") or None, due_before=arg_date("dueBefore"),
        due_after=arg_date("dueAfter"), created_before=arg_date("createdBefore"),
        created_after=arg_date("createdAfter"), first=first, limit=limit, order_by=order, descending=descending)


@bp.get("/task")
def list_tasks() -> Response:
    first, limit = paging()
    rows, _ = _query(first, limit)
    infos = TaskInfo()
    return jsonify([task_json(t, infos) for t in rows])


@bp.get("/task/count")
def count_tasks() -> Response:
    _, total = _query(0, 0)
    return jsonify({"count": total})


def _ready_task(task_id: str) -> TaskView:
    t = service().task(task_id, actor())
    if t.state != "READY":
        raise NotFound(f"No matching task with id {task_id}")
    return t


@bp.get("/task/<task_id>")
def get_task(task_id: str) -> Response:
    return jsonify(task_json(_ready_task(task_id), TaskInfo()))


@bp.post("/task/<task_id>/claim")
def claim(task_id: str) -> tuple[str, int]:
    body = json_body()
    user_id = body.get("userId")
    who = actor()
    if user_id is not None and not isinstance(user_id, str):
        raise bad_request("'userId' must be a string")
    if user_id and user_id != who.username:
        if not who.is_admin:
            raise PermissionDenied(f"{who.username} may claim tasks only for themselves")
        who = service().actor(user_id)
    service().claim(task_id, who)
    return "", 204


@bp.post("/task/<task_id>/unclaim")
def unclaim(task_id: str) -> tuple[str, int]:
    service().unclaim(task_id, actor())
    return "", 204


@bp.post("/task/<task_id>/complete")
@bp.post("/task/<task_id>/submit-form")
def complete(task_id: str) -> tuple[Response | str, int]:
    body = json_body()
    raw = body.get("variables")
    values = variables_from_rest(raw)
    late_reason = values.pop(LATE_REASON_VARIABLE, None)
    if late_reason is not None and not isinstance(late_reason, str):
        raise bad_request(f"variable '{LATE_REASON_VARIABLE}' must be a String")
    who = actor()
    form = service().task_form(task_id, who)
    values = fit_to_form(values, raw or {}, form)
    view = service().complete(task_id, who, values, late_reason=late_reason)
    if body.get("withVariablesInReturn") is True:
        return jsonify(variables_to_rest(service().instance(view.id, who).data)), 200
    return "", 204


@bp.get("/task/<task_id>/form-variables")
def get_form_variables(task_id: str) -> Response:
    who = actor()
    _ready_task(task_id)
    names = {n for n in (request.args.get("variableNames") or "").split(",") if n} or None
    return jsonify(form_variables(service().task_form(task_id, who), names))
