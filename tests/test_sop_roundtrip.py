"""YAML SOP source → BPMN (`alur sop import`) → SOP AP document (`read_sop`, `render_html`, `alur sop render`):
what the designer wrote comes back out, row for row, column for column."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from lxml import html as lxml_html
from markupsafe import escape

from engine.cli import main
from engine.sop.importer import import_file, import_source
from engine.sop.render import read_sop, render_html
from engine.sop.source import SopSource, load_source_file

ROOT = Path(__file__).resolve().parent.parent
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "camunda": "http://camunda.org/schema/1.0/bpmn"}
SOURCES = sorted((ROOT / "bpmn" / "sources").glob("*.sop.yaml"))


def norm(text: str) -> str:
    """What the document shows for a text: runs of spaces collapsed, deliberate line breaks kept."""
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines() if line.strip())


def test_every_bundled_source_is_covered() -> None:
    assert len(SOURCES) >= 5
    assert {p.name.removesuffix(".sop.yaml") for p in SOURCES} == {
        p.stem for p in (ROOT / "bpmn").glob("*.bpmn")}


@pytest.fixture(params=SOURCES, ids=lambda p: p.name.removesuffix(".sop.yaml"))
def imported(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[SopSource, bytes, str]:
    """(source, BPMN written by `alur sop import -o`, its file name)."""
    path: Path = request.param
    source = load_source_file(path)
    out = tmp_path / f"{source.key}.bpmn"
    result = CliRunner().invoke(main, ["sop", "import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"process {source.key!r}" in result.output
    bpmn = out.read_bytes()
    # The command writes exactly what the importer's functions produce.
    assert bpmn == import_file(path) == import_source(source)
    return source, bpmn, out.name


def test_matrix_reads_back_the_source(imported: tuple[SopSource, bytes, str]) -> None:
    source, bpmn, file_name = imported
    doc = read_sop(bpmn, file_name)
    assert doc.process_id == source.key
    assert doc.pelaksana == list(source.pelaksana)  # column order = the source's pelaksana order
    assert [(r.no, r.uraian) for r in doc.rows] == [(str(r.no), norm(r.uraian)) for r in source.rows]
    assert [r.waktu for r in doc.rows] == [norm(r.waktu) for r in source.rows]
    assert [doc.pelaksana[r.lane] for r in doc.rows] == [r.pelaksana for r in source.rows]
    assert [r.due_date for r in doc.rows] == [r.due_date for r in source.rows]
    assert [(r.kelengkapan, r.output, r.keterangan) for r in doc.rows] == [
        (norm(r.kelengkapan), norm(r.output), norm(r.keterangan)) for r in source.rows]
    expected_kinds = ["decision" if r.decision else "subprocess" if r.call else "task" for r in source.rows]
    assert [r.kind for r in doc.rows] == expected_kinds
    assert [r.called_element for r in doc.rows] == [r.call or "" for r in source.rows]

    # Decisions: "yes" goes on to the next row (or the end), "no" back to no_goto, with the source's labels.
    index = {r.no: i for i, r in enumerate(source.rows)}
    for i, (row, doc_row) in enumerate(zip(source.rows, doc.rows, strict=True)):
        if row.decision:
            nxt = i + 1 if i + 1 < len(source.rows) else None
            assert {(link.target, link.label) for link in doc_row.links} == {
                (nxt, row.decision.yes_label), (index[row.decision.no_goto], row.decision.no_label)}

    header = doc.header
    for name in ("nomor", "nama", "instansi", "unit", "alamat", "tanggal_pembuatan", "tanggal_revisi",
                 "tanggal_efektif", "disahkan_oleh"):
        assert getattr(header, name) == norm(source.header.get(name, "")), name
    for name in ("dasar_hukum", "kualifikasi", "keterkaitan", "peralatan", "peringatan", "pencatatan"):
        assert getattr(header, name) == [norm(item) for item in source.lists.get(name, ())], name


def test_html_shows_the_rows_in_order(imported: tuple[SopSource, bytes, str]) -> None:
    source, bpmn, file_name = imported
    page = render_html(bpmn, file_name)

    # As text: each row's uraian, then its waktu, in row order, inside the procedure matrix.
    pos = page.index('class="matrix body"')
    for row in source.rows:
        for text in (norm(row.uraian), norm(row.waktu)):
            found = page.find(str(escape(text)), pos)
            assert found >= 0, f"row {row.no}: {text!r} missing or out of order"
            pos = found + len(text)

    # As structure: one matrix row per source row, its cells holding the source's values.
    tree = lxml_html.fromstring(page)
    rows = tree.xpath('//table[contains(@class, "body")]//tr[contains(@class, "row")]')
    cells = [(r.get("data-row"), *(r.xpath(f'string(td[@class="{c}"])') for c in ("no", "uraian", "waktu")),
              int(r.get("data-lane"))) for r in rows]
    assert cells == [(str(r.no), str(r.no), norm(r.uraian), norm(r.waktu), source.pelaksana.index(r.pelaksana))
                     for r in source.rows]
    headers = tree.xpath('//section[@data-page="1"]//th[@class="pelaksana"]')
    assert [th.text_content() for th in headers] == list(source.pelaksana)
    nama = tree.xpath('string(//td[@data-field="nama"])')
    assert nama.strip() == norm(source.nama)


def test_render_command_writes_a_pdf(tmp_path: Path) -> None:
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: pango/cairo libraries missing
        pytest.skip(f"WeasyPrint cannot load: {exc}")
    model = ROOT / "bpmn" / "sop_pengukuran_kinerja_wangon.bpmn"
    out = tmp_path / "out.pdf"
    result = CliRunner().invoke(main, ["sop", "render", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000


def test_call_activity_waktu_falls_back_to_its_due_date_property() -> None:
    """A call activity keeps its standard time in `alur.dueDate` (no camunda:dueDate there in Camunda 7):
    a designer who deletes `sop.waktu` in the Modeler still gets the Waktu cell from it."""
    model = ROOT / "bpmn" / "sop_pengukuran_kinerja_wangon.bpmn"
    root = etree.fromstring(model.read_bytes())
    [prop] = root.xpath('//bpmn:callActivity//camunda:property[@name="sop.waktu"]', namespaces=NS)
    prop.getparent().remove(prop)
    [call] = [r for r in read_sop(etree.tostring(root), model.name).rows if r.kind == "subprocess"]
    assert (call.due_date, call.waktu) == ("PT120M", "120 menit")
