"""The committed SOP models in bpmn/: they parse, pass deploy checks with forms/, and run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState

from engine.expressions import SafeScriptEngine
from engine.loader import build_specs, load_bpmn_files

ROOT = Path(__file__).resolve().parent.parent
BPMN_FILES = sorted((ROOT / "bpmn").glob("*.bpmn"))
FORM_FILES = sorted((ROOT / "forms").glob("*.form"))
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "camunda": "http://camunda.org/schema/1.0/bpmn"}
EXPECTED_KEYS = {
    "sop_monev_capaian_kinerja_iv_jurai",
    "sop_pengukuran_data_kinerja_iv_jurai",
    "sop_pemantauan_kinerja_setda_pessel",
    "sop_pengukuran_kinerja_wangon",
    "sop_pelaksanaan_rapat",
}


def _form_ids() -> dict[str, str]:
    return {json.loads(path.read_text(encoding="utf-8"))["id"]: path.name for path in FORM_FILES}


def _process_key(path: Path) -> str:
    return etree.parse(str(path)).getroot().find("bpmn:process", NS).get("id")


def test_every_seed_procedure_has_a_model() -> None:
    assert {_process_key(path) for path in BPMN_FILES} == EXPECTED_KEYS


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_parses_with_camunda_parser(path: Path) -> None:
    parser = CamundaParser()
    parser.add_bpmn_files([str(p) for p in BPMN_FILES])  # callees resolve across files
    key = _process_key(path)
    spec = parser.get_spec(key)
    user_tasks = [t for t in spec.task_specs.values() if type(t).__name__ == "UserTask"]
    assert user_tasks, f"{path.name}: no user tasks"
    for task in user_tasks:
        assert task.lane, f"{path.name}: {task.name} has no lane"


@pytest.mark.parametrize("path", BPMN_FILES, ids=lambda p: p.name)
def test_referenced_forms_exist(path: Path) -> None:
    forms = _form_ids()
    tree = etree.parse(str(path))
    for task in tree.iterfind(".//bpmn:userTask", NS):
        ref = task.get("{http://camunda.org/schema/1.0/bpmn}formRef")
        assert ref in forms, f"{path.name} {task.get('id')}: form {ref!r} not in forms/"


def test_forms_are_modeler_5_camunda_7_forms() -> None:
    allowed = {"textfield", "textarea", "number", "select", "radio", "checkbox", "checklist", "datetime", "text",
               "group", "expression"}
    for path in FORM_FILES:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["executionPlatform"] == "Camunda Platform", path.name
        assert data["executionPlatformVersion"] == "7.24.0", path.name
        assert data["schemaVersion"] == 16, path.name
        assert data["id"].startswith("Form_"), path.name
        types = {c["type"] for c in data["components"]}
        assert types <= allowed, (path.name, types - allowed)
        assert "catatan" in {c.get("key") for c in data["components"]}, path.name
    decision = json.loads((ROOT / "forms" / "keputusan.form").read_text(encoding="utf-8"))
    keputusan = next(c for c in decision["components"] if c.get("key") == "keputusan")
    assert [v["value"] for v in keputusan["values"]] == ["ya", "tidak"]


def test_all_models_pass_deploy_checks_with_forms() -> None:
    files = {path.name: path.read_bytes() for path in BPMN_FILES}
    loaded = load_bpmn_files(files, form_ids=set(_form_ids()), form_files={p.name for p in FORM_FILES})
    assert {proc.key for lf in loaded for proc in lf.processes} == EXPECTED_KEYS


def _run(key: str) -> tuple[list[str], BpmnWorkflow]:
    """Run `key` to the end: every decision answers "tidak" once, then "ya". Returns completed task ids."""
    files = {path.name: path.read_bytes() for path in BPMN_FILES}
    spec, subprocesses = build_specs(files, key)
    workflow = BpmnWorkflow(spec, subprocesses, script_engine=SafeScriptEngine())
    workflow.do_engine_steps()
    answered: set[tuple[str, str]] = set()
    done: list[str] = []
    for _ in range(200):
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            break
        task = ready[0]
        spec_id = task.task_spec.bpmn_id
        scope = task.workflow.spec.name
        if _is_decision(task):
            first = (scope, spec_id) not in answered
            answered.add((scope, spec_id))
            task.data["keputusan"] = "tidak" if first else "ya"
        done.append(f"{scope}:{spec_id}")
        task.run()
        workflow.do_engine_steps()
    assert workflow.is_completed(), f"{key} did not finish; done: {done}"
    return done, workflow


def _is_decision(task: object) -> bool:
    outputs = task.task_spec.outputs  # type: ignore[attr-defined]
    return any((o.bpmn_id or "").startswith("Decision_") for o in outputs)


@pytest.mark.parametrize("key", sorted(EXPECTED_KEYS))
def test_runs_to_the_end_with_loop_backs(key: str) -> None:
    done, _ = _run(key)
    tree = etree.parse(str(ROOT / "bpmn" / f"{key}.bpmn"))
    for gateway in tree.iterfind(".//bpmn:exclusiveGateway", NS):
        gid = gateway.get("id")
        if gid.startswith("Merge_"):
            # The row behind a loop target ran twice: once on the way, once after "tidak".
            assert done.count(f"{key}:Step_{gid.removeprefix('Merge_')}") == 2, done
    calls = [c.get("calledElement") for c in tree.iterfind(".//bpmn:callActivity", NS)]
    for callee in calls:
        assert any(entry.startswith(f"{callee}:") for entry in done), done
