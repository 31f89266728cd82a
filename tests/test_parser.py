"""AlurParser reads the Camunda attributes SpiffWorkflow ignores; describe_processes needs only lxml."""

from __future__ import annotations

from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from engine.parser import AlurParser, describe_processes
from engine.xmlsafe import parse_xml

DATA = Path(__file__).parent / "data" / "engine"


def tree(name: str):
    return parse_xml((DATA / name).read_bytes(), name)


@pytest.fixture(scope="module")
def specs():
    parser = AlurParser()
    parser.add_bpmn_xml(tree("linear.bpmn"), filename="linear.bpmn")
    return parser.get_spec("linear"), parser.get_subprocess_specs("linear")


def test_user_task_extensions(specs) -> None:
    spec, _ = specs
    draft = spec.task_specs["Task_draft"].extensions
    assert draft == {
        "properties": {"sop.no": "1", "sop.output": "Konsep"},
        "assignee": None,
        "candidateGroups": ["Kasubag", "Staf"],
        "candidateUsers": [],
        "dueDate": "PT15M",
        "followUpDate": None,
        "priority": "50",
        "formRef": "form_draft",
        "formRefBinding": "latest",
        "formKey": None,
        "formVersion": None,
    }
    review = spec.task_specs["Task_review"]
    assert review.extensions["assignee"] == "camat1"
    assert review.extensions["formKey"] == "camunda-forms:deployment:review.form"
    assert review.form.key == "camunda-forms:deployment:review.form"  # CamundaParser's form still read


def test_lane_is_the_innermost_lane_name(specs) -> None:
    spec, subs = specs
    assert spec.task_specs["Task_draft"].lane == "Kasubag"
    assert spec.task_specs["Task_review"].lane == "Camat"
    assert subs["Sub_archive"].task_specs["Task_archive"].lane == "Kasubag"


def test_subprocess_properties_are_its_own(specs) -> None:
    spec, subs = specs
    assert spec.task_specs["Sub_archive"].extensions["properties"] == {"sop.no": "3"}
    inner = subs["Sub_archive"].task_specs["Task_archive"].extensions["properties"]
    assert inner == {"sop.no": "3a", "inner.only": "yes"}


def test_events_get_extensions(specs) -> None:
    spec, _ = specs
    assert spec.task_specs["StartEvent_1"].extensions["properties"] == {}
    assert spec.task_specs["EndEvent_1"].extensions["candidateGroups"] == []


def test_script_task_refused_by_parser() -> None:
    parser = AlurParser()
    parser.add_bpmn_xml(tree("bad.bpmn"), filename="bad.bpmn")
    with pytest.raises(ValidationException, match="script tasks are not allowed"):
        parser.get_spec("bad")


def test_describe_processes() -> None:
    [info] = describe_processes(tree("linear.bpmn"), "linear.bpmn")
    assert (info.key, info.name, info.file_name, info.is_executable) == ("linear", "Linear SOP", "linear.bpmn", True)
    assert info.properties == {"sop.nomor": "800/01/2024"}
    assert info.documentation == "Header of the SOP"
    assert info.lanes == ["Kasubag", "Camat"]
    assert set(info.user_tasks) == {"Task_draft", "Task_review", "Task_archive"}
    draft = info.user_tasks["Task_draft"]
    assert (draft.name, draft.lane, draft.line) == ("Menyusun konsep", "Kasubag", 29)
    assert draft.documentation == "Lane inferred from the activity."
    assert draft.extensions["dueDate"] == "PT15M"
    assert info.user_tasks["Task_review"].lane == "Camat"
    assert info.user_tasks["Task_archive"].lane == "Kasubag"
    assert info.called_keys == set()
    assert info.line == 3


def test_describe_call_activity_and_not_executable() -> None:
    [caller] = describe_processes(tree("caller.bpmn"), "caller.bpmn")
    assert caller.called_keys == {"rapat"}
    [draft] = describe_processes(tree("not_executable.bpmn"), "not_executable.bpmn")
    assert draft.is_executable is False
