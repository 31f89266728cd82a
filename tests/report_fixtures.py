"""A linear SOP in BPMN with diagram interchange (so bpmn-js can draw it), and instances run on a FakeClock
with known step durations: what the report, supervisor page and browser tests build on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import quoteattr

from engine.accounts import SYSTEM
from engine.service import Alur
from tests.conftest import FakeClock

# (element id, name, lane, dueDate)
STEPS: tuple[tuple[str, str, str, str], ...] = (
    ("Step_A", "Menyiapkan bahan", "Kasubag", "PT15M"),
    ("Step_B", "Memeriksa bahan", "Camat", "PT3H"),
    ("Step_C", "Mengarsipkan", "Kasubag", "P1D"),
)


def linear_sop_bpmn(key: str = "sop_uji", name: str = "SOP Uji Laporan",
                    steps: Sequence[tuple[str, str, str, str]] = STEPS, supervisor_role: str | None = "Camat") -> bytes:
    lanes: list[str] = []
    for _, _, lane, _ in steps:
        if lane not in lanes:
            lanes.append(lane)
    lane_h, step_w, gap = 120, 100, 60
    x0 = 200
    nodes: dict[str, list[str]] = {lane: [] for lane in lanes}
    shapes: list[str] = []
    edges: list[str] = []
    tasks: list[str] = []
    flows: list[str] = []

    def y_of(lane: str) -> int:
        return 80 + lanes.index(lane) * lane_h

    first_lane = steps[0][2]
    nodes[first_lane].append("Start_1")
    shapes.append(f'<bpmndi:BPMNShape id="Start_1_di" bpmnElement="Start_1"><dc:Bounds x="{x0 - 80}" '
                  f'y="{y_of(first_lane) + 42}" width="36" height="36"/></bpmndi:BPMNShape>')
    previous, prev_right, prev_mid = "Start_1", (x0 - 44), y_of(first_lane) + 60
    for i, (element_id, step_name, lane, due) in enumerate(steps, start=1):
        nodes[lane].append(element_id)
        x = x0 + (i - 1) * (step_w + gap)
        y = y_of(lane) + 20
        tasks.append(
            f'<bpmn:userTask id="{element_id}" name={quoteattr(step_name)} camunda:dueDate="{due}">'
            f'<bpmn:extensionElements><camunda:properties><camunda:property name="sop.no" value="{i}"/>'
            f"</camunda:properties></bpmn:extensionElements></bpmn:userTask>")
        flows.append(f'<bpmn:sequenceFlow id="Flow_{i}" sourceRef="{previous}" targetRef="{element_id}"/>')
        shapes.append(f'<bpmndi:BPMNShape id="{element_id}_di" bpmnElement="{element_id}">'
                      f'<dc:Bounds x="{x}" y="{y}" width="{step_w}" height="80"/></bpmndi:BPMNShape>')
        edges.append(f'<bpmndi:BPMNEdge id="Flow_{i}_di" bpmnElement="Flow_{i}">'
                     f'<di:waypoint x="{prev_right}" y="{prev_mid}"/><di:waypoint x="{x}" y="{y + 40}"/>'
                     f"</bpmndi:BPMNEdge>")
        previous, prev_right, prev_mid = element_id, x + step_w, y + 40
    last_lane = steps[-1][2]
    nodes[last_lane].append("End_1")
    end_x = x0 + len(steps) * (step_w + gap)
    flows.append(f'<bpmn:sequenceFlow id="Flow_end" sourceRef="{previous}" targetRef="End_1"/>')
    shapes.append(f'<bpmndi:BPMNShape id="End_1_di" bpmnElement="End_1"><dc:Bounds x="{end_x}" '
                  f'y="{y_of(last_lane) + 42}" width="36" height="36"/></bpmndi:BPMNShape>')
    edges.append(f'<bpmndi:BPMNEdge id="Flow_end_di" bpmnElement="Flow_end"><di:waypoint x="{prev_right}" '
                 f'y="{prev_mid}"/><di:waypoint x="{end_x}" y="{y_of(last_lane) + 60}"/></bpmndi:BPMNEdge>')
    width = end_x + 100 - 50
    lane_xml = "".join(
        f'<bpmn:lane id="Lane_{n}" name={quoteattr(lane)}>'
        + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs) + "</bpmn:lane>"
        for n, (lane, refs) in enumerate(nodes.items()))
    lane_shapes = "".join(
        f'<bpmndi:BPMNShape id="Lane_{n}_di" bpmnElement="Lane_{n}" isHorizontal="true">'
        f'<dc:Bounds x="80" y="{y_of(lane)}" width="{width - 30}" height="{lane_h}"/></bpmndi:BPMNShape>'
        for n, lane in enumerate(lanes))
    props = (f'<bpmn:extensionElements><camunda:properties><camunda:property name="alur.supervisorRole" '
             f'value={quoteattr(supervisor_role)}/></camunda:properties></bpmn:extensionElements>'
             if supervisor_role else "")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  id="Defs_{key}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="Collab_1"><bpmn:participant id="Pool_1" name={quoteattr(name)} processRef="{key}"/>
  </bpmn:collaboration>
  <bpmn:process id="{key}" name={quoteattr(name)} isExecutable="true">
    {props}
    <bpmn:laneSet id="LaneSet_1">{lane_xml}</bpmn:laneSet>
    <bpmn:startEvent id="Start_1"/>
    {"".join(tasks)}
    <bpmn:endEvent id="End_1"/>
    {"".join(flows)}
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Diagram_1"><bpmndi:BPMNPlane id="Plane_1" bpmnElement="Collab_1">
    <bpmndi:BPMNShape id="Pool_1_di" bpmnElement="Pool_1" isHorizontal="true">
      <dc:Bounds x="50" y="80" width="{width}" height="{lane_h * len(lanes)}"/></bpmndi:BPMNShape>
    {lane_shapes}{"".join(shapes)}{"".join(edges)}
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>""".encode()


def run_instance(service: Alur, clock: FakeClock, start: datetime, minutes: Sequence[int], *, unit: str = "kec-a",
                 key: str = "sop_uji", business_key: str | None = None,
                 reasons: Sequence[str | None] | None = None) -> str:
    """Start at `start`, spend `minutes[i]` wall minutes on step i (keep them inside working hours to make
    them equal working minutes) and complete it; a late step gets `reasons[i]` (or a default)."""
    clock.now = start
    view = service.start(key, unit=unit, business_key=business_key)
    for i, spent in enumerate(minutes):
        ready = [t for t in service.instance(view.id).tasks if t.state == "READY"]
        assert len(ready) == 1, ready
        clock.advance(minutes=spent)
        task = ready[0]
        reason = None
        if task.due_at is not None and clock.now > task.due_at:
            reason = (reasons[i] if reasons and i < len(reasons) else None) or "terlambat"
        service.complete(task.id, SYSTEM, {}, late_reason=reason)
    return view.id
