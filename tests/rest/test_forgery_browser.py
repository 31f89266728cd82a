"""In Chromium: a page on another origin (another port of the same host, so the browser treats it as the same
site and hands it the stored credentials) posts forms and simple requests to /engine-rest after the browser
has stored HTTP Basic credentials for it. Every such request reaches the server carrying those credentials,
and changes nothing. Camunda Modeler's way (a script on an opaque origin, `Origin: null`, multipart with its
own Authorization header) and a plain client still work. The rule is web/rest/browser.py."""

from __future__ import annotations

import base64
import html
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from engine import accounts
from tests.rest.conftest import PASSWORD, Rest

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CALLEE = (Path(__file__).resolve().parents[1] / "data" / "engine" / "callee.bpmn").read_text()
USER = "kasubag"  # given the designer role below, so one stored credential may claim, start and deploy


@dataclass
class Seen:
    """The /engine-rest requests that reached the server: (method, path, had Authorization, status)."""
    rows: list[tuple[str, str, bool, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, marker: str = "") -> list[tuple[str, str, bool, int]]:
        with self.lock:
            return [r for r in self.rows if r[0] == "POST" and marker in r[1]]

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60  # a guard against a hang only; the test waits for what it counts
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.rows}"
            time.sleep(0.05)


def _serve(app: Callable[..., Any]) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
def alur(rest: Rest, seen: Seen) -> Iterator[str]:
    with rest.service.db.write() as s:
        accounts.grant(s, USER, "designer")
    inner = rest.app.wsgi_app

    def recorder(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/engine-rest/_store-credentials":
            # Stands for whatever made the browser store Basic credentials for this site (an older Alur, or
            # anything else on this origin that asks for Basic): Alur itself never challenges a browser so.
            if "HTTP_AUTHORIZATION" not in environ:
                return Response("", 401, {"WWW-Authenticate": 'Basic realm="elsewhere"'})(environ, start_response)
            return Response("stored")(environ, start_response)

        def recording_start(status: str, headers: Any, *rest_args: Any) -> Any:
            if path.startswith("/engine-rest"):
                with seen.lock:
                    seen.rows.append((environ["REQUEST_METHOD"], path + "?" + environ.get("QUERY_STRING", ""),
                                      "HTTP_AUTHORIZATION" in environ, int(status.split()[0])))
            return start_response(status, headers, *rest_args)

        return inner(environ, recording_start)

    yield from _serve(recorder)


def _attack_page(target: str, task_id: str, redirector: str) -> str:
    rest = f"{target}/engine-rest"
    forms = [  # (marker in the query string, action, enctype, fields)
        ("claim-form", f"/task/{task_id}/claim", "application/x-www-form-urlencoded", ""),
        ("complete-form", f"/task/{task_id}/complete", "application/x-www-form-urlencoded",
         '<input name="variables" value="{}">'),
        ("start-form", "/process-definition/key/web_flow/start", "application/x-www-form-urlencoded", ""),
        ("deploy-form", "/deployment/create", "multipart/form-data",
         f'<input name="deployment-name" value="palsu"><textarea name="x.bpmn">{html.escape(CALLEE)}</textarea>'),
        ("claim-multipart", f"/task/{task_id}/claim", "multipart/form-data", '<textarea name="a">b</textarea>'),
        ("start-plain", "/process-definition/key/web_flow/start", "text/plain", ""),
    ]
    parts = []
    for i, (marker, action, enctype, fields) in enumerate(forms):
        parts.append(f'<form id="f{i}" method="post" action="{rest}{action}?{marker}" enctype="{enctype}" '
                     f'target="w{i}">{fields}</form><iframe name="w{i}"></iframe>')
    sandboxed = html.escape(f'<form method="post" action="{rest}/process-definition/key/web_flow/start?start-null">'
                            f'</form><script>document.forms[0].submit()</script>')
    script = f"""
      for (const f of document.forms) f.submit();
      const body = new FormData(); body.append("x.bpmn", new Blob([{json.dumps(CALLEE)}]), "x.bpmn");
      fetch("{rest}/deployment/create?deploy-fetch", {{method: "POST", credentials: "include", body}}).catch(() => 0);
      fetch("{redirector}/", {{method: "POST", credentials: "include", body, headers: {{accept: "application/json"}}}})
        .catch(() => 0);
      fetch("{rest}/task/{task_id}/claim?claim-nocors",
            {{method: "POST", mode: "no-cors", credentials: "include"}}).catch(() => 0);
      fetch("{rest}/task/{task_id}/claim?claim-cors",
            {{method: "POST", credentials: "include", headers: {{accept: "application/json"}}}}).catch(() => 0);
    """
    return (f"<!doctype html><html><body>{''.join(parts)}"
            f'<iframe sandbox="allow-forms allow-scripts" srcdoc="{sandboxed}"></iframe>'
            f"<script>{script}</script></body></html>")


def _modeler_page(target: str, user: str) -> str:
    """Camunda Modeler's own requests (client/src/plugins/camunda-plugin/shared/CamundaAPI.js), made from an
    opaque origin as its file:// page is: FormData deploy, then a JSON start."""
    auth = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    script = f"""
      const headers = {{accept: "application/json", authorization: "{auth}"}};
      const form = new FormData();
      form.append("deployment-name", "rapat"); form.append("deployment-source", "Camunda Modeler");
      form.append("enable-duplicate-filtering", "true");
      form.append("rapat.bpmn", new Blob([{json.dumps(CALLEE)}], {{type: "text/xml"}}), "rapat.bpmn");
      (async () => {{
        const r = await fetch("{target}/engine-rest/deployment/create", {{method: "POST", body: form, headers}});
        const deployed = await r.json();
        const id = Object.values(deployed.deployedProcessDefinitions)[0].id;
        const s = await fetch(`{target}/engine-rest/process-definition/${{id}}/start`, {{method: "POST",
          headers: {{...headers, "content-type": "application/json"}},
          body: JSON.stringify({{businessKey: "DARI-MODELER",
                                 variables: {{alurUnit: {{value: "kec-a", type: "String"}}}}}})}});
        parent.postMessage({{deploy: r.status, start: s.status, started: await s.json()}}, "*");
      }})().catch(e => parent.postMessage({{error: String(e)}}, "*"));
    """
    inner = html.escape(f"<script>{script}</script>")
    return (f'<!doctype html><html><body><iframe sandbox="allow-scripts" srcdoc="{inner}"></iframe><script>'
            f'window.addEventListener("message", e => {{ window.modelerResult = e.data; }});</script></body></html>')


@pytest.fixture
def other_site(alur: str, rest: Rest) -> Iterator[dict[str, str]]:
    pages: dict[str, str] = {}

    @Request.application
    def app(request: Request) -> Response:
        return Response(pages.get(request.path, "?"), content_type="text/html")

    for origin in _serve(app):
        pages["origin"] = origin
        yield pages


@pytest.fixture
def redirector(alur: str, other_site: dict[str, str]) -> Iterator[str]:
    """A third site that sends a simple fetch on to Alur (307 keeps method and body): the request arrives
    with `Origin: null`, cross-site, in cors mode — Camunda Modeler's shape — and with the stored credentials."""

    @Request.application
    def app(request: Request) -> Response:
        response = Response("", 307, {"Location": f"{alur}/engine-rest/deployment/create?deploy-redirected"})
        response.headers["Access-Control-Allow-Origin"] = other_site["origin"]
        response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    for origin in _serve(app):
        yield origin.replace("127.0.0.1", "localhost")  # another site than 127.0.0.1


@pytest.fixture
def launch(alur: str) -> Iterator[Callable[..., Any]]:
    """launch(*extra_args) → a new headless Chromium, closed at the end of the test."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browsers: list[Any] = []

        def start(*extra: str) -> Any:
            browsers.append(p.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--headless", "--no-sandbox", "--disable-gpu", *extra]))
            return browsers[-1]

        try:
            yield start
        finally:
            for browser in browsers:
                browser.close()


def _state(rest: Rest, task_id: str) -> dict[str, Any]:
    task = rest.get(f"/task/{task_id}", "admin").json
    return {"assignee": task["assignee"], "task": task["id"],
            "instances": rest.get("/process-instance/count", "admin").json["count"],
            "deployments": [d["name"] for d in rest.get("/deployment", "admin").json]}


ELECTRON_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) camunda-modeler/5.43.0 "
               "Chrome/146.0.0.0 Electron/43.0.0 Safari/537.36")  # what Electron gives Camunda Modeler's page


def test_another_site_cannot_act_with_stored_credentials(rest: Rest, alur: str, seen: Seen, other_site: dict[str, str],
                                                         redirector: str, launch: Callable[..., Any]) -> None:
    assert rest.deploy().status_code == 200
    r = rest.post("/process-definition/key/web_flow/start", USER, json={"businessKey": "LAP-ASLI"})
    assert r.status_code == 200, r.json
    task_id = rest.get("/task?candidateGroup=Kasubag", USER).json[0]["id"]
    before = _state(rest, task_id)
    seen.rows.clear()
    page = launch().new_context(http_credentials={"username": USER, "password": PASSWORD}).new_page()

    # Alur's own 401 gives a browser nothing to prompt for, so the credentials Playwright holds are never used...
    response = page.goto(f"{alur}/engine-rest/deployment")
    assert response.status == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert [r[2] for r in seen.rows] == [False]
    # ... so store them the way a Basic challenge from elsewhere on this site would.
    assert page.goto(f"{alur}/engine-rest/_store-credentials").status == 200

    other_site["/attack"] = _attack_page(alur, task_id, redirector)
    page.goto(other_site["origin"] + "/attack")
    markers = ["claim-form", "complete-form", "start-form", "deploy-form", "claim-multipart", "start-plain",
               "start-null", "deploy-fetch", "deploy-redirected", "claim-nocors", "claim-cors"]
    seen.wait_for(lambda: all(seen.posts(m) for m in markers), "every forged request")
    for marker in markers:
        [(_, _, had_credentials, status)] = seen.posts(marker)
        assert had_credentials, f"{marker}: the browser did not send its stored credentials, the test proves nothing"
        assert status == 403, (marker, status)
    assert _state(rest, task_id) == before

    # Camunda Modeler's requests from an opaque origin, with its own Authorization header, still work
    # (in a browser that, like the Modeler, has stored no credentials and says Electron/ in its User-Agent).
    other_site["/modeler"] = _modeler_page(alur, USER)
    # (--user-agent, not a context's user_agent: that one does not reach the sandboxed frame's requests)
    page = launch(f"--user-agent={ELECTRON_UA}").new_page()
    page.goto(other_site["origin"] + "/modeler")
    page.wait_for_function("window.modelerResult !== undefined", timeout=60_000)
    result = page.evaluate("window.modelerResult")
    assert result.get("deploy") == 200 and result.get("start") == 200, result
    assert result["started"]["businessKey"] == "DARI-MODELER"
    assert "rapat" in _state(rest, task_id)["deployments"]

    # And a plain client (no browser at all) claims the task.
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    claim = urllib.request.Request(f"{alur}/engine-rest/task/{task_id}/claim", data=b"", method="POST",
                                   headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(claim, timeout=30) as answer:
        assert answer.status == 204
    assert _state(rest, task_id)["assignee"] == USER
