"""`alur check`: does every instance's stored state agree with everything derived from it?

For each instance (read in batches by id, each batch in one snapshot) the checker loads the stored state
against its definition's spec and compares it with what `engine/store.py` derives from it in the same
transaction that writes it:

- `unreadable`: the spec or the state does not deserialise;
- `missing_task_row`: a user task READY in the workflow has no READY row in `task` (or any projected task,
  READY/COMPLETED/CANCELLED/ERROR, has no row at all);
- `stale_ready_row`: a READY row for a task the workflow no longer has READY (or does not have);
- `task_state_mismatch`: a finished row (COMPLETED/CANCELLED/ERROR) whose workflow task is in another state,
  or whose element id differs from the workflow task's;
- `status_mismatch`: status "completed" without a completed workflow or the reverse, an unknown status,
  `ended_at` set on an open instance or missing on an ended one;
- `next_due_mismatch`: `next_due_at` differs from the workflow's earliest waiting timer (an instance put back
  after a failed timer, audited as `timer_error` with that `retry_at`, is fine), or is set on an ended one;
- `timer_fired_twice`: two `timer` audit events of one instance fired the same due moment (every firing
  records the `next_due_at` it consumed, and a committed firing moves `next_due_at` on);
- `reminder_sent_twice` / `escalation_sent_twice`: two reminder/escalation events for one task;
- `completed_with_open_task`: status "completed" while a task of the stored state is unfinished or a task row
  is READY (what SpiffWorkflow's depth-limited walk made of long loops before engine/history.py; `alur repair`);
- `deep_state`: a task tree deeper than SpiffWorkflow's iterator limit (tasks below it are invisible to it);
- `unpruned_history`: an open instance whose stored state holds more than UNPRUNED_LIMIT finished tasks the
  engine no longer needs (a state written before history pruning; `alur repair` prunes it);
- `bad_version`: a version below 1, or below the number of audited state changes (start, complete, timer,
  cancel, suspend, resume: each one increments the version in its own transaction).

Rows a workflow no longer holds but that are already finished (COMPLETED/CANCELLED) are history, not a
problem. Claims (`task.assignee`) live in the projection only and are not compared.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import history, serializer
from engine.db import Database
from engine.expressions import SafeScriptEngine
from engine.models import AuditEvent, ProcessInstance, Task
from engine.store import PROJECTED_STATES, SpecCache, human_tasks
from engine.timers import next_timer_due

KINDS = ("unreadable", "missing_task_row", "stale_ready_row", "task_state_mismatch", "status_mismatch",
         "completed_with_open_task", "deep_state", "unpruned_history",
         "next_due_mismatch", "timer_fired_twice", "reminder_sent_twice", "escalation_sent_twice", "bad_version")
# Finished tasks a stored state may hold beyond what pruning keeps: one transaction adds a handful.
UNPRUNED_LIMIT = 200
STATUSES = ("running", "suspended", "completed", "cancelled")
ENDED = ("completed", "cancelled")
# Audited actions that each increment process_instance.version exactly once.
VERSIONED_ACTIONS = ("start", "complete", "timer", "cancel", "suspend", "resume")
FINISHED_ROW_STATES = ("COMPLETED", "CANCELLED", "ERROR")
DEFAULT_BATCH = 200

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CheckProblem:
    instance_id: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.instance_id}  {self.kind}  {self.detail}"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else "none"


class Checker:
    """Streams problems; `checked` counts the instances looked at so far."""

    def __init__(self, db: Database, *, batch_size: int = DEFAULT_BATCH, progress: Progress | None = None):
        self.db = db
        self.batch_size = max(1, batch_size)
        self.progress = progress
        self.checked = 0
        self.specs = SpecCache()
        self._engine = SafeScriptEngine()  # nothing runs: deserialising needs an engine object only

    def count(self, instance_id: str | None = None) -> int:
        with self.db.read() as s:
            q = select(func.count()).select_from(ProcessInstance)
            if instance_id is not None:
                q = q.where(ProcessInstance.id == instance_id)
            return s.scalar(q) or 0

    def problems(self, instance_id: str | None = None) -> Iterator[CheckProblem]:
        total = self.count(instance_id)
        last: str | None = None
        while True:
            with _snapshot(self.db) as s:
                q = select(ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.status,
                           ProcessInstance.state, ProcessInstance.next_due_at, ProcessInstance.ended_at,
                           ProcessInstance.version).order_by(ProcessInstance.id).limit(self.batch_size)
                if instance_id is not None:
                    q = q.where(ProcessInstance.id == instance_id)
                if last is not None:
                    q = q.where(ProcessInstance.id > last)
                rows = s.execute(q).all()
                if not rows:
                    return
                found = self._check_batch(s, rows)
            yield from found
            self.checked += len(rows)
            last = rows[-1].id
            if self.progress is not None:
                self.progress(self.checked, total)
            if len(rows) < self.batch_size:
                return

    # -------------------------------------------------------------------------------- one batch

    def _check_batch(self, s: Session, rows: Sequence[Any]) -> list[CheckProblem]:
        ids = [r.id for r in rows]
        tasks: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
        for t in s.execute(select(Task.instance_id, Task.id, Task.state, Task.element_id)
                           .where(Task.instance_id.in_(ids))):
            tasks[t.instance_id][t.id] = (t.state, t.element_id)
        changes: Counter[str] = Counter()
        for iid, n in s.execute(select(AuditEvent.instance_id, func.count())
                                .where(AuditEvent.instance_id.in_(ids), AuditEvent.action.in_(VERSIONED_ACTIONS))
                                .group_by(AuditEvent.instance_id)):
            changes[iid] = n
        fired: dict[str, Counter[str]] = defaultdict(Counter)
        retries: dict[str, set[str]] = defaultdict(set)
        for a in s.execute(select(AuditEvent.instance_id, AuditEvent.action, AuditEvent.data)
                           .where(AuditEvent.instance_id.in_(ids), AuditEvent.action.in_(("timer", "timer_error")))):
            data = a.data if isinstance(a.data, dict) else {}
            if a.action == "timer" and data.get("due_at"):
                fired[a.instance_id][_normal_iso(data["due_at"])] += 1
            elif a.action == "timer_error" and data.get("retry_at"):
                retries[a.instance_id].add(_normal_iso(data["retry_at"]))
        repeated: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        for iid, tid, action, n in s.execute(
                select(AuditEvent.instance_id, AuditEvent.task_id, AuditEvent.action, func.count())
                .where(AuditEvent.instance_id.in_(ids), AuditEvent.action.in_(("reminder", "escalation")))
                .group_by(AuditEvent.instance_id, AuditEvent.task_id, AuditEvent.action)
                .having(func.count() > 1)):
            repeated[iid].append((tid, action, n))

        found: list[CheckProblem] = []
        for r in rows:
            def problem(kind: str, detail: str, iid: str = r.id) -> None:
                found.append(CheckProblem(iid, kind, detail))

            for due, n in sorted(fired[r.id].items()):
                if n > 1:
                    problem("timer_fired_twice", f"the timer due {due} fired {n} times")
            for tid, action, n in sorted(repeated[r.id]):
                problem(f"{action}_sent_twice", f"task {tid}: {n} {action} events")
            if r.version is None or r.version < 1:
                problem("bad_version", f"version {r.version}")
            elif changes[r.id] > r.version:
                problem("bad_version", f"version {r.version} but {changes[r.id]} audited state changes")
            if r.status not in STATUSES:
                problem("status_mismatch", f"unknown status {r.status!r}")
            if r.status in ENDED and r.ended_at is None:
                problem("status_mismatch", f"{r.status} without ended_at")
            if r.status not in ENDED and r.ended_at is not None:
                problem("status_mismatch", f"{r.status} but ended_at is {_iso(r.ended_at)}")
            self._check_state(s, r, tasks[r.id], retries[r.id], problem)
        return found

    def _check_state(self, s: Session, r: Any, rows: dict[str, tuple[str, str]], retries: set[str],
                     problem: Callable[[str, str], None]) -> None:
        try:
            loaded = self.specs.get(s, r.definition_id)
        except Exception as exc:
            problem("unreadable", f"definition {r.definition_id}: {type(exc).__name__}: {exc}"[:500])
            return
        try:
            workflow = serializer.instance_from_json(r.state, loaded.spec, loaded.subprocess_specs, self._engine,
                                                     prune=False)
            open_tasks = sorted({t.task_spec.bpmn_id or t.task_spec.name for t in history.open_tasks(workflow)
                                 if t.state & (TaskState.READY | TaskState.WAITING | TaskState.STARTED)})
            completed = history.is_finished(workflow)
            depth = history.max_depth(workflow)
            projected = {str(t.id): (PROJECTED_STATES[t.state], t.task_spec.bpmn_id) for t in human_tasks(workflow)}
            other_states = {str(t.id): TaskState.get_name(t.state) for wf in (workflow, *workflow.subprocesses.values())
                            for t in wf.tasks.values() if getattr(t.task_spec, "manual", False)}
            expected_due = None if completed else next_timer_due(workflow)
        except Exception as exc:
            problem("unreadable", f"{type(exc).__name__}: {exc}"[:500])
            return

        if completed and r.status != "completed":
            problem("status_mismatch", f"the workflow is completed but the status is {r.status}")
        ready_rows = sorted(e for st, e in rows.values() if st == "READY")
        if r.status == "completed" and (not completed or ready_rows):
            problem("completed_with_open_task", f"status completed but open in the state: {', '.join(open_tasks)}"
                    f"{'; READY rows: ' + ', '.join(ready_rows) if ready_rows else ''}"[:500])
        # An ended, finished instance is never walked again: its depth does not matter.
        if depth >= history.ITERATOR_DEPTH_LIMIT and (r.status not in ENDED or not completed):
            problem("deep_state", f"task tree {depth} levels deep; SpiffWorkflow sees "
                                  f"{history.ITERATOR_DEPTH_LIMIT} (alur repair prunes it)")
        elif r.status not in ENDED and (dropped := history.prune(workflow).removed_tasks) > UNPRUNED_LIMIT:
            problem("unpruned_history", f"{dropped} finished tasks kept in the state (alur repair prunes them)")

        cancelled = r.status == "cancelled"
        for tid, (wf_state, element) in sorted(projected.items()):
            # A cancelled instance's state is left as it was; its open steps' rows were closed instead.
            expected = "CANCELLED" if cancelled and wf_state == "READY" else wf_state
            row = rows.get(tid)
            if row is None:
                problem("missing_task_row", f"{wf_state} task {tid} ({element}) has no row")
            elif row[0] != expected:
                if expected == "READY":
                    problem("missing_task_row", f"READY task {tid} ({element}) has a {row[0]} row")
                elif row[0] == "READY":
                    problem("stale_ready_row", f"task {tid} ({row[1]}) is READY in the table but "
                                               f"{wf_state} in the workflow")
                else:
                    problem("task_state_mismatch", f"task {tid} ({element}) is {row[0]} in the table but "
                                                   f"{wf_state} in the workflow")
            elif row[1] != element:
                problem("task_state_mismatch", f"task {tid}: element {row[1]} in the table, {element} in the workflow")
        for tid, (row_state, element) in sorted(rows.items()):
            if tid in projected:
                continue
            if row_state == "READY":
                why = "not in the workflow" if tid not in other_states else f"{other_states[tid]} in the workflow"
                problem("stale_ready_row", f"task {tid} ({element}) is READY in the table but {why}")
            elif row_state in FINISHED_ROW_STATES and tid in other_states:
                problem("task_state_mismatch", f"task {tid} ({element}) is {row_state} in the table but "
                                               f"{other_states[tid]} in the workflow")
            elif row_state not in FINISHED_ROW_STATES:
                problem("task_state_mismatch", f"task {tid} ({element}) has an unknown state {row_state!r}")

        stored = r.next_due_at
        if r.status in ENDED:
            if stored is not None:
                problem("next_due_mismatch", f"{r.status} but next_due_at is {_iso(stored)}")
        elif stored != expected_due and not (stored is not None and _iso(stored) in retries):
            problem("next_due_mismatch", f"next_due_at is {_iso(stored)}, the workflow's next timer is "
                                         f"{_iso(expected_due)}")


def _normal_iso(text: Any) -> str:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


@contextmanager
def _snapshot(db: Database) -> Iterator[Session]:
    """A read-only transaction whose statements all see one snapshot. SQLite's deferred read transaction
    (WAL) already does; on PostgreSQL, READ COMMITTED (and autocommit reads) would not, so a check of a live
    system could report a task row written after its instance was read."""
    conn = db.engine.connect()
    if not db.is_sqlite:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    try:
        with conn.begin(), Session(conn, expire_on_commit=False) as session:
            yield session
    finally:
        conn.close()


def check_database(db: Database, *, instance_id: str | None = None, batch_size: int = DEFAULT_BATCH,
                   progress: Progress | None = None) -> list[CheckProblem]:
    """Every problem found (empty when consistent); `instance_id` checks that instance only."""
    return list(Checker(db, batch_size=batch_size, progress=progress).problems(instance_id))


# ------------------------------------------------------------------------------------------ command

PROGRESS_FROM = 1000  # instances: below this the check is quick and says nothing until the end


@click.command("check")
@click.option("--instance", "instance_id", help="Check this instance only.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=DEFAULT_BATCH, show_default=True,
              help="Instances read per transaction.")
@click.option("--progress/--no-progress", default=None,
              help=f"Progress on stderr (default: on from {PROGRESS_FROM} instances).")
def check(instance_id: str | None, batch_size: int, progress: bool | None) -> None:
    """Verify every instance against its stored state: task rows, status, next timer, timer firings.

    One line per problem (instance, kind, detail) and a summary; exit status 0 when consistent, 1 when not."""
    from engine.cli import _service

    service = _service()
    checker = Checker(service.db, batch_size=batch_size)
    total = checker.count(instance_id)
    if instance_id is not None and total == 0:
        raise click.BadParameter(f"no instance {instance_id!r}", param_hint="--instance")
    if progress or (progress is None and total >= PROGRESS_FROM):
        printed = [0]

        def report(done: int, of: int) -> None:
            # About one line per percent, and the last one.
            if done >= of or done - printed[0] >= max(batch_size, of // 100):
                printed[0] = done
                click.echo(f"checked {done}/{of} instances", err=True)

        checker.progress = report
    problems = 0
    instances: set[str] = set()
    for found in checker.problems(instance_id):
        problems += 1
        instances.add(found.instance_id)
        click.echo(str(found))
    if problems:
        click.echo(f"checked {checker.checked} instance(s): {problems} problem(s) in {len(instances)} instance(s)")
        sys.exit(1)
    click.echo(f"checked {checker.checked} instance(s): no problem found")
