"""History: process instances (running and ended), user-task activity instances, and tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from engine.views import InstanceView, TaskView
from web.rest.common import actor, arg_bool, arg_date, definition_version, format_date, paging, service, sorting
from web.rest.errors import bad_request

bp = Blueprint("history", __name__)
STATES = {"running": "ACTIVE", "suspended": "SUSPENDED", "completed": "COMPLETED",
          "cancelled": "EXTERNALLY_TERMINATED"}
_INSTANCE_SORT = {"instanceId": "id", "definitionId": "definition_id", "definitionKey": "process_key",
                  "businessKey": "business_key", "startTime": "started_at", "endTime": "ended_at"}
_TASK_SORT = {"taskId": "id", "activityInstanceId": "id", "startTime": "created_at", "endTime": "completed_at",
              "dueDate": "due_at", "followUpDate": "follow_up_at", "taskName": "name", "assignee": "assignee",
              "processInstanceId": "instance_id", "taskDefinitionKey": "element_id"}
_ACTIVITY_SORT = {"activityInstanceId": "id", "instanceId": "instance_id", "activityId": "element_id",
                  "activityName": "name", "startTime": "created_at", "endTime": "completed_at"}


def _millis(start: datetime | None, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def _one_unit() -> str | None:
    units = [u for u in (request.args.get("tenantIdIn") or "").split(",") if u]
    if len(units) > 1:
        raise bad_request("tenantIdIn: give one unit code")
    return units[0] if units else None


def _finished_states(running: list[str], ended: list[str]) -> list[str] | None:
    finished, unfinished = arg_bool("finished"), arg_bool("unfinished")
    if finished and unfinished:
        return []
    if finished:
        return ended
    if unfinished:
        return running
    return None


def historic_instance_json(v: InstanceView) -> dict[str, Any]:
    return {
        "id": v.id, "businessKey": v.business_key, "processDefinitionId": v.definition_id,
        "processDefinitionKey": v.process_key, "processDefinitionName": v.process_name,
        "processDefinitionVersion": definition_version(v.definition_id), "startTime": format_date(v.started_at),
        "endTime": format_date(v.ended_at), "removalTime": None, "durationInMillis": _millis(v.started_at, v.ended_at),
        "startUserId": v.started_by, "startActivityId": None,
        "deleteReason": "cancelled" if v.status == "cancelled" else None, "rootProcessInstanceId": v.id,
        "superProcessInstanceId": None, "superCaseInstanceId": None, "caseInstanceId": None,
        "tenantId": v.unit_code, "state": STATES.get(v.status, "INTERNALLY_TERMINATED"),
    }


def _instances(first: int, limit: int) -> tuple[list[InstanceView], int]:
    a = request.args
    ids = [i for i in (a.get("processInstanceIds") or "").split(",") if i]
    if a.get("processInstanceId"):
        ids.append(a["processInstanceId"])
    order, descending = sorting(_INSTANCE_SORT, "started_at")
    return service().query_instances(
        actor(), instance_ids=ids or None, definition_id=a.get("processDefinitionId") or None,
        process_key=a.get("processDefinitionKey") or None, business_key=a.get("processInstanceBusinessKey") or None,
        statuses=_finished_states(["running", "suspended"], ["completed", "cancelled"]), unit=_one_unit(),
        started_by=a.get("startedBy") or None, started_before=arg_date("startedBefore"),
        started_after=arg_date("startedAfter"), first=first, limit=limit, order_by=order, descending=descending)


@bp.get("/history/process-instance")
def list_historic_instances() -> Response:
    first, limit = paging()
    rows, _ = _instances(first, limit)
    return jsonify([historic_instance_json(v) for v in rows])


@bp.get("/history/process-instance/count")
def count_historic_instances() -> Response:
    return jsonify({"count": _instances(0, 0)[1]})


@bp.get("/history/process-instance/<instance_id>")
def get_historic_instance(instance_id: str) -> Response:
    rows, _ = service().query_instances(actor(), instance_ids=[instance_id], limit=1)
    if not rows:
        from engine.errors import NotFound

        raise NotFound(f"Historic process instance with id {instance_id} does not exist")
    return jsonify(historic_instance_json(rows[0]))


def _tasks(first: int, limit: int, sort: dict[str, str], *, activity: bool = False) -> tuple[list[TaskView], int]:
    a = request.args
    if activity and a.get("activityType") not in (None, "", "userTask"):
        return [], 0
    order, descending = sorting(sort, "created_at")
    task_id = a.get("taskId") or a.get("activityInstanceId") or None
    if task_id and ":" in task_id:  # an activity instance id: `element:task id`
        task_id = task_id.rsplit(":", 1)[1]
    return service().query_tasks(
        actor(), states=_finished_states(["READY"], ["COMPLETED", "CANCELLED"]), task_id=task_id,
        instance_id=a.get("processInstanceId") or None, definition_id=a.get("processDefinitionId") or None,
        process_key=a.get("processDefinitionKey") or None,
        element_id=(a.get("activityId") if activity else a.get("taskDefinitionKey")) or None,
        assignee=(a.get("taskAssignee") or a.get("assignee")) or None, name=a.get("taskName") or None,
        unit=_one_unit(), due_before=arg_date("taskDueBefore"), due_after=arg_date("taskDueAfter"),
        first=first, limit=limit, order_by=order, descending=descending)


def historic_task_json(t: TaskView) -> dict[str, Any]:
    return {
        "id": t.id, "processDefinitionKey": t.process_key, "processDefinitionId": t.definition_id,
        "processInstanceId": t.instance_id, "executionId": t.instance_id, "caseDefinitionKey": None,
        "caseDefinitionId": None, "caseInstanceId": None, "caseExecutionId": None,
        "activityInstanceId": f"{t.element_id}:{t.id}", "name": t.name, "description": None,
        "deleteReason": {"COMPLETED": "completed", "CANCELLED": "deleted"}.get(t.state),
        "owner": None, "assignee": t.completed_by or t.assignee, "startTime": format_date(t.created_at),
        "endTime": format_date(t.completed_at), "duration": _millis(t.created_at, t.completed_at),
        "taskDefinitionKey": t.element_id, "priority": 50, "due": format_date(t.due_at), "parentTaskId": None,
        "followUp": format_date(t.follow_up_at), "tenantId": t.unit_code, "removalTime": None,
        "rootProcessInstanceId": t.instance_id,
    }


@bp.get("/history/task")
def list_historic_tasks() -> Response:
    first, limit = paging()
    rows, _ = _tasks(first, limit, _TASK_SORT)
    return jsonify([historic_task_json(t) for t in rows])


@bp.get("/history/task/count")
def count_historic_tasks() -> Response:
    return jsonify({"count": _tasks(0, 0, _TASK_SORT)[1]})


def historic_activity_json(t: TaskView) -> dict[str, Any]:
    return {
        "id": f"{t.element_id}:{t.id}", "parentActivityInstanceId": t.instance_id, "activityId": t.element_id,
        "activityName": t.name, "activityType": "userTask", "processDefinitionKey": t.process_key,
        "processDefinitionId": t.definition_id, "processInstanceId": t.instance_id, "executionId": t.instance_id,
        "taskId": t.id, "calledProcessInstanceId": None, "calledCaseInstanceId": None,
        "assignee": t.completed_by or t.assignee, "startTime": format_date(t.created_at),
        "endTime": format_date(t.completed_at), "durationInMillis": _millis(t.created_at, t.completed_at),
        "canceled": t.state == "CANCELLED", "completeScope": False, "tenantId": t.unit_code, "removalTime": None,
        "rootProcessInstanceId": t.instance_id,
    }


@bp.get("/history/activity-instance")
def list_historic_activities() -> Response:
    first, limit = paging()
    rows, _ = _tasks(first, limit, _ACTIVITY_SORT, activity=True)
    return jsonify([historic_activity_json(t) for t in rows])


@bp.get("/history/activity-instance/count")
def count_historic_activities() -> Response:
    return jsonify({"count": _tasks(0, 0, _ACTIVITY_SORT, activity=True)[1]})
