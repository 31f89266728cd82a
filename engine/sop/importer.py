"""SOP source → BPMN 2.0 XML that Camunda Modeler opens without a warning and SpiffWorkflow runs.

Conventions (DESIGN.md §5; other modules rely on them, see docs/designer-guide.md):
- one pool, one lane per pelaksana in column order (lane name = role name);
- row N → `userTask` `Step_N` (or `callActivity` `Step_N` for `call:` rows) with `camunda:dueDate`,
  `camunda:formRef` and `sop.*` properties; the SOP header → `sop.*` properties on the process;
- a decision row → `Step_N` → exclusive gateway `Decision_N`; "yes" (`${keputusan == 'ya'}`) goes on,
  "no" (`${keputusan == 'tidak'}`) loops back to the row it names through an exclusive merge gateway
  `Merge_M` in front of `Step_M` (a task with two incoming flows would be an implicit join, which
  bpmnlint rejects and Camunda treats differently from SpiffWorkflow);
- `StartEvent_1` … `EndEvent_1`; DI laid out left to right in row order, loop-backs routed around the
  target lane's row of nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from engine.sop.source import HEADER_LIST_FIELDS, HEADER_TEXT_FIELDS, Row, SopSource, load_source_file

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
MODELER_NS = "http://camunda.org/schema/modeler/1.0"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {
    "bpmn": BPMN_NS,
    "bpmndi": BPMNDI_NS,
    "dc": DC_NS,
    "di": DI_NS,
    "camunda": CAMUNDA_NS,
    "modeler": MODELER_NS,
    "xsi": XSI_NS,
}

EXPORTER = "Camunda Modeler"
EXPORTER_VERSION = "5.x"
EXECUTION_PLATFORM = "Camunda Platform"
EXECUTION_PLATFORM_VERSION = "7.24.0"

DEFAULT_STEP_FORM = "Form_langkah"
DEFAULT_DECISION_FORM = "Form_keputusan"
YES_CONDITION = "${keputusan == 'ya'}"
NO_CONDITION = "${keputusan == 'tidak'}"

# Geometry (pixels, as bpmn-js draws them).
POOL_X, POOL_Y = 160, 80
POOL_HEADER = 30  # the pool's vertical name band
LANE_HEADER = 30  # each lane's vertical name band
TASK_W, TASK_H = 100, 80
GATEWAY = 50
EVENT = 36
GAP = 50  # horizontal space between consecutive nodes
PAD = 36  # space above/below the node row inside a lane
TRACK = 14  # vertical spacing of loop-back tracks
MIN_LANE_H = 150


def _b(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _c(tag: str) -> str:
    return f"{{{CAMUNDA_NS}}}{tag}"


@dataclass
class _Node:
    id: str
    kind: str  # startEvent, endEvent, userTask, callActivity, exclusiveGateway
    lane: int
    name: str = ""
    row: Row | None = None
    width: int = TASK_W
    height: int = TASK_H
    x: float = 0
    cx: float = 0
    cy: float = 0
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)


@dataclass
class _Flow:
    id: str
    source: _Node
    target: _Node
    name: str = ""
    condition: str | None = None
    loop: bool = False
    up: bool = False  # loop-back routed above the node row (else below)
    track: int = 0


@dataclass
class _Lane:
    name: str
    id: str
    above: int = 0  # loop tracks above the node row
    below: int = 0
    top: float = 0
    height: float = 0
    center: float = 0
    nodes: list[_Node] = field(default_factory=list)


def import_file(path: str | Path) -> bytes:
    """Read a YAML SOP source file and return its BPMN XML (raises `SopSourceError`)."""
    return import_source(load_source_file(path))


def import_source(source: SopSource) -> bytes:
    """Return the BPMN XML (UTF-8 bytes, with DI) for a validated `SopSource`."""
    lanes = [_Lane(name=name, id=f"Lane_{source.key}_{i + 1}") for i, name in enumerate(source.pelaksana)]
    lane_of = {name: i for i, name in enumerate(source.pelaksana)}
    nodes, flows = _graph(source, lane_of)
    for node in nodes:
        lanes[node.lane].nodes.append(node)
    _layout(nodes, flows, lanes)
    return _xml(source, nodes, flows, lanes)


def _graph(source: SopSource, lane_of: dict[str, int]) -> tuple[list[_Node], list[_Flow]]:
    """Nodes in left-to-right order, and the flows between them."""
    loop_targets = {row.decision.no_goto for row in source.rows if row.decision}
    nodes: list[_Node] = []
    entry: dict[int, _Node] = {}  # row no -> the node a flow into that row enters (merge or step)
    first_lane = lane_of[source.rows[0].pelaksana]
    start = _Node("StartEvent_1", "startEvent", first_lane, "Mulai", width=EVENT, height=EVENT)
    nodes.append(start)
    steps: dict[int, _Node] = {}
    decisions: dict[int, _Node] = {}
    for row in source.rows:
        lane = lane_of[row.pelaksana]
        if row.no in loop_targets:
            merge = _Node(f"Merge_{row.no}", "exclusiveGateway", lane, width=GATEWAY, height=GATEWAY)
            nodes.append(merge)
            entry[row.no] = merge
        kind = "callActivity" if row.call else "userTask"
        step = _Node(f"Step_{row.no}", kind, lane, row.uraian, row=row)
        nodes.append(step)
        steps[row.no] = step
        entry.setdefault(row.no, step)
        if row.decision:
            gateway = _Node(f"Decision_{row.no}", "exclusiveGateway", lane, row.decision.question,
                            row=row, width=GATEWAY, height=GATEWAY)
            nodes.append(gateway)
            decisions[row.no] = gateway
    end = _Node("EndEvent_1", "endEvent", nodes[-1].lane, "Selesai", width=EVENT, height=EVENT)
    nodes.append(end)

    flows: list[_Flow] = []

    def connect(source_node: _Node, target: _Node, flow_id: str, **kwargs: object) -> None:
        flow = _Flow(flow_id, source_node, target, **kwargs)  # type: ignore[arg-type]
        source_node.outgoing.append(flow.id)
        target.incoming.append(flow.id)
        flows.append(flow)

    rows = source.rows
    connect(start, entry[rows[0].no], f"Flow_StartEvent_1_{entry[rows[0].no].id}")
    for index, row in enumerate(rows):
        nxt = entry[rows[index + 1].no] if index + 1 < len(rows) else end
        if row.no in entry and entry[row.no] is not steps[row.no]:
            connect(entry[row.no], steps[row.no], f"Flow_{entry[row.no].id}_Step_{row.no}")
        if row.decision:
            gateway = decisions[row.no]
            connect(steps[row.no], gateway, f"Flow_Step_{row.no}_{gateway.id}")
            connect(gateway, nxt, f"Flow_{gateway.id}_ya", name=row.decision.yes_label,
                    condition=YES_CONDITION)
            connect(gateway, entry[row.decision.no_goto], f"Flow_{gateway.id}_tidak",
                    name=row.decision.no_label, condition=NO_CONDITION, loop=True)
        else:
            connect(steps[row.no], nxt, f"Flow_Step_{row.no}_{nxt.id}")
    return nodes, flows


def _layout(nodes: list[_Node], flows: list[_Flow], lanes: list[_Lane]) -> None:
    # Loop-backs run along the target's lane: above its node row when the target lane is higher than
    # the decision (so the line never crosses the lanes in between twice), else below.
    for flow in flows:
        if not flow.loop:
            continue
        lane = lanes[flow.target.lane]
        flow.up = flow.target.lane < flow.source.lane
        if flow.up:
            flow.track, lane.above = lane.above, lane.above + 1
        else:
            flow.track, lane.below = lane.below, lane.below + 1

    top = POOL_Y
    for lane in lanes:
        pad_above = PAD + TRACK * lane.above
        pad_below = PAD + TRACK * lane.below
        height = pad_above + TASK_H + pad_below
        extra = max(0, MIN_LANE_H - height)
        lane.top, lane.height = top, height + extra
        lane.center = top + pad_above + extra / 2 + TASK_H / 2
        top += lane.height

    x = POOL_X + POOL_HEADER + LANE_HEADER + 40
    for node in nodes:
        node.x = x
        node.cx = x + node.width / 2
        node.cy = lanes[node.lane].center
        x += node.width + GAP


def _pool_width(nodes: list[_Node]) -> float:
    return nodes[-1].x + nodes[-1].width + GAP - POOL_X


def _waypoints(flow: _Flow, lanes: list[_Lane]) -> list[tuple[float, float]]:
    s, t = flow.source, flow.target
    if flow.loop:
        lane = lanes[t.lane]
        if flow.up:
            y = lane.center - TASK_H / 2 - 12 - TRACK * flow.track
            return [(s.cx, s.cy - s.height / 2), (s.cx, y), (t.cx, y), (t.cx, t.cy - t.height / 2)]
        y = lane.center + TASK_H / 2 + 12 + TRACK * flow.track
        return [(s.cx, s.cy + s.height / 2), (s.cx, y), (t.cx, y), (t.cx, t.cy + t.height / 2)]
    start = (s.x + s.width, s.cy)
    end = (t.x, t.cy)
    if s.cy == t.cy:
        return [start, end]
    mid = (start[0] + end[0]) / 2
    return [start, (mid, start[1]), (mid, end[1]), end]


def _label_height(text: str, chars_per_line: int = 20) -> int:
    return 14 * max(1, math.ceil(len(text) / chars_per_line))


def _xml(source: SopSource, nodes: list[_Node], flows: list[_Flow], lanes: list[_Lane]) -> bytes:
    key = source.key
    definitions = etree.Element(
        _b("definitions"),
        nsmap=NSMAP,
        attrib={
            "id": f"Definitions_{key}",
            "targetNamespace": "http://bpmn.io/schema/bpmn",
            "exporter": EXPORTER,
            "exporterVersion": EXPORTER_VERSION,
            f"{{{MODELER_NS}}}executionPlatform": EXECUTION_PLATFORM,
            f"{{{MODELER_NS}}}executionPlatformVersion": EXECUTION_PLATFORM_VERSION,
        },
    )
    collaboration = etree.SubElement(definitions, _b("collaboration"), id=f"Collaboration_{key}")
    etree.SubElement(collaboration, _b("participant"), id=f"Participant_{key}", name=source.nama,
                     processRef=key)

    process = etree.SubElement(definitions, _b("process"), id=key, name=source.nama, isExecutable="true")
    process.set(_c("historyTimeToLive"), source.history_time_to_live)
    _documentation(process, _process_documentation(source))
    _properties(process, _process_properties(source))

    lane_set = etree.SubElement(process, _b("laneSet"), id=f"LaneSet_{key}")
    for lane in lanes:
        lane_el = etree.SubElement(lane_set, _b("lane"), id=lane.id, name=lane.name)
        for node in lane.nodes:
            etree.SubElement(lane_el, _b("flowNodeRef")).text = node.id

    for node in nodes:
        _flow_node(process, node)
    for flow in flows:
        el = etree.SubElement(process, _b("sequenceFlow"), id=flow.id)
        if flow.name:
            el.set("name", flow.name)
        el.set("sourceRef", flow.source.id)
        el.set("targetRef", flow.target.id)
        if flow.condition:
            cond = etree.SubElement(el, _b("conditionExpression"))
            cond.set(f"{{{XSI_NS}}}type", "bpmn:tFormalExpression")
            cond.text = flow.condition

    _diagram(definitions, source, nodes, flows, lanes)
    etree.indent(definitions, space="  ")
    return etree.tostring(definitions, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _documentation(parent: etree._Element, text: str) -> None:
    if text:
        etree.SubElement(parent, _b("documentation")).text = text


def _properties(parent: etree._Element, props: list[tuple[str, str]], *extra: etree._Element) -> None:
    ext = etree.SubElement(parent, _b("extensionElements"))
    for element in extra:
        ext.append(element)
    holder = etree.SubElement(ext, _c("properties"))
    for name, value in props:
        etree.SubElement(holder, _c("property"), name=name, value=value)


def _process_documentation(source: SopSource) -> str:
    parts = [f"SOP {source.nama}"]
    if source.header.get("nomor"):
        parts.append(f"Nomor {source.header['nomor']}")
    unit = ", ".join(v for v in (source.header.get("unit"), source.header.get("instansi")) if v)
    if unit:
        parts.append(unit)
    return " — ".join(parts) + ". Dibuat dari sumber YAML " + source.file_name + "."


def _process_properties(source: SopSource) -> list[tuple[str, str]]:
    props = [(f"sop.{name}", source.header.get(name, "")) for name in HEADER_TEXT_FIELDS]
    for name in HEADER_LIST_FIELDS:
        props += [(f"sop.{name}.{i}", item) for i, item in enumerate(source.lists.get(name, ()), start=1)]
    props.append(("alur.supervisorRole", source.supervisor_role))
    return props


def _row_properties(row: Row) -> list[tuple[str, str]]:
    return [
        ("sop.no", str(row.no)),
        ("sop.kelengkapan", row.kelengkapan),
        ("sop.output", row.output),
        ("sop.keterangan", row.keterangan),
        ("sop.waktu", row.waktu),
    ]


def _flow_node(process: etree._Element, node: _Node) -> None:
    el = etree.SubElement(process, _b(node.kind), id=node.id)
    if node.name:
        el.set("name", node.name)
    row = node.row
    if node.kind == "userTask" and row is not None:
        el.set(_c("formRef"), row.form or (DEFAULT_DECISION_FORM if row.decision else DEFAULT_STEP_FORM))
        el.set(_c("formRefBinding"), "latest")
        el.set(_c("dueDate"), row.due_date)
    if node.kind == "callActivity" and row is not None:
        el.set("calledElement", row.call or "")
        el.set(_c("calledElementBinding"), "latest")
    if node.kind in ("userTask", "callActivity") and row is not None:
        notes = []
        if row.inferred:
            notes.append(f"Pelaksana disimpulkan: {row.inferred}")
        if row.catatan_perancang:
            notes.append(f"Catatan perancang: {row.catatan_perancang}")
        _documentation(el, "\n".join(notes))
        props = _row_properties(row)
        extra: list[etree._Element] = []
        if node.kind == "callActivity":
            # A call activity has no dueDate attribute in Camunda 7: keep the standard time as a property.
            props.append(("alur.dueDate", row.due_date))
            extra = [etree.Element(_c("in"), variables="all"), etree.Element(_c("out"), variables="all")]
        _properties(el, props, *extra)
    for flow_id in node.incoming:
        etree.SubElement(el, _b("incoming")).text = flow_id
    for flow_id in node.outgoing:
        etree.SubElement(el, _b("outgoing")).text = flow_id


def _bounds(parent: etree._Element, x: float, y: float, width: float, height: float) -> None:
    etree.SubElement(parent, f"{{{DC_NS}}}Bounds", x=_n(x), y=_n(y), width=_n(width), height=_n(height))


def _n(value: float) -> str:
    return str(round(value))


def _diagram(definitions: etree._Element, source: SopSource, nodes: list[_Node], flows: list[_Flow],
             lanes: list[_Lane]) -> None:
    key = source.key
    diagram = etree.SubElement(definitions, f"{{{BPMNDI_NS}}}BPMNDiagram", id=f"BPMNDiagram_{key}")
    plane = etree.SubElement(diagram, f"{{{BPMNDI_NS}}}BPMNPlane", id=f"BPMNPlane_{key}",
                             bpmnElement=f"Collaboration_{key}")
    width = _pool_width(nodes)
    height = sum(lane.height for lane in lanes)

    def shape(element_id: str, **attrs: str) -> etree._Element:
        return etree.SubElement(plane, f"{{{BPMNDI_NS}}}BPMNShape", id=f"{element_id}_di",
                                bpmnElement=element_id, **attrs)

    _bounds(shape(f"Participant_{key}", isHorizontal="true"), POOL_X, POOL_Y, width, height)
    for lane in lanes:
        _bounds(shape(lane.id, isHorizontal="true"), POOL_X + POOL_HEADER, lane.top, width - POOL_HEADER,
                lane.height)

    loops_up = {f.source.id for f in flows if f.loop and f.up}
    for node in nodes:
        el = shape(node.id, isMarkerVisible="true") if node.kind == "exclusiveGateway" else shape(node.id)
        _bounds(el, node.x, node.cy - node.height / 2, node.width, node.height)
        if node.kind in ("startEvent", "endEvent"):
            label = etree.SubElement(el, f"{{{BPMNDI_NS}}}BPMNLabel")
            _bounds(label, node.cx - 25, node.cy + EVENT / 2 + 4, 50, 14)
        elif node.kind == "exclusiveGateway" and node.name:
            # The label goes on the side the loop-back does not use.
            label = etree.SubElement(el, f"{{{BPMNDI_NS}}}BPMNLabel")
            label_h = _label_height(node.name)
            y = (node.cy + GATEWAY / 2 + 6) if node.id in loops_up else (node.cy - GATEWAY / 2 - 6 - label_h)
            # Left of centre: the "yes" flow turns up or down right of the gateway.
            _bounds(label, node.cx - 95, y, 120, label_h)

    for flow in flows:
        edge = etree.SubElement(plane, f"{{{BPMNDI_NS}}}BPMNEdge", id=f"{flow.id}_di", bpmnElement=flow.id)
        for px, py in _waypoints(flow, lanes):
            etree.SubElement(edge, f"{{{DI_NS}}}waypoint", x=_n(px), y=_n(py))
        if flow.name:
            label = etree.SubElement(edge, f"{{{BPMNDI_NS}}}BPMNLabel")
            s = flow.source
            label_w = max(20, 7 * len(flow.name))
            if flow.loop:
                y = (s.cy - GATEWAY / 2 - 20) if flow.up else (s.cy + GATEWAY / 2 + 6)
                _bounds(label, s.cx + 6, y, label_w, 14)
            else:
                _bounds(label, s.x + s.width + 6, s.cy - 20, label_w, 14)
