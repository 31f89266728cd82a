"""What supervisors (Camat, Sekretaris Daerah, inspectorate) see and may do: instance lists, the instance
timeline and diagram state, the SOP performance report over the units they may see, and the supervisor's
actions (reassign a step, cancel, suspend, resume) — each one audited.

Functions take the `Alur` service (its database, clock and calendars) rather than living in service.py.

Rules (docs/supervisor-guide.md):
- **Seeing**: the same rule as `Alur.instance`: a user sees instances of every unit they hold a role in and
  of all units below those (a kabupaten's Sekda sees its kecamatan); admins see everything. Anything else is
  "not found", never "forbidden", so the existence of other units' instances is not revealed.
- **Acting**: admins, and holders of the SOP's supervisor role — the process property `alur.supervisorRole`,
  else the pool's top lane (the same role escalations go to, `engine.notify.supervisor_role`) — in the
  instance's unit or any unit above it.
- Suspending stops the instance: completions are refused (`Alur.complete` needs status running) and BPMN
  timers do not fire; step deadlines are not moved. Cancelling is final: open steps become CANCELLED.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from engine import accounts, forms, notify
from engine.accounts import Actor
from engine.errors import ConflictError, FormValidationError, NotFound, PermissionDenied
from engine.models import (
    Attachment,
    Comment,
    Notification,
    ProcessDefinition,
    ProcessInstance,
    Task,
    Unit,
    User,
)
from engine.reports import SopReport, sop_report, standard_minutes
from engine.store import audit, change_instance_status

if TYPE_CHECKING:
    from engine.service import Alur

STATUSES = ("running", "suspended", "completed", "cancelled")
MAX_PAGE = 200


# ------------------------------------------------------------------------------------------------ visibility

def visible_unit_ids(s: Session, actor: Actor) -> set[int] | None:
    """Units whose instances the actor may see: theirs and every unit below; None = all (admin)."""
    if actor.is_admin:
        return None
    parents = dict(s.execute(select(Unit.id, Unit.parent_id)).all())
    own = set(actor.unit_ids)
    visible: set[int] = set()
    for unit_id in parents:
        current: int | None = unit_id
        seen: set[int] = set()
        while current is not None and current not in seen:
            if current in own:
                visible.add(unit_id)
                break
            seen.add(current)
            current = parents.get(current)
    return visible


def unit_subtree(s: Session, unit_id: int) -> set[int]:
    """The unit and every unit below it."""
    children: dict[int | None, list[int]] = {}
    for uid, parent in s.execute(select(Unit.id, Unit.parent_id)).all():
        children.setdefault(parent, []).append(uid)
    found, todo = set(), [unit_id]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(children.get(current, []))
    return found


def _scope(s: Session, actor: Actor, unit_code: str | None) -> set[int] | None:
    """Visible units, narrowed to `unit_code`'s subtree when given (an unknown or hidden unit → nothing)."""
    visible = visible_unit_ids(s, actor)
    if not unit_code:
        return visible
    unit_id = s.scalar(select(Unit.id).where(Unit.code == unit_code))
    if unit_id is None:
        return set()
    subtree = unit_subtree(s, unit_id)
    return subtree if visible is None else subtree & visible


def may_supervise(s: Session, actor: Actor, unit_id: int, info: dict[str, Any] | None) -> bool:
    """Admin, or holder of the SOP's supervisor role in the unit or a unit above it."""
    if actor.is_admin:
        return True
    role = notify.supervisor_role(info)
    if not role:
        return False
    return any(actor.has_role(u, role) for u in accounts.unit_ancestors(s, unit_id))


# ------------------------------------------------------------------------------------------------ lists

@dataclass(frozen=True)
class InstanceFilter:
    process_key: str | None = None
    unit_code: str | None = None
    status: str | None = None  # one of STATUSES, None = all
    overdue_only: bool = False
    started_from: datetime | None = None
    started_until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class InstanceRow:
    id: str
    process_key: str
    process_name: str
    version: int
    business_key: str | None
    unit_code: str
    unit_name: str
    status: str
    started_at: datetime
    started_by: str | None
    ended_at: datetime | None
    open_steps: list[dict[str, Any]] = field(default_factory=list)  # name, element_id, due_at, overdue, who

    @property
    def overdue(self) -> bool:
        return any(step["overdue"] for step in self.open_steps)


def _overdue_clause(now: datetime) -> Any:
    return exists().where(Task.instance_id == ProcessInstance.id, Task.state == "READY", Task.due_at < now)


def _instance_conditions(s: Session, actor: Actor, flt: InstanceFilter, now: datetime,
                         with_sop: bool = True) -> list[Any]:
    units = _scope(s, actor, flt.unit_code)
    conds: list[Any] = []
    if units is not None:
        conds.append(ProcessInstance.unit_id.in_(sorted(units)))
    if with_sop and flt.process_key:
        conds.append(ProcessInstance.process_key == flt.process_key)
    if flt.status in STATUSES:
        conds.append(ProcessInstance.status == flt.status)
    if flt.overdue_only:
        conds.append(ProcessInstance.status.in_(("running", "suspended")))
        conds.append(_overdue_clause(now))
    if flt.started_from is not None:
        conds.append(ProcessInstance.started_at >= flt.started_from)
    if flt.started_until is not None:
        conds.append(ProcessInstance.started_at < flt.started_until)
    return conds


def list_instances(service: Alur, actor: Actor, flt: InstanceFilter, *, limit: int = 50,
                   offset: int = 0) -> tuple[list[InstanceRow], int]:
    """Instances the actor may see, newest first, with their open steps; plus the total for paging."""
    now = service.clock()
    with service.db.read() as s:
        conds = _instance_conditions(s, actor, flt, now)
        total = s.scalar(select(func.count()).select_from(ProcessInstance).where(*conds)) or 0
        rows = s.execute(
            select(ProcessInstance.id, ProcessInstance.process_key, ProcessDefinition.name,
                   ProcessDefinition.version, ProcessInstance.business_key, Unit.code, Unit.name,
                   ProcessInstance.status, ProcessInstance.started_at, ProcessInstance.started_by,
                   ProcessInstance.ended_at)
            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
            .join(Unit, Unit.id == ProcessInstance.unit_id)
            .where(*conds).order_by(ProcessInstance.started_at.desc(), ProcessInstance.id)
            .limit(max(1, min(limit, MAX_PAGE))).offset(max(0, offset))).all()
        open_steps: dict[str, list[dict[str, Any]]] = {}
        if rows:
            for t in s.execute(select(Task.instance_id, Task.element_id, Task.name, Task.due_at, Task.assignee,
                                      Task.candidate_role)
                               .where(Task.instance_id.in_([r[0] for r in rows]), Task.state == "READY")
                               .order_by(Task.created_at)):
                open_steps.setdefault(t.instance_id, []).append({
                    "element_id": t.element_id, "name": t.name, "due_at": t.due_at,
                    "overdue": bool(t.due_at and t.due_at < now), "who": t.assignee or t.candidate_role})
        return [InstanceRow(*r, open_steps=open_steps.get(r[0], [])) for r in rows], total


def counts_per_sop(service: Alur, actor: Actor, flt: InstanceFilter) -> list[dict[str, Any]]:
    """Per SOP (process key): instances by status and overdue running ones, under the same filters (but
    every SOP)."""
    now = service.clock()
    with service.db.read() as s:
        conds = _instance_conditions(s, actor, flt, now, with_sop=False)
        by_key: dict[str, dict[str, Any]] = {}
        for key, status, n in s.execute(select(ProcessInstance.process_key, ProcessInstance.status, func.count())
                                        .where(*conds).group_by(ProcessInstance.process_key,
                                                                ProcessInstance.status)):
            entry = by_key.setdefault(key, {"key": key, "total": 0, "overdue": 0, **dict.fromkeys(STATUSES, 0)})
            entry[status] = entry.get(status, 0) + n
            entry["total"] += n
        if by_key:
            for key, n in s.execute(select(ProcessInstance.process_key, func.count())
                                    .where(*conds, ProcessInstance.status.in_(("running", "suspended")),
                                           _overdue_clause(now))
                                    .group_by(ProcessInstance.process_key)):
                by_key[key]["overdue"] = n
            names = _latest_names(s, list(by_key))
            for key, entry in by_key.items():
                entry["name"] = names.get(key, key)
        return sorted(by_key.values(), key=lambda e: e["name"])


def _latest_names(s: Session, keys: Iterable[str]) -> dict[str, str]:
    latest = (select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v"))
              .where(ProcessDefinition.key.in_(list(keys))).group_by(ProcessDefinition.key).subquery())
    return dict(s.execute(select(ProcessDefinition.key, ProcessDefinition.name).join(
        latest, and_(latest.c.key == ProcessDefinition.key, latest.c.v == ProcessDefinition.version))).all())


# ------------------------------------------------------------------------------------------------ one instance

@dataclass
class InstanceDetail:
    instance: Any  # engine.views.InstanceView
    unit: dict[str, Any]
    info: dict[str, Any]
    timeline: list[dict[str, Any]]
    markers: list[dict[str, str]]
    badges: list[dict[str, str]]
    audit: list[dict[str, Any]]
    may_supervise: bool
    people: dict[str, str]
    candidates: list[str]  # users a step may be reassigned to (for a supervisor)


def _load_instance(service: Alur, s: Session, instance_id: str, actor: Actor) -> ProcessInstance:
    inst = s.get(ProcessInstance, instance_id)
    if inst is None or not service._may_view_instance(s, actor, instance_id):
        raise NotFound(f"instance {instance_id!r} does not exist")
    return inst


def instance_detail(service: Alur, instance_id: str, actor: Actor) -> InstanceDetail:
    view = service.instance(instance_id, actor)  # NotFound when not visible
    now = service.clock()
    with service.db.read() as s:
        unit = s.get(Unit, view.unit_id)
        assert unit is not None
        info = service.specs.get(s, view.definition_id).info
        calendar = service.calendar_for(s, view.unit_id)
        working_day = _working_day(calendar)
        docs: dict[str | None, list[dict[str, Any]]] = {}
        for a in s.scalars(select(Attachment).where(Attachment.instance_id == instance_id).order_by(Attachment.id)):
            docs.setdefault(a.task_id, []).append({"id": a.id, "name": a.original_name, "size": a.size,
                                                   "uploaded_by": a.uploaded_by, "uploaded_at": a.uploaded_at})
        notes: dict[str | None, list[dict[str, Any]]] = {}
        for c in s.scalars(select(Comment).where(Comment.instance_id == instance_id).order_by(Comment.id)):
            notes.setdefault(c.task_id, []).append({"author": c.author, "body": c.body, "created_at": c.created_at})
        names = {t.assignee for t in view.tasks} | {t.completed_by for t in view.tasks}
        names |= {a.actor for a in view.audit} | {c["author"] for cs in notes.values() for c in cs}
        names.discard(None)
        people = dict(s.execute(select(User.username, User.full_name).where(User.username.in_(sorted(names)))).all())
        supervise = may_supervise(s, actor, view.unit_id, info) and view.status in ("running", "suspended")
        candidates: list[str] = []
        if supervise and any(t.state == "READY" for t in view.tasks):
            candidates = _assignable_users(s, view.unit_id, service._today())
        # Lateness and elapsed time of open steps, from the projection (no workflow needed).
        raw = {r.id: r for r in s.execute(select(Task.id, Task.working_minutes, Task.late_minutes)
                                          .where(Task.instance_id == instance_id))}
    steps_meta = info.get("user_tasks") or {}
    timeline: list[dict[str, Any]] = []
    last_by_element: dict[str, dict[str, Any]] = {}
    for t in view.tasks:
        meta = steps_meta.get(t.element_id) or {}
        ext = meta.get("extensions") or {}
        props = ext.get("properties") or {}
        row = raw.get(t.id)
        if t.state == "READY":
            working = calendar.working_minutes_between(t.created_at, now)
            late = calendar.working_minutes_between(t.due_at, now) if t.due_at else None
            status = "overdue" if t.due_at and now > t.due_at else "active"
            if view.status == "suspended":
                status = "overdue" if status == "overdue" else "suspended"
        else:
            working = row.working_minutes if row else None
            late = row.late_minutes if row else None
            status = "done" if t.state == "COMPLETED" else "cancelled"
        entry = {
            "task": t, "sop_no": props.get("sop.no"), "lane": t.lane or meta.get("lane"),
            "person": t.completed_by or t.assignee, "candidate_role": t.candidate_role,
            "standard": ext.get("dueDate"), "standard_text": props.get("sop.waktu"),
            "standard_minutes": standard_minutes(ext.get("dueDate"), working_day),
            "working_minutes": working, "late_minutes": late, "status": status,
            "documents": docs.get(t.id, []), "comments": notes.get(t.id, []),
        }
        timeline.append(entry)
        if t.state != "CANCELLED" or t.element_id not in last_by_element:
            last_by_element[t.element_id] = entry
    markers: list[dict[str, str]] = []
    badges: list[dict[str, str]] = []
    for element_id, entry in last_by_element.items():
        status = entry["status"]
        cls = {"done": "alur-done", "active": "alur-active", "suspended": "alur-active",
               "overdue": "alur-overdue"}.get(status)
        if cls:
            markers.append({"id": element_id, "cls": cls})
        if status in ("active", "overdue", "suspended"):
            t = entry["task"]
            who = (people.get(t.assignee) or t.assignee) if t.assignee else (t.candidate_role or "?")
            badges.append({"id": element_id, "text": who, "cls": "alur-badge-" + status})
    audit_rows = [{"at": a.at, "actor": a.actor, "action": a.action, "task_id": a.task_id, "data": a.data}
                  for a in view.audit]
    return InstanceDetail(instance=view, unit={"id": unit.id, "code": unit.code, "name": unit.name,
                                               "timezone": unit.timezone},
                          info=info, timeline=timeline, markers=markers, badges=badges, audit=audit_rows,
                          may_supervise=supervise, people=people, candidates=candidates)


def _working_day(calendar: Any) -> int:
    from engine.reports import day_minutes

    return day_minutes(calendar)


def _assignable_users(s: Session, unit_id: int, today: Any) -> list[str]:
    """Active users holding any role in the unit (directly or as Plh/Plt today)."""
    from engine.models import RoleAssignment, Substitution

    direct = select(User.username).join(RoleAssignment, RoleAssignment.user_id == User.id).where(
        RoleAssignment.unit_id == unit_id, User.is_active.is_(True))
    acting = select(User.username).join(Substitution, Substitution.user_id == User.id).where(
        Substitution.unit_id == unit_id, Substitution.starts_on <= today, Substitution.ends_on >= today,
        User.is_active.is_(True))
    return sorted(set(s.scalars(direct.union(acting))))


def diagram_xml(service: Alur, instance_id: str, actor: Actor) -> str:
    with service.db.read() as s:
        inst = _load_instance(service, s, instance_id, actor)
        return s.scalar(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.id == inst.definition_id)) or ""


# ------------------------------------------------------------------------------------------------ actions

def _supervised_instance(service: Alur, s: Session, instance_id: str, actor: Actor) -> ProcessInstance:
    inst = _load_instance(service, s, instance_id, actor)
    info = service.specs.get(s, inst.definition_id).info
    if not may_supervise(s, actor, inst.unit_id, info):
        raise PermissionDenied(f"{actor.username} does not supervise instance {instance_id}")
    return inst


def _set_status(service: Alur, instance_id: str, actor: Actor, *, from_states: tuple[str, ...], to: str,
                action: str, reason: str | None) -> None:
    reason = (reason or "").strip() or None
    if reason and len(reason) > 2000:
        raise FormValidationError({"reason": ["paling banyak 2000 karakter"]})
    if reason and (problem := forms.text_problem(reason, 2000)):
        raise FormValidationError({"reason": [problem]})
    with service.db.write() as s:
        inst = _supervised_instance(service, s, instance_id, actor)
        if change_instance_status(s, instance_id, from_states=from_states, to=to, now=service.clock(),
                                  actor=actor.username, action=action, reason=reason) is None:
            raise ConflictError(f"instance {instance_id} is {inst.status}; cannot {action}")


def cancel(service: Alur, instance_id: str, actor: Actor, reason: str | None = None) -> None:
    """Stop an instance for good: its open steps become CANCELLED and leave every inbox."""
    if not (reason or "").strip():
        raise FormValidationError({"reason": ["wajib diisi: tulis alasan pembatalan"]})
    _set_status(service, instance_id, actor, from_states=("running", "suspended"), to="cancelled",
                action="cancel", reason=reason)


def suspend(service: Alur, instance_id: str, actor: Actor, reason: str | None = None) -> None:
    """Hold an instance: nobody can complete its steps and its timers wait until it is resumed."""
    _set_status(service, instance_id, actor, from_states=("running",), to="suspended", action="suspend",
                reason=reason)


def resume(service: Alur, instance_id: str, actor: Actor, reason: str | None = None) -> None:
    _set_status(service, instance_id, actor, from_states=("suspended",), to="running", action="resume",
                reason=reason)


def reassign(service: Alur, task_id: str, actor: Actor, username: str | None) -> None:
    """Give an open step to `username` (who must hold a role in the step's unit), or back to the role's pool
    when `username` is empty. The new assignee is notified."""
    username = (username or "").strip().lower() or None
    with service.db.write() as s:
        task = s.get(Task, task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} does not exist")
        inst = _supervised_instance(service, s, task.instance_id, actor)
        if task.state != "READY" or inst.status not in ("running", "suspended"):
            raise ConflictError(f"task {task_id} is {task.state.lower()} in a {inst.status} instance")
        if username is not None and username not in _assignable_users(s, task.unit_id, service._today()):
            raise FormValidationError({"assignee": ["pengguna ini tidak memegang peran di unit langkah ini"]})
        now = service.clock()
        before = task.assignee
        s.execute(update(Task).where(Task.id == task_id).values(assignee=username,
                                                                claimed_at=now if username else None))
        audit(s, at=now, actor=actor.username, action="reassign", instance_id=task.instance_id, task_id=task_id,
              data={"from": before, "to": username})
        if username and username != before:
            notify.store(s, kind="assignment", usernames=[username], now=now, task_id=task_id,
                         instance_id=task.instance_id, key=f"{task_id}:{now.isoformat()}",
                         message=f"{actor.username} menugaskan langkah \"{task.name}\" kepada Anda.")


# ------------------------------------------------------------------------------------------------ reports

def report(service: Alur, actor: Actor, key: str, *, definition_id: str | None = None,
           unit_code: str | None = None, since: datetime | None = None,
           until: datetime | None = None) -> SopReport:
    """The SOP performance report over the units the actor may see (narrowed to `unit_code`'s subtree)."""
    with service.db.read() as s:
        units = _scope(s, actor, unit_code)
        return sop_report(s, key, unit_ids=units, definition_id=definition_id, since=since, until=until,
                          calendar_for=lambda u: service.calendar_for(s, u))


def definition_versions(service: Alur, key: str) -> list[dict[str, Any]]:
    with service.db.read() as s:
        return [{"id": d.id, "version": d.version, "name": d.name, "resource": d.resource,
                 "deployed_at": d.deployed_at, "sha256": d.sha256}
                for d in s.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)
                                   .order_by(ProcessDefinition.version.desc()))]


def definition_source(service: Alur, definition_id: str) -> tuple[str, str, str]:
    """(key, resource file name, BPMN XML) of one definition version."""
    with service.db.read() as s:
        row = s.execute(select(ProcessDefinition.key, ProcessDefinition.resource, ProcessDefinition.bpmn_xml)
                        .where(ProcessDefinition.id == definition_id)).one_or_none()
        if row is None:
            raise NotFound(f"no process definition {definition_id!r}")
        return row[0], row[1], row[2]


def may_see_any_unit(actor: Actor) -> bool:
    return actor.is_admin or bool(actor.unit_ids)


# ------------------------------------------------------------------------------------------------ notifications

_UNREAD_COUNT = (select(func.count()).select_from(
    select(Notification.id).where(Notification.username == bindparam("u"), Notification.read_at.is_(None))
    .limit(bindparam("cap")).subquery()))


def unread_count(service: Alur, actor: Actor, cap: int = 100) -> int:
    """How many notifications the user has not read, counted up to `cap` (the bell on every page shows
    "99+" beyond that): one index read per page view."""
    with service.db.read() as s:
        return s.connection().execute(_UNREAD_COUNT, {"u": actor.username, "cap": cap}).scalar() or 0


def mark_notifications_read(service: Alur, actor: Actor, ids: Iterable[int] | None) -> int:
    with service.db.write() as s:
        return notify.mark_read(s, actor.username, ids, service.clock())
