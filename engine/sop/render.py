"""Render the classic SOP AP document (PermenPANRB 35/2012) from a BPMN file alone.

`read_sop` turns the BPMN into a `SopDocument` (header, pelaksana columns, procedure rows) following the
conventions of DESIGN.md §5; `render_html` / `render_pdf` lay it out: the identity page, then the procedure
matrix in A4 landscape with the flowchart drawn as one SVG overlay per page.

We paginate the matrix ourselves: the overlay must know every row's height and where each page ends, to
place symbols, connectors and the off-page connectors at the breaks. Row heights come from measuring the
text with the same font the PDF uses (Pillow + DejaVu Sans Condensed), with a heuristic fallback.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from lxml import etree

from engine.errors import DeployError, Problem
from engine.xmlsafe import parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS}

# Every activity is a procedure row; a hand-drawn model may use plain tasks.
_ROW_TAGS = {
    "task", "userTask", "manualTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "scriptTask", "callActivity", "subProcess",
}
_PREDEFINED_TAGS = {"callActivity", "subProcess"}
_DECISION_GATEWAYS = {"exclusiveGateway", "inclusiveGateway", "complexGateway", "eventBasedGateway"}
_HEADER_LISTS = ("dasar_hukum", "kualifikasi", "keterkaitan", "peralatan", "peringatan", "pencatatan")
_DEFAULT_LANE = "Pelaksana"

TEMPLATES_DIR = Path(__file__).parent / "templates"


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


@dataclass
class SopHeader:
    nomor: str = ""
    nama: str = ""
    instansi: str = ""
    unit: str = ""
    alamat: str = ""
    tanggal_pembuatan: str = ""
    tanggal_revisi: str = ""
    tanggal_efektif: str = ""
    disahkan_oleh: str = ""
    dasar_hukum: list[str] = field(default_factory=list)
    kualifikasi: list[str] = field(default_factory=list)
    keterkaitan: list[str] = field(default_factory=list)
    peralatan: list[str] = field(default_factory=list)
    peringatan: list[str] = field(default_factory=list)
    pencatatan: list[str] = field(default_factory=list)


@dataclass
class SopLink:
    """A flow from one row to another row (`target` = row index) or to an end event (`target` None)."""

    target: int | None
    label: str = ""


@dataclass
class SopRow:
    element_id: str
    no: str
    uraian: str
    lane: int  # index into SopDocument.pelaksana
    kind: str  # "task" | "decision" | "subprocess"
    kelengkapan: str = ""
    waktu: str = ""
    output: str = ""
    keterangan: str = ""
    due_date: str = ""  # camunda:dueDate (alur.dueDate on a call activity) as written (ISO 8601 duration)
    called_element: str = ""
    links: list[SopLink] = field(default_factory=list)


@dataclass
class SopDocument:
    file_name: str
    process_id: str
    header: SopHeader
    pelaksana: list[str]
    rows: list[SopRow]


# --------------------------------------------------------------------------------------------------
# Reading the BPMN
# --------------------------------------------------------------------------------------------------


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _clean(text: str | None) -> str:
    """Collapse runs of spaces but keep line breaks a designer typed on purpose."""
    if not text:
        return ""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def _properties(el: etree._Element) -> dict[str, str]:
    # Direct children only: a subProcess must not collect its children's properties (the Spiff bug).
    props: dict[str, str] = {}
    for prop in el.findall("bpmn:extensionElements/camunda:properties/camunda:property", NS):
        name = (prop.get("name") or "").strip()
        if name:
            props[name] = prop.get("value") or ""
    return props


def _numbered(props: dict[str, str], key: str) -> list[str]:
    """`sop.<key>.1..N` (numeric order), or a single `sop.<key>` split on line breaks."""
    prefix = f"sop.{key}."
    items: list[tuple[float, str]] = []
    for name, value in props.items():
        if name.startswith(prefix):
            number = _leading_number(name[len(prefix):])
            items.append((number if number is not None else math.inf, _clean(value)))
    result = [value for _, value in sorted(items, key=lambda item: item[0]) if value]
    if not result and props.get(f"sop.{key}"):
        result = [line for line in _clean(props[f"sop.{key}"]).splitlines() if line]
    return result


def _leading_number(text: str) -> float | None:
    match = re.match(r"\s*(\d+(?:[.,]\d+)?)", text)
    return float(match.group(1).replace(",", ".")) if match else None


_DURATION_RE = re.compile(
    r"^P(?:(?P<Y>\d+(?:[.,]\d+)?)Y)?(?:(?P<MO>\d+(?:[.,]\d+)?)M)?(?:(?P<W>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<D>\d+(?:[.,]\d+)?)D)?(?:T(?:(?P<H>\d+(?:[.,]\d+)?)H)?(?:(?P<MI>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<S>\d+(?:[.,]\d+)?)S)?)?$"
)
_DURATION_UNITS = (("Y", "tahun"), ("MO", "bulan"), ("W", "minggu"), ("D", "hari"),
                   ("H", "jam"), ("MI", "menit"), ("S", "detik"))


def humanize_duration(value: str) -> str:
    """ISO 8601 duration -> Indonesian words (PT15M -> "15 menit"); anything else is returned as is."""
    text = (value or "").strip()
    match = _DURATION_RE.match(text.upper())
    if not text or not match or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        return text
    parts = []
    for group, word in _DURATION_UNITS:
        amount = match.group(group)
        if amount:
            number = amount.replace(".", ",").removesuffix(",0")
            parts.append(f"{number} {word}")
    return " ".join(parts) or text


def _pick_process(root: etree._Element, file_name: str) -> etree._Element:
    processes = root.findall("bpmn:process", NS)
    if not processes:
        raise DeployError([Problem(file_name, None, None, "no bpmn:process in the file")])
    # Prefer the process a collaboration's pool shows, then an executable one, then one with activities.
    participant_refs = [p.get("processRef") for p in root.findall("bpmn:collaboration/bpmn:participant", NS)]

    def score(proc: etree._Element) -> tuple[int, int, int]:
        has_rows = any(_local(child) in _ROW_TAGS for child in proc)
        return (int(has_rows), int(proc.get("id") in participant_refs), int(proc.get("isExecutable") == "true"))

    return max(processes, key=score)


def _lane_bounds(root: etree._Element) -> dict[str, tuple[float, float]]:
    bounds: dict[str, tuple[float, float]] = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        box = shape.find("dc:Bounds", NS)
        if box is not None and shape.get("bpmnElement"):
            try:
                bounds[shape.get("bpmnElement", "")] = (float(box.get("y", "0")), float(box.get("x", "0")))
            except ValueError:
                continue
    return bounds


def _leaf_lanes(process: etree._Element, root: etree._Element) -> list[etree._Element]:
    lanes = [
        lane for lane in process.iterfind(".//bpmn:lane", NS)
        if not lane.findall("bpmn:childLaneSet/bpmn:lane", NS)
    ]
    # Column order = the order the designer sees (top to bottom) when every lane has a shape,
    # which for the importer's files equals document order.
    bounds = _lane_bounds(root)
    if lanes and all(lane.get("id") in bounds for lane in lanes):
        lanes.sort(key=lambda lane: bounds[lane.get("id", "")])
    return lanes


def _flow_order(nodes: dict[str, etree._Element], outgoing: dict[str, list[etree._Element]],
                incoming: dict[str, int]) -> dict[str, int]:
    """Reverse postorder of a DFS from the start events: a topological order that ignores loop-backs."""
    starts = [nid for nid, el in nodes.items() if _local(el) == "startEvent"]
    starts += [nid for nid in nodes if not incoming.get(nid) and nid not in starts]
    visited: set[str] = set()
    postorder: list[str] = []
    for start in starts:
        if start in visited:
            continue
        visited.add(start)
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(_targets(outgoing, start)))]
        while stack:
            node, children = stack[-1]
            child = next((c for c in children if c not in visited and c in nodes), None)
            if child is None:
                stack.pop()
                postorder.append(node)
            else:
                visited.add(child)
                stack.append((child, iter(_targets(outgoing, child))))
    order = list(reversed(postorder))
    order += [nid for nid in nodes if nid not in visited]  # unreachable: document order, at the end
    return {nid: index for index, nid in enumerate(order)}


def _targets(outgoing: dict[str, list[etree._Element]], node: str) -> list[str]:
    # Reversed so that, after reversing the postorder, the first outgoing flow's branch comes first.
    return [flow.get("targetRef", "") for flow in reversed(outgoing.get(node, []))]


def read_sop(bpmn_bytes: bytes, file_name: str) -> SopDocument:
    """Read the SOP model out of a BPMN file (see DESIGN.md §5 for the conventions)."""
    root = parse_xml(bpmn_bytes, file_name).getroot()
    process = _pick_process(root, file_name)
    props = _properties(process)

    nodes = {el.get("id", ""): el for el in process if isinstance(el.tag, str) and el.get("id")
             and _local(el) not in ("sequenceFlow", "laneSet", "extensionElements", "documentation")}
    outgoing: dict[str, list[etree._Element]] = {}
    incoming: dict[str, int] = {}
    for flow in process.iterfind("bpmn:sequenceFlow", NS):
        outgoing.setdefault(flow.get("sourceRef", ""), []).append(flow)
        incoming[flow.get("targetRef", "")] = incoming.get(flow.get("targetRef", ""), 0) + 1

    # Pelaksana columns: leaf lanes; tasks outside every lane get a column of their own.
    pelaksana: list[str] = []
    lane_of: dict[str, int] = {}
    for lane in _leaf_lanes(process, root):
        pelaksana.append(_clean(lane.get("name")) or lane.get("id", _DEFAULT_LANE))
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            lane_of.setdefault((ref.text or "").strip(), len(pelaksana) - 1)

    tasks = [el for el in nodes.values() if _local(el) in _ROW_TAGS]
    for task in tasks:
        if task.get("id") not in lane_of:
            name = (task.get(f"{{{CAMUNDA_NS}}}candidateGroups") or task.get(f"{{{CAMUNDA_NS}}}assignee")
                    or _DEFAULT_LANE).strip()
            if name not in pelaksana:
                pelaksana.append(name)
            lane_of[task.get("id", "")] = pelaksana.index(name)

    # Row order: sop.no where given; a task without it follows the numbered task before it in flow order.
    flow_index = _flow_order(nodes, outgoing, incoming)
    task_props = {task.get("id", ""): _properties(task) for task in tasks}
    numbers = {tid: _leading_number(p.get("sop.no", "")) for tid, p in task_props.items()}
    keys: dict[str, tuple[float, int, int]] = {}
    last = 0.0
    for task in sorted(tasks, key=lambda t: flow_index[t.get("id", "")]):
        tid = task.get("id", "")
        number = numbers[tid]
        if number is not None:
            keys[tid], last = (number, 0, flow_index[tid]), number
        else:
            keys[tid] = (last, 1, flow_index[tid])
    tasks.sort(key=lambda t: keys[t.get("id", "")])
    all_numbered = all(numbers[t.get("id", "")] is not None for t in tasks)
    row_index = {task.get("id", ""): i for i, task in enumerate(tasks)}

    rows = []
    for i, task in enumerate(tasks):
        tid = task.get("id", "")
        p = task_props[tid]
        due = (task.get(f"{{{CAMUNDA_NS}}}dueDate") or p.get("alur.dueDate") or "").strip()  # call: property
        decision, links = _links(tid, nodes, outgoing, row_index)
        tag = _local(task)
        rows.append(SopRow(
            element_id=tid,
            no=p["sop.no"].strip().rstrip(".") if all_numbered else str(i + 1),
            uraian=_clean(task.get("name")) or tid,
            lane=lane_of[tid],
            kind="decision" if decision else ("subprocess" if tag in _PREDEFINED_TAGS else "task"),
            kelengkapan=_clean(p.get("sop.kelengkapan")),
            waktu=_clean(p.get("sop.waktu")) or humanize_duration(due),
            output=_clean(p.get("sop.output")),
            keterangan=_clean(p.get("sop.keterangan"))
            or (f"SOP {task.get('calledElement')}" if tag == "callActivity" and task.get("calledElement") else ""),
            due_date=due,
            called_element=task.get("calledElement", "") if tag == "callActivity" else "",
            links=links,
        ))

    header = SopHeader(
        nomor=_clean(props.get("sop.nomor")),
        nama=_clean(props.get("sop.nama")) or _clean(process.get("name")) or Path(file_name).stem,
        instansi=_clean(props.get("sop.instansi")),
        unit=_clean(props.get("sop.unit")),
        alamat=_clean(props.get("sop.alamat")),
        tanggal_pembuatan=_clean(props.get("sop.tanggal_pembuatan")),
        tanggal_revisi=_clean(props.get("sop.tanggal_revisi")),
        tanggal_efektif=_clean(props.get("sop.tanggal_efektif")),
        disahkan_oleh=_clean(props.get("sop.disahkan_oleh")),
        **{key: _numbered(props, key) for key in _HEADER_LISTS},
    )
    return SopDocument(file_name=file_name, process_id=process.get("id", ""), header=header,
                       pelaksana=pelaksana or [_DEFAULT_LANE], rows=rows)


def _links(task_id: str, nodes: dict[str, etree._Element], outgoing: dict[str, list[etree._Element]],
           row_index: dict[str, int]) -> tuple[bool, list[SopLink]]:
    """Where a row leads: through gateways and events to the next rows (or the end), with flow labels."""
    links: list[SopLink] = []
    decision = False

    def follow(node_id: str, label: str, seen: set[str]) -> None:
        if node_id in seen or node_id not in nodes:
            return
        seen.add(node_id)
        if node_id in row_index:
            link = SopLink(row_index[node_id], label)
        elif _local(nodes[node_id]) == "endEvent" or not outgoing.get(node_id):
            link = SopLink(None, label)
        else:
            for flow in outgoing[node_id]:
                follow(flow.get("targetRef", ""), label or _clean(flow.get("name")), seen)
            return
        if all((other.target, other.label) != (link.target, link.label) for other in links):
            links.append(link)

    flows = outgoing.get(task_id, [])
    conditional = sum(1 for flow in flows if flow.find("bpmn:conditionExpression", NS) is not None)
    decision = len(flows) >= 2 and conditional >= 1
    for flow in flows:
        target = nodes.get(flow.get("targetRef", ""))
        branches = outgoing.get(target.get("id", ""), []) if target is not None else []
        if target is not None and _local(target) in _DECISION_GATEWAYS and len(branches) >= 2:
            decision = True
            for branch in branches:
                follow(branch.get("targetRef", ""), _clean(branch.get("name")), {task_id, target.get("id", "")})
        else:
            follow(flow.get("targetRef", ""), _clean(flow.get("name")), {task_id})
    return decision, links


# --------------------------------------------------------------------------------------------------
# Measuring text (to know row heights before WeasyPrint lays the table out)
# --------------------------------------------------------------------------------------------------

FONT_PT = 7.5
FONT_MM = FONT_PT * 25.4 / 72
LINE_MM = 3.3  # CSS line-height of matrix cells
PAD_X, PAD_Y = 1.2, 1.0  # CSS padding of matrix cells
_FONT_FILES = {
    False: ("DejaVuSansCondensed.ttf", "DejaVuSans.ttf"),
    True: ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf"),
}
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/fonts/truetype")


@lru_cache(maxsize=2)
def _font(bold: bool) -> Any:
    try:
        from PIL import ImageFont  # Pillow comes with WeasyPrint
    except ImportError:
        return None
    for name in _FONT_FILES[bold]:
        for folder in _FONT_DIRS:
            for path in sorted(Path(folder).rglob(name)) if Path(folder).is_dir() else []:
                try:
                    return ImageFont.truetype(str(path), 100)
                except OSError:
                    continue
    return None


def text_width(text: str, bold: bool = False) -> float:
    """Width in mm of `text` in the matrix font; slightly generous so a browser's font still fits."""
    font = _font(bold)
    if font is None:
        return len(text) * FONT_MM * (0.58 if bold else 0.55)
    return font.getlength(text) / 100 * FONT_MM * 1.05


def wrap_lines(text: str, width_mm: float, bold: bool = False) -> int:
    """How many lines `text` takes in a box `width_mm` wide (greedy wrapping, like the browser)."""
    total = 0
    space = text_width(" ", bold)
    for paragraph in (text or "").splitlines() or [""]:
        lines, current = 1, 0.0
        for word in paragraph.split():
            w = text_width(word, bold)
            if w > width_mm:  # overflow-wrap: anywhere breaks long words
                chunks = math.ceil(w / width_mm)
                lines += (1 if current else 0) + chunks - 1
                current = w - (chunks - 1) * width_mm
            elif current and current + space + w > width_mm:
                lines += 1
                current = w
            else:
                current += (space if current else 0) + w
        total += lines
    return max(total, 1)


def cell_height(text: str, col_mm: float, bold: bool = False) -> float:
    # + the cell's border: WeasyPrint grows a row whose content, padding and border exceed its height.
    return wrap_lines(text, col_mm - 2 * PAD_X - 0.6, bold) * LINE_MM + 2 * PAD_Y + 0.3


# --------------------------------------------------------------------------------------------------
# Layout of the matrix: columns, pages, and the flowchart overlay
# --------------------------------------------------------------------------------------------------

CONTENT_W, CONTENT_H = 277.0, 184.0  # A4 landscape minus the @page margins in sop_document.css
CAPTION_FIRST, CAPTION_NEXT = 9.0, 6.0
HEAD_ROW1 = 5.6
BAND = 9.0  # room for an off-page connector at the top/bottom of a page
SAFETY = 4.0
ROW_MIN, DECISION_MIN = 12.0, 15.0
SYMBOL_H, DIAMOND_H = 6.4, 8.4


@dataclass
class SvgNode:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[SvgNode] = field(default_factory=list)


@dataclass
class Columns:
    no: float
    uraian: float
    lane: float
    lanes: int
    kelengkapan: float = 29.0
    waktu: float = 15.0
    output: float = 29.0
    keterangan: float = 28.0

    @property
    def widths(self) -> list[float]:
        return [self.no, self.uraian, *([self.lane] * self.lanes), self.kelengkapan, self.waktu,
                self.output, self.keterangan]


@dataclass
class Block:
    """One printed page of the matrix."""

    first: bool
    rows: list[int]  # row indexes
    heights: list[float]
    top_band: bool
    bottom_band: bool
    end_band: bool = False  # room under a closing decision for the "Selesai" terminator
    svg_width: float = 0.0
    svg_height: float = 0.0
    svg: list[SvgNode] = field(default_factory=list)

    def row_top(self, i: int) -> float:
        pos = self.rows.index(i)
        return (BAND if self.top_band else 0.0) + sum(self.heights[:pos])


def _columns(lanes: int) -> Columns:
    cols = Columns(no=8.0, uraian=0.0, lane=0.0, lanes=lanes)
    rest = CONTENT_W - cols.no - cols.kelengkapan - cols.waktu - cols.output - cols.keterangan
    cols.lane = min(30.0, max(14.0, (rest - 58.0) / lanes))
    if rest - cols.lane * lanes < 40.0:  # many pelaksana: keep the uraian readable
        cols.lane = (rest - 40.0) / lanes
    cols.uraian = rest - cols.lane * lanes
    return cols


def _row_height(row: SopRow, cols: Columns) -> float:
    texts = [(row.no, cols.no), (row.uraian, cols.uraian), (row.kelengkapan, cols.kelengkapan),
             (row.waktu, cols.waktu), (row.output, cols.output), (row.keterangan, cols.keterangan)]
    text_h = max(cell_height(text, width) for text, width in texts)
    return round(max(text_h, DECISION_MIN if row.kind == "decision" else ROW_MIN), 2)


def _header_height(doc: SopDocument, cols: Columns) -> float:
    names = [cell_height(name, cols.lane, bold=True) for name in doc.pelaksana]
    subs = [cell_height(label, width, bold=True) for label, width in
            (("Kelengkapan", cols.kelengkapan), ("Waktu", cols.waktu), ("Output", cols.output))]
    return round(max([7.0, *names, *subs]), 2)


def _page_room(first: bool, last: bool, head_h: float) -> float:
    room = CONTENT_H - (CAPTION_FIRST if first else CAPTION_NEXT) - HEAD_ROW1 - head_h - SAFETY
    return room - (0.0 if first else BAND) - (0.0 if last else BAND)


def _paginate(heights: list[float], head_h: float, links: list[list[SopLink]], end_band: bool = False,
              ) -> list[Block]:
    """Choose the page breaks: fewest pages, then fewest loops cut by a break, then full pages.

    A loop cut by a break needs numbered connectors instead of a drawn line, and a last page holding one
    or two rows looks like a mistake; a small dynamic programme over break positions avoids both.
    """
    n = len(heights)
    if n == 0:
        return []

    def cut(j: int) -> int:  # flows other than "next row" that a break before row j would cut
        return sum(1 for a, row_links in enumerate(links) for link in row_links
                   if link.target is not None and link.target != a + 1
                   and min(a, link.target) < j <= max(a, link.target))

    best: dict[int, tuple[float, list[int]]] = {n: (0.0, [])}  # start row -> (cost, page starts)
    for i in range(n - 1, -1, -1):
        options = []
        used = 0.0
        for j in range(i + 1, n + 1):
            used += heights[j - 1]
            room = _page_room(i == 0, j == n, head_h) - (BAND if end_band and j == n else 0.0)
            if used > room and j > i + 1:
                break
            # Every page but the last as full as it can be, and a last page of at least three rows.
            last_too_short = 400.0 if j - i < min(3, n) else 0.0
            fill = max(room - used, 0.0) ** 2 + 1e3 * cut(j) if j < n else last_too_short
            cost = 1e6 + fill + best[j][0]
            options.append((cost, [i, *best[j][1]]))
        best[i] = min(options, key=lambda option: option[0])
    starts = [*best[0][1], n]
    return [Block(first=start == 0, rows=list(range(start, end)), heights=heights[start:end],
                  top_band=start > 0, bottom_band=end < n, end_band=end_band and end == n)
            for start, end in pairwise(starts)]


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# Presentation attributes, not CSS: WeasyPrint draws inline SVG without the page's stylesheet.
_STROKE = {"stroke": "#000", "stroke-width": "0.3"}
_FLOW_STYLE = {"fill": "none", **_STROKE}
_SHAPE_STYLE = {"fill": "#fff", **_STROKE}
_FONT = "DejaVu Sans Condensed, Liberation Sans Narrow, Arial Narrow, sans-serif"


def _points(points: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points)


def _line(points: list[tuple[float, float]]) -> SvgNode:
    return SvgNode("polyline", {"class": "flow", "points": _points(points), **_FLOW_STYLE})


def _arrow(x: float, y: float, direction: str) -> SvgNode:
    """A filled arrowhead whose tip is at (x, y)."""
    length, half = 1.8, 0.9
    dx, dy = {"down": (0, -1), "up": (0, 1), "left": (1, 0), "right": (-1, 0)}[direction]
    base_x, base_y = x + dx * length, y + dy * length
    pts = [(x, y), (base_x + dy * half, base_y + dx * half), (base_x - dy * half, base_y - dx * half)]
    return SvgNode("polygon", {"class": "arrow", "points": _points(pts), "fill": "#000"})


LABEL_MM, LABEL_LINE = 2.3, 2.5


def _wrap_label(text: str, room: float) -> list[str]:
    """Split a flow label into lines no wider than `room` mm (a single long word stays whole)."""
    scale = LABEL_MM / FONT_MM
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}") * scale <= room:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [text]


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "label") -> SvgNode:
    style = {"font-size": "2.4", "font-weight": "bold"} if cls == "connector-label" else {"font-size": "2.3"}
    if cls == "label":
        style["font-style"] = "italic"
    return SvgNode("text", {"x": _fmt(x), "y": _fmt(y), "text-anchor": anchor, "class": cls,
                            "font-family": _FONT, "fill": "#000", **style}, text)


class _Geometry:
    """Symbol positions and sizes for one block, in mm inside the block's overlay."""

    def __init__(self, doc: SopDocument, cols: Columns, block: Block):
        self.doc, self.cols, self.block = doc, cols, block
        self.lane_w = cols.lane

    def cx(self, row: int) -> float:
        return (self.doc.rows[row].lane + 0.5) * self.lane_w

    def cy(self, row: int) -> float:
        return self.block.row_top(row) + self.block.heights[self.block.rows.index(row)] / 2

    def half_w(self, row: int) -> float:
        if self.doc.rows[row].kind == "decision":
            return min(self.lane_w - 6.0, 13.0) / 2
        return min(self.lane_w - 6.0, 18.0) / 2

    def half_h(self, row: int) -> float:
        return (DIAMOND_H if self.doc.rows[row].kind == "decision" else SYMBOL_H) / 2

    def shape(self, row: int) -> str:
        kind = self.doc.rows[row].kind
        if kind == "decision":
            return "diamond"
        if kind == "subprocess":
            return "predefined"
        if row in (0, len(self.doc.rows) - 1):
            return "capsule"
        return "rect"


def _symbol(geo: _Geometry, row: int) -> SvgNode:
    x, y, hw, hh = geo.cx(row), geo.cy(row), geo.half_w(row), geo.half_h(row)
    shape = geo.shape(row)
    group = SvgNode("g", {"class": f"symbol {shape}", "data-row": geo.doc.rows[row].no,
                          "data-lane": str(geo.doc.rows[row].lane), "data-shape": shape,
                          "data-x": _fmt(x), "data-y": _fmt(y)})
    box = {"x": _fmt(x - hw), "y": _fmt(y - hh), "width": _fmt(2 * hw), "height": _fmt(2 * hh)}
    if shape == "diamond":
        pts = [(x, y - hh), (x + hw, y), (x, y + hh), (x - hw, y)]
        group.children.append(SvgNode("polygon", {"points": _points(pts), **_SHAPE_STYLE}))
    elif shape == "capsule":
        group.children.append(SvgNode("rect", {**box, "rx": _fmt(hh), "ry": _fmt(hh), **_SHAPE_STYLE}))
        word = "Mulai" if row == 0 else "Selesai"
        if text_width(word) * 0.85 < 2 * hw - 2 * hh * 0.6:
            group.children.append(_text(x, y + 0.8, word, "middle", "terminal"))
    else:
        group.children.append(SvgNode("rect", {**box, **_SHAPE_STYLE}))
        if shape == "predefined":  # predefined process: double side bars
            for bar_x in (x - hw + 1.3, x + hw - 1.3):
                group.children.append(SvgNode("line", {"x1": _fmt(bar_x), "y1": _fmt(y - hh),
                                                       "x2": _fmt(bar_x), "y2": _fmt(y + hh), **_STROKE}))
    return group


def _offpage(x: float, y_top: float, label: str, pointing_down: bool = True) -> list[SvgNode]:
    """Off-page connector: a pentagon (house shape pointing down) with a letter."""
    w, h, tip = 6.0, 4.2, 2.0
    pts = [(x - w / 2, y_top), (x + w / 2, y_top), (x + w / 2, y_top + h), (x, y_top + h + tip),
           (x - w / 2, y_top + h)]
    return [SvgNode("polygon", {"class": "connector", "points": _points(pts), **_SHAPE_STYLE}),
            _text(x, y_top + h - 1.0, label, "middle", "connector-label")]


def _onpage(x: float, y: float, label: str) -> list[SvgNode]:
    """On-page connector: a small circle carrying the row number the flow continues at."""
    return [SvgNode("circle", {"class": "connector", "cx": _fmt(x), "cy": _fmt(y), "r": "2.3", **_SHAPE_STYLE}),
            _text(x, y + 0.85, label, "middle", "connector-label")]


def _draw_block(doc: SopDocument, cols: Columns, block: Block, letters: dict[int, str]) -> None:
    geo = _Geometry(doc, cols, block)
    lane_w = cols.lane
    block.svg_width = lane_w * cols.lanes
    block.svg_height = (BAND if block.top_band else 0) + sum(block.heights) + (
        BAND if block.bottom_band or block.end_band else 0)
    lines: list[SvgNode] = []
    marks: list[SvgNode] = []
    on_block = set(block.rows)
    last_row = len(doc.rows) - 1
    side_used: dict[int, set[str]] = {row: set() for row in block.rows}

    def side_x(row: int, side: str) -> float:
        return geo.cx(row) + (geo.half_w(row) if side == "right" else -geo.half_w(row))

    def take_side(row: int, preferred: str) -> str:
        used = side_used[row]
        side = preferred if preferred not in used else ("left" if preferred == "right" else "right")
        used.add(side)
        return side

    def label_at(sx: float, y: float, side: str, text: str, below: bool, room: float) -> None:
        """A branch label beside a side exit, wrapped to the room before the next line or grid line."""
        direction = 1 if side == "right" else -1
        wrapped = _wrap_label(text, room - 0.8)
        first_y = y + 2.2 if below else y - 0.8 - LABEL_LINE * (len(wrapped) - 1)
        for i, part in enumerate(wrapped):
            marks.append(_text(sx + direction * 0.6, first_y + i * LABEL_LINE, part,
                               "start" if side == "right" else "end"))

    def room_to_edge(row: int, side: str) -> float:
        lane = doc.rows[row].lane
        edge = (lane + 1) * lane_w if side == "right" else lane * lane_w
        return abs(edge - side_x(row, side))

    # Pass 1: loops and skips drawn on this page claim their sides first (exit and entry), so that the
    # ordinary next-step connectors can keep clear of them.
    routes: list[tuple[int, SopLink, str, float, str]] = []  # source, link, exit side, channel, entry side
    for row in block.rows:
        for link in doc.rows[row].links:
            target = link.target
            if target is None or target == row + 1 or target not in on_block:
                continue
            lane, target_lane = doc.rows[row].lane, doc.rows[target].lane
            side = take_side(row, "left" if target_lane < lane else "right")
            direction = 1 if side == "right" else -1
            # The channel runs halfway between the symbols and the column's edge, clear of the grid.
            margin = max((lane_w / 2 - max(geo.half_w(target), geo.half_w(row))) / 2, 1.6)
            if target_lane == lane:
                channel = geo.cx(row) + direction * (lane_w / 2 - margin)
            elif target_lane < lane:
                channel = (target_lane + 1) * lane_w - margin
            else:
                channel = target_lane * lane_w + margin
            entry = "right" if channel > geo.cx(target) else "left"
            side_used[target].add(entry)
            routes.append((row, link, side, channel, entry))

    for row, link, side, channel, entry in routes:
        target = link.target or 0
        y, sx = geo.cy(row), side_x(row, side)
        tcy, ex = geo.cy(target), side_x(target, entry)
        lines.append(_line([(sx, y), (channel, y), (channel, tcy), (ex, tcy)]))
        marks.append(_arrow(ex, tcy, "left" if entry == "right" else "right"))
        if link.label:  # on the side of the line the channel leaves free
            label_at(sx, y, side, link.label, below=target < row, room=abs(channel - sx))

    # Arrival from the previous page: pentagon in the top band, then down into the first row.
    first = block.rows[0]
    if block.top_band and first - 1 in letters:
        x = geo.cx(first)
        marks += _offpage(x, 0.8, letters[first - 1])
        lines.append(_line([(x, 7.0), (x, geo.cy(first) - geo.half_h(first))]))
        marks.append(_arrow(x, geo.cy(first) - geo.half_h(first), "down"))

    # Pass 2: the ordinary next step, and flows to rows on other pages or to the end.
    for row in block.rows:
        sop_row = doc.rows[row]
        x, y, hh = geo.cx(row), geo.cy(row), geo.half_h(row)
        for link in sop_row.links:
            target = link.target
            if target == row + 1 and target in on_block:
                tx, ty = geo.cx(target), geo.cy(target) - geo.half_h(target)
                facing = "right" if tx > x else "left"
                if abs(tx - x) < 0.01:
                    pts = [(x, y + hh), (tx, ty)]
                elif sop_row.kind != "decision" and facing not in side_used[row]:
                    # Out of the side facing the next pelaksana, then down into the next symbol.
                    side_used[row].add(facing)
                    pts = [(side_x(row, facing), y), (tx, y), (tx, ty)]
                else:
                    # Out of the bottom (a decision keeps its sides for the other branches), then across
                    # halfway between the symbol and the row line, clear of the table's grid.
                    elbow = (y + hh + block.row_top(target)) / 2 if sop_row.kind != "decision" else (
                        block.row_top(target) - 0.9)
                    pts = [(x, y + hh), (x, elbow), (tx, elbow), (tx, ty)]
                lines.append(_line(pts))
                marks.append(_arrow(tx, ty, "down"))
                if link.label:  # right of the line just under the bottom vertex, above any elbow
                    marks.append(_text(x + 0.8, y + hh + 1.9, link.label))
            elif target == row + 1:  # next step is on the next page: off-page connector at the bottom
                band_top = block.svg_height - BAND
                lines.append(_line([(x, y + hh), (x, band_top + 1.0)]))
                marks += _offpage(x, band_top + 1.0, letters[row])
                if link.label:
                    marks.append(_text(x + 0.8, y + hh + 1.9, link.label))
            elif target is None:
                if row == last_row and sop_row.kind != "decision":
                    continue  # the closing capsule is the end
                if row == last_row and block.end_band and "bottom" not in side_used[row]:
                    # A closing decision: down into a "Selesai" terminator in the band under the last row.
                    side_used[row].add("bottom")
                    band_top = block.svg_height - BAND
                    cap_w, cap_h = min(lane_w - 6.0, 18.0), 5.0
                    lines.append(_line([(x, y + hh), (x, band_top + 2.0)]))
                    marks.append(_arrow(x, band_top + 2.0, "down"))
                    marks.append(SvgNode("rect", {"class": "terminator", "x": _fmt(x - cap_w / 2),
                                                  "y": _fmt(band_top + 2.0), "width": _fmt(cap_w),
                                                  "height": _fmt(cap_h), "rx": _fmt(cap_h / 2),
                                                  **_SHAPE_STYLE}))
                    marks.append(_text(x, band_top + 2.0 + cap_h / 2 + 0.8, "Selesai", "middle", "terminal"))
                    if link.label:
                        marks.append(_text(x + 0.8, y + hh + 1.9, link.label))
                    continue
                side = take_side(row, "right")
                direction = 1 if side == "right" else -1
                sx = side_x(row, side)
                end_x = sx + direction * 3.5
                lines.append(_line([(sx, y), (end_x, y)]))
                marks.append(_arrow(end_x, y, side))
                marks.append(_text(end_x + direction * 0.6, y + 0.9, "selesai", "start" if side == "right" else "end"))
                if link.label:
                    label_at(sx, y - 0.5, side, link.label, below=False, room=room_to_edge(row, side))
            elif target not in on_block:
                # Too far (another page): a numbered on-page connector names the row to go to.
                side = take_side(row, "left" if doc.rows[target].lane < sop_row.lane else "right")
                direction = 1 if side == "right" else -1
                sx = side_x(row, side)
                cx = sx + direction * 4.2
                lines.append(_line([(sx, y), (cx - direction * 2.3, y)]))
                marks += _onpage(cx, y, doc.rows[target].no)
                if link.label:
                    label_at(sx, y, side, link.label, below=True, room=room_to_edge(row, side))

        # Flows arriving from a row on another page (other than the ordinary next step): numbered circle.
        for source in range(len(doc.rows)):
            if source in on_block or source == row - 1:
                continue
            if any(link.target == row for link in doc.rows[source].links):
                side = take_side(row, "right" if sop_row.lane < cols.lanes - 1 else "left")
                direction = 1 if side == "right" else -1
                sx = side_x(row, side)
                cx = sx + direction * 4.2
                lines.append(_line([(cx - direction * 2.3, y), (sx, y)]))
                marks.append(_arrow(sx, y, "left" if side == "right" else "right"))
                marks += _onpage(cx, y, doc.rows[source].no)

    symbols = [_symbol(geo, row) for row in block.rows]
    block.svg = lines + symbols + marks


def layout(doc: SopDocument) -> tuple[Columns, float, list[Block]]:
    cols = _columns(len(doc.pelaksana))
    head_h = _header_height(doc, cols)
    last = doc.rows[-1] if doc.rows else None
    end_band = bool(last and last.kind == "decision" and any(link.target is None for link in last.links))
    blocks = _paginate([_row_height(row, cols) for row in doc.rows], head_h, [row.links for row in doc.rows],
                       end_band)
    # One letter per page break where the ordinary next step continues on the next page.
    letters: dict[int, str] = {}
    for block in blocks[:-1]:
        last = block.rows[-1]
        if any(link.target == last + 1 for link in doc.rows[last].links):
            n = len(letters)
            letters[last] = chr(ord("A") + n) if n < 26 else str(n + 1)
    for block in blocks:
        _draw_block(doc, cols, block, letters)
    return cols, head_h, blocks


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Autoescape everywhere: names, properties and documentation come from uploaded files.
    return Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(bpmn_bytes: bytes, file_name: str) -> str:
    """The SOP AP document as a self-contained HTML page (inline CSS and SVG, no external resource)."""
    doc = read_sop(bpmn_bytes, file_name)
    cols, head_h, blocks = layout(doc)
    return _environment().get_template("sop_document.html.j2").render(
        doc=doc, header=doc.header, cols=cols, head_h=head_h, head_row1=HEAD_ROW1, blocks=blocks,
        band=BAND, fmt=_fmt,
    )


def _refusing_fetcher() -> Any:
    """A WeasyPrint URL fetcher that fetches nothing: everything we need is inline in the HTML."""
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # WeasyPrint < 66 takes a plain function
        def refuse(url: str, *args: object, **kwargs: object) -> dict[str, Any]:
            raise ValueError(f"external resources are not loaded: {url[:80]}")
        return refuse

    class RefusingFetcher(URLFetcher):
        def fetch(self, url: str, headers: object = None) -> Any:
            raise ValueError(f"external resources are not loaded: {url[:80]}")

    return RefusingFetcher()


def render_pdf(bpmn_bytes: bytes, file_name: str) -> bytes:
    """The SOP AP document as PDF (WeasyPrint), A4 landscape, with no network or file access."""
    from weasyprint import HTML  # imported lazily: importing WeasyPrint loads pango and takes ~0.5 s

    html = render_html(bpmn_bytes, file_name)
    # base_url is a made-up scheme so a relative reference cannot resolve to a local file.
    return HTML(string=html, base_url="alur-sop:/", url_fetcher=_refusing_fetcher()).write_pdf()
