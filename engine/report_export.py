"""The SOP performance report as a "laporan monitoring": XLSX (openpyxl), printable HTML, PDF (WeasyPrint),
and the inline SVG bar chart the web page shows too. Indonesian labels by default: the document is attached to
an office's Laporan Kinerja as it is; `lang="en"` gives the same document with English labels (the web passes
the user's language). Step names, lanes and late reasons are SOP data and stay as written.

The HTML is self-contained (inline CSS and SVG): the PDF is rendered with a URL fetcher that refuses every
URL, so nothing in a report (step names and late reasons are typed by users) can make the server fetch a file
or a network resource.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup, escape

from engine.notify import local_time_text
from engine.reports import SopReport, StepStats, format_minutes

SHEET_TITLE = "Laporan monitoring"
COLUMNS = ("No", "Langkah", "Pelaksana", "Standar", "Standar (menit)", "Selesai", "Median (menit)", "P90 (menit)",
           "Tepat waktu (%)", "Alasan keterlambatan terbanyak")
LABELS: dict[str, dict[str, Any]] = {
    "id": {
        "lang": "id", "sheet": SHEET_TITLE, "columns": COLUMNS, "title": "Laporan Monitoring Kinerja SOP",
        "short_title": "Laporan Monitoring", "sop": "SOP", "number": "Nomor SOP", "unit": "Unit",
        "period": "Periode", "generated": "Dibuat", "version": "versi", "versions": "versi",
        "xlsx_note": "Waktu dalam menit kerja; 1 hari kerja = {m} menit. Tepat waktu: selesai sebelum batas waktu "
                     "langkah.",
        "html_note": "Waktu dalam waktu kerja (1 hari kerja = {m} menit). Tepat waktu: langkah selesai sebelum batas "
                     "waktunya (mutu baku waktu). Median dan P90 dari waktu aktual tiap penyelesaian langkah.",
        "lead": "Waktu penyelesaian SOP (lead time)", "total_standard": "total standar",
        "partial_xlsx": "Sebagian langkah tanpa standar menit: total standar = batas bawah",
        "partial_html": "Sebagian langkah tanpa standar menit.",
        "lead_pct_note": "Tepat waktu (%) pada baris ini: instans yang selesai dalam total standar SOP.",
        "lead_note": "Lead time: dari mulai sampai selesai instans; % = instans yang selesai dalam total standar SOP.",
        "counts_note": "Instans berjalan: {running}; dibatalkan dalam periode: {cancelled}.",
        "chart_label": "Grafik waktu aktual dibanding standar per langkah",
        "chart_legend": "Batang: median aktual · garis: p90 · kotak putus-putus: standar · kanan: % tepat waktu "
                        "(skala 0–{max})",
    },
    "en": {
        "lang": "en", "sheet": "Monitoring report",
        "columns": ("No", "Step", "Performed by", "Standard", "Standard (minutes)", "Done", "Median (minutes)",
                    "P90 (minutes)", "On time (%)", "Most frequent late reasons"),
        "title": "SOP Performance Monitoring Report", "short_title": "Monitoring Report", "sop": "SOP",
        "number": "SOP number", "unit": "Unit", "period": "Period", "generated": "Generated",
        "version": "version", "versions": "versions",
        "xlsx_note": "Times in working minutes; 1 working day = {m} minutes. On time: finished before the step's "
                     "deadline.",
        "html_note": "Times are working time (1 working day = {m} minutes). On time: the step finished before its "
                     "deadline (the SOP's standard time). Median and P90 are taken over the actual time of every "
                     "completed step.",
        "lead": "SOP lead time (start to finish)", "total_standard": "total standard",
        "partial_xlsx": "Some steps have no standard in minutes: the total standard is a lower bound",
        "partial_html": "Some steps have no standard in minutes.",
        "lead_pct_note": "On time (%) on this row: instances finished within the SOP's total standard time.",
        "lead_note": "Lead time: from the start to the end of an instance; % = instances finished within the SOP's "
                     "total standard time.",
        "counts_note": "Instances running: {running}; cancelled in the period: {cancelled}.",
        "chart_label": "Chart of actual time against the standard, per step",
        "chart_legend": "Bar: actual median · line: p90 · dashed box: standard · right: % on time (scale 0–{max})",
    },
}
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
HEAT_COLOURS = {"good": "2E7D32", "fair": "C0A000", "poor": "E07B00", "bad": "B3261E", "none": "9AA6B2"}


def _num(value: float | None, digits: int = 1) -> float | int | None:
    if value is None:
        return None
    rounded = round(value, digits)
    return int(rounded) if float(rounded).is_integer() else rounded


def labels(lang: str) -> dict[str, Any]:
    """The export's labels in `lang` ("id" or "en"; anything else gets Indonesian)."""
    return LABELS.get(lang, LABELS["id"])


def generated_text(moment: datetime, timezone: str, lang: str = "id") -> str:
    if lang != "en":
        return local_time_text(moment, timezone)
    local = moment.astimezone(ZoneInfo(timezone))
    return (f"{_EN_DAYS[local.weekday()]}, {local.day} {_EN_MONTHS[local.month - 1]} {local.year} at "
            f"{local:%H:%M} {local.tzname() or timezone}")


def reasons_text(step: StepStats) -> str:
    return "; ".join(f"{reason} ({n})" for reason, n in step.late_reasons)


def sop_label(report: SopReport, lang: str = "id") -> str:
    words = labels(lang)
    if report.definition_id is None and len(report.versions) > 1:
        versions = f"{words['versions']} {report.versions[0]}–{report.versions[-1]}"
    else:
        versions = f"{words['version']} {report.versions[-1]}"
    return f"{report.name} ({report.key}, {versions})"


# ------------------------------------------------------------------------------------------------ XLSX

def to_xlsx(report: SopReport, *, unit_label: str, period_label: str, generated_at: datetime,
            timezone: str = "Asia/Jakarta", lang: str = "id") -> bytes:
    """A workbook with one sheet, "Laporan monitoring": header (SOP, unit, period), the step table, lead time.
    Numbers are numbers (minutes, %), so an office can chart or sum them in its spreadsheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    words = labels(lang)
    wb = Workbook()
    ws = wb.active
    ws.title = words["sheet"]
    ws["A1"] = words["title"]
    ws["A1"].font = Font(bold=True, size=14)
    header = [(words["sop"], sop_label(report, lang)), (words["unit"], unit_label), (words["period"], period_label),
              (words["generated"], generated_text(generated_at, timezone, lang))]
    for i, (label, value) in enumerate(header, start=2):
        ws.cell(i, 1, label).font = Font(bold=True)
        ws.cell(i, 2, value)
    ws.cell(6, 1, words["xlsx_note"].format(m=report.day_minutes)).font = Font(italic=True, size=9)
    head_row = 8
    for col, title in enumerate(words["columns"], start=1):
        cell = ws.cell(head_row, col, title)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="0B3D6B")
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    row = head_row
    for step in report.steps:
        row += 1
        values = [step.sop_no or "", step.name, step.lane or "", step.standard or "", step.standard_minutes,
                  step.done, _num(step.median_minutes), _num(step.p90_minutes), _num(step.on_time_pct),
                  reasons_text(step)]
        for col, value in enumerate(values, start=1):
            ws.cell(row, col, value)
        pct = ws.cell(row, 9)
        pct.fill = PatternFill("solid", fgColor=HEAT_COLOURS[step.heat])
        pct.font = Font(color="FFFFFF", bold=True)
        ws.cell(row, 2).alignment = ws.cell(row, 10).alignment = Alignment(wrap_text=True, vertical="top")
    row += 2
    lead = report.lead
    values = ["", words["lead"], "", "", lead.standard_minutes, lead.done,
              _num(lead.median_minutes), _num(lead.p90_minutes), _num(lead.within_standard_pct),
              "" if lead.standard_complete else words["partial_xlsx"]]
    for col, value in enumerate(values, start=1):
        ws.cell(row, col, value).font = Font(bold=True)
    ws.cell(row + 1, 2, words["lead_pct_note"]).font = Font(italic=True, size=9)
    ws.cell(row + 2, 2, words["counts_note"].format(running=report.running, cancelled=report.cancelled)).font = \
        Font(italic=True, size=9)
    for col, width in enumerate((6, 42, 18, 10, 12, 9, 12, 11, 12, 48), start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = ws.cell(head_row + 1, 1)
    ws.print_title_rows = f"{head_row}:{head_row}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    for cells in ws.iter_rows():
        for cell in cells:
            if cell.data_type == "f":  # openpyxl takes any text starting with '=' (a late reason...) as a formula
                cell.data_type = "s"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ------------------------------------------------------------------------------------------------ chart

def bar_chart_svg(report: SopReport, *, width: int = 720, lang: str = "id") -> Markup:
    """Horizontal bars per step: median actual (filled, coloured by % on time) against the standard (outline),
    p90 as a tick. Plain SVG with presentation attributes (no script, no style attribute: CSP-safe)."""
    words = labels(lang)
    steps = list(report.steps)
    row_h, label_w, pad = 34, 230, 8
    height = max(1, len(steps)) * row_h + 40
    scale_max = max([1.0] + [float(v) for s in steps for v in (s.standard_minutes, s.median_minutes,
                                                                 s.p90_minutes) if v is not None])
    plot_w = width - label_w - 70

    def x(v: float) -> float:
        return label_w + plot_w * v / scale_max

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="alur-chart" viewBox="0 0 {width} {height}" '
             f'width="100%" role="img" aria-label="{escape(words["chart_label"])}">']
    for i, s in enumerate(steps):
        y = 10 + i * row_h
        label = f"{s.sop_no + '. ' if s.sop_no else ''}{s.name}"
        if len(label) > 34:
            label = label[:33] + "…"
        parts.append(f'<text x="{label_w - pad}" y="{y + 17}" text-anchor="end" font-size="12" '
                     f'fill="#1b1f24">{escape(label)}<title>{escape(s.name)}</title></text>')
        if s.standard_minutes is not None:
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{x(s.standard_minutes) - label_w:.1f}" '
                         f'height="20" fill="none" stroke="#5b6670" stroke-dasharray="4 2"/>')
        if s.median_minutes is not None:
            colour = "#" + HEAT_COLOURS[s.heat]
            parts.append(f'<rect class="alur-bar alur-heat-{s.heat}" data-element-id="{escape(s.element_id)}" '
                         f'x="{label_w}" y="{y + 7}" width="{max(1.0, x(s.median_minutes) - label_w):.1f}" '
                         f'height="12" fill="{colour}"><title>median {format_minutes(s.median_minutes, lang=lang)}'
                         f"</title></rect>")
        if s.p90_minutes is not None:
            px = x(s.p90_minutes)
            parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y + 3}" y2="{y + 23}" stroke="#1b1f24" '
                         f'stroke-width="2"><title>p90 {format_minutes(s.p90_minutes, lang=lang)}</title></line>')
        pct = "–" if s.on_time_pct is None else f"{s.on_time_pct:.0f}%"
        parts.append(f'<text x="{width - 4}" y="{y + 17}" text-anchor="end" font-size="12" '
                     f'fill="#1b1f24">{pct}</text>')
    ly = height - 14
    legend = words["chart_legend"].format(max=format_minutes(scale_max, lang=lang))
    parts.append(f'<text x="{label_w}" y="{ly}" font-size="11" fill="#5b6670">{escape(legend)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# ------------------------------------------------------------------------------------------------ HTML / PDF

_TEMPLATE = """<!doctype html>
<html lang="{{ L.lang }}"><head><meta charset="utf-8"><title>{{ L.short_title }} — {{ report.name }}</title>
<style>
@page { size: A4 landscape; margin: 14mm 12mm; }
body { font: 10pt/1.35 "DejaVu Sans", Arial, sans-serif; color: #1b1f24; margin: 0; }
h1 { font-size: 15pt; margin: 0 0 4mm; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #9aa6b2; padding: 1.5mm 2mm; vertical-align: top; text-align: left; }
th { background: #0b3d6b; color: #fff; }
td.n { text-align: right; white-space: nowrap; }
.head td { border: 0; padding: 0.5mm 2mm 0.5mm 0; }
.head td:first-child { font-weight: bold; width: 28mm; }
.heat-good { background: #2e7d32; color: #fff; } .heat-fair { background: #c0a000; color: #fff; }
.heat-poor { background: #e07b00; color: #fff; } .heat-bad { background: #b3261e; color: #fff; }
.heat-none { background: #e1e6eb; }
tr.lead td { font-weight: bold; background: #eef1f4; }
.note { color: #5b6670; font-size: 8.5pt; margin: 2mm 0; }
.chart { margin-top: 5mm; page-break-inside: avoid; }
.sign { margin-top: 10mm; width: 70mm; margin-left: auto; text-align: center; }
@media screen { body { max-width: 277mm; margin: 8mm auto; } }
</style></head>
<body>
<h1>{{ L.title }}</h1>
<table class="head">
<tr><td>{{ L.sop }}</td><td>{{ sop }}</td></tr>
{% if number %}<tr><td>{{ L.number }}</td><td>{{ number }}</td></tr>{% endif %}
<tr><td>{{ L.unit }}</td><td>{{ unit_label }}</td></tr>
<tr><td>{{ L.period }}</td><td>{{ period_label }}</td></tr>
<tr><td>{{ L.generated }}</td><td>{{ generated }}</td></tr>
</table>
<p class="note">{{ L.html_note.format(m=report.day_minutes) }}</p>
<table>
<thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for s in report.steps %}
<tr><td>{{ s.sop_no or "" }}</td><td>{{ s.name }}</td><td>{{ s.lane or "" }}</td>
<td>{{ s.standard_text or s.standard or "–" }}</td><td class="n">{{ minutes(s.standard_minutes) }}</td>
<td class="n">{{ s.done }}</td><td class="n">{{ minutes(s.median_minutes) }}</td>
<td class="n">{{ minutes(s.p90_minutes) }}</td>
<td class="n heat-{{ s.heat }}">{{ pct(s.on_time_pct) }}</td><td>{{ reasons(s) }}</td></tr>
{% endfor %}
<tr class="lead"><td></td><td>{{ L.lead }}</td><td></td><td>{{ L.total_standard }}</td>
<td class="n">{{ minutes(report.lead.standard_minutes) }}</td><td class="n">{{ report.lead.done }}</td>
<td class="n">{{ minutes(report.lead.median_minutes) }}</td><td class="n">{{ minutes(report.lead.p90_minutes) }}</td>
<td class="n">{{ pct(report.lead.within_standard_pct) }}</td>
<td>{% if not report.lead.standard_complete %}{{ L.partial_html }}{% endif %}</td></tr>
</tbody></table>
<p class="note">{{ L.lead_note }}
{{ L.counts_note.format(running=report.running, cancelled=report.cancelled) }}</p>
<div class="chart">{{ chart }}</div>
</body></html>
"""


@lru_cache(maxsize=1)
def _template() -> Any:
    return Environment(autoescape=True, undefined=StrictUndefined).from_string(_TEMPLATE)


def _minutes_cell(value: float | None, lang: str = "id") -> str:
    if value is None:
        return "–"
    return f"{_num(value)} ({format_minutes(value, lang=lang)})" if value >= 60 else str(_num(value))


def to_html(report: SopReport, *, unit_label: str, period_label: str, generated_at: datetime,
            timezone: str = "Asia/Jakarta", lang: str = "id") -> str:
    """The printable laporan monitoring: one self-contained page (A4 landscape when printed)."""
    words = labels(lang)
    return str(_template().render(
        report=report, sop=sop_label(report, lang), number=(report.meta.get("properties") or {}).get("sop.nomor"),
        unit_label=unit_label, period_label=period_label, generated=generated_text(generated_at, timezone, lang),
        L=words, columns=words["columns"], minutes=lambda v: _minutes_cell(v, lang), reasons=reasons_text,
        pct=lambda v: "–" if v is None else f"{_num(v)}%", chart=bar_chart_svg(report, lang=lang)))


class RefusedFetch(ValueError):
    pass


def _fetcher(strict: bool) -> Any:
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    class Refusing(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: object = None) -> Any:
            if strict:
                raise FatalURLFetchingError(f"external resources are not loaded: {url[:80]}")
            raise RefusedFetch(f"external resources are not loaded: {url[:80]}")

    return Refusing()


def to_pdf(html: str, *, strict: bool = False) -> bytes:
    """PDF of the printable page. Every URL is refused (inline SVG and CSS need none); `strict` turns a
    refused URL into an error instead of a missing picture."""
    from weasyprint import HTML  # lazily: loading pango takes half a second
    from weasyprint.urls import FatalURLFetchingError

    try:
        return bytes(HTML(string=html, base_url="alur-report:/", url_fetcher=_fetcher(strict)).write_pdf())
    except FatalURLFetchingError as exc:
        raise RefusedFetch(str(exc)) from exc
