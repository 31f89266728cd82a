"""The rule against forged browser requests to /engine-rest (web/rest/browser.py), request by request: what a
form or a simple request from another site sends is refused with 403 and changes nothing; what Camunda
Modeler, a script that sends JSON or a custom header, and a plain client send still works. The same in a
real Chromium is tests/rest/test_forgery_browser.py."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from engine.tokens import create_token
from tests.rest.conftest import PASSWORD, Rest, basic, modeler_files

EVIL = "http://127.0.0.1:8999"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"kasubag:{PASSWORD}".encode()).decode()}
NAV_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FORM = {"Accept": NAV_ACCEPT, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-site"}
URLENCODED = "application/x-www-form-urlencoded"

# (what it is, headers, content type): each must be refused for a claim.
FORGED: list[tuple[str, dict[str, str], str | None]] = [
    ("form post", {"Origin": EVIL, **FORM}, URLENCODED),
    ("form post over plain http (no Sec-Fetch-*)", {"Origin": EVIL, "Accept": NAV_ACCEPT}, URLENCODED),
    ("form post from a sandboxed frame", {"Origin": "null", "Accept": NAV_ACCEPT}, URLENCODED),
    ("text/plain form", {"Origin": EVIL, **FORM}, "text/plain"),
    ("redirected form, no Origin kept", {**FORM}, URLENCODED),
    ("no-cors fetch", {"Origin": EVIL, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"}, None),
    ("no-cors fetch claiming JSON accept", {"Origin": "null", "Accept": "application/json",
                                            "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "empty"}, URLENCODED),
    ("simple cors fetch with stored credentials", {"Origin": EVIL, "Sec-Fetch-Mode": "cors",
                                                   "Sec-Fetch-Dest": "empty", "Accept": "*/*"}, "multipart/form-data"),
    ("simple cors fetch, no body", {"Origin": EVIL, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}, None),
    ("Modeler-shaped request, but not a deploy", {"Origin": "null", "Accept": "application/json",
                                                  "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site",
                                                  "User-Agent": "Electron/43.0.0"}, None),
    ("JSON sent as a form navigation", {"Origin": EVIL, **FORM}, "application/json"),
]


@pytest.fixture
def task_id(rest: Rest) -> str:
    assert rest.deploy().status_code == 200
    r = rest.post("/process-definition/key/web_flow/start", "kasubag", json={"businessKey": "LAP-CSRF"})
    assert r.status_code == 200, r.json
    tasks = rest.get("/task?candidateGroup=Kasubag", "kasubag").json
    assert len(tasks) == 1
    return str(tasks[0]["id"])


def _claim(rest: Rest, task_id: str, headers: dict[str, str], content_type: str | None, data: Any = b"") -> Any:
    kw: dict[str, Any] = {"headers": {**BASIC, **headers}, "data": data}
    if content_type:
        kw["content_type"] = content_type
    return rest.client.post(f"/engine-rest/task/{task_id}/claim", **kw)


def _assignee(rest: Rest, task_id: str) -> str | None:
    return rest.get(f"/task/{task_id}", "kasubag").json["assignee"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("what", "headers", "content_type"), FORGED, ids=[f[0] for f in FORGED])
def test_forged_claim_is_refused_and_changes_nothing(rest: Rest, task_id: str, what: str, headers: dict[str, str],
                                                     content_type: str | None) -> None:
    r = _claim(rest, task_id, headers, content_type)
    assert r.status_code == 403, (what, r.status_code, r.json)
    assert r.json["type"] == "AuthorizationException"
    assert "cross-site request forgery" in r.json["message"] and "application/json" in r.json["message"]
    assert _assignee(rest, task_id) is None


def test_refusal_comes_before_the_password_check(rest: Rest, task_id: str, caplog: pytest.LogCaptureFixture) -> None:
    wrong = {"Authorization": "Basic " + base64.b64encode(b"kasubag:salah-sekali-123").decode()}
    r = rest.client.post(f"/engine-rest/task/{task_id}/claim", headers={"Origin": EVIL, **FORM, **wrong},
                         content_type=URLENCODED)
    assert r.status_code == 403
    assert any("possible cross-site forgery" in m and EVIL in m for m in caplog.messages)  # the operator sees who
    limiter = rest.app.extensions["alur_login_limiter"]
    assert not limiter._failures  # no sign-in attempt was counted: the password was never checked


@pytest.mark.parametrize(("what", "headers", "content_type"), [
    ("a plain client (no Origin, no Sec-Fetch-*)", {}, None),
    ("a plain client sending a form body", {}, URLENCODED),
    ("a page's script sending JSON (preflighted)", {"Origin": EVIL, "Sec-Fetch-Mode": "cors",
                                                    "Sec-Fetch-Dest": "empty"}, "application/json"),
    ("a page's script with X-Requested-With", {"Origin": EVIL, "X-Requested-With": "XMLHttpRequest",
                                               "Sec-Fetch-Mode": "cors"}, None),
    ("Camunda Modeler's start (JSON, Origin null)", {"Origin": "null", "Accept": "application/json",
                                                     "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"},
     "application/json"),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
def test_scripts_and_plain_clients_still_claim(rest: Rest, task_id: str, what: str, headers: dict[str, str],
                                               content_type: str | None) -> None:
    data = b"{}" if content_type == "application/json" else b""
    r = _claim(rest, task_id, headers, content_type, data)
    assert r.status_code == 204, (what, r.status_code, r.json)
    assert _assignee(rest, task_id) == "kasubag"


def test_bearer_token_from_a_browser_page_is_allowed(rest: Rest, task_id: str) -> None:
    with rest.service.db.write() as s:
        _, token = create_token(s, "kasubag", name="uji")
    r = rest.client.post(f"/engine-rest/task/{task_id}/claim", headers={
        "Authorization": f"Bearer {token}", "Origin": "null", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"})
    assert r.status_code == 204
    assert _assignee(rest, task_id) == "kasubag"


def test_put_and_delete_need_a_preflight_so_they_pass(rest: Rest) -> None:
    deployment = rest.deploy().json["id"]
    r = rest.client.delete(f"/engine-rest/deployment/{deployment}", headers={
        **basic("desainer"), "Origin": EVIL, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"})
    assert r.status_code == 204
    # ... unless it is a navigation, which no script makes for a DELETE: refused all the same.
    deployment = rest.deploy().json["id"]
    r = rest.client.delete(f"/engine-rest/deployment/{deployment}", headers={**basic("desainer"), **FORM})
    assert r.status_code == 403


def _deploy(rest: Rest, headers: dict[str, str]) -> Any:
    data: dict[str, Any] = {"deployment-name": "web_flow", "deployment-source": "Camunda Modeler",
                            "enable-duplicate-filtering": "true"}
    for name, content in modeler_files().items():
        data[name] = (io.BytesIO(content), name)
    return rest.client.post("/engine-rest/deployment/create", headers=headers, data=data,
                            content_type="multipart/form-data")


# Camunda Modeler 5 (Electron): the User-Agent Electron gives it, and what its fetch from file:// adds.
ELECTRON_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) camunda-modeler/5.43.0 "
               "Chrome/146.0.0.0 Electron/43.0.0 Safari/537.36")
CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/146.0.0.0 Safari/537.36"
MODELER = {"Origin": "null", "Accept": "application/json", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site",
           "Sec-Fetch-Dest": "empty", "User-Agent": ELECTRON_UA}


@pytest.mark.parametrize(("what", "headers"), [
    ("a form with a textarea named x.bpmn", {"Origin": EVIL, **FORM}),
    ("a sandboxed frame's form over plain http", {"Origin": "null", "Accept": NAV_ACCEPT}),
    ("a redirected form (Origin null) over https", {"Origin": "null", **FORM}),
    ("another site's simple fetch", {**MODELER, "Origin": EVIL}),
    ("a same-site page made to look like the Modeler", {**MODELER, "Sec-Fetch-Site": "same-site"}),
    ("a no-cors fetch made to look like the Modeler", {**MODELER, "Sec-Fetch-Mode": "no-cors"}),
    # A simple fetch redirected through another site arrives exactly so, with the stored credentials.
    ("a browser's redirected simple fetch", {**MODELER, "User-Agent": CHROME_UA}),
    ("the same over plain http", {"Origin": "null", "Accept": "application/json", "User-Agent": CHROME_UA}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_forged_deploy_is_refused(rest: Rest, what: str, headers: dict[str, str]) -> None:
    r = _deploy(rest, {**basic("desainer"), **headers})
    assert r.status_code == 403, (what, r.status_code, r.json)
    assert r.json["type"] == "AuthorizationException"
    assert rest.get("/deployment", "desainer").json == []


@pytest.mark.parametrize(("what", "headers"), [
    ("Camunda Modeler over https or to localhost", MODELER),
    ("Camunda Modeler over plain http (no Sec-Fetch-*)", {"Origin": "null", "Accept": "application/json",
                                                          "User-Agent": ELECTRON_UA}),
    ("a plain client", {}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_modeler_and_plain_clients_deploy(rest: Rest, what: str, headers: dict[str, str]) -> None:
    r = _deploy(rest, {**basic("desainer"), **headers})
    assert r.status_code == 200, (what, r.json)
    assert len(rest.get("/deployment", "desainer").json) == 1


@pytest.mark.parametrize(("headers", "scheme"), [
    ({}, "Basic"),
    ({"Accept": "application/json", "Authorization": "undefined"}, "Basic"),  # the Modeler's test, no browser
    ({"Accept": NAV_ACCEPT}, "Bearer"),  # a link or the address bar over plain http
    ({"Accept": NAV_ACCEPT, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, "Bearer"),
    ({"Upgrade-Insecure-Requests": "1"}, "Bearer"),
    ({"Origin": "null", "Accept": "application/json"}, "Bearer"),
    ({"Origin": EVIL}, "Bearer"),
])
def test_browsers_never_get_a_basic_challenge(rest: Rest, headers: dict[str, str], scheme: str) -> None:
    """A Basic challenge makes a browser prompt and then keep the credentials for this site; a Bearer one
    makes no browser prompt."""
    r = rest.client.get("/engine-rest/deployment?maxResults=0", headers=headers)
    assert r.status_code == 401 and r.json["type"] == "AuthenticationException"
    assert r.headers["WWW-Authenticate"].split()[0] == scheme


def test_credentialed_cors_is_never_allowed(rest: Rest, task_id: str) -> None:
    """The rule relies on browsers refusing to send stored credentials on a preflighted request, which holds
    as long as no answer says Access-Control-Allow-Credentials."""
    r = rest.client.options(f"/engine-rest/task/{task_id}/claim", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204 and "Access-Control-Allow-Credentials" not in r.headers
    for response in (rest.get("/deployment"), _claim(rest, task_id, {"Origin": EVIL, **FORM}, URLENCODED),
                     _claim(rest, task_id, {"Origin": EVIL}, "application/json", b"{}")):
        assert "Access-Control-Allow-Credentials" not in response.headers


# What a browser sends by itself, without a preflight, to an address a page names, with the credentials it
# stored for that site: <a ping> (hyperlink auditing; headers as Chromium sent them to a plain-http Alur, no
# Sec-Fetch-*), a CSP violation report (report-uri) and a Reporting API upload. Their Content-Types are none of
# the three form types, yet no script chose them. Unclaim reads no body, so only the rule stands in the way.
BEACONS: list[tuple[str, dict[str, str], str, bytes]] = [
    ("<a ping> with Origin", {"Origin": EVIL, "Ping-From": f"{EVIL}/", "Ping-To": f"{EVIL}/landed",
                              "Accept": "*/*"}, "text/ping", b"PING"),
    ("<a ping> without Origin", {"Ping-To": f"{EVIL}/landed", "Accept": "*/*"}, "text/ping", b"PING"),
    ("CSP report-uri", {"Origin": EVIL}, "application/csp-report", b'{"csp-report": {}}'),
    ("CSP report-uri, no Origin", {}, "application/csp-report", b'{"csp-report": {}}'),
    ("Reporting API", {"Origin": EVIL, "Sec-Fetch-Mode": "cors"}, "application/reports+json", b"[]"),
]


@pytest.mark.parametrize(("what", "headers", "content_type", "body"), BEACONS, ids=[b[0] for b in BEACONS])
def test_browser_beacons_change_nothing(rest: Rest, task_id: str, what: str, headers: dict[str, str],
                                        content_type: str, body: bytes) -> None:
    assert rest.post(f"/task/{task_id}/claim", "kasubag", json={"userId": "kasubag"}).status_code == 204
    r = rest.client.post(f"/engine-rest/task/{task_id}/unclaim", headers={**BASIC, **headers}, data=body,
                         content_type=content_type)
    assert r.status_code == 403, (what, r.status_code, r.get_data(as_text=True)[:200])
    assert r.json["type"] == "AuthorizationException"
    assert _assignee(rest, task_id) == "kasubag"
