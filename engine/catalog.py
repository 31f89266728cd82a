"""What a process designer sees of the deployed processes: every key with its versions and how many instances
of each version run now, and the units an actor may start an instance in. Read-only; no Flask here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from engine.accounts import Actor
from engine.models import Deployment, ProcessDefinition, ProcessInstance, Unit

if TYPE_CHECKING:
    from engine.service import Alur


@dataclass(frozen=True)
class VersionEntry:
    id: str
    version: int
    name: str
    resource: str
    deployment_id: str
    deployment_name: str
    deployed_at: datetime
    deployed_by: str | None
    running: int


@dataclass(frozen=True)
class ProcessEntry:
    key: str
    versions: list[VersionEntry]  # newest first

    @property
    def latest(self) -> VersionEntry:
        return self.versions[0]

    @property
    def running(self) -> int:
        return sum(v.running for v in self.versions)


def process_catalog(service: Alur) -> list[ProcessEntry]:
    """Every process key (by the latest version's name), each with all its versions, newest first, and the
    number of running instances per version in every unit. Two queries, whatever the number of instances."""
    with service.db.read() as s:
        running = dict(s.execute(
            select(ProcessInstance.definition_id, func.count()).where(ProcessInstance.status == "running")
            .group_by(ProcessInstance.definition_id)).all())
        rows = s.execute(
            select(ProcessDefinition.id, ProcessDefinition.key, ProcessDefinition.version, ProcessDefinition.name,
                   ProcessDefinition.resource, ProcessDefinition.deployment_id, Deployment.name,
                   ProcessDefinition.deployed_at, Deployment.deployed_by)
            .join(Deployment, Deployment.id == ProcessDefinition.deployment_id)
            .order_by(ProcessDefinition.key, ProcessDefinition.version.desc())).all()
    by_key: dict[str, list[VersionEntry]] = {}
    for r in rows:
        by_key.setdefault(r[1], []).append(VersionEntry(
            id=r[0], version=r[2], name=r[3], resource=r[4], deployment_id=r[5], deployment_name=r[6],
            deployed_at=r[7], deployed_by=r[8], running=running.get(r[0], 0)))
    entries = [ProcessEntry(key, versions) for key, versions in by_key.items()]
    return sorted(entries, key=lambda e: (e.latest.name.casefold(), e.key))


def startable_units(service: Alur, actor: Actor) -> list[dict[str, Any]]:
    """Units the actor may start an instance in (the rule `Alur.start` applies), by name."""
    with service.db.read() as s:
        units = s.execute(select(Unit.id, Unit.code, Unit.name).order_by(Unit.name, Unit.code)).all()
    return [{"id": u.id, "code": u.code, "name": u.name} for u in units if actor.may_start_in(u.id)]
