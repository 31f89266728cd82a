"""Deploy checks: every problem in every file, each with file, line and element id."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import DeployError, Problem
from engine.loader import build_specs, load_bpmn_files

DATA = Path(__file__).parent / "data" / "engine"


def read(*names: str) -> dict[str, bytes]:
    return {name: (DATA / name).read_bytes() for name in names}


def problems(files: dict[str, bytes], **kwargs: object) -> list[Problem]:
    with pytest.raises(DeployError) as info:
        load_bpmn_files(files, form_ids=kwargs.pop("form_ids", set()),  # type: ignore[arg-type]
                        form_files=kwargs.pop("form_files", set()), **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def test_good_files_load() -> None:
    loaded = load_bpmn_files(read("linear.bpmn", "timers.bpmn"), form_ids={"form_draft"},
                             form_files={"review.form"})
    assert [lf.file_name for lf in loaded] == ["linear.bpmn", "timers.bpmn"]
    assert loaded[0].content == (DATA / "linear.bpmn").read_bytes()
    assert [p.key for p in loaded[0].processes] == ["linear"]
    assert len(loaded[1].processes) == 5


def test_every_problem_in_every_file_is_reported() -> None:
    found = problems(read("bad.bpmn", "not_executable.bpmn", "xsd_invalid.bpmn"))
    messages = [(p.file, p.line, p.element_id, p.message) for p in found]
    expect = [
        ("bad.bpmn", 12, "Task_ok", "camunda:dueDate"),
        ("bad.bpmn", 12, "Task_ok", "form 'missing_form'"),
        ("bad.bpmn", 13, "Task_script", "script tasks are not allowed; use a user task or a service"),
        ("bad.bpmn", 16, "Task_nolane", "in no lane"),
        ("bad.bpmn", 16, "Task_nolane", "camunda:followUpDate"),
        ("bad.bpmn", 19, "wait", "timeDuration"),
        ("bad.bpmn", 21, "call", "does_not_exist"),
        ("bad.bpmn", 22, "End", "reserved"),
        ("bad.bpmn", 23, "Task_orphan", "not reachable"),
        ("bad.bpmn", 29, "f5", "attribute access"),
        ("not_executable.bpmn", None, None, "no executable process"),
        ("xsd_invalid.bpmn", 5, None, "BPMN schema"),
    ]
    for file, line, element, text in expect:
        assert any(m[:3] == (file, line, element) and text in m[3] for m in messages), (file, element, text)
    assert len(found) == len(expect)


def test_unsafe_xml_is_one_problem_among_others() -> None:
    files = read("bad.bpmn")
    files["evil.bpmn"] = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    files["broken.bpmn"] = b"<bpmn:definitions"
    found = problems(files)
    assert {p.file for p in found} == {"bad.bpmn", "evil.bpmn", "broken.bpmn"}
    assert not any("root:" in p.message for p in found)


def test_forms_must_exist() -> None:
    found = problems(read("linear.bpmn"), form_ids={"other"}, form_files={"other.form"})
    assert {(p.element_id, p.line) for p in found} == {("Task_draft", 29), ("Task_review", 41)}


def test_call_activity_resolved_in_same_deployment() -> None:
    loaded = load_bpmn_files(read("caller.bpmn", "callee.bpmn"), form_ids=set(), form_files=set())
    assert {p.key for lf in loaded for p in lf.processes} == {"caller", "rapat"}


def test_call_activity_resolved_from_earlier_deployment() -> None:
    callee = (DATA / "callee.bpmn").read_bytes()
    asked: list[str] = []

    def resolve(key: str) -> bytes | None:
        asked.append(key)
        return callee if key == "rapat" else None

    load_bpmn_files(read("caller.bpmn"), form_ids=set(), form_files=set(), resolve_callee=resolve)
    assert "rapat" in asked
    spec, subs = build_specs(read("caller.bpmn"), "caller", resolve_callee=resolve)
    assert spec.name == "caller"
    assert list(subs) == ["rapat"]


def test_missing_callee_refused() -> None:
    [problem] = problems(read("caller.bpmn"))
    assert (problem.file, problem.line, problem.element_id) == ("caller.bpmn", 6, "caller_call")
    assert "'rapat'" in problem.message


def test_duplicate_process_ids_refused() -> None:
    files = read("callee.bpmn")
    files["copy.bpmn"] = files["callee.bpmn"]
    found = problems(files)
    assert any("also defined" in p.message for p in found)


def test_spiff_parse_errors_get_lines() -> None:
    # A task with two outgoing flows: fine for the XSD and our checks, refused by SpiffWorkflow's parser.
    xml = (DATA / "callee.bpmn").read_text().replace(
        '<bpmn:endEvent id="rapat_end" />',
        '<bpmn:endEvent id="rapat_end" /><bpmn:endEvent id="rapat_end2" />'
        '<bpmn:sequenceFlow id="r3" sourceRef="rapat_task" targetRef="rapat_end2" />')
    [problem] = problems({"two.bpmn": xml.encode()})
    assert problem.element_id == "rapat_task"
    assert problem.line == 6
    assert "Multiple outgoing flows" in problem.message


def test_build_specs_returns_subprocess_specs() -> None:
    spec, subs = build_specs(read("linear.bpmn"), "linear")
    assert spec.name == "linear"
    assert set(subs) == {"Sub_archive"}


def test_build_specs_unknown_process() -> None:
    with pytest.raises(DeployError):
        build_specs(read("linear.bpmn"), "nope")
