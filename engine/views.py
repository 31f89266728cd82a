"""What the service API returns: plain, immutable records that the CLI, web and REST layers render."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _View:
    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class DefinitionView(_View):
    id: str
    key: str
    version: int
    name: str
    resource: str
    deployment_id: str
    deployed_at: datetime
    is_new: bool = False


@dataclass(frozen=True)
class FormView(_View):
    form_id: str
    version: int
    file_name: str
    deployment_id: str
    is_new: bool = False


@dataclass(frozen=True)
class DeployResult(_View):
    deployment_id: str | None  # None when duplicate filtering found nothing new
    name: str
    deployed_at: datetime | None
    definitions: list[DefinitionView]
    forms: list[FormView]

    @property
    def changed(self) -> bool:
        return any(d.is_new for d in self.definitions) or any(f.is_new for f in self.forms)


@dataclass(frozen=True)
class TaskView(_View):
    id: str
    instance_id: str
    process_key: str
    definition_id: str
    element_id: str
    name: str
    lane: str | None
    candidate_role: str | None
    assignee: str | None
    state: str
    unit_id: int
    created_at: datetime
    due_at: datetime | None
    follow_up_at: datetime | None = None
    claimed_at: datetime | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None
    late_reason: str | None = None
    business_key: str | None = None
    process_name: str | None = None
    unit_code: str | None = None
    form_data: dict[str, Any] | None = None


@dataclass(frozen=True)
class InboxPage:
    """One page of 'Tugas Saya'; `total` is a lower bound when `capped` (counting stops at a bound)."""

    tasks: list[TaskView]
    total: int
    capped: bool


@dataclass(frozen=True)
class AuditView(_View):
    at: datetime
    actor: str | None
    action: str
    task_id: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True)
class InstanceView(_View):
    id: str
    definition_id: str
    process_key: str
    process_name: str
    business_key: str | None
    unit_id: int
    unit_code: str
    status: str
    started_at: datetime
    started_by: str | None
    ended_at: datetime | None
    version: int
    next_due_at: datetime | None = None
    tasks: list[TaskView] = field(default_factory=list)
    audit: list[AuditView] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    # Tasks that became READY in the call that returned this view (e.g. the next step after a completion).
    ready_task_ids: list[str] = field(default_factory=list)
    # The name of the step whose completion returned this view (Alur.complete).
    completed_step: str | None = None
