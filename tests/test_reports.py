"""SOP performance report: numbers checked against instances run on a controlled clock, and the XLSX export."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from engine import accounts, report_export
from engine.db import Database
from engine.reports import format_minutes, heat_level, quantile, sop_report, standard_minutes
from engine.service import Alur
from tests.conftest import FakeClock
from tests.report_fixtures import linear_sop_bpmn, run_instance

MONDAY_0900_WIB = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
# Step A (standard 15 min) takes 10, 20, 30, 40, 60 min; B (3 h) 30 each; C (1 day) 10, 10, 10, 10, 500.
A_MINUTES = [10, 20, 30, 40, 60]


@pytest.fixture
def svc(sqlite_db: Database, clock: FakeClock) -> Alur:
    service = Alur(sqlite_db, clock=clock)
    with sqlite_db.write() as s:
        accounts.add_unit(s, "kab", "Kabupaten Uji")
        accounts.add_unit(s, "kec-a", "Kecamatan A", parent="kab")
        accounts.add_unit(s, "kec-b", "Kecamatan B", parent="kab")
    service.deploy({"sop_uji.bpmn": linear_sop_bpmn()})
    return service


def unit_id(svc: Alur, code: str) -> int:
    return next(u["id"] for u in svc.units() if u["code"] == code)


def build(svc: Alur, clock: FakeClock) -> list[str]:
    """Five instances in Kecamatan A, Monday to Friday at 09:00 WIB; one in Kecamatan B (must not count)."""
    reasons = ["Menunggu data", "rapat  mendadak", "Rapat mendadak", "Listrik padam"]
    ids = []
    for day, a in enumerate(A_MINUTES):
        c = 200 if day == 4 else 10  # Friday: C takes 200 wall minutes from 10:30, across the 11:30 break
        ids.append(run_instance(svc, clock, MONDAY_0900_WIB + timedelta(days=day), [a, 30, c],
                                business_key=f"LAP-{day}", reasons=[reasons[day - 1] if day else None]))
    run_instance(svc, clock, MONDAY_0900_WIB, [200, 1, 1], unit="kec-b", business_key="LAP-B")
    return ids


def report(svc: Alur, units: list[str] | None = None, **kwargs):  # type: ignore[no-untyped-def]
    with svc.db.read() as s:
        unit_ids = None if units is None else [unit_id(svc, u) for u in units]
        return sop_report(s, "sop_uji", unit_ids=unit_ids,
                          calendar_for=lambda u: svc.calendar_for(s, u), **kwargs)


def test_quantiles_interpolate_between_closest_ranks() -> None:
    assert quantile([(10, 1), (20, 1), (30, 1), (40, 1)], 0.5) == 25
    assert quantile([(v, 1) for v in range(1, 11)], 0.9) == pytest.approx(9.1)
    assert quantile([(5, 3), (7, 1)], 0.5) == 5
    assert quantile([], 0.5) is None
    assert quantile([(42, 1)], 0.9) == 42


def test_standard_minutes_in_working_time() -> None:
    assert standard_minutes("PT15M") == 15
    assert standard_minutes("PT3H") == 180
    assert standard_minutes("P1D") == 450 and standard_minutes("P2D") == 900
    assert standard_minutes("P1W") == 5 * 450
    assert standard_minutes("P1DT2H") == 450 + 120
    assert standard_minutes("P1M") is None and standard_minutes("${x}") is None and standard_minutes(None) is None
    assert format_minutes(95) == "1 j 35 m" and format_minutes(900) == "2 hr" and format_minutes(None) == "–"
    assert [heat_level(p) for p in (None, 100, 90, 80, 50, 10)] == ["none", "good", "good", "fair", "poor", "bad"]


def test_step_numbers_from_known_durations(svc: Alur, clock: FakeClock) -> None:
    build(svc, clock)
    rep = report(svc, ["kec-a"])
    a, b, c = rep.steps
    assert [s.element_id for s in rep.steps] == ["Step_A", "Step_B", "Step_C"]
    assert (a.standard_minutes, b.standard_minutes, c.standard_minutes) == (15, 180, 450)
    assert a.done == 5 and a.median_minutes == 30 and a.p90_minutes == pytest.approx(52)  # 40 + 0.6 × 20
    assert a.on_time == 1 and a.on_time_pct == 20
    # Normalised reasons: "rapat  mendadak" and "Rapat mendadak" are one reason, most frequent first.
    assert a.late_reasons == (("Rapat mendadak", 2), ("Listrik padam", 1), ("Menunggu data", 1))
    assert b.done == 5 and b.median_minutes == 30 and b.p90_minutes == 30 and b.on_time_pct == 100
    # Friday's C: 200 wall minutes from 10:30 WIB = 60 before Friday's 11:30–13:00 break and 50 after it:
    # 110 working minutes, within its one-day standard.
    assert c.done == 5 and c.median_minutes == 10 and c.p90_minutes == pytest.approx(10 + 0.6 * 100)
    assert c.on_time_pct == 100 and c.late_reasons == ()
    # Lead time = A + 30 + C in working minutes; the total standard is 15 + 180 + 450.
    leads = sorted([a_ + 30 + 10 for a_ in A_MINUTES[:4]] + [60 + 30 + 110])
    assert rep.lead.done == 5 and rep.lead.standard_minutes == 645 and rep.lead.standard_complete
    assert rep.lead.median_minutes == leads[2] and rep.lead.p90_minutes == pytest.approx(leads[3] + 0.6 * (
        leads[4] - leads[3]))
    assert rep.lead.within_standard == 5 and rep.lead.within_standard_pct == 100
    assert rep.total_done == 15 and rep.on_time_pct == pytest.approx(100 * 11 / 15)
    assert rep.day_minutes == 450 and rep.versions == (1,)


def test_units_and_period_limit_the_numbers(svc: Alur, clock: FakeClock) -> None:
    build(svc, clock)
    everything = report(svc)  # None = every unit (an admin)
    assert everything.steps[0].done == 6
    only_b = report(svc, ["kec-b"])
    assert only_b.steps[0].done == 1 and only_b.steps[0].median_minutes == 180  # 09:00–12:20: the break is not work
    assert report(svc, []).steps[0].done == 0  # a reader who sees no unit sees no numbers
    # Monday and Tuesday only (the period is by completion time, end exclusive).
    tue_end = MONDAY_0900_WIB + timedelta(days=1, hours=12)
    two_days = report(svc, ["kec-a"], since=MONDAY_0900_WIB, until=tue_end)
    assert two_days.steps[0].done == 2 and two_days.steps[0].median_minutes == 15
    assert two_days.lead.done == 2
    empty = report(svc, ["kec-a"], since=MONDAY_0900_WIB + timedelta(days=30))
    assert empty.steps[0].done == 0 and empty.steps[0].median_minutes is None
    assert empty.steps[0].on_time_pct is None and empty.lead.median_minutes is None


def test_a_running_instance_counts_as_running_not_done(svc: Alur, clock: FakeClock) -> None:
    build(svc, clock)
    clock.now = MONDAY_0900_WIB + timedelta(days=7)
    svc.start("sop_uji", unit="kec-a")
    rep = report(svc, ["kec-a"])
    assert rep.running == 1 and rep.steps[0].done == 5


def test_xlsx_opens_back_with_its_cells(svc: Alur, clock: FakeClock) -> None:
    build(svc, clock)
    rep = report(svc, ["kec-a"])
    data = report_export.to_xlsx(rep, unit_label="Kecamatan A", period_label="23–27 November 2026",
                                 generated_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Laporan monitoring"]
    cells = {(r, c): ws.cell(r, c).value for r in range(1, ws.max_row + 1) for c in range(1, 12)}
    header = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(2, 6)}
    assert header["SOP"] == "SOP Uji Laporan (sop_uji, versi 1)"
    assert header["Unit"] == "Kecamatan A" and header["Periode"] == "23–27 November 2026"
    head_row = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "No")
    assert [ws.cell(head_row, c).value for c in range(1, 11)] == [
        "No", "Langkah", "Pelaksana", "Standar", "Standar (menit)", "Selesai", "Median (menit)", "P90 (menit)",
        "Tepat waktu (%)", "Alasan keterlambatan terbanyak"]
    row_a = [ws.cell(head_row + 1, c).value for c in range(1, 11)]
    assert row_a[:9] == ["1", "Menyiapkan bahan", "Kasubag", "PT15M", 15, 5, 30, 52, 20]
    assert row_a[9] == "Rapat mendadak (2); Listrik padam (1); Menunggu data (1)"
    assert ws.cell(head_row + 3, 5).value == 450
    lead_row = next(r for r in range(1, ws.max_row + 1) if str(ws.cell(r, 2).value).startswith("Waktu penyelesaian"))
    assert ws.cell(lead_row, 5).value == 645 and ws.cell(lead_row, 6).value == 5
    assert ws.cell(lead_row, 9).value == 100
    assert any(v == "Dibuat" for v in cells.values())


def test_printable_html_and_pdf_fetch_nothing(svc: Alur, clock: FakeClock) -> None:
    build(svc, clock)
    rep = report(svc, ["kec-a"])
    html = report_export.to_html(rep, unit_label="Kecamatan <A>", period_label="November 2026",
                                 generated_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    assert "Kecamatan &lt;A&gt;" in html and "Menyiapkan bahan" in html and "<svg" in html
    body = html.split("<body", 1)[1]
    assert "src=" not in body and "href=" not in body and "url(" not in html  # nothing to fetch
    pdf = report_export.to_pdf(html)
    assert pdf.startswith(b"%PDF")
    with pytest.raises(report_export.RefusedFetch):
        report_export.to_pdf('<img src="file:///etc/passwd">', strict=True)


def test_working_clock_matches_the_calendar() -> None:
    import random

    from engine.calendar import WorkingCalendar
    from engine.reports import _WorkingClock

    cal = WorkingCalendar()
    clock_ = _WorkingClock(cal)
    rng = random.Random(3)
    base = datetime(2026, 3, 1, tzinfo=UTC)  # across Nyepi and Idulfitri 2026
    for _ in range(400):
        start = base + timedelta(minutes=rng.randrange(0, 90 * 24 * 60), seconds=rng.randrange(60))
        end = start + timedelta(minutes=rng.randrange(0, 20 * 24 * 60), seconds=rng.randrange(60))
        assert clock_.minutes_between(start, end) == cal.working_minutes_between(start, end), (start, end)
