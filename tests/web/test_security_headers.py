"""Security headers on every kind of response, a CSP the diagram viewer can live with (no inline script, no
eval), cookie flags, and the production settings check: `ALUR_ENV=production` refuses to start without a
proper secret key, with debug on, or with testing switches, and `alur serve` says so and exits non-zero."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from tests.web.conftest import PASSWORD, Env, login, make_app
from tests.web.test_supervisor import sup  # noqa: F401  (the fixture: sop_uji instances with diagrams)
from web.app import create_app
from web.security import CONTENT_SECURITY_POLICY, MIN_SECRET_KEY_CHARS, InsecureConfiguration

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * MIN_SECRET_KEY_CHARS


def _directives(csp: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _assert_hardened(response, *, csp: str | None = CONTENT_SECURITY_POLICY) -> None:  # type: ignore[no-untyped-def]
    h = response.headers
    if csp is not None:
        assert h["Content-Security-Policy"] == csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    assert h["X-Frame-Options"] in ("DENY", "SAMEORIGIN")
    assert "camera=()" in h["Permissions-Policy"] and "geolocation=()" in h["Permissions-Policy"]


def test_policy_has_no_inline_script_or_eval() -> None:
    d = _directives(CONTENT_SECURITY_POLICY)
    assert d["default-src"] == ["'self'"]
    assert d["script-src"] == ["'self'"]
    assert d["style-src"] == ["'self'"]
    assert d["object-src"] == ["'none'"]
    assert d["base-uri"] == ["'none'"]
    assert d["frame-ancestors"] == ["'none'"]
    assert d["form-action"] == ["'self'"]
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_every_kind_of_response_carries_the_headers(env: Env, app: Flask, client_for) -> None:  # type: ignore[no-untyped-def]
    anonymous = app.test_client()
    _assert_hardened(anonymous.get("/masuk"))
    _assert_hardened(anonymous.get("/tidak-ada"))  # an error page
    static = anonymous.get("/static/js/instance-diagram.js")
    _assert_hardened(static)
    assert "no-store" not in static.headers.get("Cache-Control", "")  # static files may be cached
    page = client_for("kasubag").get("/")
    assert page.status_code == 200
    _assert_hardened(page)
    assert page.headers["Cache-Control"] == "no-store"  # personal data: never in a shared cache
    assert page.headers["X-Frame-Options"] == "DENY"
    _assert_hardened(anonymous.get("/engine-rest/version"))
    _assert_hardened(anonymous.get("/engine-rest/task"))  # a 401 from the REST API too
    assert "Strict-Transport-Security" not in page.headers  # plain HTTP (development): no HSTS


def test_documents_keep_their_own_stricter_policy(env: Env, client_for) -> None:  # type: ignore[no-untyped-def]
    definition_id = env.service.definitions(key="web_flow")[0].id
    admin = client_for("admin")
    response = admin.get(f"/pengawasan/definitions/{definition_id}/dokumen")
    assert response.status_code == 200
    d = _directives(response.headers["Content-Security-Policy"])
    assert d["default-src"] == ["'none'"] and "script-src" not in d  # no script at all in the document
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    _assert_hardened(response, csp=None)


def test_templates_and_scripts_need_nothing_the_policy_forbids() -> None:
    """What the CSP blocks must not be used: inline <script>, on* handlers, javascript: URLs, style
    attributes or <style> blocks in our templates; eval / new Function in our scripts or the vendored viewer."""
    problems = []
    for path in sorted((ROOT / "web" / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern, what in [(r"<script(?![^>]*\bsrc=)[^>]*>", "inline script"),
                              (r"\son[a-z]+\s*=", "event handler attribute"), (r"javascript:", "javascript: URL"),
                              (r"\sstyle\s*=", "style attribute"), (r"<style[\s>]", "<style> block")]:
            if re.search(pattern, text, re.IGNORECASE):
                problems.append(f"{path.relative_to(ROOT)}: {what}")
    scripts = [*(ROOT / "web" / "static" / "js").glob("*.js"),
               *(ROOT / "web" / "static" / "vendor").rglob("*.js")]
    assert scripts
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        if re.search(r"\beval\s*\(|new\s+Function\s*\(", text):
            problems.append(f"{path.relative_to(ROOT)}: eval / new Function")
    assert problems == []


def test_cookies_are_http_only_and_same_site(app: Flask) -> None:
    response = login(app.test_client(), "kasubag")
    cookie = "; ".join(response.headers.getlist("Set-Cookie"))
    assert "alur_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# ------------------------------------------------------------------------------------------------ production


@pytest.fixture
def production(env: Env, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """create_app as gunicorn calls it, with ALUR_ENV=production (config from the environment only)."""
    for name in ("ALUR_SECRET_KEY", "ALUR_SECURE_COOKIES", "FLASK_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALUR_ENV", "production")

    def make(**config: object) -> Flask:
        return create_app({"ALUR_INSTANCE_DIR": str(env.instance_dir), **config}, service=env.service)

    return make


def test_production_refuses_to_start_without_a_secret(production, env: Env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InsecureConfiguration, match="ALUR_SECRET_KEY is not set"):
        production()
    assert not (env.instance_dir / "secret_key").exists()  # no generated key to fall back on either


@pytest.mark.parametrize("key", ["geheim", "x" * (MIN_SECRET_KEY_CHARS - 1)])
def test_production_refuses_a_short_secret(production, monkeypatch, key: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECRET_KEY", key)
    with pytest.raises(InsecureConfiguration, match="too short"):
        production()


@pytest.mark.parametrize(("setting", "message"), [
    ({"DEBUG": True}, "debug"), ({"TESTING": True}, "TESTING"), ({"WTF_CSRF_ENABLED": False}, "CSRF"),
])
def test_production_refuses_debug_and_test_switches(production, monkeypatch, setting, message) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECRET_KEY", GOOD_KEY)
    with pytest.raises(InsecureConfiguration, match=message):
        production(**setting)


def test_production_refuses_flask_debug_from_the_environment(production, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(InsecureConfiguration, match="debug"):
        production()


def test_misspelt_environment_is_refused(env: Env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_ENV", "prodution")
    with pytest.raises(InsecureConfiguration, match="ALUR_ENV"):
        make_app(env)


def test_production_with_a_secret_is_hardened(production, monkeypatch, env: Env) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECRET_KEY", GOOD_KEY)
    app = production()
    assert app.config["SECRET_KEY"] == GOOD_KEY and not app.debug and not app.testing
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    assert not (env.instance_dir / "secret_key").exists()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("geheime-details-uit-de-code")

    client = app.test_client()
    response = client.get("/masuk", base_url="https://alur.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    signed_in = login(client, "kasubag")  # the form needs its CSRF token in production
    assert signed_in.status_code == 400
    crashed = client.get("/boom")
    assert crashed.status_code == 500
    body = crashed.get_data(as_text=True)
    assert "geheime-details" not in body and "Traceback" not in body and "RuntimeError" not in body


def test_production_secure_cookies_can_be_turned_off_explicitly(production, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("ALUR_SECURE_COOKIES", "0")  # e.g. an intranet without TLS: a conscious choice
    app = production()
    assert not app.config["SESSION_COOKIE_SECURE"]
    assert "Strict-Transport-Security" not in app.test_client().get("/masuk").headers


def test_secure_cookies_bring_hsts_outside_production(env: Env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECURE_COOKIES", "1")
    response = make_app(env).test_client().get("/masuk")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_alur_serve_prints_the_refusal_and_exits_non_zero(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in ("ALUR_SECRET_KEY", "FLASK_DEBUG")}
    environ.update(ALUR_ENV="production", ALUR_INSTANCE_DIR=str(tmp_path / "instance"),
                   ALUR_DATABASE_URL=f"sqlite:///{tmp_path / 'alur.sqlite3'}")
    code = "import sys; from engine.cli import main; sys.argv = ['alur', 'serve', '--port', '9']; main()"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "ALUR_SECRET_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "secret_key").exists()


# ------------------------------------------------------------------------------------------------ in Chromium

# Recorded before any page script runs (an init script is injected by the browser, not subject to the CSP).
_RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || '') + ':' + (e.lineNumber || '')));
"""


@pytest.mark.browser
def test_no_page_breaks_the_policy_and_the_diagram_viewer_works(sup: Env) -> None:  # noqa: F811
    """Every page with the bpmn-js viewer (instance, report, definition + its SOP document in an iframe) and the
    plain pages, with CSRF on: no CSP violation event, no console error, and every diagram is drawn."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    import threading

    from werkzeug.serving import make_server

    app = make_app(sup, WTF_CSRF_ENABLED=True, TESTING=False)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = f"http://127.0.0.1:{httpd.server_port}"
    definition_id = sup.service.definitions(key="sop_uji")[0].id
    task_id = sup.start("kec-a", "LAP-CSP")
    pages = [("/", None), ("/profil", None), (f"/tugas/{task_id}", None), ("/pengawasan/instances", None),
             (f"/pengawasan/instances/{sup.overdue_id}", "#alur-diagram[data-state=ready]"),  # type: ignore[attr-defined]
             ("/pengawasan/laporan/sop_uji?dari=2026-11-01&sampai=2026-11-30", "#alur-diagram[data-state=ready]"),
             (f"/pengawasan/definitions/{definition_id}", "#alur-diagram[data-state=ready]"),
             ("/pengawasan/notifikasi", None), ("/admin/pengganti", None), ("/desain/", None),
             ("/desain/pasang", None)]
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(_RECORD_VIOLATIONS)
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                    and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
                    and errors.append(f"{r.status} {r.url}"))
            page.goto(server + "/masuk")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]:not(.link)")
            page.wait_for_url(server + "/")
            for path, ready in pages:
                response = page.goto(server + path)
                assert response is not None and response.status == 200, path
                assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), path
                if ready:
                    page.wait_for_selector(ready, timeout=15000)
                    assert page.locator("#alur-diagram svg .djs-element").count() > 3, path
                page.wait_for_load_state("networkidle")
                for frame in page.frames:  # the SOP document iframe records its own violations
                    violations = frame.evaluate("() => window.__csp || []")
                    assert violations == [], (path, frame.url, violations)
                assert errors == [], (path, errors)
            browser.close()
    finally:
        httpd.shutdown()
        thread.join(5)
