"""Fire the BPMN timers that are due: boundary, intermediate catch and start timers of running instances.

Only due instances are touched: `process_instance.next_due_at` (indexed) holds the earliest waiting timer of
each instance, so the cost of a sweep depends on how many are due, not on how many wait.

Exactly once: each instance is fired in its own write transaction that locks its row (PostgreSQL:
`FOR UPDATE SKIP LOCKED`, so concurrent workers take different instances; SQLite: `BEGIN IMMEDIATE`, one
writer at a time), re-reads it, runs the engine, and saves state + task projection + audit together with
the optimistic version check. A crash before the commit leaves the instance due and untouched, so the
next sweep fires it; after the commit its `next_due_at` has moved on, so nobody fires it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.orm import Session

from engine import serializer
from engine.errors import ConflictError
from engine.expressions import SafeScriptEngine
from engine.history import is_finished
from engine.models import ProcessInstance
from engine.store import InstanceRef, audit, save_instance, sync_tasks
from engine.timers import next_timer_due

if TYPE_CHECKING:
    from engine.service import Alur

log = logging.getLogger(__name__)

# A failing instance is put back this far so one broken instance cannot keep a worker busy.
RETRY_AFTER = timedelta(minutes=5)
# A sweep goes over the due instances in passes, oldest due first, each instance at most once per pass, so
# one that stays due after firing cannot take the sweep from the others; at most this many passes.
# (A cycle timer that is behind fires once and moves past now: engine/timers.py.)
MAX_PASSES_PER_SWEEP = 10


@dataclass
class FireReport:
    fired: list[str] = field(default_factory=list)  # instance ids, once per transaction that fired
    failed: list[str] = field(default_factory=list)
    conflicts: int = 0

    def __bool__(self) -> bool:
        return bool(self.fired or self.failed or self.conflicts)


def fire_due_timers(service: Alur, now: datetime | None = None, limit: int = 1000) -> FireReport:
    """Fire up to `limit` due instances (one transaction each) and return what happened."""
    now = now or service.clock()
    report = FireReport()
    skip: set[str] = set()  # not again in this sweep: failed, conflicted, or fired in every pass

    def used() -> int:
        return len(report.fired) + len(report.failed) + report.conflicts

    for _ in range(MAX_PASSES_PER_SWEEP):
        fired_in_pass: set[str] = set()
        still_due: set[str] = set()
        after: tuple[datetime, str] | None = None  # where this pass is in (next_due_at, id) order
        while used() < limit:
            outcome = _fire_next(service, now, skip, after, fired_in_pass)
            if outcome is None:
                break
            instance_id, due_at, result, due_again = outcome
            after = (due_at, instance_id)
            if result == "passed":
                continue  # fired earlier in this pass and due again: its turn comes in the next pass
            if result == "conflict":
                # A user completed a step of it between our read and our write: nothing was written. Leave it
                # to the next sweep, which reads the fresh state.
                report.conflicts += 1
                skip.add(instance_id)
                continue
            if result == "failed":
                report.failed.append(instance_id)
                skip.add(instance_id)
                continue
            report.fired.append(instance_id)
            fired_in_pass.add(instance_id)
            if due_again:
                still_due.add(instance_id)
        if not still_due or used() >= limit:
            break
    return report


_DUE_COLUMNS = (ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.process_key,
                ProcessInstance.unit_id, ProcessInstance.state, ProcessInstance.version,
                ProcessInstance.next_due_at)


def _fire_next(service: Alur, now: datetime, skip: set[str], after: tuple[datetime, str] | None,
               passed: set[str]) -> tuple[str, datetime, str, bool] | None:
    """Lock the next due instance after `after` in (next_due_at, id) order and fire it, unless it is in
    `passed`: (instance id, its due time, "fired"/"failed"/"conflict"/"passed", due again?), or None when
    nothing (not locked by another worker) is due."""
    row: Row[Any] | None = None
    q = (select(*_DUE_COLUMNS)
         .where(ProcessInstance.status == "running", ProcessInstance.next_due_at <= now)
         .order_by(ProcessInstance.next_due_at, ProcessInstance.id).limit(1)
         .with_for_update(skip_locked=True))
    if after is not None:
        q = q.where(or_(ProcessInstance.next_due_at > after[0],
                        and_(ProcessInstance.next_due_at == after[0], ProcessInstance.id > after[1])))
    if skip:
        q = q.where(ProcessInstance.id.not_in(sorted(skip)))
    try:
        with service.db.write() as s:
            row = s.connection().execute(q).one_or_none()
            if row is None:
                return None
            if row.id in passed:
                return row.id, row.next_due_at, "passed", True
            new_due = _fire(service, s, row, now)
        return row.id, row.next_due_at, "fired", new_due is not None and new_due <= now
    except ConflictError:
        if row is None:
            raise
        return row.id, row.next_due_at, "conflict", False
    except Exception as exc:  # a broken model or data: put it back, record why, carry on
        if row is None:
            raise
        log.exception("timer of instance %s failed", row.id)
        retry_at = now + RETRY_AFTER
        # The failed transaction was rolled back as a whole; record the failure in a new one.
        with service.db.write() as s:
            s.execute(update(ProcessInstance).where(ProcessInstance.id == row.id,
                                                    ProcessInstance.version == row.version)
                      .values(next_due_at=retry_at))
            audit(s, at=now, actor=None, action="timer_error", instance_id=row.id,
                  data={"due_at": row.next_due_at.isoformat(), "error": f"{type(exc).__name__}: {exc}"[:2000],
                        "retry_at": retry_at.isoformat()})
        return row.id, row.next_due_at, "failed", False


def _fire(service: Alur, s: Session, row: Row[Any], now: datetime) -> datetime | None:
    """Run one instance's due timers inside the caller's transaction; return its new next_due_at."""
    loaded = service.specs.get(s, row.definition_id)
    calendar = service.calendar_for(s, row.unit_id)
    # The timers read "now" from the script engine: pin it to the sweep's moment.
    engine = SafeScriptEngine(clock=lambda: now, calendar=calendar)
    workflow = serializer.instance_from_json(row.state, loaded.spec, loaded.subprocess_specs, engine)
    workflow.refresh_timers()
    workflow.do_engine_steps()
    ref = InstanceRef(row.id, row.definition_id, row.process_key, row.unit_id)
    save_instance(s, ref, workflow, expected_version=row.version, now=now)
    new_ready = sync_tasks(s, ref, workflow, now=now, calendar=calendar, actor=None)
    new_due = next_timer_due(workflow) if not is_finished(workflow) else None
    ready = sorted(workflow.get_task_from_id(UUID(tid)).task_spec.bpmn_id for tid in new_ready)
    audit(s, at=now, actor=None, action="timer", instance_id=row.id, data={
        "due_at": row.next_due_at.isoformat(),
        "next_due_at": new_due.isoformat() if new_due else None,
        "ready": ready,
    })
    if is_finished(workflow):
        audit(s, at=now, actor=None, action="end", instance_id=row.id)
    return new_due
