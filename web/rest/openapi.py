"""The OpenAPI 3 document of what /engine-rest serves (hand-written: the Camunda 7 subset Alur implements,
with Alur's additions: the unit as `tenantId`, `alurUnit` and `alurLateReason` variables)."""

from __future__ import annotations

from typing import Any

from web.rest import CAMUNDA_VERSION

_STR = {"type": "string"}
_STR_N = {"type": "string", "nullable": True}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_DATE_N = {"type": "string", "nullable": True, "description": "yyyy-MM-dd'T'HH:mm:ss.SSSZ"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _q(name: str, schema: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema or _STR}
    if description:
        p["description"] = description
    return p


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = {"$ref": "#/components/responses/Error"}
_COMMON_ERRORS = {"400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR}
_PAGING = [_q("firstResult", {"type": "integer", "minimum": 0}),
           _q("maxResults", {"type": "integer", "minimum": 0, "maximum": 1000})]
_DATE_Q = {"type": "string", "description": "yyyy-MM-dd'T'HH:mm:ss.SSSZ"}


def _sort(values: list[str]) -> list[dict[str, Any]]:
    return [_q("sortBy", {"type": "string", "enum": values}),
            _q("sortOrder", {"type": "string", "enum": ["asc", "desc"]})]


def _get(summary: str, response: dict[str, Any], params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params or [], "responses": {"200": response, **_COMMON_ERRORS}}}


def _list(summary: str, item: str, params: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (_get(summary, _json({"type": "array", "items": _ref(item)}), [*params, *_PAGING]),
            _get(summary.replace("List", "Count"), _json(_ref("Count")), params))


def _no_content(method: str, summary: str, params: list[dict[str, Any]],
                body: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params,
                          "responses": {"204": {"description": "Done"}, **_COMMON_ERRORS, "409": _ERR, **(extra or {})}}
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return {method: op}


def document() -> dict[str, Any]:
    task_filters = [_q(n) for n in ("taskId", "processInstanceId", "processDefinitionId", "processDefinitionKey",
                                    "taskDefinitionKey", "assignee", "candidateGroup", "candidateUser", "name",
                                    "tenantIdIn")]
    task_filters += [_q(n, _BOOL) for n in ("assigned", "unassigned", "includeAssignedTasks", "active", "suspended")]
    task_filters += [_q(n, _DATE_Q) for n in ("dueBefore", "dueAfter", "createdBefore", "createdAfter")]
    task_filters += _sort(["created", "dueDate", "followUpDate", "name", "id", "assignee", "instanceId"])
    instance_filters = [_q(n) for n in ("processInstanceIds", "businessKey", "processDefinitionId",
                                        "processDefinitionKey", "tenantIdIn")]
    instance_filters += [_q("active", _BOOL), _q("suspended", _BOOL)]
    instance_filters += _sort(["instanceId", "definitionKey", "definitionId", "businessKey"])
    definition_filters = [_q(n) for n in ("key", "keysIn", "processDefinitionId", "deploymentId", "name",
                                          "nameLike", "keyLike", "resourceName")]
    definition_filters += [_q("latestVersion", _BOOL), _q("version", {"type": "integer", "minimum": 1})]
    definition_filters += _sort(["id", "key", "name", "version", "deploymentId"])
    finished = [_q("finished", _BOOL), _q("unfinished", _BOOL)]
    hist_instance_filters = [_q(n) for n in ("processInstanceId", "processInstanceIds", "processDefinitionId",
                                             "processDefinitionKey", "processInstanceBusinessKey", "startedBy",
                                             "tenantIdIn")]
    hist_instance_filters += [*finished, _q("startedBefore", _DATE_Q), _q("startedAfter", _DATE_Q)]
    hist_instance_filters += _sort(["instanceId", "definitionId", "definitionKey", "businessKey", "startTime",
                                    "endTime"])
    hist_task_filters = [_q(n) for n in ("taskId", "processInstanceId", "processDefinitionId", "processDefinitionKey",
                                         "taskDefinitionKey", "taskAssignee", "taskName", "tenantIdIn")]
    hist_task_filters += [*finished, _q("taskDueBefore", _DATE_Q), _q("taskDueAfter", _DATE_Q)]
    hist_task_filters += _sort(["taskId", "startTime", "endTime", "dueDate", "taskName", "assignee",
                                "processInstanceId"])
    activity_filters = [_q(n) for n in ("activityInstanceId", "processInstanceId", "processDefinitionId",
                                        "processDefinitionKey", "activityId", "activityType", "tenantIdIn")]
    activity_filters += [*finished, *_sort(["activityInstanceId", "instanceId", "activityId", "activityName",
                                            "startTime", "endTime"])]
    deployment_filters = [_q("id"), _q("name"), _q("source")]

    deployment_list, deployment_count = _list("List deployments", "Deployment", deployment_filters)
    definition_list, definition_count = _list("List process definitions", "ProcessDefinition", definition_filters)
    instance_list, instance_count = _list("List running process instances", "ProcessInstance", instance_filters)
    task_list, task_count = _list("List open tasks", "Task", task_filters)
    task_query_body = {"required": False, "content": {"application/json": {"schema": _ref("TaskQuery")}}}
    task_list["post"] = {
        "summary": "List open tasks, the query in the body (Camunda's Get Tasks (POST))",
        "parameters": _PAGING, "requestBody": task_query_body,
        "responses": {"200": _json({"type": "array", "items": _ref("Task")}), **_COMMON_ERRORS}}
    task_count["post"] = {
        "summary": "Count open tasks, the query in the body", "parameters": [], "requestBody": task_query_body,
        "responses": {"200": _json(_ref("Count")), **_COMMON_ERRORS}}
    hi_list, hi_count = _list("List historic process instances", "HistoricProcessInstance", hist_instance_filters)
    ht_list, ht_count = _list("List historic tasks", "HistoricTask", hist_task_filters)
    ha_list, ha_count = _list("List historic activity instances (user tasks)", "HistoricActivityInstance",
                              activity_filters)
    start = {"post": {
        "summary": "Start a process instance (the unit: variable alurUnit, else the caller's only unit)",
        "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("StartRequest")}}},
        "responses": {"200": _json(_ref("ProcessInstance")), **_COMMON_ERRORS, "409": _ERR}}}

    paths: dict[str, Any] = {
        "/version": _get("Camunda version Alur answers as", _json(_ref("Version"))),
        "/deployment": deployment_list,
        "/deployment/count": deployment_count,
        "/deployment/create": {"post": {
            "summary": "Deploy .bpmn and .form files (multipart, as Camunda Modeler sends them)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {
                    "deployment-name": _STR, "deployment-source": _STR,
                    "enable-duplicate-filtering": {"type": "string", "enum": ["true", "false"]},
                    "deploy-changed-only": {"type": "string", "enum": ["true", "false"]},
                    "tenant-id": _STR, "data": {"type": "string", "format": "binary"}}}}}},
            "responses": {"200": _json(_ref("DeploymentWithDefinitions")), **_COMMON_ERRORS, "409": _ERR,
                          "413": _ERR}}},
        "/deployment/{id}": {
            **_get("Get a deployment", _json(_ref("Deployment")), [_p("id")]),
            **_no_content("delete", "Delete a deployment (designer; refused with instances unless cascade)",
                          [_p("id"), _q("cascade", _BOOL)]),
        },
        "/process-definition": definition_list,
        "/process-definition/count": definition_count,
        "/process-definition/{id}": _get("Get a process definition", _json(_ref("ProcessDefinition")), [_p("id")]),
        "/process-definition/key/{key}": _get("Latest version of a key", _json(_ref("ProcessDefinition")),
                                              [_p("key")]),
        "/process-definition/{id}/xml": _get("BPMN XML", _json(_ref("Xml")), [_p("id")]),
        "/process-definition/key/{key}/xml": _get("BPMN XML of the latest version", _json(_ref("Xml")), [_p("key")]),
        "/process-definition/{id}/start": {"post": {**start["post"], "parameters": [_p("id")]}},
        "/process-definition/key/{key}/start": {"post": {**start["post"], "parameters": [_p("key")]}},
        "/process-definition/key/{key}/tenant-id/{tenant-id}/start": {"post": {
            **start["post"], "summary": "Start in the unit named by tenant-id", "parameters": [_p("key"),
                                                                                               _p("tenant-id")]}},
        "/process-instance": instance_list,
        "/process-instance/count": instance_count,
        "/process-instance/{id}": {
            **_get("Get a running process instance", _json(_ref("ProcessInstance")), [_p("id")]),
            **_no_content("delete", "Cancel a running or suspended instance (admin, or who started it; audited)",
                          [_p("id"), _q("deleteReason"), _q("skipCustomListeners", _BOOL),
                           _q("skipIoMappings", _BOOL)]),
        },
        "/process-instance/{id}/variables": _get("Process variables", _json(_ref("VariableMap")), [_p("id")]),
        "/process-instance/{id}/activity-instances": _get("Open user tasks as an activity tree",
                                                          _json(_ref("ActivityInstance")), [_p("id")]),
        "/task": task_list,
        "/task/count": task_count,
        "/task/{id}": _get("Get an open task", _json(_ref("Task")), [_p("id")]),
        "/task/{id}/claim": _no_content("post", "Claim", [_p("id")], _ref("UserIdRequest")),
        "/task/{id}/unclaim": _no_content("post", "Unclaim (own tasks)", [_p("id")]),
        "/task/{id}/complete": _no_content(
            "post", "Complete with typed variables, validated against the step's form", [_p("id")],
            _ref("CompleteRequest"), {"200": _json(_ref("VariableMap"), "Variables (withVariablesInReturn)")}),
        "/task/{id}/submit-form": _no_content(
            "post", "Same as complete", [_p("id")], _ref("CompleteRequest"),
            {"200": _json(_ref("VariableMap"), "Variables (withVariablesInReturn)")}),
        "/task/{id}/form-variables": _get("The step's form fields with defaults", _json(_ref("VariableMap")),
                                          [_p("id"), _q("variableNames")]),
        "/history/process-instance": hi_list,
        "/history/process-instance/count": hi_count,
        "/history/process-instance/{id}": _get("Get a historic process instance",
                                               _json(_ref("HistoricProcessInstance")), [_p("id")]),
        "/history/task": ht_list,
        "/history/task/count": ht_count,
        "/history/activity-instance": ha_list,
        "/history/activity-instance/count": ha_count,
    }
    link = {"type": "object", "properties": {"method": _STR, "href": _STR, "rel": _STR}}
    variable = {"type": "object", "properties": {
        "value": {"nullable": True}, "type": {"type": "string", "description": (
            "String, Integer, Short, Long, Double, Boolean, Date (yyyy-MM-dd'T'HH:mm:ss.SSSZ), Json, Null")},
        "valueInfo": {"type": "object"}}}
    deployment_props = {"links": {"type": "array", "items": link}, "id": _STR_N, "name": _STR_N, "source": _STR_N,
                        "deploymentTime": _DATE_N, "tenantId": _STR_N}
    schemas: dict[str, Any] = {
        "Version": {"type": "object", "properties": {"version": _STR}, "required": ["version"]},
        "Count": {"type": "object", "properties": {"count": _INT}, "required": ["count"]},
        "Error": {"type": "object", "properties": {"type": _STR, "message": _STR}, "required": ["type", "message"]},
        "Deployment": {"type": "object", "properties": deployment_props, "required": ["id"]},
        "DeploymentWithDefinitions": {"type": "object", "properties": {
            **deployment_props,
            "deployedProcessDefinitions": {"type": "object", "nullable": True,
                                           "additionalProperties": _ref("ProcessDefinition")},
            "deployedCaseDefinitions": {"type": "object", "nullable": True},
            "deployedDecisionDefinitions": {"type": "object", "nullable": True},
            "deployedDecisionRequirementsDefinitions": {"type": "object", "nullable": True}}},
        "ProcessDefinition": {"type": "object", "properties": {
            "id": _STR, "key": _STR, "category": _STR_N, "description": _STR_N, "name": _STR_N, "version": _INT,
            "resource": _STR_N, "deploymentId": _STR_N, "diagram": _STR_N, "suspended": _BOOL, "tenantId": _STR_N,
            "versionTag": _STR_N, "historyTimeToLive": {"type": "integer", "nullable": True},
            "startableInTasklist": _BOOL}, "required": ["id", "key", "version"]},
        "Xml": {"type": "object", "properties": {"id": _STR, "bpmn20Xml": _STR}},
        "Variable": variable,
        "VariableMap": {"type": "object", "additionalProperties": _ref("Variable")},
        "StartRequest": {"type": "object", "properties": {
            "businessKey": _STR_N, "variables": _ref("VariableMap"), "withVariablesInReturn": _BOOL}},
        "CompleteRequest": {"type": "object", "properties": {
            "variables": _ref("VariableMap"), "withVariablesInReturn": _BOOL}},
        "UserIdRequest": {"type": "object", "properties": {"userId": _STR_N}},
        "TaskQuery": {"type": "object", "additionalProperties": False, "properties": {
            **{k: _STR_N for k in ("taskId", "processInstanceId", "processDefinitionId", "processDefinitionKey",
                                    "taskDefinitionKey", "assignee", "candidateGroup", "candidateUser", "name")},
            **{k: {"type": "boolean", "nullable": True} for k in (
                "assigned", "unassigned", "includeAssignedTasks", "active", "suspended", "withoutTenantId")},
            **{k: _DATE_N for k in ("dueBefore", "dueAfter", "createdBefore", "createdAfter")},
            "tenantIdIn": {"type": "array", "items": _STR, "description": "one unit code"},
            "sorting": {"type": "array", "maxItems": 1, "items": {"type": "object", "properties": {
                "sortBy": {"type": "string", "enum": ["created", "dueDate", "followUpDate", "name", "id",
                                                      "assignee", "instanceId"]},
                "sortOrder": {"type": "string", "enum": ["asc", "desc"]}}}}}},
        "ProcessInstance": {"type": "object", "properties": {
            "links": {"type": "array", "items": link}, "id": _STR, "definitionId": _STR, "businessKey": _STR_N,
            "caseInstanceId": _STR_N, "ended": _BOOL, "suspended": _BOOL, "tenantId": _STR_N,
            "variables": _ref("VariableMap")}, "required": ["id", "definitionId", "ended"]},
        "ActivityInstance": {"type": "object", "properties": {
            "id": _STR, "parentActivityInstanceId": _STR_N, "activityId": _STR, "activityType": _STR,
            "processInstanceId": _STR, "processDefinitionId": _STR, "activityName": _STR_N, "name": _STR_N,
            "childActivityInstances": {"type": "array", "items": {"type": "object"}},
            "childTransitionInstances": {"type": "array", "items": {"type": "object"}},
            "executionIds": {"type": "array", "items": _STR}}},
        "Task": {"type": "object", "properties": {
            **{k: _STR_N for k in ("name", "assignee", "delegationState", "description", "executionId", "owner",
                                    "parentTaskId", "processDefinitionId", "processInstanceId", "taskDefinitionKey",
                                    "caseExecutionId", "caseInstanceId", "caseDefinitionId", "formKey",
                                    "tenantId")},
            **{k: _DATE_N for k in ("created", "due", "followUp", "lastUpdated")},
            "id": _STR, "priority": _INT, "suspended": _BOOL,
            "camundaFormRef": {"type": "object", "nullable": True}}, "required": ["id"]},
        "HistoricProcessInstance": {"type": "object", "properties": {
            **{k: _STR_N for k in ("businessKey", "processDefinitionId", "processDefinitionKey",
                                    "processDefinitionName", "startUserId", "startActivityId", "deleteReason",
                                    "rootProcessInstanceId", "superProcessInstanceId", "superCaseInstanceId",
                                    "caseInstanceId", "tenantId")},
            **{k: _DATE_N for k in ("startTime", "endTime", "removalTime")},
            "id": _STR, "processDefinitionVersion": {"type": "integer", "nullable": True},
            "durationInMillis": {"type": "integer", "nullable": True},
            "state": {"type": "string", "enum": ["ACTIVE", "SUSPENDED", "COMPLETED", "EXTERNALLY_TERMINATED",
                                                 "INTERNALLY_TERMINATED"]}}, "required": ["id", "state"]},
        "HistoricTask": {"type": "object", "properties": {
            **{k: _STR_N for k in ("processDefinitionKey", "processDefinitionId", "processInstanceId", "executionId",
                                    "caseDefinitionKey", "caseDefinitionId", "caseInstanceId", "caseExecutionId",
                                    "activityInstanceId", "name", "description", "deleteReason", "owner", "assignee",
                                    "taskDefinitionKey", "parentTaskId", "tenantId", "rootProcessInstanceId")},
            **{k: _DATE_N for k in ("startTime", "endTime", "due", "followUp", "removalTime")},
            "id": _STR, "duration": {"type": "integer", "nullable": True}, "priority": _INT}, "required": ["id"]},
        "HistoricActivityInstance": {"type": "object", "properties": {
            **{k: _STR_N for k in ("parentActivityInstanceId", "activityId", "activityName", "activityType",
                                    "processDefinitionKey", "processDefinitionId", "processInstanceId",
                                    "executionId", "taskId", "calledProcessInstanceId", "calledCaseInstanceId",
                                    "assignee", "tenantId", "rootProcessInstanceId")},
            **{k: _DATE_N for k in ("startTime", "endTime", "removalTime")},
            "id": _STR, "durationInMillis": {"type": "integer", "nullable": True}, "canceled": _BOOL,
            "completeScope": _BOOL}, "required": ["id"]},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Alur engine-rest (Camunda 7 REST subset)", "version": CAMUNDA_VERSION,
                 "description": "See docs/camunda-modeler.md. Units appear as tenantId."},
        "servers": [{"url": "/engine-rest"}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                "bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": _json(_ref("Error"), "Camunda error body")},
            "schemas": schemas,
        },
    }
