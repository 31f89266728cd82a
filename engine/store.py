"""Instance persistence: state without the spec, an optimistic version check, and the task projection.

Every change to an instance goes through `save_instance` inside the caller's write transaction, so the
state, the `task` rows and the audit trail either all change or none do.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task as SpiffTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, literal_column, select, union_all, update
from sqlalchemy.orm import Session

from engine import serializer
from engine.deadlines import Calendar, resolve_moment
from engine.errors import ConflictError, NotFound, ProcessError
from engine.history import is_finished
from engine.models import AuditEvent, ProcessDefinition, ProcessInstance, Task, TaskCandidate
from engine.timers import next_timer_due

# Hot-path statements are built once and run on the session's connection: building SQLAlchemy statements and
# going through the ORM layer cost more than the database work itself (see docs/benchmarks.md).
T = Task.__table__
INSTANCE = ProcessInstance.__table__
# Only the rows sync_tasks can change: the open ones and those of the human tasks the (pruned) workflow still
# holds. Never all rows of the instance: a loop's history grows by a row per round.
# Two indexed lookups (ix_task_instance_ready, the primary key), never a scan of the instance's rows.
_EXISTING_TASKS = union_all(
    select(T.c.id, T.c.state, T.c.created_at, T.c.due_at).where(
        T.c.instance_id == bindparam("iid"), T.c.state == literal_column("'READY'")),
    select(T.c.id, T.c.state, T.c.created_at, T.c.due_at).where(
        T.c.id.in_(bindparam("ids", expanding=True)), T.c.instance_id == bindparam("iid")))
_FINISH_TASK = T.update().where(T.c.id == bindparam("tid")).values(
    state=bindparam("state"), completed_at=bindparam("completed_at"))
_COMPLETE_TASK = T.update().where(T.c.id == bindparam("tid")).values(
    state=bindparam("state"), completed_at=bindparam("completed_at"), completed_by=bindparam("completed_by"),
    working_minutes=bindparam("working_minutes"), late_minutes=bindparam("late_minutes"))
# A user's completion applies only to the row as the completer's checks saw it: still READY, with the same
# assignee. On PostgreSQL a claim committed after that read would otherwise be overwritten (assignee A,
# completed by B); this UPDATE waits for the claim's row lock and then matches nothing.
_COMPLETE_TASK_WITH_DATA = _COMPLETE_TASK.where(
    T.c.state == "READY", T.c.assignee.is_not_distinct_from(bindparam("expected_assignee"))).values(
    form_data=bindparam("form_data"), late_reason=bindparam("late_reason"))
_SAVE_INSTANCE = INSTANCE.update().where(
    INSTANCE.c.id == bindparam("iid"), INSTANCE.c.version == bindparam("expected")).values(
    state=bindparam("state"), version=bindparam("new_version"), status=bindparam("status"),
    next_due_at=bindparam("next_due_at"), ended_at=bindparam("ended_at"))
_AUDIT = AuditEvent.__table__.insert()

PROJECTED_STATES = {TaskState.READY: "READY", TaskState.COMPLETED: "COMPLETED",
                    TaskState.CANCELLED: "CANCELLED", TaskState.ERROR: "ERROR"}


@dataclass(frozen=True)
class LoadedDefinition:
    id: str
    key: str
    name: str
    deployment_id: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    info: dict[str, Any]


class SpecCache:
    """Parsed specs per definition id. Definitions never change once deployed, so entries never go stale."""

    def __init__(self, size: int = 256):
        self._size = size
        self._items: OrderedDict[str, LoadedDefinition] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, definition_id: str) -> LoadedDefinition:
        with self._lock:
            hit = self._items.get(definition_id)
            if hit is not None:
                self._items.move_to_end(definition_id)
                return hit
        row = session.execute(select(
            ProcessDefinition.key, ProcessDefinition.name, ProcessDefinition.deployment_id,
            ProcessDefinition.spec_json, ProcessDefinition.info,
        ).where(ProcessDefinition.id == definition_id)).one_or_none()
        if row is None:
            raise NotFound(f"process definition {definition_id!r} does not exist")
        spec, subprocess_specs = serializer.spec_from_json(row.spec_json)
        loaded = LoadedDefinition(definition_id, row.key, row.name, row.deployment_id, spec,
                                  subprocess_specs, row.info)
        with self._lock:
            self._items[definition_id] = loaded
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return loaded


def human_tasks(workflow: BpmnWorkflow) -> Iterator[SpiffTask]:
    """User and manual tasks in states worth projecting, across the workflow and its subprocesses."""
    for wf in (workflow, *workflow.subprocesses.values()):
        for task in wf.tasks.values():
            if getattr(task.task_spec, "manual", False) and task.state in PROJECTED_STATES:
                yield task


def task_extensions(task: SpiffTask) -> dict[str, Any]:
    ext = getattr(task.task_spec, "extensions", None)
    return ext if isinstance(ext, dict) else {}


def _candidates(task: SpiffTask) -> tuple[str | None, list[str], list[str]]:
    """(candidate role, other candidate roles, candidate users). Any of camunda:candidateGroups,
    candidateUsers or assignee overrides the lane (DESIGN §5): the lane is only the default."""
    ext = task_extensions(task)
    groups = [g for g in ext.get("candidateGroups") or [] if g]
    users = [u for u in ext.get("candidateUsers") or [] if u]
    if groups:
        return groups[0], groups[1:], users
    if users or ext.get("assignee"):
        return None, [], users
    return getattr(task.task_spec, "lane", None), [], users


def _static_assignee(task: SpiffTask) -> str | None:
    text = task_extensions(task).get("assignee")
    if not text:
        return None
    if text.strip().startswith(("${", "#{")):
        from engine.expressions import ExpressionError, evaluate

        try:
            value = evaluate(text, task.data)
        except ExpressionError:
            return None
        return value if isinstance(value, str) and value else None
    return text.strip()


def _deadline(task: SpiffTask, name: str, now: datetime, calendar: Calendar) -> datetime | None:
    """The task's camunda:dueDate / followUpDate as a moment; a value that gives none refuses the step (the
    caller's transaction is rolled back), naming the step, the attribute and why."""
    text = task_extensions(task).get(name)
    try:
        return resolve_moment(text, now, calendar, task.data)
    except (ValueError, OverflowError) as exc:
        step = task.task_spec.bpmn_name or task.task_spec.bpmn_id
        raise ProcessError(f"step {step!r}: camunda:{name} {text!r} gives no usable moment: {exc}") from exc


def reminder_moment(created: datetime, due: datetime | None, calendar: Calendar) -> datetime | None:
    """When to remind about a step with a deadline but no followUpDate: after a share (ALUR_REMINDER_SHARE,
    default 0.75) of its standard time, counted in working time like the deadline itself."""
    if due is None or due <= created:
        return due
    share = min(max(float(os.environ.get("ALUR_REMINDER_SHARE", "0.75")), 0.0), 1.0)
    between = getattr(calendar, "working_time_between", None)
    if between is None:  # a calendar without working time: plain clock time
        return created + (due - created) * share
    return min(calendar.add(created, between(created, due) * share), due)  # type: ignore[arg-type]


@dataclass
class InstanceRef:
    id: str
    definition_id: str
    process_key: str
    unit_id: int


def sync_tasks(session: Session, ref: InstanceRef, workflow: BpmnWorkflow, *, now: datetime,
               calendar: Calendar, actor: str | None, completed: Mapping[str, dict[str, Any]] | None = None,
               late_reasons: Mapping[str, str] | None = None,
               assignees: Mapping[str, str | None] | None = None) -> list[str]:
    """Bring the `task` rows of one instance in line with its workflow. Returns ids of tasks that became
    READY in this transaction. Claims (assignee) are kept: they live in the projection only.

    `completed` tasks are written only if their row is still READY with the assignee in `assignees` (the
    one the caller checked; None = unclaimed), else ConflictError and the caller's transaction rolls back."""
    completed = completed or {}
    late_reasons = late_reasons or {}
    conn = session.connection()
    present = list(human_tasks(workflow))
    existing = {row.id: (row.state, row.created_at, row.due_at)
                for row in conn.execute(_EXISTING_TASKS, {"iid": ref.id, "ids": [str(t.id) for t in present]})}
    new_rows: list[dict[str, Any]] = []
    new_candidates: list[dict[str, Any]] = []
    seen: set[str] = set()
    for task in present:
        task_id = str(task.id)
        seen.add(task_id)
        state = PROJECTED_STATES[task.state]
        old_state, created_at, due_at = existing.get(task_id, (None, now, None))
        if old_state == state:
            continue
        finished = state in ("COMPLETED", "CANCELLED", "ERROR")
        if old_state is None:
            role, other_roles, users = _candidates(task)
            new_rows.append({
                "id": task_id, "instance_id": ref.id, "definition_id": ref.definition_id,
                "process_key": ref.process_key, "unit_id": ref.unit_id,
                "element_id": task.task_spec.bpmn_id,
                "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                "lane": getattr(task.task_spec, "lane", None), "candidate_role": role,
                "assignee": _static_assignee(task), "state": state, "created_at": now,
                "due_at": (due := _deadline(task, "dueDate", now, calendar)),
                "follow_up_at": _deadline(task, "followUpDate", now, calendar) or reminder_moment(now, due, calendar),
                "completed_at": now if finished else None,
                "completed_by": actor if state == "COMPLETED" else None,
                "form_data": completed.get(task_id), "late_reason": late_reasons.get(task_id),
            })
            new_candidates += [{"task_id": task_id, "role": r, "username": None} for r in other_roles]
            new_candidates += [{"task_id": task_id, "role": None, "username": u} for u in users]
        elif state == "COMPLETED":
            # The numbers the SOP performance report is made of, in working time of the unit.
            params = {"tid": task_id, "state": state, "completed_at": now, "completed_by": actor,
                      "working_minutes": calendar.working_minutes_between(created_at, now),
                      "late_minutes": calendar.working_minutes_between(due_at, now) if due_at else None}
            if task_id in completed:
                params |= {"form_data": completed[task_id], "late_reason": late_reasons.get(task_id),
                           "expected_assignee": (assignees or {}).get(task_id)}
                if conn.execute(_COMPLETE_TASK_WITH_DATA, params).rowcount != 1:
                    raise ConflictError(f"task {task_id} was claimed or completed by someone else at the same "
                                        f"time; reload and try again")
            else:
                conn.execute(_COMPLETE_TASK, params)
        else:
            conn.execute(_FINISH_TASK, {"tid": task_id, "state": state, "completed_at": now if finished else None})
    # A READY row whose task vanished from the workflow (cancelled with its scope) is closed, not orphaned.
    gone = [tid for tid, (st, _, _) in existing.items() if st == "READY" and tid not in seen]
    if gone:
        conn.execute(update(T).where(T.c.id.in_(gone)).values(state="CANCELLED", completed_at=now))
    if new_rows:
        conn.execute(T.insert(), new_rows)
    if new_candidates:
        conn.execute(TaskCandidate.__table__.insert(), new_candidates)
    return [r["id"] for r in new_rows if r["state"] == "READY"]


def instance_status(workflow: BpmnWorkflow) -> str:
    return "completed" if is_finished(workflow) else "running"


def save_instance(session: Session, ref: InstanceRef, workflow: BpmnWorkflow, *, expected_version: int,
                  now: datetime, status: str | None = None) -> int:
    """Write the state if nobody else wrote since we read `expected_version`; return the new version."""
    status = status or instance_status(workflow)
    result = session.connection().execute(_SAVE_INSTANCE, {
        "iid": ref.id, "expected": expected_version, "new_version": expected_version + 1,
        "state": serializer.instance_to_json(workflow), "status": status,
        "next_due_at": next_timer_due(workflow) if status == "running" else None,
        "ended_at": now if status in ("completed", "cancelled") else None,
    })
    if result.rowcount != 1:
        raise ConflictError("the instance was changed by someone else at the same time; reload and try again")
    return expected_version + 1


def audit(session: Session, *, at: datetime, actor: str | None, action: str, instance_id: str | None = None,
          task_id: str | None = None, data: dict[str, Any] | None = None) -> None:
    session.connection().execute(_AUDIT, {"at": at, "actor": actor, "action": action, "instance_id": instance_id,
                                          "task_id": task_id, "data": data})


def change_instance_status(session: Session, instance_id: str, *, from_states: tuple[str, ...], to: str,
                           now: datetime, actor: str, action: str, reason: str | None) -> str | None:
    """Move an instance between running / suspended / cancelled, if it is in one of `from_states`; a cancel
    also closes its open steps. Audited. Returns the status it had, or None if it was in none of them (the
    caller says why). Rights are the caller's business: REST and the supervisor pages grant this differently."""
    before = session.scalar(select(ProcessInstance.status).where(ProcessInstance.id == instance_id))
    values: dict[str, Any] = {"status": to, "version": ProcessInstance.version + 1}
    if to == "cancelled":
        values |= {"ended_at": now, "next_due_at": None}
    done = session.execute(update(ProcessInstance).where(
        ProcessInstance.id == instance_id, ProcessInstance.status.in_(from_states)).values(**values)).rowcount
    if done != 1:
        return None
    if to == "cancelled":
        session.execute(update(Task).where(Task.instance_id == instance_id, Task.state == "READY")
                        .values(state="CANCELLED", completed_at=now))
    audit(session, at=now, actor=actor, action=action, instance_id=instance_id,
          data={"from": before, "to": to, "reason": reason})
    return before
