"""The SOP AP document rendered from a BPMN file alone (engine/sop/render.py)."""

from __future__ import annotations

import re
import socket
import zlib
from pathlib import Path

import pytest
from lxml import html as lxml_html

from engine.errors import DeployError
from engine.sop import render
from engine.sop.render import humanize_duration, read_sop, render_html, render_pdf

SAMPLE = Path(__file__).parent / "data" / "sop" / "sample.bpmn"
PELAKSANA = ["Camat", "Sekretaris", "Kasubag Perencanaan", "Anggota Tim SAKIP"]
# (no, lane, waktu) of the sample's 14 rows, in order; rows 2, 6, 13 have no sop.waktu (from dueDate).
EXPECTED = [
    ("1", 0, "15 menit"), ("2", 1, "1 jam"), ("3", 1, "25 menit"), ("4", 2, "30 menit"),
    ("5", 0, "2 jam"), ("6", 3, "2 hari"), ("7", 2, "4 jam"), ("8", 2, "40 menit"),
    ("9", 1, "1 jam"), ("10", 1, "25 menit"), ("11", 0, "10 menit"), ("12", 1, "15 menit"),
    ("13", 3, "1 minggu"), ("14", 3, "10 menit"),
]

BPMN_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)

# Drawn by hand in the Modeler: no sop.* properties, tasks written out of flow order, no lanes.
HAND_DRAWN = (BPMN_HEAD + """
  <bpmn:process id="hand" name="Surat Masuk" isExecutable="true">
    <bpmn:userTask id="T3" name="Mengarsipkan surat" camunda:dueDate="PT15M" />
    <bpmn:startEvent id="S" />
    <bpmn:userTask id="T1" name="Menerima surat" camunda:dueDate="PT3H" />
    <bpmn:userTask id="T2" name="Mendisposisikan surat" camunda:dueDate="P2D" />
    <bpmn:endEvent id="E" />
    <bpmn:sequenceFlow id="f0" sourceRef="S" targetRef="T1" />
    <bpmn:sequenceFlow id="f1" sourceRef="T1" targetRef="T2" />
    <bpmn:sequenceFlow id="f2" sourceRef="T2" targetRef="T3" />
    <bpmn:sequenceFlow id="f3" sourceRef="T3" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>
""").encode()

HOSTILE = (BPMN_HEAD + """
  <bpmn:process id="evil" isExecutable="true">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="sop.nama" value="&lt;script&gt;alert('nama')&lt;/script&gt;" />
      <camunda:property name="sop.dasar_hukum.1" value="&lt;img src=&quot;http://127.0.0.1:9/dh.png&quot;&gt;" />
    </camunda:properties></bpmn:extensionElements>
    <bpmn:documentation>&lt;img src="http://127.0.0.1:9/doc.png"&gt;</bpmn:documentation>
    <bpmn:laneSet id="LS">
      <bpmn:lane id="L1" name="&lt;b onmouseover=alert(1)&gt;Camat&lt;/b&gt;">
        <bpmn:flowNodeRef>T1</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="S" />
    <bpmn:userTask id="T1" name="&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=http://127.0.0.1:9/u.png&gt;">
      <bpmn:documentation>&lt;img src="http://127.0.0.1:9/task.png"&gt;</bpmn:documentation>
      <bpmn:extensionElements><camunda:properties>
<camunda:property name="sop.keterangan" value="&quot;&gt;&lt;img src=http://127.0.0.1:9/k onerror=alert(1)&gt;" />
        <camunda:property name="sop.output" value="&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;svg onload=alert(1)&gt;" />
      </camunda:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="E" />
    <bpmn:sequenceFlow id="f0" sourceRef="S" targetRef="T1" />
    <bpmn:sequenceFlow id="f1" sourceRef="T1" targetRef="E" name="&lt;svg onload=alert(2)&gt;" />
  </bpmn:process>
</bpmn:definitions>
""").encode()


@pytest.fixture(scope="module")
def sample_bytes() -> bytes:
    return SAMPLE.read_bytes()


@pytest.fixture(scope="module")
def sample_page(sample_bytes: bytes) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(render_html(sample_bytes, "sample.bpmn"))


def _text(el: lxml_html.HtmlElement) -> str:
    return " ".join(el.text_content().split())


def _symbols(page: lxml_html.HtmlElement) -> list[lxml_html.HtmlElement]:
    return page.xpath("//svg//g[contains(concat(' ', @class, ' '), ' symbol ')]")


def test_matrix_lists_rows_pelaksana_and_waktu_in_order(sample_page: lxml_html.HtmlElement) -> None:
    rows = sample_page.xpath("//table[contains(@class, 'body')]//tr[contains(@class, 'row')]")
    assert [(r.get("data-row"), int(r.get("data-lane")), _text(r.find_class("waktu")[0])) for r in rows] == EXPECTED
    assert _text(rows[0].find_class("uraian")[0]) == "Memerintahkan penyusunan pengukuran kinerja Kecamatan"
    assert _text(rows[4].find_class("keterangan")[0]) == "SOP Pelaksanaan Rapat"
    # Every matrix page repeats the pelaksana columns in lane order.
    heads = sample_page.xpath("//table[contains(@class, 'head')]")
    assert len(heads) >= 2
    for head in heads:
        assert [_text(th) for th in head.find_class("pelaksana")] == PELAKSANA
    labels = _text(heads[0])
    for label in ("No", "Uraian Prosedur", "Pelaksana", "Mutu Baku", "Kelengkapan", "Waktu", "Output",
                  "Keterangan"):
        assert label in labels


def test_each_symbol_sits_in_the_executing_pelaksana_column(sample_page: lxml_html.HtmlElement) -> None:
    symbols = _symbols(sample_page)
    assert [(g.get("data-row"), int(g.get("data-lane"))) for g in symbols] == [(no, lane) for no, lane, _ in EXPECTED]
    for svg in sample_page.xpath("//svg"):
        lane_w = float(svg.get("viewbox", svg.get("viewBox")).split()[2]) / len(PELAKSANA)
        for g in svg.xpath(".//g[@data-shape]"):
            lane = int(g.get("data-lane"))
            assert lane * lane_w < float(g.get("data-x")) < (lane + 1) * lane_w
            shape = g[0]  # the outline lies inside the column too
            xs = [float(v) for v in re.findall(r"([\d.]+),", shape.get("points", ""))] or [
                float(shape.get("x")), float(shape.get("x")) + float(shape.get("width"))]
            assert lane * lane_w < min(xs) and max(xs) < (lane + 1) * lane_w


def test_symbol_shapes_terminators_decision_and_related_sop(sample_page: lxml_html.HtmlElement) -> None:
    shapes = {g.get("data-row"): g.get("data-shape") for g in _symbols(sample_page)}
    assert shapes["1"] == shapes["14"] == "capsule"
    assert shapes["9"] == "diamond"
    assert shapes["5"] == "predefined"  # call activity: rectangle with double side bars
    assert {shapes[no] for no in shapes if no not in ("1", "5", "9", "14")} == {"rect"}
    decision_svg = sample_page.xpath("//svg[.//g[@data-row='9']]")[0]
    labels = [_text(t) for t in decision_svg.xpath(".//text")]
    assert "Ya" in labels and "Tidak" in labels
    predefined = sample_page.xpath("//g[@data-row='5']")[0]
    assert len(predefined.xpath("./line")) == 2


def test_loop_back_is_drawn_to_its_target_row(sample_bytes: bytes) -> None:
    doc = read_sop(sample_bytes, "sample.bpmn")
    verify = doc.rows[8]
    assert verify.kind == "decision"
    assert {(link.target, link.label) for link in verify.links} == {(6, "Tidak"), (9, "Ya")}
    _, _, blocks = render.layout(doc)
    block = next(b for b in blocks if 8 in b.rows)
    assert 6 in block.rows  # the page break does not cut the loop
    # A polyline ends at the side of row 7's symbol, at its centre height.
    target = next(n for n in block.svg if n.attrs.get("data-row") == "7")
    tx, ty = float(target.attrs["data-x"]), float(target.attrs["data-y"])
    ends = [n.attrs["points"].split()[-1] for n in block.svg if n.tag == "polyline"]
    assert any(abs(float(e.split(",")[1]) - ty) < 0.01 and abs(float(e.split(",")[0]) - tx) > 1 for e in ends)


def test_page_breaks_use_matching_off_page_connectors(sample_bytes: bytes) -> None:
    _, _, blocks = render.layout(read_sop(sample_bytes, "sample.bpmn"))
    assert len(blocks) == 2
    assert blocks[0].bottom_band and blocks[1].top_band
    letters = [[n.text for n in b.svg if n.attrs.get("class") == "connector-label"] for b in blocks]
    assert letters == [["A"], ["A"]]


def test_header_fields_appear(sample_page: lxml_html.HtmlElement) -> None:
    def field(name: str) -> str:
        return _text(sample_page.xpath(f"//*[@data-field='{name}']")[0])

    assert field("nomor") == "00.8.3.3/17/SOP/C.IV.J-2023"
    assert field("tanggal_pembuatan") == "13 Maret 2023"
    assert field("tanggal_revisi") == "-"
    assert field("tanggal_efektif") == "13 Maret 2023"
    assert field("disahkan_oleh").startswith("Camat IV Jurai")
    assert "NIP. 19850612 200412 2 001" in field("disahkan_oleh")
    assert field("nama") == "Pengumpulan dan Pengukuran Data Kinerja"
    assert "Kecamatan IV Jurai" in _text(sample_page.find_class("agency")[0])
    dasar = sample_page.xpath("//*[@data-field='dasar_hukum']//li")
    assert len(dasar) == 4 and _text(dasar[2]) == "Permendagri Nomor 1 Tahun 2023 tentang Tata Naskah Dinas"
    for name, count in (("kualifikasi", 3), ("keterkaitan", 2), ("peralatan", 4), ("peringatan", 1),
                        ("pencatatan", 1)):
        assert len(sample_page.xpath(f"//*[@data-field='{name}']//li")) == count
    labels = _text(sample_page)
    for label in ("Dasar Hukum", "Kualifikasi Pelaksana", "Keterkaitan", "Peralatan/Perlengkapan",
                  "Peringatan", "Pencatatan dan Pendataan"):
        assert label in labels


def test_hand_drawn_bpmn_without_properties_renders() -> None:
    doc = read_sop(HAND_DRAWN, "hand.bpmn")
    assert [(r.no, r.uraian, r.waktu) for r in doc.rows] == [
        ("1", "Menerima surat", "3 jam"), ("2", "Mendisposisikan surat", "2 hari"),
        ("3", "Mengarsipkan surat", "15 menit")]
    assert doc.pelaksana == ["Pelaksana"]
    assert doc.header.nama == "Surat Masuk" and doc.header.nomor == ""
    page = lxml_html.fromstring(render_html(HAND_DRAWN, "hand.bpmn"))
    assert [g.get("data-shape") for g in _symbols(page)] == ["capsule", "rect", "capsule"]
    assert _text(page.xpath("//*[@data-field='nomor']")[0]) == "-"


def test_rows_follow_sop_no_not_document_order() -> None:
    def task(tid: str, no: str) -> str:
        return (f'<bpmn:userTask id="{tid}" name="Langkah {no}"><bpmn:extensionElements><camunda:properties>'
                f'<camunda:property name="sop.no" value="{no}" /></camunda:properties></bpmn:extensionElements>'
                "</bpmn:userTask>")

    data = (BPMN_HEAD + '<bpmn:process id="p">' + task("A", "10") + task("B", "2") + task("C", "1")
            + "</bpmn:process></bpmn:definitions>").encode()
    assert [r.uraian for r in read_sop(data, "n.bpmn").rows] == ["Langkah 1", "Langkah 2", "Langkah 10"]


@pytest.mark.parametrize(("iso", "words"), [
    ("PT15M", "15 menit"), ("P2D", "2 hari"), ("P1W", "1 minggu"), ("PT3H", "3 jam"),
    ("PT1H30M", "1 jam 30 menit"), ("P1DT4H", "1 hari 4 jam"), ("PT0.5H", "0,5 jam"),
    ("", ""), ("${tenggat}", "${tenggat}"), ("P", "P"),
])
def test_humanize_duration(iso: str, words: str) -> None:
    assert humanize_duration(iso) == words


def test_hostile_text_is_escaped() -> None:
    page_html = render_html(HOSTILE, "evil.bpmn")
    assert "<script" not in page_html.lower()
    assert "<img" not in page_html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_html
    page = lxml_html.fromstring(page_html)
    assert not page.xpath("//img | //script | //*[@onload] | //*[@onerror] | //*[@onmouseover]")
    # The markup survives only as text the reader can see.
    assert [_text(th) for th in page.find_class("pelaksana")] == ["<b onmouseover=alert(1)>Camat</b>"]
    assert "onerror=alert(1)>" in _text(page.find_class("keterangan")[0])


def test_doctype_is_refused() -> None:
    with pytest.raises(DeployError):
        read_sop(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>', "x.bpmn")


def _pdf_page_count(pdf: bytes) -> int:
    # WeasyPrint compresses objects into streams: inflate every stream, then count page objects.
    text = pdf
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            text += zlib.decompress(stream)
        except zlib.error:
            continue
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", text))


def test_pdf_renders(sample_bytes: bytes) -> None:
    pdf = render_pdf(sample_bytes, "sample.bpmn")
    assert pdf.startswith(b"%PDF")
    assert _pdf_page_count(pdf) == 3  # identity page + two matrix pages


def test_pdf_never_fetches_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse_connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    fetched: list[str] = []
    make_fetcher = render._refusing_fetcher

    def recording_fetcher() -> object:
        fetcher = make_fetcher()
        original = fetcher.fetch

        def fetch(url: str, *args: object, **kwargs: object) -> object:
            fetched.append(url)
            return original(url, *args, **kwargs)

        fetcher.fetch = fetch
        return fetcher

    monkeypatch.setattr(render, "_refusing_fetcher", recording_fetcher)
    pdf = render_pdf(HOSTILE, "evil.bpmn")
    assert pdf.startswith(b"%PDF") and _pdf_page_count(pdf) >= 1
    assert fetched == [] and attempts == []


def test_refusing_fetcher_refuses_even_raw_html_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: were markup ever to reach WeasyPrint unescaped, it still loads nothing."""
    from weasyprint import HTML

    attempts: list[object] = []

    def refuse_connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    fetcher = render._refusing_fetcher()
    for url in ("http://127.0.0.1:9/x.png", "file:///etc/passwd", "data:text/plain,hi"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    raw = '<p>x</p><img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="file:///etc/passwd">'
    pdf = HTML(string=raw, base_url="alur-sop:/", url_fetcher=fetcher).write_pdf()
    assert pdf.startswith(b"%PDF") and attempts == []
