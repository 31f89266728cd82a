"""On a phone (360 × 740 CSS px, Chromium): the supervisor's instance list, instance page (timeline, audit trail)
and report page fit the screen — no sideways page scrolling; the wide tables become one card per row, each
value with its column name. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.web.conftest import PASSWORD, Env
from tests.web.test_supervisor import sup  # noqa: F401  (the fixture)
from tests.web.test_supervisor_browser import ARTIFACTS, CHROMIUM, server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def phone(server: str) -> Iterator[object]:  # noqa: F811
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        pg = context.new_page()
        pg.goto(server + "/masuk")
        pg.fill("input[name=username]", "camat")
        pg.fill("input[name=password]", PASSWORD)
        pg.click("button[type=submit]:not(.link)")
        pg.wait_for_load_state()
        yield pg
        context.close()
        browser.close()


def _fits(page) -> None:  # type: ignore[no-untyped-def]
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[1] == PHONE["width"]
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide on a {widths[1]} px screen"
    # Nor does a table scroll sideways inside its own box (the timeline's container allows that on desktops).
    wide = page.evaluate("""() => [...document.querySelectorAll('table')].filter(t =>
        t.scrollWidth > t.clientWidth + 1 || t.parentElement.scrollWidth > t.parentElement.clientWidth + 1
        || t.getBoundingClientRect().right > window.innerWidth).map(t => t.className)""")
    assert wide == []


def test_instance_page_timeline_reads_on_a_phone(sup: Env, server: str, phone) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    phone.goto(f"{server}/pengawasan/instances/{sup.overdue_id}")  # type: ignore[attr-defined]
    phone.wait_for_selector("#alur-diagram[data-state=ready]", timeout=15000)
    _fits(phone)
    # One card per step: the row is as wide as the table, the header row is hidden, each cell names its column.
    step = phone.locator('.alur-timeline tr[data-element-id="Step_A"]')
    assert phone.evaluate("() => getComputedStyle(document.querySelector('.alur-timeline tbody tr')).display") == "grid"
    assert not phone.locator(".alur-timeline thead").is_visible() or phone.evaluate(
        "() => document.querySelector('.alur-timeline thead').getBoundingClientRect().width") <= 1
    due = step.locator('td[data-label="Batas"]')
    label = phone.evaluate("el => getComputedStyle(el, '::before').content", due.element_handle())
    assert label == '"Batas"'
    box = step.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    phone.locator(".alur-timeline").screenshot(path=str(ARTIFACTS / "phone-instance-timeline.png"))
    phone.screenshot(path=str(ARTIFACTS / "phone-instance.png"), full_page=True)


def test_instance_list_and_report_fit_a_phone(sup: Env, server: str, phone) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    phone.goto(f"{server}/pengawasan/instances")
    _fits(phone)
    phone.screenshot(path=str(ARTIFACTS / "phone-instances.png"), full_page=True)
    phone.goto(f"{server}/pengawasan/laporan/sop_uji?dari=2026-11-01&sampai=2026-11-30")
    phone.wait_for_selector("#alur-diagram[data-state=ready]", timeout=15000)
    _fits(phone)
    assert phone.locator(".alur-report tbody tr").count() == 4  # three steps and the lead-time row
    phone.screenshot(path=str(ARTIFACTS / "phone-report.png"), full_page=True)
    # In English too (longer labels).
    phone.click("form.lang button")
    phone.wait_for_load_state()
    phone.wait_for_selector("#alur-diagram[data-state=ready]", timeout=15000)
    assert phone.evaluate("() => document.documentElement.lang") == "en"
    _fits(phone)
    phone.screenshot(path=str(ARTIFACTS / "phone-report-en.png"), full_page=True)
    phone.goto(f"{server}/pengawasan/instances/{sup.overdue_id}")  # type: ignore[attr-defined]
    phone.wait_for_selector("#alur-diagram[data-state=ready]", timeout=15000)
    _fits(phone)
    phone.locator(".alur-timeline").screenshot(path=str(ARTIFACTS / "phone-instance-timeline-en.png"))
    definition_id = sup.service.definitions(key="sop_uji")[0].id
    phone.goto(f"{server}/pengawasan/definitions/{definition_id}")
    _fits(phone)
    phone.goto(f"{server}/pengawasan/notifikasi?semua=1")
    _fits(phone)
