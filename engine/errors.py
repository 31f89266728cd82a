"""Errors the service API raises. Each carries what a user needs to fix the cause."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a deployment: where (file, line, element) and what."""

    file: str
    line: int | None
    element_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.element_id:
            where += f" [{self.element_id}]"
        return f"{where}: {self.message}"


class AlurError(Exception):
    """Base class: a refusal the caller can show to a user as is."""


class DeployError(AlurError):
    """A deployment was refused; `problems` lists every problem found, nothing was stored."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.element_id or "", p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class NotFound(AlurError):
    pass


class PermissionDenied(AlurError):
    pass


class ConflictError(AlurError):
    """Someone else changed the instance or task first; nothing was changed by this call."""


class InvalidState(AlurError):
    """The task or instance is not in a state that allows the action (e.g. task not READY)."""


class ProcessError(AlurError):
    """The engine could not run the process on (a modelling error met at run time); nothing was changed."""


class FormValidationError(AlurError):
    """Submitted data broke the task's form rules. `errors` maps field key -> messages."""

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors = {k: list(v) for k, v in errors.items()}
        lines = [f"{key}: {msg}" for key, msgs in self.errors.items() for msg in msgs]
        super().__init__("; ".join(lines))


class CorruptState(AlurError, ValueError):
    """An instance's stored state cannot be read back (not JSON, another format, a spec it names is gone):
    a damaged row, not a request to refuse. `alur check` lists such instances. A ValueError too, as the
    serializer's refusals were before."""

    def __init__(self, detail: str, instance_id: str | None = None):
        self.detail = detail
        self.instance_id = instance_id
        who = f"instance {instance_id}" if instance_id else "an instance"
        super().__init__(f"state of {who} cannot be read: {detail}")
