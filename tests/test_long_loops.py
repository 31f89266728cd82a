"""Loops of any length (issue 13, item 1): SpiffWorkflow walks task trees with a depth limit of 1,000, so before
history pruning a revision loop ("sesuai?" -> tidak -> back) or a timer polling loop made an instance look
completed with a step still open. These run far past the limit and check the instance stays open with its step
visible, its data intact and its stored state bounded; and that `alur check` finds and `alur repair` mends an
instance damaged the old way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select, update

from engine import accounts, history, serializer
from engine.check import check_database
from engine.cli import main
from engine.db import Database
from engine.expressions import SafeScriptEngine
from engine.loader import build_specs
from engine.models import AuditEvent, ProcessInstance, Task
from engine.repair import repair_instances
from engine.service import Alur
from engine.store import InstanceRef, audit, sync_tasks
from engine.timers import next_timer_due
from tests.conftest import DATA, FakeClock
from tests.test_service import service_files, setup_people

PENGAJUAN = {"pengajuan.bpmn": (DATA / "service" / "pengajuan.bpmn").read_bytes()}
LOOPS: dict[str, bytes] = {"loops.bpmn": (DATA / "loops" / "loops.bpmn").read_bytes()}


def reload(wf: BpmnWorkflow, spec: Any, subs: Any, engine: SafeScriptEngine) -> tuple[BpmnWorkflow, int]:
    """Store and read back as the service does; (the workflow, the stored state's size)."""
    text = serializer.instance_to_json(wf)
    return serializer.instance_from_json(text, spec, subs, engine), len(text)


def ready_steps(wf: BpmnWorkflow) -> list[Any]:
    """READY user tasks as SpiffWorkflow itself finds them (the depth-limited walk)."""
    return sorted((t for t in wf.get_tasks(state=TaskState.READY) if t.task_spec.manual),
                  key=lambda t: t.task_spec.bpmn_id)


def complete(wf: BpmnWorkflow, element: str, **data: Any) -> None:
    [task] = [t for t in ready_steps(wf) if t.task_spec.bpmn_id == element]
    task.data.update(data)
    task.run()
    wf.do_engine_steps()


def revision_round(wf: BpmnWorkflow, i: int) -> None:
    complete(wf, "Step_1", judul=f"Laporan revisi {i}", jumlah=i)
    complete(wf, "Step_2", keputusan="tidak")


def test_ten_thousand_revision_rounds_keep_the_step_open_at_a_bounded_size() -> None:
    spec, subs = build_specs(PENGAJUAN, "pengajuan")
    engine = SafeScriptEngine()
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    sizes: dict[int, int] = {}
    for i in range(1, 10_001):
        revision_round(wf, i)
        if i % 5 == 0:  # stored and read back now and then, as every step of the service does
            wf, sizes[i] = reload(wf, spec, subs, engine)
            assert not history.is_finished(wf) and not wf.is_completed()
    [step] = ready_steps(wf)
    assert step.task_spec.bpmn_id == "Step_1"
    assert step.data["judul"] == "Laporan revisi 10000" and step.data["keputusan"] == "tidak"
    assert history.max_depth(wf) < 20
    assert max(sizes.values()) <= sizes[5] * 1.1, "the stored state grows with the rounds"
    # And it still ends when the answer is finally "ya".
    complete(wf, "Step_1", judul="Laporan akhir", jumlah=0)
    complete(wf, "Step_2", keputusan="ya")
    complete(wf, "Step_3", nomor_arsip="ARS-1")
    assert history.is_finished(wf) and wf.data["judul"] == "Laporan akhir"


def test_a_thousand_timer_polling_rounds_keep_waiting_at_a_bounded_size() -> None:
    now = [datetime(2026, 11, 23, 2, 0, tzinfo=UTC)]
    engine = SafeScriptEngine(clock=lambda: now[0])
    spec, subs = build_specs(LOOPS, "pantau")
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.task_tree.data["siap"] = "tidak"
    wf.do_engine_steps()
    sizes = []
    for i in range(1, 1001):
        due = next_timer_due(wf)
        assert due is not None, f"round {i}: nothing waits on time any more"
        now[0] = due
        wf.refresh_timers()
        wf.do_engine_steps()
        if i % 10 == 0:
            wf, size = reload(wf, spec, subs, engine)
            sizes.append(size)
            assert not history.is_finished(wf)
    assert max(sizes) <= sizes[0] * 1.1
    assert history.max_depth(wf) < 20
    [waiting] = [t for t in wf.get_tasks(state=TaskState.WAITING) if t.task_spec.bpmn_id == "pantau_tunggu"]
    waiting.parent.data["siap"] = "ya"  # what the timer inherits when it fires
    now[0] = next_timer_due(wf)  # type: ignore[assignment]
    wf.refresh_timers()
    wf.do_engine_steps()
    complete(wf, "pantau_proses")
    assert history.is_finished(wf)


def test_parallel_rounds_with_reminders_are_pruned_without_changing_the_joins() -> None:
    """Pruning keeps what joins look at: a parallel gateway inside a loop, a boundary timer, side paths that
    end while the process goes on. The join still waits for both steps every round."""
    now = [datetime(2026, 11, 23, 2, 0, tzinfo=UTC)]
    engine = SafeScriptEngine(clock=lambda: now[0])
    spec, subs = build_specs(LOOPS, "paralel")
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    counts = []
    for i in range(200):
        assert [t.task_spec.bpmn_id for t in ready_steps(wf)] == ["paralel_a", "paralel_b"], f"round {i}"
        if i % 3 == 0:  # the reminder on paralel_a fires and its path ends
            now[0] = next_timer_due(wf)  # type: ignore[assignment]
            wf.refresh_timers()
            wf.do_engine_steps()
            wf, _ = reload(wf, spec, subs, engine)
        complete(wf, "paralel_a", ulang="ya", ronde=i)
        wf, _ = reload(wf, spec, subs, engine)
        assert [t.task_spec.bpmn_id for t in ready_steps(wf)] == ["paralel_b"], f"round {i}: join did not wait"
        complete(wf, "paralel_b", ulang="ya", ronde_b=i)
        wf, _ = reload(wf, spec, subs, engine)
        counts.append(len(wf.tasks))
    assert max(counts) <= 40, counts[-10:]
    complete(wf, "paralel_a", ulang="tidak")
    complete(wf, "paralel_b", ulang="tidak")
    assert history.is_finished(wf) and wf.data["ronde_b"] == 199


def test_a_call_activity_in_a_loop_keeps_only_the_running_subprocess() -> None:
    files = {**LOOPS, "callee.bpmn": (DATA / "engine" / "callee.bpmn").read_bytes()}
    spec, subs = build_specs(files, "rapat_ulang")
    engine = SafeScriptEngine()
    wf = BpmnWorkflow(spec, subs, script_engine=engine)
    wf.do_engine_steps()
    counts = []
    for i in range(200):
        complete(wf, "rapat_task", notulen=f"Rapat {i}")  # inside the called SOP
        wf, _ = reload(wf, spec, subs, engine)
        complete(wf, "rapat_ulang_nilai", ulang="ya")
        wf, _ = reload(wf, spec, subs, engine)
        assert len(wf.subprocesses) == 1, f"round {i}: {len(wf.subprocesses)} subprocesses kept"
        counts.append(len(wf.tasks) + sum(len(sp.tasks) for sp in wf.subprocesses.values()))
    assert max(counts) <= counts[0] + 5
    [step] = ready_steps(wf)
    assert step.task_spec.bpmn_id == "rapat_task" and step.data["notulen"] == "Rapat 199"
    complete(wf, "rapat_task", notulen="Rapat akhir")
    complete(wf, "rapat_ulang_nilai", ulang="tidak")
    assert history.is_finished(wf) and wf.data["notulen"] == "Rapat akhir"


# ------------------------------------------------------------------------------------------ service level


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy(service_files())
    setup_people(db)
    return service


def _state_size(db: Database, iid: str) -> int:
    with db.read() as s:
        return len(s.scalar(select(ProcessInstance.state).where(ProcessInstance.id == iid)) or "")


def _service_round(svc: Alur, iid: str, i: int) -> None:
    kasubag, camat = svc.actor("kasubag"), svc.actor("camat")
    [step1] = [t for t in svc.tasks_for(kasubag) if t.instance_id == iid]
    svc.complete(step1.id, kasubag, {"judul": f"Revisi {i}", "jumlah": i}, late_reason="Revisi")
    [step2] = [t for t in svc.tasks_for(camat) if t.instance_id == iid]
    svc.complete(step2.id, camat, {"keputusan": "tidak"}, late_reason="Revisi")


def test_three_hundred_and_fifty_send_backs_through_the_service(svc: Alur, db: Database) -> None:
    iid = svc.start("pengajuan", unit="iv-jurai", business_key="LAP-LOOP").id
    sizes = {}
    for i in range(1, 351):  # ~3 levels a round: past SpiffWorkflow's 1,000 at round ~333
        _service_round(svc, iid, i)
        if i in (20, 350):
            sizes[i] = _state_size(db, iid)
    view = svc.instance(iid)
    assert view.status == "running" and view.ended_at is None
    [ready] = [t for t in view.tasks if t.state == "READY"]
    assert ready.element_id == "Step_1"
    assert view.data["judul"] == "Revisi 350" and view.data["keputusan"] == "tidak"
    assert len(view.tasks) == 2 * 350 + 1  # the history stays in the task rows
    assert sizes[350] <= sizes[20] * 1.1
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == iid, AuditEvent.action == "end")) == 0
    assert [p for p in check_database(db) if p.instance_id == iid] == []


def test_five_hundred_and_ten_timer_rounds_through_the_worker_sweep(svc: Alur, db: Database,
                                                                   clock: FakeClock) -> None:
    svc.deploy({**LOOPS, "callee.bpmn": (DATA / "engine" / "callee.bpmn").read_bytes()})
    iid = svc.start("pantau", unit="iv-jurai", variables={"siap": "tidak"}).id
    sizes = {}
    due = svc.instance(iid).next_due_at
    for i in range(1, 511):  # the old walk lost the timer at round 500
        assert due is not None, f"round {i}: no timer waiting"
        clock.now = due
        assert svc.fire_due_timers().fired == [iid]
        with db.read() as s:
            due, status = s.execute(select(ProcessInstance.next_due_at, ProcessInstance.status)
                                    .where(ProcessInstance.id == iid)).one()
        assert status == "running"
        if i in (10, 510):
            sizes[i] = _state_size(db, iid)
    assert sizes[510] <= sizes[10] * 1.1
    assert [p for p in check_database(db) if p.instance_id == iid] == []


def test_a_damaged_instance_is_reported_by_check_and_repaired_with_an_audit(
        svc: Alur, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Build what the old code left: a state > 1,000 levels deep, status completed, ended_at and an `end`
    event, and the new step's row READY."""
    iid = svc.start("pengajuan", unit="iv-jurai", business_key="LAP-RUSAK").id
    _service_round(svc, iid, 1)
    with db.write() as s:
        row = s.execute(select(ProcessInstance).where(ProcessInstance.id == iid)).scalar_one()
        loaded = svc.specs.get(s, row.definition_id)
        engine = SafeScriptEngine(clock=clock)
        wf = serializer.instance_from_json(row.state, loaded.spec, loaded.subprocess_specs, engine, prune=False)
        for i in range(2, 400):
            for data in ({"judul": f"Revisi {i}", "jumlah": i}, {"keputusan": "tidak"}):
                [step] = [t for t in wf.tasks.values() if t.state == TaskState.READY]
                step.data.update(data)
                step.run()
                wf.do_engine_steps()
            if i % 100 == 0:  # as stored: unpruned
                wf = serializer.instance_from_json(serializer.instance_to_json(wf), loaded.spec,
                                                   loaded.subprocess_specs, engine, prune=False)
        assert history.max_depth(wf) > history.ITERATOR_DEPTH_LIMIT and wf.is_completed()  # the old verdict
        ref = InstanceRef(iid, row.definition_id, row.process_key, row.unit_id)
        sync_tasks(s, ref, wf, now=clock(), calendar=svc.calendar_for(s, row.unit_id), actor="kasubag")
        s.execute(update(ProcessInstance).where(ProcessInstance.id == iid).values(
            state=serializer.instance_to_json(wf), status="completed", ended_at=clock(), next_due_at=None,
            version=ProcessInstance.version + 400))
        audit(s, at=clock(), actor=None, action="end", instance_id=iid)
    with db.read() as s:
        version = s.scalar(select(ProcessInstance.version).where(ProcessInstance.id == iid))

    found = {p.kind for p in check_database(db) if p.instance_id == iid}
    assert {"completed_with_open_task", "deep_state"} <= found

    # Dry run: described, nothing written.
    [plan] = list(repair_instances(svc, apply=False))
    assert (plan.instance_id, plan.status_before, plan.status_after, plan.applied) == (iid, "completed",
                                                                                       "running", False)
    assert plan.depth_before > history.ITERATOR_DEPTH_LIMIT and plan.open_tasks == ["Step_1"]
    with db.read() as s:
        assert s.scalar(select(ProcessInstance.version).where(ProcessInstance.id == iid)) == version

    monkeypatch.setenv("ALUR_DATABASE_URL", db.url)
    result = CliRunner().invoke(main, ["repair", "--apply"], catch_exceptions=False)
    assert result.exit_code == 0 and f"repaired  {iid}  status completed -> running" in result.output
    with db.read() as s:
        inst = s.execute(select(ProcessInstance).where(ProcessInstance.id == iid)).scalar_one()
        assert (inst.status, inst.ended_at, inst.version) == ("running", None, version + 1)
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid,
                                                     AuditEvent.action == "repair")).all()
        assert event.data["status_before"] == "completed" and event.data["removed_tasks"] > 1000
        assert s.scalar(select(func.count()).select_from(Task).where(Task.instance_id == iid,
                                                                        Task.state == "READY")) == 1
    assert [p for p in check_database(db) if p.instance_id == iid] == []
    assert list(repair_instances(svc, apply=False)) == []
    # The step works again.
    assert svc.instance(iid).data["judul"] == "Revisi 399"
    _service_round(svc, iid, 400)
    assert svc.instance(iid).status == "running"
    _ = accounts  # setup_people uses it
