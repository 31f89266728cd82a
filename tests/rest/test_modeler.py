"""Camunda Modeler's exact request sequence (DESIGN.md §8) and every field it reads."""

from __future__ import annotations

import base64

from engine.tokens import create_token, revoke_token
from tests.rest.conftest import PASSWORD, Rest, basic, modeler_files

PARSE_PREFIX = "ENGINE-09005 Could not parse BPMN process."


def test_connection_check_without_then_with_credentials(rest: Rest) -> None:
    # The Modeler sends a literal "undefined" when no credentials are set: that is no credentials.
    r = rest.client.get("/engine-rest/deployment?maxResults=0",
                        headers={"accept": "application/json", "authorization": "undefined"})
    assert r.status_code == 401
    assert r.json["type"] == "AuthenticationException" and r.json["message"]
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert rest.client.get("/engine-rest/deployment?maxResults=0").status_code == 401
    r = rest.client.get("/engine-rest/deployment?maxResults=0", headers=basic("desainer"))
    assert r.status_code == 200 and r.json == []
    assert rest.client.get("/engine-rest/deployment?maxResults=0",
                           headers=basic("desainer", "salah-sekali-123")).status_code == 401


def test_version(rest: Rest) -> None:
    r = rest.client.get("/engine-rest/version", headers={"accept": "application/json", "authorization": "undefined"})
    assert r.status_code == 200 and r.json == {"version": "7.24.0"}


def test_cors_preflight_from_file_page(rest: Rest) -> None:
    r = rest.client.options("/engine-rest/deployment/create", headers={
        "Origin": "null", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "null"
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    r = rest.client.get("/engine-rest/deployment?maxResults=0", headers={**basic("desainer"), "Origin": "null"})
    assert r.headers["Access-Control-Allow-Origin"] == "null"
    assert "Set-Cookie" not in r.headers  # no session for REST calls


def test_deploy_duplicate_and_start_as_the_modeler_does(rest: Rest) -> None:
    r = rest.deploy(**{"tenant-id": "kec-a"})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["id"] and body["name"] == "web_flow" and body["source"] == "Camunda Modeler"
    assert body["deploymentTime"].endswith("+0000") and body["tenantId"] is None
    assert body["links"][0]["rel"] == "self"
    defs = body["deployedProcessDefinitions"]
    assert list(defs) == [next(iter(defs.values()))["id"]]
    definition = next(iter(defs.values()))
    assert definition["key"] == "web_flow" and definition["name"] == "Laporan Uji Web"
    assert definition["version"] == 1 and definition["resource"] == "web_flow.bpmn"
    assert definition["deploymentId"] == body["id"] and definition["suspended"] is False
    for key in ("deployedCaseDefinitions", "deployedDecisionDefinitions", "deployedDecisionRequirementsDefinitions"):
        assert body[key] is None

    # Deploying the same files again: the existing definitions, not null.
    again = rest.deploy()
    assert again.status_code == 200
    assert again.json["deployedProcessDefinitions"] == defs
    assert again.json["id"] == body["id"]
    listed = rest.get("/deployment", "desainer").json
    assert [d["id"] for d in listed] == [body["id"]]
    assert rest.get(f"/deployment/{body['id']}", "desainer").json["name"] == "web_flow"

    # Start with the Modeler's start form: business key and typed variables.
    r = rest.post(f"/process-definition/{definition['id']}/start", "desainer", json={
        "businessKey": "LAP-7",
        "variables": {"alurUnit": {"value": "kec-a", "type": "String"},
                      "jumlah": {"value": 5, "type": "Integer"},
                      "mendesak": {"value": True, "type": "Boolean"},
                      "anggaran": {"value": 1250000.5, "type": "Double"},
                      "tanggal": {"value": "2026-11-23T09:00:00.000+0700", "type": "Date"},
                      "rincian": {"value": '{"a": [1, 2]}', "type": "Json"}}})
    assert r.status_code == 200, r.json
    started = r.json
    assert set(started) >= {"links", "id", "definitionId", "businessKey", "ended", "suspended", "tenantId"}
    assert started["definitionId"] == definition["id"] and started["businessKey"] == "LAP-7"
    assert started["ended"] is False and started["suspended"] is False and started["tenantId"] == "kec-a"
    variables = rest.get(f"/process-instance/{started['id']}/variables").json
    assert variables["jumlah"] == {"type": "Integer", "value": 5, "valueInfo": {}}
    assert variables["mendesak"]["value"] is True and variables["anggaran"]["type"] == "Double"
    assert variables["tanggal"] == {"type": "String", "value": "2026-11-23T02:00:00+00:00", "valueInfo": {}}
    assert variables["rincian"]["type"] == "Json" and variables["rincian"]["value"] == '{"a": [1, 2]}'
    assert "alurUnit" not in variables


def test_changed_file_makes_a_new_version(rest: Rest) -> None:
    first = next(iter(rest.deploy().json["deployedProcessDefinitions"].values()))
    files = modeler_files()
    files["web_flow.bpmn"] = files["web_flow.bpmn"].replace(b'name="Menyusun laporan"',
                                                            b'name="Menyusun laporan (rev)"')
    second = next(iter(rest.deploy(files=files).json["deployedProcessDefinitions"].values()))
    assert second["version"] == 2 and second["id"] != first["id"]
    latest = rest.get("/process-definition?key=web_flow&latestVersion=true", "staf").json
    assert [d["id"] for d in latest] == [second["id"]]
    assert rest.get("/process-definition/key/web_flow", "staf").json["id"] == second["id"]
    xml = rest.get(f"/process-definition/{first['id']}/xml", "staf").json
    assert xml["id"] == first["id"] and "Menyusun laporan\"" in xml["bpmn20Xml"]
    assert rest.get("/process-definition/count", "staf").json == {"count": 2}


def test_parse_failure_lists_every_problem(rest: Rest) -> None:
    bad = modeler_files()["web_flow.bpmn"].replace(b'camunda:dueDate="PT2H"', b'camunda:dueDate="dua jam"')
    bad = bad.replace(b"<bpmn:userTask id=\"Step_3\"", b"<bpmn:scriptTask id=\"Script_1\" scriptFormat=\"python\">"
                      b"<bpmn:script>1</bpmn:script></bpmn:scriptTask><bpmn:userTask id=\"Step_3\"")
    r = rest.deploy(files={"rusak.bpmn": bad, **{k: v for k, v in modeler_files().items() if k.endswith(".form")}})
    assert r.status_code == 400
    assert r.json["type"] == "ParseException"
    assert r.json["message"].startswith(PARSE_PREFIX)
    assert "rusak.bpmn" in r.json["message"] and r.json["message"].count("\n* ") >= 2
    assert r.json["details"]["rusak.bpmn"]["errors"]
    r = rest.deploy(files={"bukan.bpmn": b"<not xml"})
    assert r.status_code == 400 and r.json["message"].startswith(PARSE_PREFIX)
    assert rest.get("/deployment", "desainer").json == []


def test_non_designer_may_not_deploy_or_delete(rest: Rest) -> None:
    r = rest.deploy(user="kasubag")
    assert r.status_code == 403 and r.json["type"] == "AuthorizationException"
    deployment = rest.deploy().json["id"]
    r = rest.delete(f"/deployment/{deployment}", "kasubag")
    assert r.status_code == 403
    assert rest.delete(f"/deployment/{deployment}", "desainer").status_code == 204
    assert rest.get(f"/deployment/{deployment}", "desainer").status_code == 404


def test_bearer_token_and_revocation(rest: Rest) -> None:
    with rest.service.db.write() as s:
        token_id, token = create_token(s, "desainer", name="Modeler")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    assert rest.client.get("/engine-rest/deployment?maxResults=0", headers=headers).status_code == 200
    # The multipart helper uses Basic; Bearer deploys too.
    import io

    data = {"deployment-name": "x", "deployment-source": "Camunda Modeler", "enable-duplicate-filtering": "true"}
    for name, content in modeler_files().items():
        data[name] = (io.BytesIO(content), name)
    r = rest.client.post("/engine-rest/deployment/create", headers=headers, data=data,
                         content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    with rest.service.db.write() as s:
        assert revoke_token(s, token_id) == "desainer"
    assert rest.client.get("/engine-rest/deployment?maxResults=0", headers=headers).status_code == 401
    forged = {"Authorization": "Bearer alur_" + "A" * 43}
    assert rest.client.get("/engine-rest/deployment", headers=forged).status_code == 401
    bad_basic = {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}
    assert rest.client.get("/engine-rest/deployment", headers=bad_basic).status_code == 401
    assert rest.client.get("/engine-rest/deployment", headers={"Authorization": "Digest x"}).status_code == 401
    assert PASSWORD  # the fixture password is what basic() sends


def test_inactive_user_is_refused(rest: Rest) -> None:
    assert rest.get("/deployment", "staf").status_code == 200
    from sqlalchemy import update

    from engine.models import User

    with rest.service.db.write() as s:
        s.execute(update(User).where(User.username == "staf").values(is_active=False))
    assert rest.get("/deployment", "staf").status_code == 401


def test_well_known_webapps(rest: Rest) -> None:
    r = rest.client.get("/.well-known/camunda-automation-platform/webapps")
    assert r.status_code == 200
    assert set(r.json) == {"cockpitUrl", "tasklistUrl", "adminUrl"}
    cockpit = r.json["cockpitUrl"]
    assert cockpit.startswith("http://localhost") and cockpit.endswith("/pengawasan/instances")


def test_unknown_paths_answer_json(rest: Rest) -> None:
    r = rest.get("/tidak-ada")
    assert r.status_code == 404 and r.json["type"]
    r = rest.client.put("/engine-rest/version", headers=basic("admin"))
    assert r.status_code == 405 and r.json["type"] == "RestException"
    r = rest.get("/process-definition/nope:1:x")
    assert r.status_code == 404 and r.json["type"] == "InvalidRequestException"
