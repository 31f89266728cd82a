"""Camunda BPMN parsing: SpiffWorkflow's CamundaParser extended with the Camunda attributes it ignores,
our timer classes, and a plain-lxml description of the processes (for listing and deploy checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.event_parsers import EventBasedGatewayParser
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import EventBasedGateway, ScriptTask
from SpiffWorkflow.camunda.parser.CamundaParser import NSMAP, CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaBoundaryEventParser,
    CamundaEndEventParser,
    CamundaIntermediateCatchEventParser,
    CamundaIntermediateThrowEventParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import (
    CAMUNDA_MODEL_NS,
    BusinessRuleTaskParser,
    CallActivityParser,
    CamundaTaskParser,
    SubWorkflowParser,
    UserTaskParser,
)

from engine.expressions import SCRIPTS_REFUSED
from engine.timers import TIMER_CLASSES, parse_timer_text

BPMN_NS = NSMAP["bpmn"]
NS = {"bpmn": BPMN_NS, "camunda": CAMUNDA_MODEL_NS}
_CAMUNDA_TEXT_ATTRIBUTES = ("assignee", "dueDate", "followUpDate", "priority", "formRef", "formRefBinding",
                            "formKey", "formVersion")


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def read_properties(element: etree._Element) -> dict[str, str]:
    """The element's OWN camunda:properties (SpiffWorkflow's `.//` also collects a subProcess's children)."""
    nodes = element.xpath("./bpmn:extensionElements/camunda:properties/camunda:property", namespaces=NS)
    return {node.get("name"): node.get("value") for node in nodes if node.get("name") is not None}


def read_extensions(element: etree._Element) -> dict[str, Any]:
    """Structured Camunda extensions of one flow node (the shape stored in `task_spec.extensions`)."""

    def attribute(name: str) -> str | None:
        return element.get(f"{{{CAMUNDA_MODEL_NS}}}{name}")

    extensions: dict[str, Any] = {"properties": read_properties(element)}
    extensions["assignee"] = attribute("assignee")
    extensions["candidateGroups"] = _split(attribute("candidateGroups"))
    extensions["candidateUsers"] = _split(attribute("candidateUsers"))
    for name in _CAMUNDA_TEXT_ATTRIBUTES[1:]:
        extensions[name] = attribute(name)
    return extensions


class ExtensionsMixin:
    """Replaces CamundaTaskParser.parse_extensions for every parser class we register."""

    node: etree._Element

    def parse_extensions(self, node: etree._Element | None = None) -> dict[str, Any]:
        return read_extensions(node if node is not None else self.node)


class TimerEventMixin(ExtensionsMixin):
    """Timer definitions become our classes, with the text checked at parse time."""

    filename: str

    def parse_timer_event(self, event: etree._Element) -> Any:
        name = self.node.get("name", self.node.get("id"))
        description = self.get_event_description(event)  # type: ignore[attr-defined]
        for kind, cls in TIMER_CLASSES.items():
            child = event.find(f"{{{BPMN_NS}}}{kind}")
            if child is not None:
                text = (child.text or "").strip()
                problem = parse_timer_text(kind, text)
                if problem:
                    raise ValidationException(f"Time Specification Error. {problem}", node=self.node,
                                              file_name=self.filename)
                return cls(name, text, description=description)
        raise ValidationException("Timer has no timeDate, timeDuration or timeCycle", node=self.node,
                                  file_name=self.filename)


class AlurStartEventParser(TimerEventMixin, CamundaStartEventParser):
    pass


class AlurEndEventParser(TimerEventMixin, CamundaEndEventParser):
    pass


class AlurIntermediateCatchEventParser(TimerEventMixin, CamundaIntermediateCatchEventParser):
    pass


class AlurIntermediateThrowEventParser(TimerEventMixin, CamundaIntermediateThrowEventParser):
    pass


class AlurBoundaryEventParser(TimerEventMixin, CamundaBoundaryEventParser):
    pass


class AlurEventBasedGatewayParser(TimerEventMixin, EventBasedGatewayParser):
    pass


class AlurUserTaskParser(ExtensionsMixin, UserTaskParser):
    pass


class AlurTaskParser(ExtensionsMixin, CamundaTaskParser):
    pass


class AlurSubWorkflowParser(ExtensionsMixin, SubWorkflowParser):
    pass


class AlurCallActivityParser(ExtensionsMixin, CallActivityParser):
    pass


class AlurBusinessRuleTaskParser(ExtensionsMixin, BusinessRuleTaskParser):
    pass


class RefusedScriptTaskParser(TaskParser):
    """Script tasks would run `exec`: refuse them in the parser too, not only in deploy checks."""

    def create_task(self) -> Any:
        raise ValidationException(SCRIPTS_REFUSED, node=self.node, file_name=self.filename)


_OVERRIDES: dict[str, type] = {
    "userTask": AlurUserTaskParser,
    "startEvent": AlurStartEventParser,
    "endEvent": AlurEndEventParser,
    "intermediateCatchEvent": AlurIntermediateCatchEventParser,
    "intermediateThrowEvent": AlurIntermediateThrowEventParser,
    "boundaryEvent": AlurBoundaryEventParser,
    "businessRuleTask": AlurBusinessRuleTaskParser,
    "task": AlurTaskParser,
    "manualTask": AlurTaskParser,
    "subProcess": AlurSubWorkflowParser,
    "callActivity": AlurCallActivityParser,
    "transaction": AlurSubWorkflowParser,
}


class AlurParser(CamundaParser):
    """CamundaParser + structured extensions, our timers, and no script tasks. Same task spec classes."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, tuple[type, type]]] = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        **{full_tag(tag): (parser, CamundaParser.OVERRIDE_PARSER_CLASSES[full_tag(tag)][1])
           for tag, parser in _OVERRIDES.items()},
        full_tag("eventBasedGateway"): (AlurEventBasedGatewayParser, EventBasedGateway),
        full_tag("scriptTask"): (RefusedScriptTaskParser, ScriptTask),
    }


# --- Description with plain lxml (no SpiffWorkflow) -------------------------------------------------


@dataclass
class TaskInfo:
    id: str
    name: str
    lane: str | None
    documentation: str
    extensions: dict[str, Any]
    line: int | None


@dataclass
class ProcessInfo:
    key: str
    name: str
    file_name: str
    is_executable: bool
    properties: dict[str, str]
    documentation: str
    lanes: list[str]
    user_tasks: dict[str, TaskInfo] = field(default_factory=dict)
    called_keys: set[str] = field(default_factory=set)
    line: int | None = None


def documentation_of(element: etree._Element) -> str:
    docs = element.xpath("./bpmn:documentation", namespaces=NS)
    return "\n".join((doc.text or "").strip() for doc in docs).strip()


def _lanes(process: etree._Element) -> tuple[list[str], dict[str, str]]:
    """Innermost lane names top to bottom, and node id -> name of the innermost lane holding it."""
    innermost: list[str] = []
    lane_of: dict[str, tuple[int, str]] = {}
    for lane in process.iter(f"{{{BPMN_NS}}}lane"):
        name = lane.get("name") or lane.get("id") or ""
        depth = sum(1 for a in lane.iterancestors(f"{{{BPMN_NS}}}lane"))
        if not lane.xpath("./bpmn:childLaneSet/bpmn:lane", namespaces=NS):
            innermost.append(name)
        for ref in lane.xpath("./bpmn:flowNodeRef", namespaces=NS):
            node_id = (ref.text or "").strip()
            if node_id and (node_id not in lane_of or lane_of[node_id][0] < depth):
                lane_of[node_id] = (depth, name)
    return innermost, {node_id: name for node_id, (_, name) in lane_of.items()}


def _lane_for(element: etree._Element, lane_of: dict[str, str]) -> str | None:
    """A node inside a subProcess runs in the subProcess's lane (as SpiffWorkflow does)."""
    for node in (element, *element.iterancestors()):
        node_id = node.get("id")
        if node_id in lane_of:
            return lane_of[node_id]
        if node.tag == f"{{{BPMN_NS}}}process":
            break
    return None


def describe_processes(tree: etree._ElementTree | etree._Element, file_name: str) -> list[ProcessInfo]:
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    result = []
    for process in root.xpath("./bpmn:process", namespaces=NS):
        lanes, lane_of = _lanes(process)
        info = ProcessInfo(
            key=process.get("id", ""),
            name=process.get("name") or process.get("id", ""),
            file_name=file_name,
            is_executable=process.get("isExecutable") == "true",
            properties=read_properties(process),
            documentation=documentation_of(process),
            lanes=lanes,
            line=process.sourceline,
        )
        for task in process.iter(f"{{{BPMN_NS}}}userTask"):
            task_id = task.get("id", "")
            info.user_tasks[task_id] = TaskInfo(
                id=task_id,
                name=task.get("name") or task_id,
                lane=_lane_for(task, lane_of),
                documentation=documentation_of(task),
                extensions=read_extensions(task),
                line=task.sourceline,
            )
        info.called_keys = {c.get("calledElement") for c in process.iter(f"{{{BPMN_NS}}}callActivity")
                            if c.get("calledElement")}
        result.append(info)
    return result
