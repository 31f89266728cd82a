"""The worker: reminders and escalations exactly once, timers fired once by concurrent workers, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine import accounts
from engine.db import Database
from engine.models import AuditEvent, Notification, ProcessInstance, Task
from engine.service import Alur
from engine.worker import run_round, start_background_worker
from tests.conftest import PG_URL, FakeClock
from tests.test_timers_service import TIMERS_BPMN, wib


def setup_people(db: Database) -> None:
    with db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
        for name, role in [("kasubag", "Kasubag"), ("kasubag2", "Kasubag"), ("camat", "Camat"),
                           ("sekretaris", "Sekretaris"), ("staf", "Staf")]:
            accounts.add_user(s, name, "rahasia-123", email=f"{name}@example.test")
            accounts.grant(s, name, role, "iv-jurai")
        # Plh Kasubag for the week of the test; and one whose substitution is over.
        accounts.add_substitution(s, "staf", "Kasubag", "iv-jurai", date(2026, 11, 20), date(2026, 11, 27))
        accounts.add_user(s, "mantan", "rahasia-123")
        accounts.add_substitution(s, "mantan", "Kasubag", "iv-jurai", date(2026, 1, 1), date(2026, 1, 31))


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy({TIMERS_BPMN.name: TIMERS_BPMN.read_bytes()})
    setup_people(db)
    return service


def notifications(db: Database) -> list[tuple[str, str, str | None]]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(select(Notification.kind, Notification.username, Notification.task_id)
                                            .order_by(Notification.kind, Notification.username)).all()]


def actions(db: Database, action: str) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_reminder_then_escalation_each_once_even_when_the_worker_runs_twice(
        svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("tenggat", unit="iv-jurai", business_key="B-17")  # Mon 09:00 WIB, P2D → Tue 16:00
    [step] = inst.tasks
    assert step.due_at == wib(2026, 11, 24, 16, 0)
    assert step.follow_up_at == wib(2026, 11, 24, 11, 37, 30)  # 75 % of 13.5 working hours

    clock.now = wib(2026, 11, 24, 11, 37)
    assert not run_round(svc)
    clock.now = wib(2026, 11, 24, 11, 38)
    report = run_round(svc)
    assert (report.reminders, report.notifications, report.escalations) == (1, 3, 0)
    assert not run_round(svc)  # the second round finds nothing
    # Candidates: holders of Kasubag and today's Plh; not the one whose substitution ended.
    assert notifications(db) == [("reminder", u, step.id) for u in ("kasubag", "kasubag2", "staf")]
    with db.read() as s:
        message = s.scalar(select(Notification.message).where(Notification.username == "kasubag"))
    assert message == ("Pengingat: langkah 'Memverifikasi berkas' (SOP SOP Tenggat, Kecamatan IV Jurai, "
                       "no. B-17) jatuh tempo pada Selasa, 24 November 2026 pukul 16.00 WIB.")

    svc.claim(step.id, svc.actor("kasubag"))
    clock.now = wib(2026, 11, 24, 16, 0)
    report = run_round(svc)
    assert (report.reminders, report.escalations, report.notifications) == (0, 1, 2)
    assert not run_round(svc)
    # The assignee and the supervisor role (the top lane, Camat) — not every candidate any more.
    assert [n for n in notifications(db) if n[0] == "escalation"] == [
        ("escalation", "camat", step.id), ("escalation", "kasubag", step.id)]
    [event] = actions(db, "escalation")
    assert event.data["supervisor_role"] == "Camat" and event.data["to"] == ["camat", "kasubag"]
    assert len(actions(db, "reminder")) == 1
    with db.read() as s:
        row = s.get(Task, step.id)
        assert row is not None and row.state == "READY"  # a deadline never completes a step
        assert (row.reminded_at, row.escalated_at) == (wib(2026, 11, 24, 11, 38), wib(2026, 11, 24, 16, 0))


def test_supervisor_role_from_the_process_property_and_late_reminder_skipped(
        svc: Alur, db: Database, clock: FakeClock) -> None:
    inst = svc.start("eskalasi", unit="iv-jurai")  # PT1H step, alur.supervisorRole = Sekretaris
    clock.advance(hours=1, minutes=30)  # the worker was down past both the reminder and the deadline
    report = run_round(svc)
    assert (report.reminders, report.escalations) == (1, 1)
    assert notifications(db) == [("escalation", u, inst.tasks[0].id)
                                 for u in ("kasubag", "kasubag2", "sekretaris", "staf")]
    [reminder] = actions(db, "reminder")
    assert reminder.data == {"skipped": "already past its deadline"}


def test_rounds_in_parallel_threads_send_each_notification_once(
        svc: Alur, db: Database, clock: FakeClock) -> None:
    for _ in range(20):
        svc.start("dua_jam", unit="iv-jurai")
    clock.advance(hours=3)
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        run_round(Alur(db, clock=clock))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = Counter((kind, task) for kind, _, task in notifications(db))
    assert len(counted) == 20 and set(counted.values()) == {3}  # kasubag, kasubag2, staf (top lane = Kasubag)
    assert len(actions(db, "escalation")) == 20


def _fire_concurrently(db: Database, clock: FakeClock, workers: int) -> list[int]:
    fired = [0] * workers
    barrier = threading.Barrier(workers)

    def work(i: int) -> None:
        service = Alur(db, clock=clock)  # each worker its own service (spec and calendar caches)
        barrier.wait()
        while True:
            report = run_round(service, timer_limit=50)
            fired[i] += report.fired
            if not report:
                break

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return fired


def _check_fired_once(db: Database, ids: list[str]) -> None:
    with db.read() as s:
        timers = dict(s.execute(select(AuditEvent.instance_id, func.count()).where(
            AuditEvent.action == "timer").group_by(AuditEvent.instance_id)).all())
        escalations = dict(s.execute(select(Task.instance_id, func.count()).where(
            Task.element_id == "eskalasi_tindak").group_by(Task.instance_id)).all())
        still_due = s.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.next_due_at.is_not(None)))
        escalation_audits = s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "escalation"))
    assert {timers.get(i) for i in ids} == {1}
    assert {escalations.get(i) for i in ids} == {1}
    assert still_due == 0 and escalation_audits == len(ids)


def _start_many(svc: Alur, count: int) -> list[str]:
    return [svc.start("eskalasi", unit="iv-jurai").id for _ in range(count)]


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set ALUR_TEST_DATABASE_URL (CI does)")
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_two_workers_on_postgresql_fire_1000_due_timers_each_exactly_once(
        svc: Alur, db: Database, clock: FakeClock) -> None:
    ids = _start_many(svc, 1000)
    clock.advance(hours=3)
    fired = _fire_concurrently(db, clock, workers=2)
    assert sum(fired) == 1000, fired
    _check_fired_once(db, ids)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_two_workers_on_sqlite_fire_each_timer_once(svc: Alur, db: Database, clock: FakeClock) -> None:
    ids = _start_many(svc, 60)
    clock.advance(hours=3)
    fired = _fire_concurrently(db, clock, workers=2)
    assert sum(fired) == 60
    _check_fired_once(db, ids)


def test_background_worker_fires_and_stops(svc: Alur, clock: FakeClock) -> None:
    inst = svc.start("tunggu", unit="iv-jurai")
    clock.advance(hours=2)
    handle = start_background_worker(svc, interval=0.05)
    try:
        deadline = time.monotonic() + 20
        while svc.instance(inst.id).next_due_at is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        handle.stop()
    assert not handle.is_alive()
    assert [t.element_id for t in svc.instance(inst.id).tasks] == ["tunggu_kerja"]


def _started_in_the_past(db: Database) -> str:
    clock = FakeClock(datetime(2024, 3, 4, 2, 0, tzinfo=UTC))  # long ago: due now by the wall clock
    service = Alur(db, clock=clock)
    service.deploy({TIMERS_BPMN.name: TIMERS_BPMN.read_bytes()})
    setup_people(db)
    return service.start("tunggu", unit="iv-jurai").id


def test_cli_worker_once(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cli import main

    instance_id = _started_in_the_past(sqlite_db)
    monkeypatch.setenv("ALUR_DATABASE_URL", sqlite_db.url)
    monkeypatch.delenv("ALUR_SMTP_HOST", raising=False)
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "fired 1" in result.output
    result = CliRunner().invoke(main, ["worker", "--once"])
    assert result.output.strip() == "worker round: nothing to do"
    assert Alur(sqlite_db).instance(instance_id).tasks[0].element_id == "tunggu_kerja"


def test_cli_worker_loop_stops_cleanly_on_sigterm(sqlite_db: Database) -> None:
    instance_id = _started_in_the_past(sqlite_db)
    env = {**os.environ, "ALUR_DATABASE_URL": sqlite_db.url, "ALUR_WORKER_INTERVAL": "0.2"}
    env.pop("ALUR_SMTP_HOST", None)
    alur = str(Path(sys.executable).parent / "alur")
    proc = subprocess.Popen([alur, "worker"], env=env, cwd=Path(__file__).parent.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while Alur(sqlite_db).instance(instance_id).next_due_at is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "worker round: fired 1" in err
    assert "SIGTERM received" in err and "worker stopped after" in err
