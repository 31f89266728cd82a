"""The worker: fires due BPMN timers, reminds before deadlines, escalates after them, sends e-mail.

One round = fire due timers (engine/timer_fire.py), then reminders, then escalations, then the e-mail
outbox (engine/notify.py). Run it as `alur worker` (a loop until SIGTERM/SIGINT, or `--once` for cron and
tests), or inside `alur serve` through `start_background_worker`.

Exactly once with several workers: a reminder sets `task.reminded_at` with a conditional UPDATE
(`… WHERE reminded_at IS NULL`) in the same transaction as its notifications and audit event; a worker
whose UPDATE matched nothing sends nothing. `notification.dedupe_key` is unique as a second guard.
A deadline never completes or cancels a step: it only notifies.

Environment: ALUR_WORKER_INTERVAL (seconds between rounds, default 5), ALUR_REMINDER_SHARE (engine/store.py),
ALUR_SMTP_* (engine/notify.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import accounts, notify
from engine.models import ProcessDefinition, ProcessInstance, Task, Unit
from engine.service import Alur
from engine.store import audit

log = logging.getLogger("alur.worker")

# Small batches, short transactions: on SQLite the worker shares one write lock with the web requests.
TIMER_BATCH = 200
TASK_BATCH = 50


def default_interval() -> float:
    return float(os.environ.get("ALUR_WORKER_INTERVAL") or 5)


@dataclass
class RoundReport:
    fired: int = 0
    timer_errors: int = 0
    reminders: int = 0
    escalations: int = 0
    released: int = 0
    notifications: int = 0
    emailed: int = 0
    email_errors: int = 0
    errors: int = 0

    def __bool__(self) -> bool:
        return any(vars(self).values())

    def __str__(self) -> str:
        return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in vars(self).items() if v) or "nothing to do"


_TASK_COLUMNS = (Task.id, Task.instance_id, Task.unit_id, Task.name, Task.assignee, Task.candidate_role,
                 Task.due_at, Task.element_id, ProcessDefinition.name.label("process_name"),
                 ProcessDefinition.info, ProcessInstance.business_key, Unit.name.label("unit_name"),
                 Unit.timezone)


def _tasks_query() -> Any:
    return (select(*_TASK_COLUMNS)
            .join(ProcessInstance, ProcessInstance.id == Task.instance_id)
            .join(ProcessDefinition, ProcessDefinition.id == Task.definition_id)
            .join(Unit, Unit.id == Task.unit_id)
            # A suspended (or ended) instance is nobody's to chase; reminders resume with the instance.
            .where(ProcessInstance.status == "running"))


def _info(row: Any) -> notify.TaskInfo:
    return notify.TaskInfo(task_id=row.id, instance_id=row.instance_id, name=row.name,
                           process_name=row.process_name, unit_name=row.unit_name,
                           timezone=row.timezone or "Asia/Jakarta", due_at=row.due_at,
                           business_key=row.business_key, assignee=row.assignee,
                           candidate_role=row.candidate_role)


def _local_today(row: Any, now: datetime) -> Any:
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(row.timezone or "Asia/Jakarta")).date()


def send_reminders(service: Alur, now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """Remind the assignee or candidates of READY steps whose follow-up time has come. (tasks, notices)"""
    now = now or service.clock()
    done = notices = 0
    while done < limit:
        with service.db.write() as s:
            rows = s.execute(_tasks_query().where(
                Task.state == "READY", Task.follow_up_at <= now, Task.reminded_at.is_(None))
                .order_by(Task.follow_up_at).limit(min(TASK_BATCH, limit - done))
                .with_for_update(of=Task, skip_locked=True)).all()
            if not rows:
                break
            for row in rows:
                claimed = s.execute(update(Task).where(Task.id == row.id, Task.reminded_at.is_(None))
                                    .values(reminded_at=now)).rowcount  # type: ignore[attr-defined]
                if claimed != 1:
                    continue  # another worker reminded it
                done += 1
                if row.due_at is not None and row.due_at <= now:
                    # Already late (the worker was down): the escalation says it all; one message, not two.
                    audit(s, at=now, actor=None, action="reminder", instance_id=row.instance_id,
                          task_id=row.id, data={"skipped": "already past its deadline"})
                    continue
                users = notify.task_workers(s, row.id, row.unit_id, row.assignee, row.candidate_role,
                                            _local_today(row, now))
                info = _info(row)
                notices += notify.store(s, kind="reminder", usernames=users, message=notify.reminder_message(info),
                                        now=now, task_id=row.id, instance_id=row.instance_id,
                                        data={"task": info.to_json()})
                audit(s, at=now, actor=None, action="reminder", instance_id=row.instance_id, task_id=row.id,
                      data={"to": sorted(users), "due_at": row.due_at.isoformat() if row.due_at else None})
                if not users:
                    log.warning("reminder for task %s (%s): nobody holds role %r in its unit",
                                row.id, row.name, row.candidate_role)
    return done, notices


def send_escalations(service: Alur, now: datetime | None = None, limit: int = 1000) -> tuple[int, int]:
    """Tell the assignee/candidates and the unit's supervisor role about READY steps past their deadline."""
    now = now or service.clock()
    done = notices = 0
    while done < limit:
        with service.db.write() as s:
            rows = s.execute(_tasks_query().where(
                Task.state == "READY", Task.due_at <= now, Task.escalated_at.is_(None))
                .order_by(Task.due_at).limit(min(TASK_BATCH, limit - done))
                .with_for_update(of=Task, skip_locked=True)).all()
            if not rows:
                break
            for row in rows:
                claimed = s.execute(update(Task).where(Task.id == row.id, Task.escalated_at.is_(None))
                                    .values(escalated_at=now)).rowcount  # type: ignore[attr-defined]
                if claimed != 1:
                    continue
                done += 1
                notices += _escalate(s, row, now)
    return done, notices


def _escalate(s: Session, row: Any, now: datetime) -> int:
    today = _local_today(row, now)
    workers = notify.task_workers(s, row.id, row.unit_id, row.assignee, row.candidate_role, today)
    role = notify.supervisor_role(row.info)
    heads = notify.supervisors(s, row.unit_id, role, today)
    users = workers | heads
    info = _info(row)
    count = notify.store(s, kind="escalation", usernames=users, message=notify.escalation_message(info),
                         now=now, task_id=row.id, instance_id=row.instance_id, data={"task": info.to_json()})
    audit(s, at=now, actor=None, action="escalation", instance_id=row.instance_id, task_id=row.id,
          data={"to": sorted(users), "supervisor_role": role, "supervisors": sorted(heads),
                "due_at": row.due_at.isoformat()})
    if not heads:
        log.warning("escalation for task %s (%s): nobody holds the supervisor role %r", row.id, row.name, role)
    return count


def run_round(service: Alur, now: datetime | None = None, *, smtp: notify.SmtpSettings | None = None,
              timer_limit: int = 1000) -> RoundReport:
    """One round of everything; a failing part is logged and the others still run."""
    now = now or service.clock()
    report = RoundReport()
    try:
        fired = service.fire_due_timers(now, limit=timer_limit)
        report.fired, report.timer_errors = len(fired.fired), len(fired.failed)
    except Exception:
        log.exception("firing timers failed")
        report.errors += 1
    for name, step in (("reminders", send_reminders), ("escalations", send_escalations)):
        try:
            count, notices = step(service, now)
            setattr(report, name, count)
            report.notifications += notices
        except Exception:
            log.exception("%s failed", name)
            report.errors += 1
    try:  # claims held through a Plh/Plt that has ended go back to the pool
        with service.db.read() as s:
            claimants = accounts.ended_substitution_claimants(s, today=now.date())
        if claimants:
            with service.db.write() as s:
                report.released = len(accounts.release_after_substitutions(s, claimants, now=now))
    except Exception:
        log.exception("releasing claims after substitutions failed")
        report.errors += 1
    try:
        mail = notify.send_outbox(service.db, smtp, now)
        report.emailed, report.email_errors = mail.sent, mail.failed
    except Exception:
        log.exception("e-mail outbox failed")
        report.errors += 1
    return report


class BackgroundWorker(threading.Thread):
    """The worker loop in a daemon thread (for `alur serve`). `stop()` ends it after the current round."""

    def __init__(self, service: Alur, interval: float | None = None, *,
                 smtp: notify.SmtpSettings | None = None, timer_limit: int = TIMER_BATCH):
        super().__init__(name="alur-worker", daemon=True)
        self.service = service
        self.interval = default_interval() if interval is None else interval
        self.smtp = smtp if smtp is not None else notify.SmtpSettings.from_env()
        self.timer_limit = timer_limit
        self._stopping = threading.Event()
        self.rounds = 0

    def run(self) -> None:
        while not self._stopping.is_set():
            report = run_round(self.service, smtp=self.smtp, timer_limit=self.timer_limit)
            self.rounds += 1
            if report:
                log.info("worker round: %s", report)
            # A full batch of timers means more are due: go on at once instead of sleeping.
            if report.fired + report.timer_errors < self.timer_limit:
                self._stopping.wait(self.interval)

    def stop(self, timeout: float | None = 30) -> None:
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def start_background_worker(service: Alur, interval: float | None = None) -> BackgroundWorker:
    """Start the worker loop beside the web server; call `.stop()` on shutdown."""
    worker_thread = BackgroundWorker(service, interval)
    worker_thread.start()
    return worker_thread


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one round and exit (for cron and tests).")
@click.option("--interval", type=float, default=None,
              help="Seconds between rounds (default: $ALUR_WORKER_INTERVAL or 5).")
def worker(once: bool, interval: float | None) -> None:
    """Fire due timers, send reminders and escalations, e-mail notifications; until SIGTERM/SIGINT."""
    from engine.cli import _service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    service = _service()
    smtp = notify.SmtpSettings.from_env()
    if once:
        report = run_round(service, smtp=smtp)
        click.echo(f"worker round: {report}")
        return
    loop = BackgroundWorker(service, interval, smtp=smtp)

    def _stop(signum: int, _frame: Any) -> None:
        log.info("worker: %s received, stopping after this round", signal.Signals(signum).name)
        loop.stop(timeout=0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("worker started: every %.1f s, e-mail %s", loop.interval,
             f"via {smtp.host}:{smtp.port}" if smtp else "off (ALUR_SMTP_HOST unset)")
    loop.run()  # in this thread: signals interrupt the wait
    log.info("worker stopped after %d round(s)", loop.rounds)
