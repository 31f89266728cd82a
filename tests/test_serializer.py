"""Instances are stored without their spec and restored against the loaded spec, losslessly."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.expressions import SafeScriptEngine
from engine.loader import build_specs
from engine.serializer import (
    SERIALIZER,
    instance_from_json,
    instance_to_json,
    spec_from_json,
    spec_to_json,
)
from engine.timers import AlurDurationTimerEventDefinition, next_timer_due

DATA = Path(__file__).parent / "data" / "engine"
LINEAR = {"linear.bpmn": (DATA / "linear.bpmn").read_bytes()}
TIMERS = {"timers.bpmn": (DATA / "timers.bpmn").read_bytes()}
START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


def ready(workflow: BpmnWorkflow) -> list[str]:
    return [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY)]


def complete(workflow: BpmnWorkflow, bpmn_id: str, data: dict) -> None:
    task = workflow.get_next_task(state=TaskState.READY, spec_name=bpmn_id)
    task.data.update(data)
    task.run()
    workflow.do_engine_steps()


def reload(workflow: BpmnWorkflow, spec: object, subs: dict, engine: SafeScriptEngine) -> BpmnWorkflow:
    # The round trip as stored: finished tasks kept (pruning is tested in tests/test_long_loops.py).
    return instance_from_json(instance_to_json(workflow), spec, subs, engine,  # type: ignore[arg-type]
                              prune=False)


def test_spec_round_trip_keeps_extensions_and_forms() -> None:
    spec, subs = build_specs(LINEAR, "linear")
    spec2, subs2 = spec_from_json(spec_to_json(spec, subs))
    assert spec2.task_specs["Task_draft"].extensions == spec.task_specs["Task_draft"].extensions
    assert spec2.task_specs["Task_review"].form.key == "camunda-forms:deployment:review.form"
    assert set(subs2) == {"Sub_archive"}


def test_round_trip_mid_run_and_continue() -> None:
    spec, subs = spec_from_json(spec_to_json(*build_specs(LINEAR, "linear")))
    engine = SafeScriptEngine()
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    complete(wf, "Task_draft", {"judul": "Konsep 1"})
    text = instance_to_json(wf)
    dct = json.loads(text)
    assert "spec" not in dct and "subprocess_specs" not in dct
    assert len(text) < 0.6 * len(SERIALIZER.serialize_json(wf))

    wf = instance_from_json(text, spec, subs, engine)
    assert wf.script_engine is engine
    assert ready(wf) == ["Task_review"]
    complete(wf, "Task_review", {"approved": False})  # loops back
    wf = reload(wf, spec, subs, engine)
    assert ready(wf) == ["Task_draft"]
    complete(wf, "Task_draft", {"judul": "Konsep 2"})
    complete(wf, "Task_review", {"approved": True})
    wf = reload(wf, spec, subs, engine)
    assert ready(wf) == ["Task_archive"]  # inside the subprocess
    complete(wf, "Task_archive", {})
    assert wf.completed
    assert wf.last_task.data["judul"] == "Konsep 2"


def test_key_order_is_preserved() -> None:
    spec, subs = build_specs(LINEAR, "linear")
    wf = BpmnWorkflow(spec, subs, script_engine=SafeScriptEngine())
    wf.do_engine_steps()
    complete(wf, "Task_draft", {"z": 1, "a": 2})
    dct = json.loads(instance_to_json(wf))
    assert list(dct["tasks"]) == [str(task_id) for task_id in wf.tasks]  # parents before children


def test_nested_task_data_not_shared_after_reload() -> None:
    spec, subs = build_specs(LINEAR, "linear")
    engine = SafeScriptEngine()
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    complete(wf, "Task_draft", {"doc": {"meta": {"version": 1, "tags": ["a"]}}})
    wf = reload(wf, spec, subs, engine)

    review = wf.get_next_task(state=TaskState.READY, spec_name="Task_review")
    review.data["doc"]["meta"]["version"] = 2
    review.data["doc"]["meta"]["tags"].append("b")
    draft = wf.get_next_task(spec_name="Task_draft")
    assert draft.data["doc"] == {"meta": {"version": 1, "tags": ["a"]}}

    review.data["approved"] = True
    review.run()
    wf.do_engine_steps()
    wf = reload(wf, spec, subs, engine)
    assert wf.get_next_task(spec_name="Task_draft").data["doc"]["meta"]["version"] == 1
    assert wf.get_next_task(spec_name="Task_review").data["doc"]["meta"] == {"version": 2, "tags": ["a", "b"]}


def test_timers_survive_round_trip() -> None:
    now = [START]
    engine = SafeScriptEngine(clock=lambda: now[0])
    spec, subs = spec_from_json(spec_to_json(*build_specs(TIMERS, "boundary_interrupting")))
    assert isinstance(spec.task_specs["boundary_interrupting_timer"].event_definition,
                      AlurDurationTimerEventDefinition)
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    wf = reload(wf, spec, subs, engine)
    assert next_timer_due(wf) == START + timedelta(minutes=15)
    now[0] += timedelta(minutes=16)
    wf.refresh_timers()
    wf.do_engine_steps()
    assert ready(wf) == ["boundary_interrupting_escalate"]


def test_cycle_timer_state_survives_round_trips() -> None:
    now = [START]
    engine = SafeScriptEngine(clock=lambda: now[0])
    spec, subs = build_specs(TIMERS, "boundary_cycle")
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    counts = []
    for _ in range(5):
        now[0] += timedelta(minutes=10, seconds=1)
        wf = reload(wf, spec, subs, engine)
        wf.refresh_timers()
        wf.do_engine_steps()
        counts.append(ready(wf).count("boundary_cycle_escalate"))
    assert counts == [1, 2, 3, 3, 3]


@pytest.mark.parametrize("value", [date(2026, 1, 5), Decimal("1.5")])
def test_non_json_data_fails_at_serialize(value: object) -> None:
    """The form layer converts dates and decimals; if one slips through, saving fails loudly."""
    spec, subs = build_specs(LINEAR, "linear")
    wf = BpmnWorkflow(spec, subs, script_engine=SafeScriptEngine())
    wf.do_engine_steps()
    complete(wf, "Task_draft", {"tanggal": value})
    with pytest.raises(TypeError, match="form boundary"):
        instance_to_json(wf)


def test_wrong_format_refused() -> None:
    spec, subs = build_specs(LINEAR, "linear")
    with pytest.raises(ValueError, match="stored as"):
        instance_from_json('{"format": "other"}', spec, subs, SafeScriptEngine())
    with pytest.raises(ValueError, match="stored as"):
        spec_from_json('{"format": "other"}')
