"""The service API end to end, on SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import accounts
from engine import service as service_module
from engine.db import Database
from engine.errors import (
    ConflictError,
    DeployError,
    FormValidationError,
    NotFound,
    PermissionDenied,
    ProcessError,
)
from engine.models import AuditEvent, Deployment, FormDefinition, ProcessDefinition, ProcessInstance, Task
from engine.service import Alur
from tests.conftest import DATA, FakeClock

SERVICE_DATA = DATA / "service"


def service_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in SERVICE_DATA.iterdir() if p.suffix in (".bpmn", ".form")}


def setup_people(db: Database) -> None:
    with db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
        accounts.add_unit(s, "wangon", "Kecamatan Wangon")
        for name, role, unit in [("kasubag", "Kasubag", "iv-jurai"), ("camat", "Camat", "iv-jurai"),
                                 ("camat-wangon", "Camat", "wangon"), ("kasubag2", "Kasubag", "iv-jurai")]:
            accounts.add_user(s, name, "rahasia-123")
            accounts.grant(s, name, role, unit)


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy(service_files())
    setup_people(db)
    return service


def counts(db: Database) -> dict[str, int]:
    with db.read() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) or 0
                for m in (Deployment, ProcessDefinition, FormDefinition, ProcessInstance, Task, AuditEvent)}


def test_two_lane_process_runs_start_to_end_and_wrong_users_are_refused(svc: Alur, db: Database) -> None:
    kasubag, camat, other_camat = svc.actor("kasubag"), svc.actor("camat"), svc.actor("camat-wangon")
    inst = svc.start("pengajuan", unit="iv-jurai", business_key="LAP-1")
    [step1] = svc.tasks_for(kasubag)
    assert (step1.element_id, step1.lane, step1.candidate_role) == ("Step_1", "Kasubag", "Kasubag")
    assert svc.tasks_for(camat) == [] and svc.tasks_for(other_camat) == []

    before = counts(db)
    with pytest.raises(PermissionDenied):
        svc.complete(step1.id, camat, {"judul": "Laporan"})  # right unit, wrong lane
    with pytest.raises(NotFound):
        svc.complete(step1.id, other_camat, {"judul": "Laporan"})  # another unit: not even visible
    assert counts(db) == before

    svc.complete(step1.id, kasubag, {"judul": "Laporan triwulan", "jumlah": 3})
    [step2] = svc.tasks_for(camat)
    assert step2.element_id == "Step_2" and svc.tasks_for(other_camat) == []
    svc.complete(step2.id, camat, {"keputusan": "ya"})
    [step3] = svc.tasks_for(kasubag)
    svc.complete(step3.id, kasubag, {"nomor_arsip": "ARS-7"})

    view = svc.instance(inst.id)
    assert view.status == "completed" and view.ended_at is not None
    assert [t.element_id for t in view.tasks] == ["Step_1", "Step_2", "Step_3"]
    assert all(t.state == "COMPLETED" for t in view.tasks)
    assert [t.completed_by for t in view.tasks] == ["kasubag", "camat", "kasubag"]
    assert view.data["judul"] == "Laporan triwulan" and view.data["nomor_arsip"] == "ARS-7"
    assert [a.action for a in view.audit] == ["start", "complete", "complete", "complete", "end"]


def test_revision_loop_creates_a_new_task_for_the_earlier_step(svc: Alur) -> None:
    kasubag, camat = svc.actor("kasubag"), svc.actor("camat")
    inst = svc.start("pengajuan", unit="iv-jurai")
    svc.complete(svc.tasks_for(kasubag)[0].id, kasubag, {"judul": "Draf satu"})
    svc.complete(svc.tasks_for(camat)[0].id, camat, {"keputusan": "tidak", "catatan": "Perbaiki tabel"})
    [again] = svc.tasks_for(kasubag)
    assert again.element_id == "Step_1"
    view = svc.instance(inst.id)
    assert [t.element_id for t in view.tasks] == ["Step_1", "Step_2", "Step_1"]
    assert len({t.id for t in view.tasks}) == 3


def test_form_rules_are_enforced_for_every_path(svc: Alur, db: Database) -> None:
    kasubag = svc.actor("kasubag")
    svc.start("pengajuan", unit="iv-jurai")
    [task] = svc.tasks_for(kasubag)
    before = counts(db)
    with pytest.raises(FormValidationError) as err:
        svc.complete(task.id, kasubag, {"judul": "ab", "jumlah": 5000, "tidak_ada": "x"})
    assert set(err.value.errors) == {"judul", "jumlah", "tidak_ada"}
    with pytest.raises(FormValidationError) as err:
        svc.complete(task.id, kasubag, {})
    assert "judul" in err.value.errors
    assert counts(db) == before
    assert svc.task(task.id, kasubag).state == "READY"


def test_camunda_form_data_constraints_are_enforced(svc: Alur) -> None:
    kasubag, camat = svc.actor("kasubag"), svc.actor("camat")
    svc.start("pengajuan", unit="iv-jurai")
    svc.complete(svc.tasks_for(kasubag)[0].id, kasubag, {"judul": "Laporan"})
    svc.complete(svc.tasks_for(camat)[0].id, camat, {"keputusan": "ya"})
    [archive] = svc.tasks_for(kasubag)
    with pytest.raises(FormValidationError) as err:
        svc.complete(archive.id, kasubag, {"nomor_arsip": "x" * 21})  # maxlength 20 in camunda:formData
    assert "nomor_arsip" in err.value.errors
    with pytest.raises(FormValidationError):
        svc.complete(archive.id, kasubag, {})  # required
    svc.complete(archive.id, kasubag, {"nomor_arsip": "A-1"})


def test_claim_reserves_the_task_for_one_user(svc: Alur) -> None:
    k1, k2 = svc.actor("kasubag"), svc.actor("kasubag2")
    svc.start("pengajuan", unit="iv-jurai")
    [task] = svc.tasks_for(k1)
    assert [t.id for t in svc.tasks_for(k2)] == [task.id]
    svc.claim(task.id, k1)
    assert svc.tasks_for(k2) == []
    with pytest.raises(PermissionDenied):
        svc.claim(task.id, k2)
    with pytest.raises(PermissionDenied):
        svc.complete(task.id, k2, {"judul": "Laporan"})
    svc.unclaim(task.id, k1)
    assert [t.id for t in svc.tasks_for(k2)] == [task.id]


def test_deploying_a_changed_file_bumps_the_version_and_running_instances_stay(svc: Alur) -> None:
    kasubag = svc.actor("kasubag")
    first = svc.start("pengajuan", unit="iv-jurai")
    same = svc.deploy(service_files())
    assert not same.changed and same.deployment_id is None
    assert [(d.key, d.version, d.is_new) for d in same.definitions] == [("pengajuan", 1, False)]

    files = service_files()
    files["pengajuan.bpmn"] = files["pengajuan.bpmn"].replace(b'name="Menyusun laporan"', b'name="Menyusun laporan v2"')
    changed = svc.deploy(files)
    assert [(d.key, d.version, d.is_new) for d in changed.definitions] == [("pengajuan", 2, True)]
    assert all(not f.is_new for f in changed.forms)  # forms unchanged: no new form versions

    second = svc.start("pengajuan", unit="iv-jurai")
    assert first.definition_id.startswith("pengajuan:1:") and second.definition_id.startswith("pengajuan:2:")
    names = {t.instance_id: t.name for t in svc.tasks_for(kasubag)}
    assert names == {first.id: "Menyusun laporan", second.id: "Menyusun laporan v2"}


BAD = b"""<?xml version="1.0"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="t" name="No lane">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="sc" scriptFormat="python"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&x;" isExecutable="true"/>
</bpmn:definitions>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="p" name="&lol3;" isExecutable="true"/>
</bpmn:definitions>"""


def test_a_bad_deployment_reports_every_problem_and_stores_nothing(svc: Alur, db: Database) -> None:
    before = counts(db)
    files = service_files() | {"bad.bpmn": BAD, "notes.txt": b"hello"}
    with pytest.raises(DeployError) as err:
        svc.deploy(files)
    problems = err.value.problems
    assert {p.file for p in problems} >= {"bad.bpmn", "notes.txt"}
    by_element = {p.element_id for p in problems if p.file == "bad.bpmn"}
    assert {"t", "sc"} <= by_element  # user task without lane; script task refused (and unreachable)
    assert all(p.line for p in problems if p.file == "bad.bpmn" and p.element_id in {"t", "sc"})
    assert counts(db) == before  # the good files in the same deployment were not stored either


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe-local-file", "billion-laughs"])
def test_entity_attacks_are_refused_and_nothing_is_deployed(svc: Alur, db: Database, payload: bytes) -> None:
    before = counts(db)
    with pytest.raises(DeployError) as err:
        svc.deploy({"attack.bpmn": payload})
    assert "root:" not in str(err.value) and "lollollol" not in str(err.value)
    assert "DOCTYPE" in str(err.value)
    assert counts(db) == before


def test_double_completion_race_exactly_one_wins(svc: Alur, db: Database) -> None:
    kasubag = svc.actor("kasubag")
    for _ in range(3):  # a few rounds: the race window differs each time
        inst = svc.start("pengajuan", unit="iv-jurai")
        task = next(t for t in svc.tasks_for(kasubag) if t.instance_id == inst.id)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def attempt(judul: str, task_id: str = task.id, barrier: threading.Barrier = barrier,
                    outcomes: list[str] = outcomes) -> None:
            barrier.wait()
            try:
                svc.complete(task_id, kasubag, {"judul": judul})
                outcomes.append("won")
            except ConflictError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=attempt, args=(f"Laporan {i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["conflict", "won"]
        view = svc.instance(inst.id)
        assert [t.element_id for t in view.tasks] == ["Step_1", "Step_2"]  # one next step, not two
        assert [a.action for a in view.audit].count("complete") == 1
        assert view.version == 2


def test_state_survives_a_new_process(svc: Alur, db: Database, clock: FakeClock) -> None:
    kasubag = svc.actor("kasubag")
    inst = svc.start("pengajuan", unit="iv-jurai")
    svc.complete(svc.tasks_for(kasubag)[0].id, kasubag, {"judul": "Laporan"})
    script = f"""
import json
from datetime import datetime
from engine.db import Database
from engine import service as service_module
from engine.service import Alur
svc = Alur(Database({db.url!r}), clock=lambda: datetime.fromisoformat({clock.now.isoformat()!r}))
camat = svc.actor("camat")
[task] = svc.tasks_for(camat)
view = svc.complete(task.id, camat, {{"keputusan": "ya"}})
print(json.dumps({{"status": view.status, "instance": view.id}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"status": "running", "instance": inst.id}
    [archive] = svc.tasks_for(kasubag)
    assert archive.element_id == "Step_3"  # this process continues where the other one left off
    svc.complete(archive.id, kasubag, {"nomor_arsip": "A-9"})
    assert svc.instance(inst.id).status == "completed"


def test_nested_start_data_is_not_corrupted_by_later_steps(svc: Alur) -> None:
    kasubag, camat = svc.actor("kasubag"), svc.actor("camat")
    payload = {"surat": {"nomor": "005/12", "lampiran": [{"nama": "a.pdf"}]}}
    inst = svc.start("pengajuan", unit="iv-jurai", variables=payload)
    svc.complete(svc.tasks_for(kasubag)[0].id, kasubag, {"judul": "Laporan"})
    svc.complete(svc.tasks_for(camat)[0].id, camat, {"keputusan": "ya"})
    view = svc.instance(inst.id)
    assert view.data["surat"] == payload["surat"]
    step1 = view.tasks[0]
    assert step1.form_data == {"judul": "Laporan", "jumlah": None, "catatan": None}


def test_unknown_process_and_unit_are_clear_errors(svc: Alur) -> None:
    with pytest.raises(NotFound, match="deploy it first"):
        svc.start("tidak-ada", unit="iv-jurai")
    with pytest.raises(NotFound, match="unit"):
        svc.start("pengajuan", unit="tidak-ada")
    with pytest.raises(PermissionDenied):
        svc.start("pengajuan", unit="iv-jurai", actor=svc.actor("camat-wangon"))


def test_candidate_groups_users_and_assignee_override_the_lane(svc: Alur, db: Database) -> None:
    svc.deploy({"kandidat.bpmn": (DATA / "candidates" / "kandidat.bpmn").read_bytes()})
    with db.write() as s:
        accounts.add_user(s, "sekretaris", "rahasia-123")
        accounts.grant(s, "sekretaris", "Sekretaris", "iv-jurai")
        accounts.add_user(s, "siti", "rahasia-123")
        accounts.grant(s, "siti", "Staf", "iv-jurai")
    kasubag, camat, sekretaris, siti = (svc.actor(u) for u in ("kasubag", "camat", "sekretaris", "siti"))
    inst = svc.start("kandidat", unit="iv-jurai", variables={"penanggung_jawab": "kasubag2"})

    def mine(actor):  # type: ignore[no-untyped-def]
        return [t.element_id for t in svc.tasks_for(actor) if t.instance_id == inst.id]

    # candidateGroups replace the lane: the lane's Kasubag no longer sees it, both groups do.
    assert mine(kasubag) == [] and mine(camat) == ["Step_groups"] and mine(sekretaris) == ["Step_groups"]
    with pytest.raises(PermissionDenied):
        svc.complete(svc.tasks_for(camat)[0].id, kasubag, {})
    view = svc.complete(svc.tasks_for(sekretaris)[0].id, sekretaris, {})

    # candidateUsers: only siti, though the lane is Kasubag.
    assert mine(siti) == ["Step_user"] and mine(kasubag) == [] and mine(camat) == []
    svc.complete(view.ready_task_ids[0] if view.ready_task_ids else mine(siti)[0], siti, {})

    # camunda:assignee="${penanggung_jawab}" evaluated on the task's data: assigned, not claimable.
    [task] = [t for t in svc.tasks_for(svc.actor("kasubag2")) if t.instance_id == inst.id]
    assert task.element_id == "Step_assignee" and task.assignee == "kasubag2"
    assert mine(kasubag) == []
    with pytest.raises(PermissionDenied):
        svc.complete(task.id, kasubag, {})
    svc.complete(task.id, svc.actor("kasubag2"), {})
    assert svc.instance(inst.id).status == "completed"


def test_a_condition_on_a_missing_variable_is_a_clear_refusal(svc: Alur, db: Database) -> None:
    svc.deploy({"gerbang.bpmn": (DATA / "candidates" / "gerbang.bpmn").read_bytes()})
    kasubag = svc.actor("kasubag")
    inst = svc.start("gerbang", unit="iv-jurai")
    [task] = [t for t in svc.tasks_for(kasubag) if t.instance_id == inst.id]
    before = counts(db)
    with pytest.raises(ProcessError, match="nilai"):
        svc.complete(task.id, kasubag, {})
    assert counts(db) == before and svc.task(task.id, kasubag).state == "READY"
    assert svc.complete(task.id, kasubag, {"nilai": 7}).status == "completed"


@pytest.mark.parametrize("tag", ["serviceTask", "sendTask", "receiveTask", "businessRuleTask"])
def test_tasks_alur_cannot_run_are_refused_at_deploy(svc: Alur, db: Database, tag: str) -> None:
    xml = (SERVICE_DATA / "pengajuan.bpmn").read_text().replace('id="pengajuan"', 'id="otomatis"')
    xml = xml.replace('<bpmn:userTask id="Step_3"', f'<bpmn:{tag} id="Step_3" camunda:class="x.Y"')
    xml = xml.replace("</bpmn:userTask>\n    <bpmn:endEvent", f"</bpmn:{tag}>\n    <bpmn:endEvent")
    before = counts(db)
    with pytest.raises(DeployError) as err:
        svc.deploy({"otomatis.bpmn": xml.encode()})
    assert any(p.element_id == "Step_3" and "not supported" in p.message for p in err.value.problems)
    assert counts(db) == before


def test_a_newer_latest_form_is_used_at_once_here_and_soon_by_other_processes(
        svc: Alur, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Form references are resolved once per process and remembered (engine/service.py `_resolve_form_ref`):
    a "latest" reference for FORM_REF_SECONDS at most, and the deploying process forgets at once."""
    kasubag = svc.actor("kasubag")
    other = Alur(db, clock=clock)  # a second web process on the same database
    svc.start("pengajuan", unit="iv-jurai")
    [task] = svc.tasks_for(kasubag)
    assert [f.key for f in other.task_form(task.id, kasubag).fields] == ["judul", "jumlah", "catatan"]

    form = json.loads((SERVICE_DATA / "laporan.form").read_text())
    form["components"].append({"type": "textfield", "key": "nomor", "label": "Nomor"})
    svc.deploy({"laporan.form": json.dumps(form).encode()})  # a form alone: the process still says "latest"
    assert [f.key for f in svc.task_form(task.id, kasubag).fields][-1] == "nomor"
    assert [f.key for f in other.task_form(task.id, kasubag).fields][-1] == "catatan"  # remembered…
    later = service_module.time.monotonic() + service_module.FORM_REF_SECONDS + 1
    monkeypatch.setattr(service_module.time, "monotonic", lambda: later)  # …for at most FORM_REF_SECONDS
    assert [f.key for f in other.task_form(task.id, kasubag).fields][-1] == "nomor"
