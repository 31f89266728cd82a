"""English for every UI string. (a) The catalogue covers a fresh extraction of the web's sources (babel's own
extractor, web/babel.cfg), with no empty or fuzzy translation and the same placeholders: a new `_()` string
that nobody translated fails here. (b) A supervisor who chose English sees no Indonesian UI words on the
instance list, an instance page and the report page; SOP content (names of SOPs, steps, units) is data and
stays Indonesian, so it is taken out before looking."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from engine import report_export
from engine.reports import format_minutes
from tests.report_fixtures import STEPS
from tests.web.conftest import Env
from tests.web.test_supervisor import sup  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
PO = WEB / "translations/en/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_]\w*\))?[#0 +-]*\d*(?:\.\d+)?[sdifr%]")


def _catalog():  # type: ignore[no-untyped-def]
    with PO.open("rb") as fh:
        return read_po(fh, locale="en")


def _extracted() -> dict[tuple[str | None, str], list[str]]:
    """(context, msgid) → where it occurs, for every translatable string in web/ today."""
    with (WEB / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, str(WEB / "babel.cfg"))
    found: dict[tuple[str | None, str], list[str]] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(WEB), method_map, options_map, strip_comment_tags=True):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault((context, msgid), []).append(f"web/{filename}:{lineno}")
    return found


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def test_every_string_in_the_sources_has_an_english_translation() -> None:
    catalog = _catalog()
    extracted = _extracted()
    assert len(extracted) > 150  # the extractor really ran over the templates and the Python files
    missing = [f"{msgid!r} ({', '.join(where[:2])})" for (context, msgid), where in sorted(
        extracted.items(), key=lambda kv: kv[1]) if catalog.get(msgid, context) is None]
    assert not missing, ("strings not in the English catalogue; run the extract/update commands in "
                         "web/babel.cfg and translate them:\n" + "\n".join(missing))
    untranslated = []
    for (context, msgid), where in extracted.items():
        message = catalog.get(msgid, context)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(s and s.strip() for s in strings):
            untranslated.append(f"{msgid!r} ({where[0]})")
        elif any(_placeholders(s) != _placeholders(msgid) for s in strings):
            untranslated.append(f"{msgid!r}: placeholders differ in {message.string!r}")
    assert not untranslated, "empty, fuzzy or broken English translations:\n" + "\n".join(untranslated)


def test_catalogue_itself_has_no_empty_or_fuzzy_entry() -> None:
    catalog = _catalog()
    bad = [m.id for m in catalog if m.id and (m.fuzzy or not m.string)]
    assert not bad
    assert [(m.id, errors) for m, errors in catalog.check()] == []


# ------------------------------------------------------------------------------------------------ pages

# Indonesian words of the UI (labels, headings, buttons, units) that must not show in English.
UI_WORDS = ("Tugas", "Batas", "Pelaksana", "Langkah", "Selesai", "Terlambat", "terlambat", "Laporan", "Pengawasan",
            "Linimasa", "Jejak", "Tindakan", "Berjalan", "Ditangguhkan", "Dibatalkan", "Semua", "menit", "Unduh",
            "Tepat", "belum", "Keluar", "Profil", "Mulai", "Dokumen", "Alasan", "sampai", "Instans", "Grafik",
            "Batang", "Orang", "Standar", "Rincian", "Saring", "Notifikasi", "dari", "kerja", "waktu", "Tampilkan",
            "Versi", "Unit yang", "s.d.", "Halaman", "Diagram proses", "Peta panas")
# SOP content in the test data: Indonesian by nature, left as it is.
DATA = tuple(sorted({name for _, name, _, _ in STEPS} | {
    "SOP Uji Laporan", "Laporan Uji Web", "Menyusun laporan", "Memeriksa laporan", "Mengarsipkan laporan",
    "Kabupaten Uji", "Kecamatan A", "Kecamatan B"}, key=len, reverse=True))
VISIBLE_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "data-label", "data-error"}


class _Visible(HTMLParser):
    """What a reader sees or hears: text outside script/style, and the attributes that are shown or read out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(v for k, v in attrs if k in VISIBLE_ATTRIBUTES and v)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _indonesian_ui_words(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    text = "\n".join(parser.parts)
    for value in DATA:
        text = text.replace(value, " ")
    found = [w for w in UI_WORDS if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]
    found += re.findall(r"\b\d+ (?:hr|j)\b", text)  # Indonesian short time units: 2 hr 1 j 5 m
    return found


@pytest.fixture
def english(sup: Env, client_for):  # type: ignore[no-untyped-def]  # noqa: F811
    client = client_for("camat")
    assert client.post("/bahasa", data={"locale": "en", "next": "/"}).status_code == 302
    return client


def test_supervisor_pages_in_english_have_no_indonesian_ui_words(sup: Env, english) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    pages = {
        "instances": "/pengawasan/instances",
        "instance": f"/pengawasan/instances/{sup.overdue_id}",  # type: ignore[attr-defined]
        "report": "/pengawasan/laporan/sop_uji?dari=2026-01-01&sampai=2026-12-31",
        "reports": "/pengawasan/laporan",
        "notifications": "/pengawasan/notifikasi",
    }
    for name, url in pages.items():
        response = english.get(url)
        assert response.status_code == 200, name
        html = response.get_data(as_text=True)
        assert '<html lang="en">' in html
        assert _indonesian_ui_words(html) == [], name
    instance = english.get(pages["instance"]).get_data(as_text=True)
    assert "Timeline" in instance and "Performer" in instance and 'data-label="Due"' in instance
    assert "Menyiapkan bahan" in instance  # the SOP's own step name stays as written
    report = english.get(pages["report"]).get_data(as_text=True)
    assert "Most frequent late reasons" in report and "Bar: actual median" in report


def test_the_check_itself_sees_indonesian() -> None:
    html = ('<html><body><h1 title="Linimasa">Step</h1><td data-label="Batas waktu">x</td>'
            '<p>SOP Uji Laporan</p><p>1 j 35 m</p><script>var Tugas = 1;</script></body></html>')
    assert _indonesian_ui_words(html) == ["Batas", "Linimasa", "waktu", "1 j"]


def test_indonesian_stays_the_default(sup: Env, client_for) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    html = client_for("camat").get(f"/pengawasan/instances/{sup.overdue_id}").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Linimasa" in html and 'data-label="Batas"' in html and '<html lang="id">' in html


def test_exports_in_english(sup: Env, english) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import io

    from openpyxl import load_workbook

    q = "?dari=2026-01-01&sampai=2026-12-31"
    ws = load_workbook(io.BytesIO(english.get(f"/pengawasan/laporan/sop_uji/xlsx{q}").data))["Monitoring report"]
    assert ws["A1"].value == "SOP Performance Monitoring Report"
    assert [ws.cell(r, 1).value for r in range(2, 6)] == ["SOP", "Unit", "Period", "Generated"]
    assert ws.cell(3, 2).value == "All units you supervise"
    assert ws.cell(4, 2).value == "01-01-2026 to 31-12-2026"
    assert " at " in ws.cell(5, 2).value and "pukul" not in ws.cell(5, 2).value
    head = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "No")
    assert [ws.cell(head, c).value for c in range(1, 11)] == list(report_export.LABELS["en"]["columns"])
    assert ws.cell(head + 1, 2).value == "Menyiapkan bahan"  # data stays
    printable = english.get(f"/pengawasan/laporan/sop_uji/cetak{q}").get_data(as_text=True)
    assert '<html lang="en">' in printable and "SOP Performance Monitoring Report" in printable
    assert _indonesian_ui_words(printable) == []
    # Same labels, same shape in both languages.
    assert set(report_export.LABELS["en"]) == set(report_export.LABELS["id"])
    assert len(report_export.LABELS["en"]["columns"]) == len(report_export.COLUMNS)
    assert format_minutes(95, lang="en") == "1 h 35 min" and format_minutes(900, lang="en") == "2 d"
