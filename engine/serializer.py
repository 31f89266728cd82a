"""JSON (de)serialization of specs and workflow instances.

Specs are stored once per definition version; instances are stored WITHOUT their spec (≈60 % of a full
document) and restored against the already-loaded spec objects, so a request never re-converts a spec.
Key order is kept as SpiffWorkflow wrote it: task data is a delta against the parent task, restored in
document order (never `sort_keys`, never JSONB).
Finished history is pruned when an instance is read (engine/history.py), so a state does not grow with the
rounds of a loop. Task data must be JSON (str, int, float, bool, None, list, dict; `datetime` is tolerated by
SpiffWorkflow's registry). `date` and `Decimal` raise at serialize time: the form layer converts them.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.workflow import VERSION
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.task import Task

from engine import history
from engine.errors import CorruptState
from engine.timers import TIMER_CLASSES
from engine.workflow import AlurWorkflow

INSTANCE_FORMAT = f"alur-instance/{VERSION}"
SPEC_FORMAT = f"alur-spec/{VERSION}"


def copy_json(value: Any) -> Any:
    """Deep copy of JSON-shaped data; much faster than copy.deepcopy for task data."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


class IsolatedTaskConverter(TaskConverter):
    """SpiffWorkflow restores a child's data with DeepMerge, which copies one level only: nested dicts stay
    shared with the parent and a later task mutating them rewrites an earlier task's data. Copy deeply."""

    def from_dict(self, dct: dict, workflow: Any) -> Task:
        delta = dct.get("delta")
        task = super().from_dict({**dct, "delta": None, "data": {}}, workflow)
        if delta and task.parent is not None:
            data = copy_json(task.parent.data)
            data.update(self.registry.restore(delta.get("updates", {})))
            for key in delta.get("deletions", []):
                data.pop(key, None)
        else:
            data = self.registry.restore(dct["data"])
        task.data = data
        return task


class InstanceConverter(BpmnWorkflowConverter):
    """A BpmnWorkflow without `spec` / `subprocess_specs`; restored against specs the caller holds."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict:
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict, spec: BpmnProcessSpec | None = None,
                  subprocess_specs: dict[str, BpmnProcessSpec] | None = None,
                  script_engine: Any = None) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs or {}, script_engine=script_engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


CONFIG: dict[type, type] = {
    **CAMUNDA_CONFIG,
    **{cls: TimerConditionalEventDefinitionConverter for cls in TIMER_CLASSES.values()},
    Task: IsolatedTaskConverter,
}

# Full documents (spec included): what SpiffWorkflow itself reads and writes.
SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CONFIG))
# Instances without spec: same converters except the top-level workflow.
_INSTANCE = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure({**CONFIG, BpmnWorkflow: InstanceConverter}))
# Instances are restored as AlurWorkflow (bounded call depth) and stored under SpiffWorkflow's type name.
InstanceConverter(AlurWorkflow, _INSTANCE.registry, typename="BpmnWorkflow")


def spec_to_json(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> str:
    return json.dumps({
        "format": SPEC_FORMAT,
        "spec": SERIALIZER.to_dict(spec),
        "subprocess_specs": {name: SERIALIZER.to_dict(sub) for name, sub in subprocess_specs.items()},
    })


def spec_from_json(text: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
    dct = json.loads(text)
    if dct.get("format") != SPEC_FORMAT:
        raise ValueError(f"spec was stored as {dct.get('format')!r}; this engine reads {SPEC_FORMAT!r}")
    spec = SERIALIZER.from_dict(dct["spec"])
    return spec, {name: SERIALIZER.from_dict(sub) for name, sub in dct["subprocess_specs"].items()}


class _StrictEncoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        raise TypeError(
            f"task data holds a {type(o).__name__} value ({o!r}), which cannot be stored; "
            "convert dates, decimals and other objects to JSON values at the form boundary"
        )


_INSTANCE_ENCODER = create_encoder(_INSTANCE.registry, _StrictEncoder)


def instance_to_json(workflow: BpmnWorkflow) -> str:
    """The workflow's state without its specs; key order preserved (task data deltas depend on it)."""
    registry = _INSTANCE.registry
    registry._encoder_mode = True  # convert lazily inside json.dumps, as SpiffWorkflow's serialize_json does
    try:
        dct = _INSTANCE.to_dict(workflow)
        dct["format"] = INSTANCE_FORMAT
        return json.dumps(dct, cls=_INSTANCE_ENCODER)
    finally:
        registry._encoder_mode = False


def instance_from_json(text: str, spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec],
                       script_engine: Any, *, instance_id: str | None = None, prune: bool = True) -> BpmnWorkflow:
    """The workflow stored in `text`, with its finished history pruned (engine/history.py) unless `prune` is
    False (`alur check` looks at the state as stored); CorruptState (naming `instance_id`) when it cannot be
    read back. Pruning on load rather than on save lets `sync_tasks` see the steps finished in the same
    transaction; a stored state holds at most one transaction's finished tasks."""
    try:
        dct = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CorruptState(f"not valid JSON ({type(exc).__name__}: {exc})", instance_id) from exc
    if not isinstance(dct, dict):
        raise CorruptState(f"a JSON {type(dct).__name__}, not an object", instance_id)
    stored = dct.pop("format", None)
    if stored != INSTANCE_FORMAT:
        raise CorruptState(f"stored as format {stored!r}; this engine reads {INSTANCE_FORMAT!r}", instance_id)
    try:
        workflow = _INSTANCE.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs,
                                       script_engine=script_engine)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a field or spec is missing
        raise CorruptState(f"{type(exc).__name__}: {exc}"[:300], instance_id) from exc
    if prune:
        history.prune(workflow)
    return workflow
