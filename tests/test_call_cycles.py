"""Call activities that call themselves, directly or through other processes (issue 13, item 7).

Refused at deploy, including a cycle closed by a later deployment through a definition deployed earlier;
at run time the nesting is bounded, for definitions the deploy check never saw.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import accounts, loader
from engine.db import Database
from engine.errors import DeployError, ProcessError
from engine.models import AuditEvent, ProcessDefinition, ProcessInstance, Task
from engine.service import Alur
from engine.workflow import MAX_CALL_DEPTH
from tests.conftest import FakeClock

pytestmark = pytest.mark.timeout(120)  # before the fix, starting a self-calling process never returned


def process(key: str, calls: str | None = None) -> str:
    """start → (call activity `key_call` of `calls`) → user task `key_task` (lane Kasubag) → end."""
    call = f'<bpmn:callActivity id="{key}_call" calledElement="{calls}" />' if calls else ""
    first = f"{key}_call" if calls else f"{key}_task"
    flows = (f'<bpmn:sequenceFlow id="{key}_f1" sourceRef="{key}_start" targetRef="{first}" />'
             + (f'<bpmn:sequenceFlow id="{key}_f2" sourceRef="{key}_call" targetRef="{key}_task" />'
                if calls else "")
             + f'<bpmn:sequenceFlow id="{key}_f3" sourceRef="{key}_task" targetRef="{key}_end" />')
    return f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:laneSet id="{key}_lanes"><bpmn:lane id="{key}_lane" name="Kasubag">
      <bpmn:flowNodeRef>{key}_task</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="{key}_start" />
    {call}
    <bpmn:userTask id="{key}_task" name="Langkah {key}" />
    <bpmn:endEvent id="{key}_end" />
    {flows}
  </bpmn:process>"""


def bpmn(*processes: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions '
            'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs" '
            f'targetNamespace="http://bpmn.io/schema/bpmn">{"".join(processes)}\n</bpmn:definitions>').encode()


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    with db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
        accounts.add_user(s, "kasubag", "rahasia-123")
        accounts.grant(s, "kasubag", "Kasubag", "iv-jurai")
    return Alur(db, clock=clock)


def counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (ProcessDefinition, ProcessInstance, Task, AuditEvent)}


def refused(svc: Alur, files: dict[str, bytes]) -> list[str]:
    before = counts(svc.db)
    with pytest.raises(DeployError) as err:
        svc.deploy(files)
    assert counts(svc.db) == before  # nothing stored
    return [f"{p.file}:{p.element_id}: {p.message}" for p in err.value.problems]


def test_a_process_calling_itself_is_refused(svc: Alur) -> None:
    [problem] = refused(svc, {"a.bpmn": bpmn(process("A", calls="A"))})
    assert problem.startswith("a.bpmn:A_call: call activity closes a call cycle A → A")


def test_a_cycle_of_two_processes_in_one_deployment_is_refused(svc: Alur) -> None:
    [problem] = refused(svc, {"a.bpmn": bpmn(process("A", calls="B")), "b.bpmn": bpmn(process("B", calls="A"))})
    assert problem.startswith("a.bpmn:A_call: call activity closes a call cycle A → B → A")
    [problem] = refused(svc, {"ab.bpmn": bpmn(process("A", calls="B"), process("B", calls="A"))})
    assert "A → B → A" in problem


def test_a_cycle_closed_by_a_later_deployment_is_refused(svc: Alur) -> None:
    svc.deploy({"c.bpmn": bpmn(process("C"))})
    svc.deploy({"b.bpmn": bpmn(process("B", calls="C"))})
    svc.deploy({"a.bpmn": bpmn(process("A", calls="B"))})
    # A new version of C calling A: C → A → B → C, through the two definitions deployed before.
    [problem] = refused(svc, {"c.bpmn": bpmn(process("C", calls="A"))})
    assert problem.startswith("c.bpmn:C_call: call activity closes a call cycle C → A → B → C")
    assert [d.version for d in svc.definitions(key="C")] == [1]


def test_a_three_level_chain_deploys_and_runs(svc: Alur) -> None:
    svc.deploy({"c.bpmn": bpmn(process("C"))})
    svc.deploy({"a.bpmn": bpmn(process("A", calls="B")), "b.bpmn": bpmn(process("B", calls="C"))})
    kasubag = svc.actor("kasubag")
    inst = svc.start("A", unit="iv-jurai")
    done = []
    for _ in range(3):
        [task] = svc.tasks_for(kasubag)
        done.append(task.element_id)
        svc.complete(task.id, kasubag, {})
    assert done == ["C_task", "B_task", "A_task"]
    assert svc.instance(inst.id).status == "completed"


def test_nesting_is_bounded_at_run_time_and_the_refused_start_changes_nothing(
        svc: Alur, monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-calling definition stored before the deploy check existed: the start is refused, nothing stored."""
    monkeypatch.setattr(loader, "_check_call_cycles", lambda *args: [])
    svc.deploy({"a.bpmn": bpmn(process("A", calls="A"))})
    before = counts(svc.db)
    with pytest.raises(ProcessError) as err:
        svc.start("A", unit="iv-jurai")
    assert f"would nest {MAX_CALL_DEPTH + 1} processes inside each other (at most {MAX_CALL_DEPTH})" in str(err.value)
    assert "A → A → A" in str(err.value)
    assert counts(svc.db) == before


def test_a_step_leading_into_runaway_nesting_is_refused_and_changes_nothing(
        svc: Alur, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bound on a stored instance (restored from its JSON state): the completion is refused."""
    monkeypatch.setattr(loader, "_check_call_cycles", lambda *args: [])
    caller = process("A").replace('targetRef="A_end"', 'targetRef="A_call"').replace(
        '<bpmn:endEvent id="A_end" />',
        '<bpmn:callActivity id="A_call" calledElement="C" /><bpmn:endEvent id="A_end" />'
        '<bpmn:sequenceFlow id="A_f4" sourceRef="A_call" targetRef="A_end" />')
    svc.deploy({"c.bpmn": bpmn(process("C", calls="C"))})
    svc.deploy({"a.bpmn": bpmn(caller)})
    kasubag = svc.actor("kasubag")
    inst = svc.start("A", unit="iv-jurai")
    [task] = svc.tasks_for(kasubag)
    before = counts(svc.db)
    with pytest.raises(ProcessError, match=f"at most {MAX_CALL_DEPTH}"):
        svc.complete(task.id, kasubag, {})
    assert counts(svc.db) == before
    assert svc.instance(inst.id).version == inst.version
    assert [t.id for t in svc.tasks_for(kasubag)] == [task.id]
