"""Camunda 7 query semantics beyond the Modeler's calls: active/suspended instances and tasks, cancelling a
suspended instance, includeAssignedTasks with candidate queries, and the task query in a POST body."""

from __future__ import annotations

from engine import supervision
from tests.rest.conftest import Rest


def _start(rest: Rest, business_key: str, user: str = "kasubag") -> str:
    r = rest.post("/process-definition/key/web_flow/start", user, json={"businessKey": business_key})
    assert r.status_code == 200, r.json
    return str(r.json["id"])


def _suspend(rest: Rest, instance_id: str) -> None:
    supervision.suspend(rest.service, instance_id, rest.service.actor("admin"), "menunggu anggaran")


def test_active_and_suspended_filters(rest: Rest) -> None:
    rest.deploy()
    running, held = _start(rest, "JALAN"), _start(rest, "TAHAN")
    _suspend(rest, held)

    suspended = rest.get("/process-instance?suspended=true", "kasubag").json
    assert [(i["id"], i["suspended"]) for i in suspended] == [(held, True)]
    assert [i["id"] for i in rest.get("/process-instance?active=true", "kasubag").json] == [running]
    assert {i["id"] for i in rest.get("/process-instance?suspended=false", "kasubag").json} == {running, held}
    assert rest.get("/process-instance/count?suspended=true", "kasubag").json == {"count": 1}
    assert rest.get("/process-instance/count?active=true", "kasubag").json == {"count": 1}
    assert rest.get("/process-instance?active=true&suspended=true", "kasubag").json == []
    assert rest.get("/process-instance?suspended=maybe", "kasubag").status_code == 400

    # A task is suspended with its instance.
    tasks = {t["processInstanceId"]: t for t in rest.get("/task", "kasubag").json}
    assert tasks[held]["suspended"] is True and tasks[running]["suspended"] is False
    assert [t["processInstanceId"] for t in rest.get("/task?suspended=true", "kasubag").json] == [held]
    assert [t["processInstanceId"] for t in rest.get("/task?active=true", "kasubag").json] == [running]
    assert rest.get(f"/task/{tasks[held]['id']}", "kasubag").json["suspended"] is True
    assert rest.get("/task/count?suspended=true", "kasubag").json == {"count": 1}


def test_delete_cancels_a_suspended_instance(rest: Rest) -> None:
    rest.deploy()
    held = _start(rest, "TAHAN")
    _suspend(rest, held)
    assert rest.delete(f"/process-instance/{held}", "camat").status_code == 403
    assert rest.delete(f"/process-instance/{held}?deleteReason=dobel", "kasubag").status_code == 204
    assert rest.service.instance(held).status == "cancelled"
    assert rest.get("/task", "kasubag").json == []
    assert rest.delete(f"/process-instance/{held}", "kasubag").status_code == 404
    assert rest.get(f"/history/process-instance/{held}", "kasubag").json["state"] == "EXTERNALLY_TERMINATED"
    audit = rest.service.instance(held).audit[-1]
    assert audit.action == "cancel" and audit.data == {"from": "suspended", "to": "cancelled", "reason": "dobel"}


def test_include_assigned_tasks_in_candidate_queries(rest: Rest) -> None:
    rest.deploy()
    instance_id = _start(rest, "KLAIM")
    task_id = rest.get("/task?candidateGroup=Kasubag", "kasubag").json[0]["id"]
    assert rest.post(f"/task/{task_id}/claim", "kasubag", json={"userId": "kasubag"}).status_code == 204

    # Camunda: candidate queries return unclaimed tasks only, unless includeAssignedTasks=true.
    for query in ("candidateGroup=Kasubag", "candidateUser=kasubag"):
        assert rest.get(f"/task?{query}", "kasubag").json == []
        both = rest.get(f"/task?{query}&includeAssignedTasks=true", "kasubag").json
        assert [(t["id"], t["assignee"]) for t in both] == [(task_id, "kasubag")]
        assert rest.get(f"/task/count?{query}&includeAssignedTasks=true", "kasubag").json == {"count": 1}
    # Still only candidates: the Camat is not one for this step, assigned or not.
    assert rest.get("/task?candidateGroup=Camat&includeAssignedTasks=true", "camat").json == []
    assert rest.get("/task?candidateUser=camat&includeAssignedTasks=true", "camat").json == []
    # Without a candidate filter the flag means nothing: Camunda refuses that query.
    r = rest.get("/task?includeAssignedTasks=true", "kasubag")
    assert r.status_code == 400 and "includeAssignedTasks" in r.json["message"]
    assert instance_id


def test_task_query_in_a_post_body(rest: Rest) -> None:
    rest.deploy()
    a, b, c = _start(rest, "A"), _start(rest, "B"), _start(rest, "C")
    rest.clock.advance(minutes=1)
    other = _start(rest, "LAIN", user="kasubag.b")

    r = rest.post("/task", "admin", json={"candidateGroup": "Kasubag", "tenantIdIn": ["kec-a"],
                                           "sorting": [{"sortBy": "created", "sortOrder": "desc"}]})
    assert r.status_code == 200
    assert {t["processInstanceId"] for t in r.json} == {a, b, c}
    r = rest.post("/task?firstResult=1&maxResults=1", "admin", json={"processInstanceId": b})
    assert r.status_code == 200 and r.json == []
    one = rest.post("/task?maxResults=1", "admin", json={"processInstanceId": b}).json
    assert [t["processInstanceId"] for t in one] == [b]
    newest = rest.post("/task?maxResults=1", "admin",
                       json={"sorting": [{"sortBy": "created", "sortOrder": "desc"}]}).json
    assert [t["processInstanceId"] for t in newest] == [other]
    assert rest.post("/task", "admin", json={}).status_code == 200
    assert len(rest.post("/task", "admin").json) == 4  # an empty body is an empty query
    # The same visibility as GET: the other kecamatan's user sees only theirs.
    assert [t["processInstanceId"] for t in rest.post("/task", "kasubag.b", json={}).json] == [other]
    assert rest.post("/task", "admin", json={"dueAfter": "2026-11-23T00:00:00.000+0700"}).status_code == 200

    assert rest.post("/task/count", "admin", json={"tenantIdIn": ["kec-b"]}).json == {"count": 1}
    assert rest.post("/task/count", "admin", json={"assigned": True}).json == {"count": 0}
    assert rest.get("/task/count?tenantIdIn=kec-a", "admin").json == {"count": 3}

    # Refused clearly rather than silently ignored.
    r = rest.post("/task", "admin", json={"processVariables": [{"name": "x", "operator": "eq", "value": 1}]})
    assert r.status_code == 400 and "processVariables" in r.json["message"]
    assert rest.post("/task", "admin", json={"assignee": 5}).status_code == 400
    assert rest.post("/task", "admin", json={"dueBefore": "besok"}).status_code == 400
    assert rest.post("/task", "admin", json={"sorting": [{"sortBy": "prioritas"}]}).status_code == 400
    assert rest.post("/task", "admin", json={"sorting": [{"sortBy": ["x"]}]}).status_code == 400
    assert rest.post("/task", "admin", json=[1]).status_code == 400
    assert rest.post("/task?maxResults=5000", "admin", json={}).status_code == 400
    assert rest.post("/task/count", "staf", json={"candidateGroup": "Kasubag"}).json == {"count": 3}


def test_the_starter_sees_the_instance_started_in_another_unit(rest: Rest) -> None:
    rest.deploy()
    # The designer holds no unit role: before, the start succeeded but the instance was then invisible to them.
    r = rest.post("/process-definition/key/web_flow/tenant-id/kec-b/start", "desainer", json={"businessKey": "UJI"})
    instance_id = r.json["id"]
    assert rest.get(f"/process-instance/{instance_id}", "desainer").json["tenantId"] == "kec-b"
    assert [i["id"] for i in rest.get("/process-instance", "desainer").json] == [instance_id]
    assert rest.get(f"/process-instance/{instance_id}/variables", "desainer").status_code == 200
    assert rest.get(f"/process-instance/{instance_id}", "kasubag").status_code == 404  # others still do not
