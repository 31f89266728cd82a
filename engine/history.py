"""Finished history is cut out of a workflow's task tree, so a stored state does not grow with a loop's rounds.

SpiffWorkflow keeps every task it ever ran and walks the tree with a depth limit (`TaskIterator(max_depth=1000)`):
each round of a loop (a step sent back for revision, a timer that checks again) adds levels, and past the limit
`Workflow.is_completed()` says True with a step still open while `do_engine_steps` no longer sees deep READY
tasks. The stored state and the cost of every step also grow with each round.

So when a state is read (`serializer.instance_from_json`), `prune` keeps only what the engine can still look
at: the open (unfinished) tasks, their parents (a task inherits its data from its parent when it becomes
ready), the children of open tasks, the instances of a join that is waiting and their parents (which inputs
arrived), the nearest ancestor of each input of an open join (a parallel gateway in a loop looks back for
them), and the split a structured join (boundary events) looks back to, with its children. Every other
finished task is dropped; a kept task whose parent was dropped hangs from its nearest kept ancestor, so
ancestry among kept tasks is unchanged. The root (the Start task) always stays. Subprocesses whose calling
task was dropped are dropped. Task data in memory is whole (the delta against the parent exists only in the
stored document), so a new parent loses nothing.

History is not lost for Alur: the `task` rows and the audit trail keep every step, its form data and who did it.

`is_finished` is the one rule for "the instance is completed": no task anywhere (main process or subprocess)
is unfinished. It never uses the depth-limited iterator.
"""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import AdHocSubprocessSpec
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

OPEN = TaskState.NOT_FINISHED_MASK
# SpiffWorkflow walks trees with this limit (SpiffWorkflow.util.task.TaskIterator): anything deeper is invisible.
ITERATOR_DEPTH_LIMIT = 1000


def workflows(workflow: Any) -> list[Any]:
    """The top workflow and all its subprocess workflows."""
    return [workflow, *workflow.subprocesses.values()]


def open_tasks(workflow: Any) -> Iterator[Task]:
    """Every unfinished task of the workflow and its subprocesses, however deep (no iterator limit)."""
    for wf in workflows(workflow):
        for task in wf.tasks.values():
            if task.state & OPEN:
                yield task


def is_finished(workflow: Any) -> bool:
    """True when no task anywhere in the workflow (or a subprocess) is unfinished."""
    return next(open_tasks(workflow), None) is None


def find_task(workflow: Any, task_id: UUID) -> Task | None:
    """The task with this id in the workflow or a subprocess, or None (SpiffWorkflow's lookup raises)."""
    for wf in workflows(workflow):
        task = wf.tasks.get(task_id)
        if task is not None:
            return task
    return None


def tree_depth(wf: Any) -> int:
    """Depth of one (sub)workflow's task tree (root = 0), walked without recursion."""
    deepest = 0
    stack = [(wf.task_tree, 0)]
    while stack:
        task, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((wf.tasks[c], depth + 1) for c in task._children if c in wf.tasks)
    return deepest


def max_depth(workflow: Any) -> int:
    return max(tree_depth(wf) for wf in workflows(workflow))


@dataclass
class PruneResult:
    removed_tasks: int = 0
    removed_subprocesses: int = 0

    def __bool__(self) -> bool:
        return bool(self.removed_tasks or self.removed_subprocesses)


def _nearest_ancestor(wf: Any, task: Task, spec_name: str) -> Task | None:
    current = wf.tasks.get(task._parent)
    while current is not None and current.task_spec.name != spec_name:
        current = wf.tasks.get(current._parent)
    return current


def _needed(wf: Any) -> set[UUID] | None:
    """Ids of the tasks of one (sub)workflow the engine may still look at; None when nothing is open."""
    tasks = wf.tasks
    live = [t for t in tasks.values() if t.state & OPEN]
    if not live:
        return None
    keep: set[UUID] = {wf.task_tree.id}
    waiting_joins = set()
    for t in live:
        keep.add(t.id)
        if t._parent is not None:
            keep.add(t._parent)
        keep.update(t._children)  # an open task (multi-instance, subprocess) looks at its children
        if isinstance(t.task_spec, Join):
            if t.state & (TaskState.WAITING | TaskState.READY):  # some inputs arrived (FUTURE: none yet)
                waiting_joins.add(t.task_spec.name)
            # A parallel gateway inside a loop looks up its ancestors for the first task of each input
            # ("first iteration" test): keep the nearest ancestor of every input spec.
            inputs = {spec.name for spec in t.task_spec.inputs}
            current = tasks.get(t._parent)
            while inputs and current is not None:
                if current.task_spec.name in inputs:
                    inputs.discard(current.task_spec.name)
                    keep.add(current.id)
                current = tasks.get(current._parent)
        split = getattr(t.task_spec, "split_task", None)
        if split:  # BoundaryEventJoin / StartEventJoin: find_ancestor(split) and the split's children
            ancestor = _nearest_ancestor(wf, t, split)
            if ancestor is not None:
                keep.add(ancestor.id)
                keep.update(ancestor._children)
    if waiting_joins:
        # A waiting parallel/inclusive join counts earlier instances of itself (and their parents' states).
        for t in tasks.values():
            if t.task_spec.name in waiting_joins and not t.internal_data.get("alur_folded"):
                keep.add(t.id)
                if t._parent is not None:
                    keep.add(t._parent)
    return keep


def _fold_end_joins(wf: Any) -> None:
    """A side path that reached an end event while the process goes on (a reminder after a boundary timer)
    leaves a finished instance of the process's end join; the final one merges their parents' data, oldest
    first. Fold them into the newest so they do not pile up: its parent gets the same merged data."""
    finished = sorted((t for t in wf.tasks.values() if isinstance(t.task_spec, _EndJoin)
                       and t.state & TaskState.FINISHED_MASK and not t._children and t._parent in wf.tasks),
                      key=lambda t: t.last_state_change)
    if len(finished) < 2:
        return
    newest = finished[-1]
    merged: dict[str, Any] = {}
    for t in finished:
        DeepMerge.merge(merged, deepcopy(wf.tasks[t._parent].data))
    wf.tasks[newest._parent].data = merged
    for t in finished[:-1]:  # unreachable from now on: dropped with the rest of the finished history
        t.internal_data["alur_folded"] = True


def _prune_one(wf: Any, top: Any) -> int:
    if isinstance(wf.spec, AdHocSubprocessSpec):
        return 0  # an ad-hoc subprocess starts paths from its root's children: left as SpiffWorkflow built it
    tasks = wf.tasks
    if not any(t.state & OPEN for t in tasks.values()):
        return 0  # finished: never walked again, left as it is
    wf.completed = False  # open tasks: never "completed", whatever an earlier is_completed() cached
    _fold_end_joins(wf)
    keep = _needed(wf)
    if keep is None or all(tid in keep for tid in tasks):
        return 0
    root = wf.task_tree
    new_children: dict[UUID, list[UUID]] = {tid: [] for tid in keep}
    nearest: dict[UUID, UUID] = {}  # dropped task -> its nearest kept ancestor
    # Depth-first, children in order, so the kept children of a task keep their relative order.
    stack: list[tuple[UUID, UUID]] = [(c, root.id) for c in reversed(root._children)]
    while stack:
        tid, kept_above = stack.pop()
        task = tasks.get(tid)
        if task is None:
            continue
        if tid in keep:
            new_children[kept_above].append(tid)
            task._parent = kept_above
            below = tid
        else:
            nearest[tid] = kept_above
            below = kept_above
        stack.extend((c, below) for c in reversed(task._children))
    for tid, children in new_children.items():
        if tid in tasks:
            tasks[tid]._children = children
    dropped = [tid for tid in tasks if tid not in keep]
    events = top.event_manager.tasks
    for tid in dropped:
        del tasks[tid]
        events.pop(tid, None)
    if wf.last_task is not None and wf.last_task.id not in tasks:
        wf.last_task = tasks.get(nearest.get(wf.last_task.id, root.id), root)
    return len(dropped)


def prune(workflow: Any) -> PruneResult:
    """Drop the finished history of the workflow and its subprocesses, in place (see the module doc)."""
    result = PruneResult()
    for wf in workflows(workflow):
        result.removed_tasks += _prune_one(wf, workflow)
    # A subprocess lives as long as the task that called it (nested ones: until a fixed point).
    while True:
        present = set(workflow.tasks)
        for sp in workflow.subprocesses.values():
            present.update(sp.tasks)
        orphans = [tid for tid in workflow.subprocesses if tid not in present]
        if not orphans:
            break
        for tid in orphans:
            sp = workflow.subprocesses.pop(tid)
            for task_id in sp.tasks:
                workflow.event_manager.tasks.pop(task_id, None)
            result.removed_subprocesses += 1
    return result
