"""Deploy-time checks and spec building: the one entry point the service uses for BPMN files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Set
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

from engine.deadlines import parse_deadline_text
from engine.errors import DeployError, Problem
from engine.expressions import SCRIPTS_REFUSED, check_expression, is_wrapped
from engine.parser import BPMN_NS, NS, AlurParser, ProcessInfo, describe_processes, read_extensions
from engine.timers import parse_timer_text
from engine.xmlsafe import parse_xml

UNSUPPORTED_TASKS = {
    "serviceTask": "service tasks are not supported (no Java class, expression, connector or external worker runs "
                   "in Alur); model the step as a user task",
    "sendTask": "send tasks are not supported; model the step as a user task (e.g. 'Mengirim surat')",
    "receiveTask": "receive tasks are not supported (Alur has no message API); use a user task or a timer",
    "businessRuleTask": "business rule (DMN) tasks are not supported; use an exclusive gateway with conditions",
}
# Camunda extensions that run code. Alur runs none, so a model relying on them would silently skip what it says.
UNSUPPORTED_EXTENSIONS = {
    "executionListener": "camunda:executionListener is not supported (no Java class, expression or script runs "
                         "in Alur); remove it or model the work as a user task",
    "taskListener": "camunda:taskListener is not supported (no Java class, expression or script runs in Alur); "
                    "remove it or model the work as a user task",
    "script": "camunda:script is not supported: " + SCRIPTS_REFUSED,
    "connector": "camunda:connector is not supported (Alur calls no external services)",
}


@dataclass
class LoadedFile:
    file_name: str
    content: bytes
    processes: list[ProcessInfo]


# Ids SpiffWorkflow uses for its own task specs: an element with one of them would be silently merged.
RESERVED_IDS = {"Start", "End", "Root", "StartEventSplit", "StartEventJoin"}
FORM_KEY_PREFIX = "camunda-forms:deployment:"
_FLOW_NODES = {
    "task", "userTask", "manualTask", "serviceTask", "sendTask", "receiveTask", "businessRuleTask", "scriptTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway",
    "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
}
_SCOPES = {"process", "subProcess", "transaction", "adHocSubProcess"}
_EXPRESSION_TAGS = ("conditionExpression", "condition", "completionCondition", "loopCondition",
                    "loopCardinality")
_XSD_LINE = re.compile(r"^Element '[^']*'")


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _iter_bpmn(root: etree._Element, name: str) -> Iterator[etree._Element]:
    return root.iter(f"{{{BPMN_NS}}}{name}")


@lru_cache(maxsize=1)
def _validator() -> BpmnValidator:
    return BpmnValidator()  # loading the XSD takes ~100 ms: once per process


def _xsd_problems(tree: etree._ElementTree, file_name: str) -> list[Problem]:
    validator = _validator()
    validator.preprocess(tree)
    if validator.validator.validate(tree):
        return []
    return [Problem(file_name, err.line or None, None, f"BPMN schema: {err.message}")
            for err in validator.validator.error_log]


def _owning_id(element: etree._Element) -> str | None:
    """The id a designer can find in the Modeler: the flow node/flow holding `element`, else any id."""
    chain = [element, *element.iterancestors()]
    for node in chain:
        if node.get("id") and _local(node.tag) in _FLOW_NODES | _SCOPES | {"sequenceFlow"}:
            return node.get("id")
    return next((node.get("id") for node in chain if node.get("id")), None)


class _FileChecker:
    def __init__(self, file_name: str, root: etree._Element, form_ids: Set[str], form_files: Set[str]):
        self.file_name, self.root = file_name, root
        self.form_ids, self.form_files = form_ids, form_files
        self.problems: list[Problem] = []

    def add(self, element: etree._Element | None, message: str) -> None:
        line = element.sourceline if element is not None else None
        element_id = _owning_id(element) if element is not None else None
        self.problems.append(Problem(self.file_name, line, element_id, message))

    def run(self) -> list[Problem]:
        for element in self.root.iter():
            if element.get("id") in RESERVED_IDS:
                self.add(element, f"the id '{element.get('id')}' is reserved by the engine; rename the element")
        for script in _iter_bpmn(self.root, "scriptTask"):
            self.add(script, SCRIPTS_REFUSED)
        # Alur runs people's steps; it has no Java delegates, connectors, DMN engine or message API to honour
        # these with, and accepting them would make a process that stops or does nothing when it gets there.
        for tag, why in UNSUPPORTED_TASKS.items():
            for element in _iter_bpmn(self.root, tag):
                self.add(element, why)
        for tag, why in UNSUPPORTED_EXTENSIONS.items():
            for element in self.root.iter(f"{{{NS['camunda']}}}{tag}"):
                if tag == "script" and any(_local(a.tag).endswith("Listener") for a in element.iterancestors()):
                    continue  # the listener holding it is reported already
                self.add(element, why)
        self.check_user_tasks()
        self.check_timers()
        self.check_expressions()
        for process in self.root.xpath("./bpmn:process", namespaces=NS):
            self.check_reachability(process)
        return self.problems

    def check_user_tasks(self) -> None:
        lanes = {ref.text.strip() for ref in _iter_bpmn(self.root, "flowNodeRef") if ref.text}
        for task in _iter_bpmn(self.root, "userTask"):
            ext = read_extensions(task)
            in_lane = any(node.get("id") in lanes for node in (task, *task.iterancestors()))
            if not (in_lane or ext["assignee"] or ext["candidateGroups"] or ext["candidateUsers"]):
                self.add(task, "user task is in no lane and has no assignee, candidateGroups or candidateUsers")
            for name in ("dueDate", "followUpDate"):
                if ext[name] is not None:
                    problem = self._date_problem(ext[name])
                    if problem:
                        self.add(task, f"camunda:{name} {problem}")
            if ext["formRef"] is not None and ext["formRef"] not in self.form_ids:
                self.add(task, f"form '{ext['formRef']}' (camunda:formRef) is not deployed")
            form_key = ext["formKey"]
            if form_key is not None:
                if not form_key.startswith(FORM_KEY_PREFIX):
                    self.add(task, f"camunda:formKey '{form_key}' is not supported; use "
                                   f"'{FORM_KEY_PREFIX}<file>.form' or camunda:formRef")
                elif form_key[len(FORM_KEY_PREFIX):] not in self.form_files:
                    self.add(task, f"form file '{form_key[len(FORM_KEY_PREFIX):]}' (camunda:formKey) is not deployed")

    @staticmethod
    def _date_problem(text: str) -> str | None:
        text = text.strip()
        if is_wrapped(text):
            return check_expression(text)
        try:  # the parser run time uses: what deploys here gives a deadline there
            parse_deadline_text(text)
        except ValueError as err:
            return str(err)
        return None

    def check_timers(self) -> None:
        for timer in _iter_bpmn(self.root, "timerEventDefinition"):
            specs = [child for child in timer if _local(child.tag) in ("timeDate", "timeDuration", "timeCycle")]
            if not specs:
                self.add(timer, "timer has no timeDate, timeDuration or timeCycle")
            for child in specs:
                problem = parse_timer_text(_local(child.tag), child.text)  # type: ignore[arg-type]
                if problem:
                    self.add(child, problem)

    def check_expressions(self) -> None:
        for tag in _EXPRESSION_TAGS:
            for node in _iter_bpmn(self.root, tag):
                text = (node.text or "").strip()
                problem = check_expression(text) if text else "expression is empty"
                if problem:
                    self.add(node, f"{tag}: {problem}")

    def check_reachability(self, scope: etree._Element) -> None:
        """SpiffWorkflow silently drops nodes it cannot reach from a start event: report them."""
        nodes = {c.get("id"): c for c in scope if _local(c.tag) in _FLOW_NODES and c.get("id")}
        outgoing: dict[str, list[str]] = {}
        for flow in scope.xpath("./bpmn:sequenceFlow", namespaces=NS):
            outgoing.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
        attached: dict[str, list[str]] = {}
        for node_id, node in nodes.items():
            if _local(node.tag) == "boundaryEvent":
                attached.setdefault(node.get("attachedToRef"), []).append(node_id)
        ad_hoc = _local(scope.tag) == "adHocSubProcess"
        has_incoming = {t for targets in outgoing.values() for t in targets}
        todo = [i for i, n in nodes.items()
                if _local(n.tag) == "startEvent" or n.get("triggeredByEvent") == "true"
                or (ad_hoc and i not in has_incoming and _local(n.tag) != "boundaryEvent")]
        if not todo and _local(scope.tag) != "adHocSubProcess":
            self.add(scope, "no start event")
        seen: set[str] = set()
        while todo:
            node_id = todo.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            todo.extend(outgoing.get(node_id, []))
            todo.extend(attached.get(node_id, []))
        for node_id, node in nodes.items():
            if node_id not in seen:
                self.add(node, "not reachable from a start event (the engine would silently drop it)")
            elif _local(node.tag) in _SCOPES:
                self.check_reachability(node)


def load_bpmn_files(
    files: Mapping[str, bytes],
    *,
    form_ids: Set[str],
    form_files: Set[str],
    resolve_callee: Callable[[str], bytes | None] = lambda key: None,
) -> list[LoadedFile]:
    """Check every file; raise one DeployError listing every problem in every file, or return them parsed."""
    problems: list[Problem] = []
    loaded: list[LoadedFile] = []
    trees: dict[str, etree._ElementTree] = {}
    clean: set[str] = set()
    for file_name, content in files.items():
        try:
            tree = parse_xml(content, file_name)
        except DeployError as err:
            problems.extend(err.problems)
            continue
        trees[file_name] = tree
        file_problems = _xsd_problems(tree, file_name)
        try:
            content.decode("utf-8")  # the file is stored and served as text: valid XML in UTF-16 or Latin-1 is not
        except UnicodeDecodeError as err:
            file_problems.append(Problem(file_name, None, None, f"the file is not UTF-8 (byte {err.start}): save it "
                                                                f"as UTF-8, as Camunda Modeler does"))
        file_problems += _FileChecker(file_name, tree.getroot(), form_ids, form_files).run()
        processes = describe_processes(tree, file_name)
        if not any(p.is_executable for p in processes):
            file_problems.append(Problem(file_name, None, None,
                                         'no executable process (set isExecutable="true" on the process)'))
        problems += file_problems
        if not file_problems:
            clean.add(file_name)
        loaded.append(LoadedFile(file_name, content, processes))

    problems += _check_process_keys(loaded)
    problems += _check_callees(trees, loaded, resolve_callee)
    problems += _check_call_cycles(trees, loaded, resolve_callee)
    if not problems:
        problems += _spiff_problems(files, loaded, resolve_callee)
    if problems:
        raise DeployError(problems)
    return loaded


def _check_process_keys(loaded: list[LoadedFile]) -> list[Problem]:
    problems, seen = [], {}
    for lf in loaded:
        for proc in lf.processes:
            if proc.key in seen:
                problems.append(Problem(lf.file_name, proc.line, proc.key,
                                        f"process id '{proc.key}' is also defined in {seen[proc.key]}"))
            seen[proc.key] = lf.file_name
    return problems


def _check_callees(trees: dict[str, etree._ElementTree], loaded: list[LoadedFile],
                   resolve_callee: Callable[[str], bytes | None]) -> list[Problem]:
    known = {proc.key for lf in loaded for proc in lf.processes}
    problems = []
    for lf in loaded:
        for call in _iter_bpmn(trees[lf.file_name].getroot(), "callActivity"):
            key = call.get("calledElement")
            if not key:
                problems.append(Problem(lf.file_name, call.sourceline, call.get("id"),
                                        "call activity has no calledElement"))
            elif key not in known and resolve_callee(key) is None:
                problems.append(Problem(lf.file_name, call.sourceline, call.get("id"),
                                        f"called process '{key}' is not deployed and not in this deployment"))
    return problems


@dataclass(frozen=True)
class _Call:
    callee: str
    file_name: str
    element: etree._Element


def _check_call_cycles(trees: dict[str, etree._ElementTree], loaded: list[LoadedFile],
                       resolve_callee: Callable[[str], bytes | None]) -> list[Problem]:
    """A process that calls itself, directly or through other processes, never ends: starting it would build
    called instances without end. The graph is this deployment's processes plus, by key, the latest deployed
    definitions they reach (as `_add_callees` resolves them), so a cycle closed by this deployment is found."""
    processes: dict[str, tuple[str, etree._Element]] = {}
    for lf in loaded:
        for process in trees[lf.file_name].getroot().xpath("./bpmn:process", namespaces=NS):
            processes.setdefault(process.get("id", ""), (lf.file_name, process))
    ours = set(processes)
    tried: set[str] = set()

    def calls_of(key: str) -> list[_Call]:
        if key not in processes and key not in tried:
            tried.add(key)
            content = resolve_callee(key)
            if content is not None:
                name = f"{key}.bpmn (deployed)"
                try:
                    root = parse_xml(content, name).getroot()
                except DeployError:
                    return []
                for process in root.xpath("./bpmn:process", namespaces=NS):
                    processes.setdefault(process.get("id", ""), (name, process))
        if key not in processes:
            return []  # not deployed: reported by _check_callees
        file_name, process = processes[key]
        return [_Call(call.get("calledElement"), file_name, call)
                for call in _iter_bpmn(process, "callActivity") if call.get("calledElement")]

    problems: list[Problem] = []
    done: set[str] = set()  # fully explored: no cycle through them is left to find
    for root_key in sorted(ours):
        if root_key in done:
            continue
        # Iterative depth-first walk; `path` holds the calls from root_key to the current process.
        path: list[_Call] = []
        on_path = {root_key: 0}
        stack = [iter(calls_of(root_key))]
        while stack:
            call = next(stack[-1], None)
            if call is None:
                stack.pop()
                finished = path.pop().callee if path else root_key
                on_path.pop(finished, None)
                done.add(finished)
                continue
            if call.callee in on_path:
                cycle = [*path[on_path[call.callee]:], call]
                keys = [call.callee, *(c.callee for c in cycle)]
                # Report it on a call activity of this deployment: the one a designer can change now.
                mine = [c for c in cycle if c.file_name in trees] or [c for c in path if c.file_name in trees]
                at = mine[0] if mine else call
                problems.append(Problem(at.file_name, at.element.sourceline, at.element.get("id"),
                                        f"call activity closes a call cycle {' → '.join(keys)}: a process may "
                                        f"not call itself, directly or through the processes it calls"))
                continue
            if call.callee in done:
                continue
            path.append(call)
            on_path[call.callee] = len(path)
            stack.append(iter(calls_of(call.callee)))
    return list(dict.fromkeys(problems))


def _line_of(tree: etree._ElementTree | None, element_id: str | None) -> int | None:
    if tree is None or not element_id:
        return None
    found = tree.getroot().xpath("//*[@id=$id]", id=element_id)
    return found[0].sourceline if found else None


def _spiff_problems(files: Mapping[str, bytes], loaded: list[LoadedFile],
                    resolve_callee: Callable[[str], bytes | None]) -> list[Problem]:
    """Let SpiffWorkflow parse every executable process: it finds what our checks do not."""
    problems = []
    for lf in loaded:
        for proc in lf.processes:
            if not proc.is_executable:
                continue
            try:
                _parse(files, proc.key, resolve_callee)
            except DeployError as err:
                problems.extend(err.problems)
    return list(dict.fromkeys(problems))  # once each: a shared callee would be reported by every caller


def _parse(files: Mapping[str, bytes], process_key: str,
           resolve_callee: Callable[[str], bytes | None]) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
    parser = AlurParser()
    trees = {}
    for file_name, content in files.items():
        trees[file_name] = parse_xml(content, file_name)
        parser.add_bpmn_xml(trees[file_name], filename=file_name)
    try:
        spec = parser.get_spec(process_key)
        _add_callees(parser, trees, resolve_callee)
        return spec, parser.get_subprocess_specs(process_key)
    except ValidationException as err:
        file_name = err.file_name or next(iter(files), "")
        element_id = err.id or None
        line = err.line_number if isinstance(err.line_number, int) else _line_of(trees.get(file_name), element_id)
        raise DeployError([Problem(file_name, line, element_id, str(err))]) from None


def _add_callees(parser: AlurParser, trees: dict[str, etree._ElementTree],
                 resolve_callee: Callable[[str], bytes | None]) -> None:
    """Add files of callees deployed earlier (and their callees) until nothing more can be resolved."""
    tried: set[str] = set()
    while True:
        pending = {key for key in parser.get_process_dependencies()
                   if key and parser.get_process_parser(key) is None and key not in tried}
        if not pending:
            return
        for key in pending:
            tried.add(key)
            content = resolve_callee(key)
            if content is not None:
                name = f"{key}.bpmn (deployed)"
                trees[name] = parse_xml(content, name)
                parser.add_bpmn_xml(trees[name], filename=name)


def build_specs(files: Mapping[str, bytes], process_key: str,
                resolve_callee: Callable[[str], bytes | None] = lambda key: None,
                ) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
    """Spec of `process_key` and every (transitively) called/sub process spec, parsed with AlurParser."""
    return _parse(files, process_key, resolve_callee)
