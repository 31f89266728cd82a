"""YAML SOP source → BPMN: waktu parsing, validation naming rows, and the BPMN conventions others rely on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from engine.errors import AlurError, DeployError
from engine.sop.commands import sop
from engine.sop.durations import WaktuError, parse_waktu
from engine.sop.importer import import_source
from engine.sop.source import SopSourceError, load_source

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "bpmn" / "sources"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "modeler": "http://camunda.org/schema/modeler/1.0",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
C = "{http://camunda.org/schema/1.0/bpmn}"


# Every spelling in the seeds, plus the variants a designer will type.
@pytest.mark.parametrize(
    ("waktu", "unit", "expected"),
    [
        ("15 menit", None, "PT15M"),
        ("10 Menit", None, "PT10M"),
        ("30 menit", None, "PT30M"),
        ("120 menit", None, "PT120M"),
        ("2 Jam", None, "PT2H"),
        ("3 jam", None, "PT3H"),
        ("6 Jam", None, "PT6H"),
        ("1 hari", None, "P1D"),
        ("3 Hari", None, "P3D"),
        ("7 hari", None, "P7D"),
        ("2 hari kerja", None, "P2D"),
        ("1 minggu", None, "P1W"),
        ("1 Minggu", None, "P1W"),
        ("1 bulan", None, "P1M"),
        (15, "menit", "PT15M"),
        ("240", "menit", "PT240M"),
        ("1,5 jam", None, "PT90M"),
        ("0.5 jam", None, "PT30M"),
        ("  25  menit ", None, "PT25M"),
    ],
)
def test_parse_waktu(waktu: str | int, unit: str | None, expected: str) -> None:
    assert parse_waktu(waktu, unit) == expected


@pytest.mark.parametrize("waktu", ["", None, "segera", "15", "2 tahun cahaya", "0 menit", "1,5 hari", "-3 jam"])
def test_parse_waktu_rejects(waktu: str | None) -> None:
    with pytest.raises(WaktuError):
        parse_waktu(waktu)


MINIMAL = """\
key: sop_contoh
nama: Contoh
pelaksana: [Camat, Sekretaris, Staf]
rows:
  - no: 1
    uraian: Memerintahkan
    pelaksana: Camat
    waktu: 15 menit
  - no: 2
    uraian: Menyusun konsep
    pelaksana: Staf
    waktu: 2 hari
    form: Form_sakip_data
  - no: 3
    uraian: Memverifikasi konsep
    pelaksana: Sekretaris
    waktu: 1 jam
    decision:
      question: Konsep benar?
      yes_label: Sesuai
      no_label: Revisi
      no_goto: 2
  - no: 4
    uraian: Rapat pembahasan
    pelaksana: Camat
    waktu: 120
    keterangan: SOP Pelaksanaan Rapat
    call: sop_pelaksanaan_rapat
  - no: 5
    uraian: Menandatangani
    pelaksana: Camat
    waktu: 10 menit
    inferred: tanda tangan adalah wewenang Camat
waktu_satuan: menit
"""


def _tree(source_text: str) -> etree._Element:
    return etree.fromstring(import_source(load_source(source_text, "contoh.sop.yaml")))


def _errors(source_text: str) -> list[str]:
    with pytest.raises(SopSourceError) as info:
        load_source(source_text, "bad.sop.yaml")
    assert isinstance(info.value, DeployError) and isinstance(info.value, AlurError)
    return [str(p) for p in info.value.problems]


def test_bad_source_reports_every_problem_naming_rows() -> None:
    bad = textwrap.dedent("""\
        key: sop_buruk
        nama: Buruk
        pelaksana: [Camat, Staf]
        rows:
          - no: 1
            uraian: Satu
            pelaksana: Lurah
            waktu: 15 menit
          - no: 2
            uraian: Dua
            pelaksana: Staf
            waktu: secepatnya
          - no: 3
            uraian: Tiga
            pelaksana: Camat
            waktu: 1 jam
            decision: {question: "Benar?", no_goto: 9}
          - no: 3
            uraian: Tiga lagi
            pelaksana: Staf
            waktu: 1 hari
        """)
    errors = _errors(bad)
    joined = "\n".join(errors)
    assert "[row 1]" in joined and "unknown pelaksana 'Lurah'" in joined
    assert "[row 2]" in joined and "unparseable waktu" in joined
    assert "decision no_goto points to row 9, which does not exist" in joined
    assert "duplicate row number 3" in joined
    assert len(errors) == 4
    # Problems carry the YAML line of their row.
    assert any(e.startswith("bad.sop.yaml:5 [row 1]") for e in errors), errors
    assert any(e.startswith("bad.sop.yaml:9 [row 2]") for e in errors), errors


def test_bad_source_header_problems() -> None:
    errors = _errors("nama: x\npelaksana: []\nrows: []\nwarna: merah\n")
    joined = "\n".join(errors)
    assert "missing 'key'" in joined
    assert "'pelaksana' must list" in joined
    assert "'rows' must be a non-empty list" in joined
    assert "unknown field 'warna'" in joined


def test_row_key_no_is_not_yaml_false() -> None:
    # YAML 1.1 reads a bare `no` as False; the loader must keep the key as written.
    source = load_source(MINIMAL, "contoh.sop.yaml")
    assert [row.no for row in source.rows] == [1, 2, 3, 4, 5]


def test_bare_minutes_keep_their_unit_in_sop_waktu() -> None:
    tree = _tree(MINIMAL)
    call = tree.find(".//bpmn:callActivity[@id='Step_4']", NS)
    props = {p.get("name"): p.get("value") for p in call.iterfind(".//camunda:property", NS)}
    assert props["sop.waktu"] == "120 menit"
    assert props["alur.dueDate"] == "PT120M"


def test_root_attributes_and_pool() -> None:
    tree = _tree(MINIMAL)
    assert tree.get("exporter") == "Camunda Modeler"
    assert tree.get(f"{{{NS['modeler']}}}executionPlatform") == "Camunda Platform"
    assert tree.get(f"{{{NS['modeler']}}}executionPlatformVersion") == "7.24.0"
    participants = tree.findall("bpmn:collaboration/bpmn:participant", NS)
    assert [p.get("processRef") for p in participants] == ["sop_contoh"]
    process = tree.find("bpmn:process", NS)
    assert process.get("isExecutable") == "true"
    assert process.get(f"{C}historyTimeToLive") == "P180D"


def test_lanes_in_column_order_and_every_node_in_a_lane() -> None:
    tree = _tree(MINIMAL)
    lanes = tree.findall(".//bpmn:lane", NS)
    assert [lane.get("name") for lane in lanes] == ["Camat", "Sekretaris", "Staf"]
    in_lane = {ref.text: lane.get("name") for lane in lanes for ref in lane.findall("bpmn:flowNodeRef", NS)}
    process = tree.find("bpmn:process", NS)
    nodes = [el for el in process if el.get("id") and etree.QName(el).localname not in ("laneSet", "sequenceFlow")]
    assert {el.get("id") for el in nodes} == set(in_lane)
    assert in_lane["Step_2"] == "Staf" and in_lane["Decision_3"] == "Sekretaris"
    assert in_lane["Merge_2"] == "Staf"


def test_rows_become_user_tasks_with_mutu_baku() -> None:
    tree = _tree(MINIMAL)
    tasks = {t.get("id"): t for t in tree.iterfind(".//bpmn:userTask", NS)}
    assert set(tasks) == {"Step_1", "Step_2", "Step_3", "Step_5"}
    assert tasks["Step_1"].get("name") == "Memerintahkan"
    assert tasks["Step_1"].get(f"{C}dueDate") == "PT15M"
    assert tasks["Step_2"].get(f"{C}dueDate") == "P2D"
    assert tasks["Step_2"].get(f"{C}formRef") == "Form_sakip_data"
    assert tasks["Step_2"].get(f"{C}formRefBinding") == "latest"
    assert tasks["Step_1"].get(f"{C}formRef") == "Form_langkah"  # default step form
    assert tasks["Step_3"].get(f"{C}formRef") == "Form_keputusan"  # default decision form
    props = {p.get("name"): p.get("value") for p in tasks["Step_2"].iterfind(".//camunda:property", NS)}
    assert props == {"sop.no": "2", "sop.kelengkapan": "", "sop.output": "", "sop.keterangan": "",
                     "sop.waktu": "2 hari"}
    doc = tasks["Step_5"].find("bpmn:documentation", NS).text
    assert doc.startswith("Pelaksana disimpulkan: tanda tangan")
    assert tasks["Step_1"].find("bpmn:documentation", NS) is None


def test_process_header_properties() -> None:
    text = MINIMAL + "nomor: 1/2025\ndasar_hukum: [UU 23/2014, PP 12/2019]\nsupervisor_role: Sekretaris\n"
    tree = _tree(text)
    process = tree.find("bpmn:process", NS)
    props = {p.get("name"): p.get("value")
             for p in process.findall("bpmn:extensionElements/camunda:properties/camunda:property", NS)}
    assert props["sop.nomor"] == "1/2025"
    assert props["sop.nama"] == "Contoh"
    assert props["sop.dasar_hukum.1"] == "UU 23/2014" and props["sop.dasar_hukum.2"] == "PP 12/2019"
    assert props["alur.supervisorRole"] == "Sekretaris"
    for name in ("instansi", "unit", "alamat", "tanggal_pembuatan", "tanggal_revisi", "tanggal_efektif",
                 "disahkan_oleh"):
        assert f"sop.{name}" in props
    assert _tree(MINIMAL).find(".//camunda:property[@name='alur.supervisorRole']", NS).get("value") == "Camat"


def test_decision_gateway_loops_back() -> None:
    tree = _tree(MINIMAL)
    flows = {f.get("id"): f for f in tree.iterfind(".//bpmn:sequenceFlow", NS)}
    gateway = tree.find(".//bpmn:exclusiveGateway[@id='Decision_3']", NS)
    assert gateway.get("name") == "Konsep benar?"
    by_source = {}
    for flow in flows.values():
        by_source.setdefault(flow.get("sourceRef"), []).append(flow)
    assert [f.get("targetRef") for f in by_source["Step_3"]] == ["Decision_3"]
    out = {f.get("name"): f for f in by_source["Decision_3"]}
    assert set(out) == {"Sesuai", "Revisi"}
    assert out["Sesuai"].get("targetRef") == "Step_4"
    assert out["Revisi"].get("targetRef") == "Merge_2"
    assert [f.get("targetRef") for f in by_source["Merge_2"]] == ["Step_2"]
    yes = out["Sesuai"].find("bpmn:conditionExpression", NS)
    assert yes.text == "${keputusan == 'ya'}"
    assert yes.get(f"{{{NS['xsi']}}}type") == "bpmn:tFormalExpression"
    assert out["Revisi"].find("bpmn:conditionExpression", NS).text == "${keputusan == 'tidak'}"


def test_call_activity_for_related_sop() -> None:
    tree = _tree(MINIMAL)
    call = tree.find(".//bpmn:callActivity", NS)
    assert call.get("id") == "Step_4"
    assert call.get("calledElement") == "sop_pelaksanaan_rapat"
    assert call.get(f"{C}calledElementBinding") == "latest"


def test_events_and_di() -> None:
    tree = _tree(MINIMAL)
    process = tree.find("bpmn:process", NS)
    assert process.find("bpmn:startEvent", NS).get("id") == "StartEvent_1"
    assert process.find("bpmn:endEvent", NS).get("id") == "EndEvent_1"
    assert tree.find(".//*[@id='Start']") is None and tree.find(".//*[@id='End']") is None
    drawn = {el.get("bpmnElement") for el in tree.iterfind(".//bpmndi:BPMNPlane/*", NS)}
    ids = {el.get("id") for el in process.iter()
           if el.get("id") and etree.QName(el).localname not in ("process", "laneSet")}
    ids |= {p.get("id") for p in tree.iterfind(".//bpmn:participant", NS)}
    assert ids <= drawn
    for lane in tree.iterfind(".//bpmndi:BPMNShape", NS):
        if lane.get("bpmnElement").startswith(("Lane_", "Participant_")):
            assert lane.get("isHorizontal") == "true"
    # Left to right in row order.
    xs = [float(tree.find(f".//bpmndi:BPMNShape[@bpmnElement='Step_{n}']/*", NS).get("x")) for n in (1, 2, 3, 5)]
    assert xs == sorted(xs)


def test_cli_import_writes_bpmn(tmp_path: Path) -> None:
    src = tmp_path / "contoh.sop.yaml"
    src.write_text(MINIMAL, encoding="utf-8")
    out = tmp_path / "out" / "contoh.bpmn"
    result = CliRunner().invoke(sop, ["import", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "sop_contoh" in result.output
    assert etree.fromstring(out.read_bytes()).find("bpmn:process", NS).get("id") == "sop_contoh"


def test_cli_import_bad_source_exits_1_naming_rows(tmp_path: Path) -> None:
    src = tmp_path / "bad.sop.yaml"
    src.write_text(MINIMAL.replace("pelaksana: Staf\n    waktu: 2 hari", "pelaksana: Lurah\n    waktu: kilat"),
                   encoding="utf-8")
    result = CliRunner().invoke(sop, ["import", str(src), "-o", str(tmp_path / "x.bpmn")])
    assert result.exit_code == 1
    assert "[row 2]" in result.output and "Lurah" in result.output and "kilat" in result.output
    assert not (tmp_path / "x.bpmn").exists()


def test_cli_render_rejects_unknown_suffix(tmp_path: Path) -> None:
    result = CliRunner().invoke(sop, ["render", str(ROOT / "bpmn" / "sop_pelaksanaan_rapat.bpmn"),
                                      "-o", str(tmp_path / "x.docx")])
    assert result.exit_code == 2 and ".html or .pdf" in result.output


@pytest.mark.parametrize("source", sorted(SOURCES.glob("*.sop.yaml")), ids=lambda p: p.name)
def test_committed_bpmn_is_up_to_date(source: Path) -> None:
    parsed = load_source(source.read_text(encoding="utf-8"), source.name)
    committed = ROOT / "bpmn" / f"{parsed.key}.bpmn"
    assert committed.read_bytes() == import_source(parsed), (
        f"{committed.name} differs from its source: run `alur sop import {source.relative_to(ROOT)}`")
