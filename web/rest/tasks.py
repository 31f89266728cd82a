"""Tasks (user tasks that are READY): list/count with Camunda's filters, get, claim, unclaim, complete
(typed variables, validated against the step's form exactly like the web form), form variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from engine.errors import NotFound, PermissionDenied
from engine.views import TaskView
from web.rest.common import (
    actor,
    arg_bool,
    arg_date,
    body_bool,
    format_date,
    json_body,
    paging,
    parse_date,
    service,
    sorting,
)
from web.rest.errors import bad_request
from web.rest.instances import status_filter
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


def task_json(t: TaskView, infos: TaskInfo, suspended: bool = False) -> dict[str, Any]:
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
        "caseInstanceId": None, "caseDefinitionId": None, "suspended": suspended,
        "formKey": ext.get("formKey") or None, "camundaFormRef": form_ref, "tenantId": t.unit_code,
    }


def tasks_json(rows: list[TaskView]) -> list[dict[str, Any]]:
    """A task is suspended while its process instance is (Camunda's `suspended` on the task)."""
    infos = TaskInfo()
    statuses = service().instance_statuses([t.instance_id for t in rows])
    return [task_json(t, infos, statuses.get(t.instance_id) == "suspended") for t in rows]


# The task query, the same in GET /task (query string) and POST /task (JSON body): Camunda's names.
STRING_FILTERS = {"taskId": "task_id", "processInstanceId": "instance_id", "processDefinitionId": "definition_id",
                  "processDefinitionKey": "process_key", "taskDefinitionKey": "element_id", "assignee": "assignee",
                  "candidateGroup": "candidate_group", "candidateUser": "candidate_user", "name": "name"}
BOOL_FILTERS = ("assigned", "unassigned", "includeAssignedTasks", "active", "suspended", "withoutTenantId")
DATE_FILTERS = {"dueBefore": "due_before", "dueAfter": "due_after", "createdBefore": "created_before",
                "createdAfter": "created_after"}
BODY_PROPERTIES = {*STRING_FILTERS, *BOOL_FILTERS, *DATE_FILTERS, "tenantIdIn", "sorting"}


@dataclass
class TaskQuery:
    strings: dict[str, str | None] = field(default_factory=dict)
    flags: dict[str, bool | None] = field(default_factory=dict)
    dates: dict[str, datetime | None] = field(default_factory=dict)
    units: list[str] = field(default_factory=list)
    order: str = "created_at"
    descending: bool = False


def query_from_args() -> TaskQuery:
    a = request.args
    order, descending = sorting(_SORT, "created_at")
    return TaskQuery(
        strings={k: a.get(k) or None for k in STRING_FILTERS}, flags={k: arg_bool(k) for k in BOOL_FILTERS},
        dates={k: arg_date(k) for k in DATE_FILTERS},
        units=[u for u in (a.get("tenantIdIn") or "").split(",") if u], order=order, descending=descending)


def query_from_body(body: dict[str, Any]) -> TaskQuery:
    unknown = sorted(set(body) - BODY_PROPERTIES)
    if unknown:
        raise bad_request(f"Alur does not support the task query propert{'ies' if len(unknown) > 1 else 'y'} "
                          f"{', '.join(repr(u[:60]) for u in unknown[:10])}")
    q = TaskQuery()
    for name in STRING_FILTERS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"'{name}' must be a string")
        q.strings[name] = value or None
    for name in BOOL_FILTERS:
        q.flags[name] = body_bool(body, name)
    for name in DATE_FILTERS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"'{name}' must be a date string (yyyy-MM-dd'T'HH:mm:ss.SSSZ)")
        q.dates[name] = parse_date(value, name) if value else None
    units = body.get("tenantIdIn")
    if units is not None and not (isinstance(units, list) and all(isinstance(u, str) for u in units)):
        raise bad_request("'tenantIdIn' must be an array of strings")
    q.units = [u for u in units or [] if u]
    order = body.get("sorting")
    if order is not None:
        if not isinstance(order, list) or not all(isinstance(o, dict) for o in order):
            raise bad_request("'sorting' must be an array of {sortBy, sortOrder} objects")
        if len(order) > 1:
            raise bad_request("Alur sorts tasks by one property: give one 'sorting' entry")
        if order:
            sort_by, sort_order = order[0].get("sortBy"), order[0].get("sortOrder", "asc")
            if not isinstance(sort_by, str) or sort_by not in _SORT:
                raise bad_request(f"Cannot set query parameter 'sortBy' to value '{sort_by}'")
            if sort_order not in ("asc", "desc"):
                raise bad_request(f"Cannot set query parameter 'sortOrder' to value '{sort_order}'")
            q.order, q.descending = _SORT[sort_by], sort_order == "desc"
    return q


def run_query(q: TaskQuery, first: int, limit: int) -> tuple[list[TaskView], int]:
    f, s = q.flags, q.strings
    statuses = status_filter(f.get("active"), f.get("suspended"))
    if not statuses or f.get("withoutTenantId"):
        return [], 0
    if f.get("includeAssignedTasks") and not (s.get("candidateGroup") or s.get("candidateUser")):
        raise bad_request("Invalid query usage: candidateUser or candidateGroup has to be given with "
                          "'includeAssignedTasks'")
    assigned = True if f.get("assigned") else (False if f.get("unassigned") else None)
    if len(q.units) > 1:
        raise bad_request("tenantIdIn: give one unit code")
    return service().query_tasks(
        actor(), states=["READY"], **{STRING_FILTERS[k]: v for k, v in s.items()},
        **{DATE_FILTERS[k]: v for k, v in q.dates.items()}, assigned=assigned,
        include_assigned=bool(f.get("includeAssignedTasks")),
        instance_statuses=statuses if len(statuses) == 1 else None, unit=q.units[0] if q.units else None,
        first=first, limit=limit, order_by=q.order, descending=q.descending)


@bp.get("/task")
def list_tasks() -> Response:
    first, limit = paging()
    rows, _ = run_query(query_from_args(), first, limit)
    return jsonify(tasks_json(rows))


@bp.post("/task")
def query_tasks() -> Response:
    """Camunda's "Get Tasks (POST)": the query in the JSON body, firstResult/maxResults in the query string."""
    first, limit = paging()
    rows, _ = run_query(query_from_body(json_body()), first, limit)
    return jsonify(tasks_json(rows))


@bp.get("/task/count")
def count_tasks() -> Response:
    return jsonify({"count": run_query(query_from_args(), 0, 0)[1]})


@bp.post("/task/count")
def count_tasks_post() -> Response:
    return jsonify({"count": run_query(query_from_body(json_body()), 0, 0)[1]})


def _ready_task(task_id: str) -> TaskView:
    t = service().task(task_id, actor())
    if t.state != "READY":
        raise NotFound(f"No matching task with id {task_id}")
    return t


@bp.get("/task/<task_id>")
def get_task(task_id: str) -> Response:
    return jsonify(tasks_json([_ready_task(task_id)])[0])


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
