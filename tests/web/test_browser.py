"""End to end in Debian's Chromium (Playwright): two lanes complete their steps, with a document upload,
on a phone-sized screen. Screenshots go to test-artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.web.conftest import PASSWORD, make_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def live_server(env) -> Iterator[str]:  # type: ignore[no-untyped-def]
    app = make_app(env, WTF_CSRF_ENABLED=True, TESTING=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_two_lanes_complete_their_steps(env, live_server, tmp_path):  # type: ignore[no-untyped-def]
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    document = tmp_path / "draf-laporan.pdf"
    document.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    env.start("kec-a", "LAP-BROWSER")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="id-ID")
            page = context.new_page()

            def sign_in(username: str) -> None:
                page.goto(f"{live_server}/masuk")
                page.fill("#username", username)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit].primary")
                page.wait_for_url(f"{live_server}/")

            sign_in("kasubag")
            page.screenshot(path=str(ARTIFACTS / "01-inbox-kasubag.png"), full_page=True)
            page.click("text=Menyusun laporan")
            page.fill("#f-judul", "ab")  # too short: the server says so and keeps the rest
            page.select_option("#f-sifat", "segera")
            page.fill("#f-catatan", "Catatan yang tidak boleh hilang")
            page.click("button[value=complete]")
            assert page.locator("text=minimal 3 karakter").is_visible()
            assert page.input_value("#f-catatan") == "Catatan yang tidak boleh hilang"
            page.screenshot(path=str(ARTIFACTS / "02-validation-error.png"), full_page=True)
            page.fill("#f-judul", "Laporan triwulan III")
            page.fill("#f-jumlah", "12")
            page.set_input_files("#f-document", str(document))
            page.click("button[value=complete]")
            page.wait_for_url(f"{live_server}/")
            assert page.locator("text=Langkah selesai").is_visible()
            page.screenshot(path=str(ARTIFACTS / "03-step-done.png"), full_page=True)
            page.click("button:has-text('Keluar')")

            sign_in("camat")
            page.click("text=Memeriksa laporan")
            page.wait_for_url("**/tugas/*")  # click() does not wait for the page it opens; a loaded machine is slow
            assert page.locator("a:has-text('draf-laporan.pdf')").is_visible()  # the earlier step's output
            page.screenshot(path=str(ARTIFACTS / "04-task-camat.png"), full_page=True)
            page.check("input[name=keputusan][value=ya]")
            page.click("button[value=complete]")
            page.wait_for_url(f"{live_server}/")
            assert page.locator("text=Langkah selesai").is_visible()
            page.screenshot(path=str(ARTIFACTS / "05-camat-done.png"), full_page=True)
        finally:
            browser.close()

    view = env.service.instance(env.service.tasks_for(env.service.actor("kasubag"))[0].instance_id)
    done = [t.element_id for t in view.tasks if t.state == "COMPLETED"]
    assert done == ["Step_1", "Step_2"]
    assert view.tasks[0].form_data["judul"] == "Laporan triwulan III"
