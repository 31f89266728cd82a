"""Regenerate the screenshots of the designer pages used in docs/camunda-modeler.md and docs/designer-guide.md.

    .venv/bin/python docs/img/make_screenshots.py

Builds a throw-away demo database (`alur demo` data: the bundled SOPs, units, a `designer` account) in a temporary
folder, serves Alur on 127.0.0.1 (a free port), and drives Debian's Chromium (/usr/bin/chromium) with Playwright:

- designer-deploy-problems.png: the deploy page after uploading two broken diagrams (the problem table);
- designer-definitions.png: the process list with versions and running instances;
- designer-definition.png: a definition page with the bpmn-js diagram and the "Mulai" form.

The PNGs are reduced to a 128-colour palette so each stays well under 150 KB. Nothing outside the temporary
folder and docs/img/ is touched; no network access besides the local server.
"""

from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright
from werkzeug.serving import make_server

from engine.db import Database
from engine.demo import DEMO_PASSWORD, run_demo
from engine.migrate import upgrade
from engine.service import Alur
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
SOP = "sop_pengukuran_kinerja_wangon"


def broken_files() -> list[dict[str, object]]:
    """Two diagrams with the mistakes designers make: a due date in words, a form that was never deployed,
    a script task."""
    wangon = (ROOT / "bpmn" / f"{SOP}.bpmn").read_bytes()
    first = wangon.replace(b'camunda:dueDate="PT60M"', b'camunda:dueDate="satu jam"', 1)
    first = first.replace(b'camunda:formRef="Form_disposisi"', b'camunda:formRef="Form_disposisi_camat"', 1)
    jurai = (ROOT / "bpmn" / "sop_monev_capaian_kinerja_iv_jurai.bpmn").read_bytes()
    second = jurai.replace(b'camunda:dueDate="P1W"', b'camunda:dueDate="seminggu"', 1)
    return [{"name": f"{SOP}.bpmn", "mimeType": "text/xml", "buffer": first},
            {"name": "sop_monev_capaian_kinerja_iv_jurai.bpmn", "mimeType": "text/xml", "buffer": second}]


def save(page: Page, name: str, *, full_page: bool = False, clip_height: int | None = None) -> None:
    raw = page.screenshot(full_page=full_page)
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    if clip_height is not None and image.height > clip_height:
        image = image.crop((0, 0, image.width, clip_height))
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path = OUT / name
    image.save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {image.width}x{image.height}, {path.stat().st_size // 1024} KB")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'alur.sqlite3'}")
        upgrade(db)
        service = Alur(db)
        run_demo(service, per_sop=2, echo=lambda _msg: None)
        app = create_app({"SECRET_KEY": "screenshots", "ALUR_INSTANCE_DIR": str(Path(tmp) / "instance")},
                         service=service)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=["--headless", "--no-sandbox", "--disable-gpu"])
                context = browser.new_context(viewport={"width": 1100, "height": 860}, locale="id-ID")
                page = context.new_page()
                page.goto(f"{base}/masuk")
                page.fill("#username", "designer")
                page.fill("#password", DEMO_PASSWORD)
                page.click("button[type=submit].primary")
                page.wait_for_url(f"{base}/")

                page.goto(f"{base}/desain/pasang")
                page.set_input_files("#f-files", broken_files())  # type: ignore[arg-type]
                page.fill("#f-name", "Revisi SOP Wangon")
                page.click("button[type=submit].primary")
                page.wait_for_selector(".alur-problems")
                save(page, "designer-deploy-problems.png", full_page=True, clip_height=1000)

                page.goto(f"{base}/desain/")
                save(page, "designer-definitions.png", full_page=True, clip_height=900)

                page.click(f"tr:has-text('{SOP}') td.alur-stack-head a")
                page.wait_for_selector("#alur-diagram[data-state=ready]")
                page.wait_for_load_state("load")  # the SOP document's iframe too
                page.set_viewport_size({"width": 1100, "height": 1500})  # iframes paint only inside the viewport
                page.wait_for_timeout(300)
                save(page, "designer-definition.png")
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=5)
            db.dispose()


if __name__ == "__main__":
    main()
