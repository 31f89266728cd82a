"""In Chromium: a supervisor opens an instance with an overdue step and the bpmn-js diagram carries the overdue
marker on that element; the report page draws its heatmap. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.web.conftest import PASSWORD, Env, make_app
from tests.web.test_supervisor import sup  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def server(sup: Env) -> Iterator[str]:  # noqa: F811
    app = make_app(sup)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(5)


@pytest.fixture
def page(server: str):  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        pg = context.new_page()
        pg.problems = []  # type: ignore[attr-defined]
        pg.on("console", lambda m: m.type == "error" and pg.problems.append(m.text))  # type: ignore[attr-defined]
        pg.on("pageerror", lambda e: pg.problems.append(str(e)))  # type: ignore[attr-defined]
        pg.goto(server + "/masuk")
        pg.fill("input[name=username]", "camat")
        pg.fill("input[name=password]", PASSWORD)
        pg.click("button[type=submit]:not(.link)")
        pg.wait_for_load_state()
        pg.problems.clear()  # type: ignore[attr-defined]  # (the sign-in page has no favicon: not ours)
        yield pg
        context.close()
        browser.close()


def test_overdue_step_is_marked_on_the_diagram(sup: Env, server: str, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{server}/pengawasan/instances/{sup.overdue_id}")  # type: ignore[attr-defined]
    page.wait_for_selector("#alur-diagram[data-state=ready]", timeout=15000)
    page.screenshot(path=str(ARTIFACTS / "supervisor-instance-overdue.png"), full_page=True)
    marked = page.evaluate("""() => {
        const g = document.querySelector('#alur-diagram svg [data-element-id="Step_A"]');
        return g ? g.getAttribute('class') : null;
    }""")
    assert marked is not None and "alur-overdue" in marked.split()
    assert page.evaluate("() => !!document.querySelector('#alur-diagram svg .alur-overdue')")
    # Steps not reached yet carry no marker; the badge names the role that should act.
    assert "alur-" not in (page.get_attribute('#alur-diagram svg [data-element-id="Step_C"]', "class") or "")
    assert page.inner_text(".djs-overlay .alur-badge") == "Kasubag"
    # The overdue fill really applies (the CSS beats bpmn-js's own inline style).
    fill = page.evaluate("""() => getComputedStyle(document.querySelector(
        '#alur-diagram svg [data-element-id="Step_A"] .djs-visual > rect')).fill""")
    assert fill == "rgb(253, 236, 234)"
    assert page.is_visible(".bjs-powered-by")  # bpmn.io watermark kept
    assert page.problems == []  # no script error, no CSP violation


def test_report_page_draws_the_heatmap(sup: Env, server: str, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{server}/pengawasan/laporan/sop_uji?dari=2026-11-01&sampai=2026-11-30")
    page.wait_for_selector("#alur-diagram[data-state=ready]", timeout=15000)
    page.screenshot(path=str(ARTIFACTS / "supervisor-report-heatmap.png"), full_page=True)
    classes = page.evaluate("""() => Object.fromEntries(['Step_A', 'Step_B', 'Step_C'].map(id => [id,
        document.querySelector(`#alur-diagram svg [data-element-id="${id}"]`).getAttribute('class')]))""")
    assert "alur-heat-good" in classes["Step_B"].split()  # 30 of 180 minutes: always on time
    assert "alur-heat-good" in classes["Step_A"].split()  # camat sees only kec-a: its one A took 10 of 15 min
    assert page.locator("svg.alur-chart rect.alur-bar").count() == 3
    assert page.problems == []
