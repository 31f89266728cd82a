"""`alur repair`: find and repair instances damaged by long loops (see engine/history.py).

Before history pruning, SpiffWorkflow's depth-limited walk made an instance with a long revision or timer loop
look completed: status "completed", `ended_at` and an `end` event were written while the new step was READY.
A damaged instance is one whose stored state has an open task while its status is "completed", or whose task
tree is deeper than SpiffWorkflow's iterator limit, or which holds more finished history than pruning keeps.

Repair, each instance in its own write transaction with the optimistic version check: prune the state, run the
engine tasks the depth limit hid (a gateway left READY), set a wrongly completed instance back to running
(`ended_at` cleared, next timer recomputed), bring its `task` rows in line (sync_tasks), bump the version and
audit it as `repair` with what changed. Without `--apply` nothing is written: the command lists what it would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import history, serializer
from engine.check import UNPRUNED_LIMIT
from engine.errors import ConflictError
from engine.models import ProcessInstance
from engine.store import InstanceRef, audit, save_instance, sync_tasks

if TYPE_CHECKING:
    from engine.service import Alur

BATCH = 200
REPAIRABLE = ("running", "suspended", "completed")  # a cancelled instance keeps its state as it was


@dataclass
class Repair:
    instance_id: str
    status_before: str
    status_after: str
    depth_before: int
    depth_after: int
    removed_tasks: int
    open_tasks: list[str] = field(default_factory=list)
    engine_steps: bool = False
    applied: bool = False

    def data(self) -> dict[str, Any]:
        return {"status_before": self.status_before, "status_after": self.status_after,
                "depth_before": self.depth_before, "depth_after": self.depth_after,
                "removed_tasks": self.removed_tasks, "open_tasks": self.open_tasks,
                "engine_steps": self.engine_steps}

    def __str__(self) -> str:
        change = (f"status {self.status_before} -> {self.status_after}, " if self.status_before != self.status_after
                  else f"status {self.status_before}, ")
        return (f"{self.instance_id}  {change}depth {self.depth_before} -> {self.depth_after}, "
                f"{self.removed_tasks} finished task(s) pruned, open: {', '.join(self.open_tasks) or '-'}"
                f"{', engine steps run' if self.engine_steps else ''}")


def _diagnose(service: Alur, s: Any, row: Any) -> tuple[Repair, Any] | None:
    """(what repair does, the repaired workflow) for a damaged instance; None when it is fine."""
    loaded = service.specs.get(s, row.definition_id)
    calendar = service.calendar_for(s, row.unit_id)
    workflow = serializer.instance_from_json(row.state, loaded.spec, loaded.subprocess_specs,
                                             service._script_engine(calendar), prune=False)
    finished = history.is_finished(workflow)
    if finished and row.status == "completed":
        return None  # really completed: its tree is never walked again, however deep
    depth = history.max_depth(workflow)
    wrongly_completed = row.status == "completed" and not finished
    removed = history.prune(workflow).removed_tasks
    if not (wrongly_completed or depth >= history.ITERATOR_DEPTH_LIMIT or removed > UNPRUNED_LIMIT):
        return None
    stuck = [t for t in history.open_tasks(workflow) if t.state == TaskState.READY and not t.task_spec.manual]
    if stuck and row.status != "suspended":
        workflow.do_engine_steps()  # what the depth limit kept from running
        removed += history.prune(workflow).removed_tasks
    status = row.status
    if wrongly_completed:
        status = "completed" if history.is_finished(workflow) else "running"
    open_now = sorted({t.task_spec.bpmn_id or t.task_spec.name for t in history.open_tasks(workflow)
                       if t.state & (TaskState.READY | TaskState.WAITING | TaskState.STARTED)})
    return Repair(row.id, row.status, status, depth, history.max_depth(workflow), removed, open_now,
                  bool(stuck) and row.status != "suspended"), (workflow, calendar)


def repair_instances(service: Alur, *, apply: bool, instance_id: str | None = None,
                     progress: Callable[[int], None] | None = None) -> Iterator[Repair]:
    """Each damaged instance, repaired (one transaction each) when `apply`, else only described."""
    cols = (ProcessInstance.id, ProcessInstance.definition_id, ProcessInstance.process_key,
            ProcessInstance.unit_id, ProcessInstance.status, ProcessInstance.state, ProcessInstance.version)
    last: str | None = None
    seen = 0
    while True:
        with service.db.read() as s:
            q = select(ProcessInstance.id).where(ProcessInstance.status.in_(REPAIRABLE)).order_by(
                ProcessInstance.id).limit(BATCH)
            if instance_id is not None:
                q = q.where(ProcessInstance.id == instance_id)
            if last is not None:
                q = q.where(ProcessInstance.id > last)
            ids = list(s.scalars(q))
        if not ids:
            return
        for iid in ids:
            # Diagnose and write in one transaction: the row read is the row the version check protects.
            with (service.db.write() if apply else service.db.read()) as s:
                row = s.execute(select(*cols).where(ProcessInstance.id == iid)).one_or_none()
                if row is None or row.status not in REPAIRABLE:
                    continue
                found = _diagnose(service, s, row)
                if found is None:
                    continue
                repair, (workflow, calendar) = found
                if apply:
                    now = service.clock()
                    ref = InstanceRef(row.id, row.definition_id, row.process_key, row.unit_id)
                    try:
                        save_instance(s, ref, workflow, expected_version=row.version, now=now,
                                      status=repair.status_after)
                    except ConflictError:
                        continue  # changed meanwhile: the next run looks at it again
                    sync_tasks(s, ref, workflow, now=now, calendar=calendar, actor=None)
                    audit(s, at=now, actor="repair", action="repair", instance_id=row.id, data=repair.data())
                    repair.applied = True
            yield repair
        seen += len(ids)
        last = ids[-1]
        if progress is not None:
            progress(seen)
        if len(ids) < BATCH:
            return


@click.command("repair")
@click.option("--instance", "instance_id", help="Look at this instance only.")
@click.option("--apply", is_flag=True, help="Write the repairs (without it: only list them).")
def repair(instance_id: str | None, apply: bool) -> None:
    """Find instances damaged by long loops (completed with a step still open, task tree too deep, history not
    pruned) and repair them: prune, back to running, task rows resynchronised, audited as `repair`.

    Lists what it would do unless --apply is given."""
    from engine.cli import _service

    service = _service()

    def report(done: int) -> None:
        click.echo(f"looked at {done} instance(s)", err=True)

    found = 0
    for item in repair_instances(service, apply=apply, instance_id=instance_id, progress=report):
        found += 1
        click.echo(("repaired  " if item.applied else "to repair  ") + str(item))
    if not found:
        click.echo("no damaged instance found")
    elif apply:
        click.echo(f"{found} instance(s) repaired; `alur check` should now report none of them")
    else:
        click.echo(f"{found} instance(s) to repair; run again with --apply to write the repairs")
