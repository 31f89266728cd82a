"""The BpmnWorkflow Alur runs: SpiffWorkflow's, with the nesting of called processes bounded.

Deploy refuses call cycles (engine/loader.py), but a definition deployed before that check, or one whose
cycle the check cannot see, would otherwise build called instances without end inside one request while
holding the write lock. Here the call that would go deeper than MAX_CALL_DEPTH fails with a process error
instead, and the caller's transaction rolls back: nothing is stored.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

# Called processes and embedded subprocesses inside each other (SpiffWorkflow runs both as sub-workflows).
# Real SOPs nest a few levels; this only stops runaway recursion.
MAX_CALL_DEPTH = 30


def _chain(workflow: Any) -> list[str]:
    """Names of the processes from the top workflow down to `workflow`."""
    names = []
    while workflow is not None:
        names.append(workflow.spec.name)
        workflow = workflow.parent_workflow
    return names[::-1]


class AlurWorkflow(BpmnWorkflow):
    def create_subprocess(self, my_task: Any, spec_name: str) -> Any:
        depth = my_task.workflow.depth + 1
        if depth > MAX_CALL_DEPTH:
            names = [*_chain(my_task.workflow), spec_name]
            shown = names if len(names) <= 10 else [*names[:6], "…", *names[-3:]]
            my_task.error()
            raise WorkflowTaskException(
                f"calling '{spec_name}' would nest {depth} processes inside each other (at most "
                f"{MAX_CALL_DEPTH}): {' → '.join(shown)}; a process that calls itself, directly or through "
                f"others, never ends", task=my_task)
        return super().create_subprocess(my_task, spec_name)
