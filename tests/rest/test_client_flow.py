"""A Camunda-7-style client over HTTP only: deploy → start → tasks by candidateGroup → claim → complete with
typed variables (validated like the web form) → history. Plus unit visibility, cancel and delete rules."""

from __future__ import annotations

from typing import Any

from tests.rest.conftest import Rest

STEP_1 = {
    "judul": {"value": "Laporan triwulan", "type": "String"},
    "kode": {"value": "LP-001", "type": "String"},
    "jumlah": {"value": 3, "type": "Long"},
    "sifat": {"value": "segera", "type": "String"},
    "tembusan": {"value": '["camat"]', "type": "Json"},
    "lengkap": {"value": True, "type": "Boolean"},
    "tanggal": {"value": "2026-11-23T00:00:00.000+0700", "type": "Date"},
}


def _start(rest: Rest, user: str = "kasubag", business_key: str = "LAP-1", **extra: Any) -> str:
    r = rest.post("/process-definition/key/web_flow/start", user, json={"businessKey": business_key, **extra})
    assert r.status_code == 200, r.json
    return str(r.json["id"])


def _only_task(rest: Rest, user: str, **query: str) -> dict[str, Any]:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    tasks = rest.get(f"/task?{q}", user).json
    assert len(tasks) == 1, tasks
    return tasks[0]  # type: ignore[no-any-return]


def test_full_flow_over_http(rest: Rest) -> None:
    assert rest.deploy().status_code == 200
    # kasubag holds roles in exactly one unit: the instance starts there without naming it.
    instance_id = _start(rest)
    assert rest.get(f"/process-instance/{instance_id}", "kasubag").json["tenantId"] == "kec-a"

    task = _only_task(rest, "kasubag", candidateGroup="Kasubag")
    assert task["processInstanceId"] == instance_id and task["taskDefinitionKey"] == "Step_1"
    assert task["assignee"] is None and task["tenantId"] == "kec-a"
    assert task["camundaFormRef"] == {"key": "Form_web_rules", "binding": "latest", "version": None}
    assert task["due"].endswith("+0000") and task["created"]
    assert rest.get("/task/count?candidateGroup=Kasubag", "kasubag").json == {"count": 1}
    assert rest.get("/task?candidateUser=kasubag", "kasubag").json[0]["id"] == task["id"]
    # Same role in another unit, and another role in the same unit, see nothing to claim.
    assert rest.get("/task?candidateGroup=Kasubag", "kasubag.b").json == []
    assert rest.get("/task?candidateUser=camat", "camat").json == []

    form = rest.get(f"/task/{task['id']}/form-variables", "kasubag").json
    assert form["judul"]["type"] == "String" and form["lengkap"]["type"] == "Boolean"
    assert form["tembusan"]["type"] == "Json"

    r = rest.post(f"/task/{task['id']}/claim", "camat", json={"userId": "camat"})
    assert r.status_code == 403
    assert rest.post(f"/task/{task['id']}/claim", "kasubag", json={"userId": "kasubag"}).status_code == 204
    assert rest.get(f"/task/{task['id']}", "kasubag").json["assignee"] == "kasubag"
    assert rest.get("/task?assignee=kasubag", "kasubag").json[0]["id"] == task["id"]
    assert rest.get("/task?candidateGroup=Kasubag", "kasubag").json == []  # claimed: no longer a candidate task

    # Form rules apply exactly as on the web page.
    bad = {**STEP_1, "judul": {"value": "x", "type": "String"}, "sifat": {"value": "lambat", "type": "String"}}
    r = rest.post(f"/task/{task['id']}/complete", "kasubag", json={"variables": bad})
    assert r.status_code == 400 and r.json["type"] == "FormFieldValidationException"
    assert set(r.json["errors"]) == {"judul", "sifat"} and "judul" in r.json["message"]
    r = rest.post(f"/task/{task['id']}/complete", "kasubag", json={"variables": {"jumlah": {"value": "x",
                                                                                          "type": "Integer"}}})
    assert r.status_code == 400 and r.json["type"] == "InvalidRequestException"
    rest.clock.advance(minutes=10)
    r = rest.post(f"/task/{task['id']}/complete", "kasubag", json={"variables": STEP_1})
    assert r.status_code == 204, r.json
    assert rest.post(f"/task/{task['id']}/complete", "kasubag", json={"variables": STEP_1}).status_code in (404, 409)

    camat_task = _only_task(rest, "camat", candidateGroup="Camat")
    variables = rest.get(f"/process-instance/{instance_id}/variables", "camat").json
    assert variables["tanggal"]["value"] == "2026-11-23" and variables["jumlah"] == {
        "type": "Integer", "value": 3, "valueInfo": {}}
    assert variables["tembusan"] == {"type": "Json", "value": '["camat"]', "valueInfo": {}}
    activities = rest.get(f"/process-instance/{instance_id}/activity-instances", "camat").json
    assert [c["activityId"] for c in activities["childActivityInstances"]] == ["Step_2"]
    rest.post(f"/task/{camat_task['id']}/claim", "camat", json={"userId": "camat"})
    rest.clock.advance(minutes=10)
    r = rest.post(f"/task/{camat_task['id']}/complete", "camat", json={
        "variables": {"keputusan": {"value": "ya", "type": "String"}}, "withVariablesInReturn": True})
    assert r.status_code == 200 and r.json["keputusan"]["value"] == "ya"

    last = _only_task(rest, "kasubag", processInstanceId=instance_id)
    rest.post(f"/task/{last['id']}/claim", "kasubag", json={"userId": "kasubag"})
    r = rest.post(f"/task/{last['id']}/complete", "kasubag",
                  json={"variables": {"nomor_arsip": {"value": "A-1"}}})
    assert r.status_code == 204, r.json

    # History shows it; the runtime no longer does.
    assert rest.get(f"/process-instance/{instance_id}", "kasubag").status_code == 404
    hist = rest.get(f"/history/process-instance?processInstanceId={instance_id}", "kasubag").json
    assert len(hist) == 1 and hist[0]["state"] == "COMPLETED" and hist[0]["endTime"]
    assert hist[0]["processDefinitionKey"] == "web_flow" and hist[0]["processDefinitionVersion"] == 1
    assert hist[0]["startUserId"] == "kasubag" and hist[0]["durationInMillis"] >= 0
    assert rest.get("/history/process-instance?finished=true", "kasubag").json[0]["id"] == instance_id
    assert rest.get("/history/process-instance?unfinished=true", "kasubag").json == []
    tasks = rest.get(f"/history/task?processInstanceId={instance_id}&sortBy=startTime&sortOrder=asc",
                     "kasubag").json
    assert [t["taskDefinitionKey"] for t in tasks] == ["Step_1", "Step_2", "Step_3"]
    assert [t["assignee"] for t in tasks] == ["kasubag", "camat", "kasubag"]
    assert all(t["deleteReason"] == "completed" and t["endTime"] for t in tasks)
    acts = rest.get(f"/history/activity-instance?processInstanceId={instance_id}", "camat").json
    assert {a["activityId"] for a in acts} == {"Step_1", "Step_2", "Step_3"}
    assert all(a["activityType"] == "userTask" for a in acts)
    assert rest.get(f"/history/task/count?processInstanceId={instance_id}", "camat").json == {"count": 3}
    # The other kecamatan sees none of it.
    assert rest.get("/history/process-instance", "kasubag.b").json == []
    assert rest.get(f"/history/task?processInstanceId={instance_id}", "kasubag.b").json == []


def test_unit_choice_when_starting(rest: Rest) -> None:
    rest.deploy()
    # The designer holds no unit: the instance needs alurUnit (or the tenant-id path).
    r = rest.post("/process-definition/key/web_flow/start", "desainer", json={})
    assert r.status_code == 400 and "alurUnit" in r.json["message"]
    r = rest.post("/process-definition/key/web_flow/tenant-id/kec-b/start", "desainer", json={})
    assert r.status_code == 200 and r.json["tenantId"] == "kec-b"
    r = rest.post("/process-definition/key/web_flow/start", "desainer",
                  json={"variables": {"alurUnit": {"value": "kec-a", "type": "String"}}})
    assert r.status_code == 200 and r.json["tenantId"] == "kec-a"
    r = rest.post("/process-definition/key/web_flow/start", "kasubag",
                  json={"variables": {"alurUnit": {"value": "kec-b", "type": "String"}}})
    assert r.status_code == 403
    r = rest.post("/process-definition/key/web_flow/start", "desainer",
                  json={"variables": {"alurUnit": {"value": "tidak-ada", "type": "String"}}})
    assert r.status_code == 404
    assert rest.post("/process-definition/key/nothing/start", "kasubag", json={}).status_code == 404


def test_visibility_of_instances_and_tasks(rest: Rest) -> None:
    rest.deploy()
    a = _start(rest, "kasubag", "A")
    b = _start(rest, "kasubag.b", "B")
    assert [i["id"] for i in rest.get("/process-instance", "kasubag").json] == [a]
    assert [i["id"] for i in rest.get("/process-instance", "kasubag.b").json] == [b]
    assert {i["id"] for i in rest.get("/process-instance", "admin").json} == {a, b}
    assert rest.get("/process-instance/count", "admin").json == {"count": 2}
    assert rest.get(f"/process-instance/{b}", "kasubag").status_code == 404
    assert rest.get(f"/process-instance/{b}/variables", "kasubag").status_code == 404
    b_task = rest.get("/task", "kasubag.b").json[0]["id"]
    assert rest.get(f"/task/{b_task}", "kasubag").status_code == 404
    assert rest.post(f"/task/{b_task}/claim", "kasubag", json={"userId": "kasubag"}).status_code == 404
    assert rest.get("/task?tenantIdIn=kec-b", "admin").json[0]["id"] == b_task
    assert rest.get("/process-instance?businessKey=A", "admin").json[0]["id"] == a


def test_cancel_instance_and_delete_deployment(rest: Rest) -> None:
    deployment = rest.deploy().json["id"]
    a = _start(rest, "kasubag", "A")
    assert rest.delete(f"/process-instance/{a}", "camat").status_code == 403
    r = rest.delete(f"/deployment/{deployment}", "desainer")
    assert r.status_code == 409 and "cascade" in r.json["message"]
    assert rest.delete(f"/process-instance/{a}?deleteReason=salah%20input", "kasubag").status_code == 204
    assert rest.delete(f"/process-instance/{a}", "kasubag").status_code == 404
    assert rest.get("/task", "kasubag").json == []
    hist = rest.get(f"/history/process-instance/{a}", "kasubag").json
    assert hist["state"] == "EXTERNALLY_TERMINATED"
    assert rest.get(f"/history/task?processInstanceId={a}", "kasubag").json[0]["deleteReason"] == "deleted"
    audit = rest.service.instance(a).audit
    assert audit[-1].action == "cancel" and audit[-1].actor == "kasubag"
    assert audit[-1].data == {"from": "running", "to": "cancelled", "reason": "salah input"}
    # Ended instances still hold the definition: cascade removes them too.
    assert rest.delete(f"/deployment/{deployment}", "desainer").status_code == 409
    assert rest.delete(f"/deployment/{deployment}?cascade=true", "desainer").status_code == 204
    assert rest.get("/process-definition", "desainer").json == []
    assert rest.get("/history/process-instance", "admin").json == []


def test_paging_sorting_and_bad_parameters(rest: Rest) -> None:
    rest.deploy()
    ids = [_start(rest, "kasubag", f"K{i}") for i in range(3)]
    page = rest.get("/process-instance?firstResult=1&maxResults=1&sortBy=businessKey&sortOrder=desc", "admin").json
    assert [p["businessKey"] for p in page] == ["K1"]
    assert rest.get("/process-instance?maxResults=0", "admin").json == []
    assert rest.get("/process-instance?maxResults=5000", "admin").status_code == 400
    assert rest.get("/process-instance?sortBy=businessKey", "admin").status_code == 400
    assert rest.get("/task?dueBefore=kemarin", "admin").status_code == 400
    assert len(rest.get("/task?dueAfter=2026-11-23T00:00:00.000+0700", "admin").json) == 3
    assert rest.get("/task?dueBefore=2026-11-23T00:00:00.000%2B0700", "admin").json == []
    assert len(ids) == 3
    r = rest.client.post("/engine-rest/process-definition/key/web_flow/start", data="[1]",
                         headers={"Authorization": rest.client.environ_base.get("HTTP_AUTHORIZATION", ""),
                                  "Content-Type": "application/json"})
    assert r.status_code in (400, 401)
    r = rest.post("/process-definition/key/web_flow/start", "kasubag", json={"variables": {"x": {"value": 1,
                                                                                               "type": "Bytes"}}})
    assert r.status_code == 400 and "Unsupported value type" in r.json["message"]
