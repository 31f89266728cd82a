"""The service API: the one way the CLI, the web pages and the REST API change anything.

Each call is one transaction: load what it needs in a few queries, run SpiffWorkflow, write state,
task projection and audit together, commit. No Flask here.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import PurePath
from typing import Any, ClassVar

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, bindparam, delete, exists, func, literal, null, or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import accounts, forms, notify, serializer
from engine.accounts import SYSTEM, Actor
from engine.attachments import AttachmentStore, CheckedFile
from engine.calendar import CalendarConfig, WorkingCalendar
from engine.db import Database
from engine.errors import (
    AlurError,
    ConflictError,
    DeployError,
    FormValidationError,
    InvalidState,
    NotFound,
    PermissionDenied,
    Problem,
    ProcessError,
)
from engine.expressions import SafeScriptEngine
from engine.history import find_task, is_finished
from engine.inbox_query import COUNT_CAP, inbox_rows
from engine.loader import build_specs, load_bpmn_files
from engine.models import (
    Attachment,
    CalendarDay,
    Comment,
    Deployment,
    Notification,
    ProcessDefinition,
    ProcessInstance,
    RoleAssignment,
    Substitution,
    Task,
    TaskCandidate,
    Unit,
    User,
)
from engine.models import FormDefinition as FormRow
from engine.store import (
    InstanceRef,
    LoadedDefinition,
    SpecCache,
    audit,
    change_instance_status,
    instance_status,
    save_instance,
    sync_tasks,
)
from engine.timers import next_timer_due
from engine.views import AuditView, DefinitionView, DeployResult, FormView, InboxPage, InstanceView, TaskView
from engine.workflow import AlurWorkflow

Clock = Callable[[], datetime]
_T, _I, _U = Task.__table__, ProcessInstance.__table__, Unit.__table__
# Everything a completion needs about the task and its instance, in one round trip.
_TASK_FOR_CHANGE = (
    select(_T.c.id, _T.c.instance_id, _T.c.element_id, _T.c.name, _T.c.unit_id, _T.c.candidate_role,
           _T.c.assignee, _T.c.state, _T.c.due_at, _I.c.definition_id, _I.c.process_key,
           _I.c.state.label("instance_state"), _I.c.version, _I.c.status, _I.c.business_key, _I.c.started_at,
           _I.c.started_by,
           _U.c.code.label("unit_code"))
    .join(_I, _I.c.id == _T.c.instance_id).join(_U, _U.c.id == _T.c.unit_id)
    .where(_T.c.id == bindparam("tid"))
)
# Task rows as the pages show them (Alur._task_rows_query), built once: constructing a 26-column select
# on every call costs more than running it.
_TASK_ROWS = (
    select(*_T.c, _I.c.business_key, ProcessDefinition.__table__.c.name.label("process_name"),
           _U.c.code.label("unit_code"))
    .join(_I, _I.c.id == _T.c.instance_id)
    .join(ProcessDefinition.__table__, ProcessDefinition.__table__.c.id == _T.c.definition_id)
    .join(_U, _U.c.id == _T.c.unit_id)
)
# The instance's documents for the task page, attachments and comments in one round trip ("a" rows, then "c"
# rows, each in upload/writing order), with the name of the step each belongs to.
_ATT, _CMT, _STEP = Attachment.__table__, Comment.__table__, Task.__table__.alias("step")
_DOCUMENTS = union_all(
    select(literal("a").label("kind"), _ATT.c.id.label("doc_id"), _ATT.c.task_id, _STEP.c.name.label("task_name"),
           _ATT.c.original_name.label("text"), _ATT.c.uploaded_by.label("who"), _ATT.c.uploaded_at.label("at"),
           _ATT.c.sha256, _ATT.c.size, _ATT.c.content_type)
    .select_from(_ATT.outerjoin(_STEP, _STEP.c.id == _ATT.c.task_id)).where(_ATT.c.instance_id == bindparam("iid")),
    select(literal("c"), _CMT.c.id, _CMT.c.task_id, _STEP.c.name, _CMT.c.body, _CMT.c.author, _CMT.c.created_at,
           null(), null(), null())
    .select_from(_CMT.outerjoin(_STEP, _STEP.c.id == _CMT.c.task_id)).where(_CMT.c.instance_id == bindparam("iid")),
).order_by("kind", "doc_id")
# The data last submitted for the same step of the same instance: a step reached again through a revision loop
# (koreksi) starts from what was sent the round before, not from an empty form. Correlated to the task row.
_EARLIER = Task.__table__.alias("earlier")
_PREVIOUS_SUBMISSION = (
    select(_EARLIER.c.form_data)
    .where(_EARLIER.c.instance_id == _T.c.instance_id, _EARLIER.c.element_id == _T.c.element_id,
           _EARLIER.c.state == "COMPLETED", _EARLIER.c.id != _T.c.id)
    .order_by(_EARLIER.c.completed_at.desc()).limit(1).scalar_subquery()
)
# The signed-in user of a web request (every request loads it): the account, its roles and today's
# substitutions in one round trip. Rows: ("user", full_name, email, locale, password_hash),
# ("role", unit_id or None, role), ("sub", unit_id, role, kind), ("bell", None, unread notifications).
_UA, _RA, _SUB, _NOTE = User.__table__, RoleAssignment.__table__, Substitution.__table__, Notification.__table__
UNREAD_CAP = 100  # the bell says "99+" beyond
_ACTIVE_USER = and_(_UA.c.username == bindparam("username"), _UA.c.is_active.is_(True))
_SESSION_USER = union_all(
    select(literal("user").label("row"), _UA.c.id.label("user_id"), null().label("unit_id"),
           _UA.c.full_name.label("a"), _UA.c.email.label("b"), _UA.c.locale.label("c"),
           _UA.c.password_hash.label("d"), _UA.c.credentials_version.label("e")).where(_ACTIVE_USER),
    select(literal("role"), _UA.c.id, _RA.c.unit_id, _RA.c.role, null(), null(), null(), null())
    .join(_RA, _RA.c.user_id == _UA.c.id).where(_ACTIVE_USER),
    select(literal("sub"), _UA.c.id, _SUB.c.unit_id, _SUB.c.role, _SUB.c.kind, null(), null(), null())
    .join(_SUB, _SUB.c.user_id == _UA.c.id)
    .where(_ACTIVE_USER, _SUB.c.starts_on <= bindparam("today"), _SUB.c.ends_on >= bindparam("today")),
    # The bell on every page: unread notifications, counted up to UNREAD_CAP (one index range).
    select(literal("bell"), null(), select(func.count()).select_from(
        select(_NOTE.c.id).where(_NOTE.c.username == bindparam("username"), _NOTE.c.read_at.is_(None))
        .limit(UNREAD_CAP).subquery()).scalar_subquery(), null(), null(), null(), null(), null()),
)
BPMN_SUFFIXES = (".bpmn", ".bpmn20.xml")
FORM_SUFFIX = ".form"
FORM_KEY_PREFIX = "camunda-forms:deployment:"
MAX_FILES_PER_DEPLOYMENT = 100
# How long a web process keeps resolving a "latest" form reference to the form it last found (Alur._form_for):
# a newly deployed form version shows on every server within this time.
FORM_REF_SECONDS = 10.0
# Per deployed .bpmn/.form file: the REST deploy and the web deploy page refuse larger uploads (413/400).
MAX_DEPLOY_FILE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class TaskPage:
    """What the task page shows (Alur.task_page): the step, whether the actor may complete it now, its form,
    the definition's metadata, and optionally the instance's documents and comments and the last round's data."""

    task: TaskView
    may_work: bool
    form: forms.FormDefinition | None
    info: dict[str, Any]
    attachments: list[dict[str, Any]] | None = None
    comments: list[dict[str, Any]] | None = None
    previous: dict[str, Any] | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Alur:
    """Entry point to everything the engine does. Thread-safe: share one per process."""

    def __init__(self, db: Database, *, clock: Clock | None = None):
        self.db = db
        self.clock: Clock = clock or utc_now
        self.specs = SpecCache()
        self._calendars: dict[int, WorkingCalendar] = {}
        self._calendar_lock = threading.Lock()
        self._forms: dict[int, forms.FormDefinition] = {}
        # Which stored form a form reference resolves to (Alur._resolve_form_ref): -> (form row id, monotonic
        # expiry, or None when the answer can never change).
        # camunda:formData converted, per spec object (gone with the spec when the spec cache drops it).
        self._spiff_forms: weakref.WeakKeyDictionary[Any, forms.FormDefinition] = weakref.WeakKeyDictionary()
        self._form_refs: dict[tuple[Any, ...], tuple[int, float | None]] = {}

    # ------------------------------------------------------------------ calendars, engines, actors

    def calendar_for(self, session: Session, unit_id: int) -> WorkingCalendar:
        self._drop_stale_calendars(session)
        cal = self._calendars.get(unit_id)
        if cal is not None:
            return cal
        tz = session.scalar(select(Unit.timezone).where(Unit.id == unit_id)) or "Asia/Jakarta"
        days = session.execute(select(CalendarDay.day, CalendarDay.kind).where(
            or_(CalendarDay.unit_id.is_(None), CalendarDay.unit_id == unit_id))).all()
        cal = WorkingCalendar(CalendarConfig(
            timezone=tz,
            extra_days_off=frozenset(d for d, k in days if k == "off"),
            working_days=frozenset(d for d, k in days if k == "work"),
        ))
        with self._calendar_lock:
            self._calendars[unit_id] = cal
        return cal

    def forget_calendars(self) -> None:
        """Call after changing units' time zones or calendar days."""
        with self._calendar_lock:
            self._calendars.clear()

    # Other processes (CLI `alur calendar`, the web) change calendar days and time zones: look at most
    # this often whether they did, by a fingerprint of those few rows, and rebuild the calendars if so.
    CALENDAR_RECHECK_SECONDS = float(os.environ.get("ALUR_CALENDAR_RECHECK_SECONDS", "10"))

    def _drop_stale_calendars(self, session: Session) -> None:
        now = time.monotonic()
        if now - getattr(self, "_calendar_checked", -1e9) < self.CALENDAR_RECHECK_SECONDS:
            return
        fingerprint = hash((
            tuple(session.execute(select(CalendarDay.day, CalendarDay.unit_id, CalendarDay.kind)
                                  .order_by(CalendarDay.id)).all()),
            tuple(session.execute(select(Unit.id, Unit.timezone).order_by(Unit.id)).all()),
        ))
        with self._calendar_lock:
            if fingerprint != getattr(self, "_calendar_fingerprint", None):
                self._calendars.clear()
                self._calendar_fingerprint = fingerprint
            self._calendar_checked = now

    def fire_due_timers(self, now: datetime | None = None, limit: int = 1000) -> Any:
        """Fire due BPMN timers, one transaction per instance (engine/timer_fire.py); a FireReport."""
        from engine.timer_fire import fire_due_timers

        return fire_due_timers(self, now, limit)

    def _script_engine(self, calendar: WorkingCalendar) -> SafeScriptEngine:
        return SafeScriptEngine(clock=self.clock, calendar=calendar)

    def actor(self, username: str) -> Actor:
        with self.db.read() as s:
            return accounts.load_actor(s, username, today=self._today())

    def _today(self) -> date:
        return self.clock().date()

    # ------------------------------------------------------------------ deploy

    def deploy(self, files: Mapping[str, bytes], *, name: str | None = None, source: str | None = None,
               actor: Actor = SYSTEM, duplicate_filtering: bool = True) -> DeployResult:
        """Deploy .bpmn and .form files together. Every problem in every file is reported at once
        (DeployError) and then nothing is stored. Unchanged files create no new version."""
        if not actor.is_designer:
            raise PermissionDenied("deploying needs the designer role")
        if not files:
            raise DeployError([Problem("(deployment)", None, None, "no files to deploy")])
        for label, text in (("deployment name", name), ("deployment source", source)):
            if text and (problem := forms.text_problem(text, 200, multiline=False, locale="en")):
                raise DeployError([Problem("(deployment)", None, None, f"{label}: {problem}")])
        if len(files) > MAX_FILES_PER_DEPLOYMENT:
            raise DeployError([Problem("(deployment)", None, None,
                                       f"at most {MAX_FILES_PER_DEPLOYMENT} files per deployment")])
        problems: list[Problem] = []
        bpmn_files: dict[str, bytes] = {}
        form_files: dict[str, bytes] = {}
        for raw_name, content in files.items():
            file_name = PurePath(raw_name.replace("\\", "/")).name  # never trust a client's path
            if file_name in bpmn_files or file_name in form_files:
                problems.append(Problem(file_name, None, None, "the same file name is given twice"))
            elif file_name.lower().endswith(BPMN_SUFFIXES):
                bpmn_files[file_name] = content
            elif file_name.lower().endswith(FORM_SUFFIX):
                form_files[file_name] = content
            else:
                problems.append(Problem(file_name, None, None, "only .bpmn and .form files can be deployed"))
            if len(content) > MAX_DEPLOY_FILE_BYTES:
                problems.append(Problem(file_name, None, None,
                                        f"file is larger than {MAX_DEPLOY_FILE_BYTES // (1024 * 1024)} MB"))
                bpmn_files.pop(file_name, None)
                form_files.pop(file_name, None)

        loaded_forms: dict[str, forms.FormDefinition] = {}
        for file_name, content in form_files.items():
            try:
                loaded_forms[file_name] = forms.load_form(content, file_name)
            except DeployError as exc:
                problems.extend(exc.problems)
        seen_ids: dict[str, str] = {}
        for file_name, form in loaded_forms.items():
            if form.id in seen_ids:
                problems.append(Problem(file_name, None, form.id, f"form id also used by {seen_ids[form.id]}"))
            seen_ids[form.id] = file_name

        with self.db.read() as s:
            known_form_ids = set(s.scalars(select(FormRow.form_id).distinct()))
            known_form_files = set(s.scalars(select(FormRow.file_name).distinct()))
        callee_cache: dict[str, bytes | None] = {}

        def resolve_callee(key: str) -> bytes | None:
            if key not in callee_cache:
                with self.db.read() as s:
                    xml = s.scalar(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.key == key)
                                   .order_by(ProcessDefinition.version.desc()).limit(1))
                callee_cache[key] = xml.encode() if xml is not None else None
            return callee_cache[key]

        loaded_files = []
        if bpmn_files:
            try:
                loaded_files = load_bpmn_files(
                    bpmn_files,
                    form_ids=known_form_ids | {f.id for f in loaded_forms.values()},
                    form_files=known_form_files | set(loaded_forms),
                    resolve_callee=resolve_callee,
                )
            except DeployError as exc:
                problems.extend(exc.problems)
        if problems:
            raise DeployError(problems)

        # Parse specs before opening the write transaction: it is the slow part.
        spec_sources = dict(bpmn_files)
        for key, xml in callee_cache.items():
            if xml is not None:
                spec_sources.setdefault(f"deployed:{key}.bpmn", xml)
        parsed = []
        for lf in loaded_files:
            for info in lf.processes:
                if not info.is_executable:
                    continue
                spec, subs = build_specs(spec_sources, info.key)
                parsed.append((lf, info, serializer.spec_to_json(spec, subs)))

        now = self.clock()
        deployment_id = str(uuid.uuid4())
        name = name or ", ".join(sorted(files))[:200]
        try:
            with self.db.write() as s:
                definitions, form_views = self._store_deployment(
                    s, deployment_id, name, source, actor, now, parsed, form_files, loaded_forms,
                    duplicate_filtering)
        except IntegrityError as exc:
            raise ConflictError("another deployment of the same process ran at the same time; "
                                "deploy again") from exc
        changed = any(d.is_new for d in definitions) or any(f.is_new for f in form_views)
        if changed:
            self._form_refs.clear()  # a new form may now be the "latest": this process sees it at once
        return DeployResult(deployment_id if changed else None, name, now if changed else None,
                            definitions, form_views)

    def _store_deployment(self, s: Session, deployment_id: str, name: str, source: str | None, actor: Actor,
                          now: datetime, parsed: list[Any], form_files: Mapping[str, bytes],
                          loaded_forms: Mapping[str, forms.FormDefinition],
                          duplicate_filtering: bool) -> tuple[list[DefinitionView], list[FormView]]:
        definitions: list[DefinitionView] = []
        form_views: list[FormView] = []
        new_defs: list[ProcessDefinition] = []
        new_forms: list[FormRow] = []
        for lf, info, spec_json in parsed:
            sha = _sha256(lf.content)
            latest = s.execute(select(ProcessDefinition).where(ProcessDefinition.key == info.key)
                               .order_by(ProcessDefinition.version.desc()).limit(1)).scalar_one_or_none()
            if latest is not None and duplicate_filtering and latest.sha256 == sha:
                definitions.append(_definition_view(latest))
                continue
            version = (latest.version + 1) if latest else 1
            row = ProcessDefinition(
                id=f"{info.key}:{version}:{deployment_id[:8]}", key=info.key, version=version,
                name=info.name or info.key, deployment_id=deployment_id, resource=lf.file_name, sha256=sha,
                bpmn_xml=lf.content.decode("utf-8"), spec_json=spec_json, info=_info_json(info),
                deployed_at=now)
            new_defs.append(row)
            definitions.append(_definition_view(row, is_new=True))
        for file_name, form in loaded_forms.items():
            sha = _sha256(form_files[file_name])
            latest_form = s.execute(select(FormRow).where(FormRow.form_id == form.id)
                                    .order_by(FormRow.version.desc()).limit(1)).scalar_one_or_none()
            if latest_form is not None and duplicate_filtering and latest_form.sha256 == sha:
                form_views.append(FormView(form.id, latest_form.version, latest_form.file_name,
                                           latest_form.deployment_id))
                continue
            version = (latest_form.version + 1) if latest_form else 1
            new_forms.append(FormRow(form_id=form.id, version=version, file_name=file_name,
                                     deployment_id=deployment_id, sha256=sha,
                                     schema_json=form_files[file_name].decode("utf-8"), deployed_at=now))
            form_views.append(FormView(form.id, version, file_name, deployment_id, is_new=True))
        if new_defs or new_forms:
            s.add(Deployment(id=deployment_id, name=name, source=source, deployed_at=now,
                             deployed_by=actor.username))
            s.flush()
            s.add_all(new_defs + new_forms)
            audit(s, at=now, actor=actor.username, action="deploy", data={
                "deployment_id": deployment_id, "definitions": [d.id for d in new_defs],
                "forms": [f"{f.form_id}:{f.version}" for f in new_forms]})
        return definitions, form_views

    def definitions(self, *, key: str | None = None, latest_only: bool = False) -> list[DefinitionView]:
        with self.db.read() as s:
            q = select(ProcessDefinition)
            if key:
                q = q.where(ProcessDefinition.key == key)
            if latest_only:
                latest = (select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v"))
                          .group_by(ProcessDefinition.key).subquery())
                q = q.join(latest, and_(latest.c.key == ProcessDefinition.key,
                                        latest.c.v == ProcessDefinition.version))
            rows = s.scalars(q.order_by(ProcessDefinition.key, ProcessDefinition.version)).all()
            return [_definition_view(r) for r in rows]

    def _resolve_definition(self, s: Session, key: str | None, definition_id: str | None) -> ProcessDefinition:
        if definition_id:
            row = s.get(ProcessDefinition, definition_id)
        elif key:
            row = s.execute(select(ProcessDefinition).where(ProcessDefinition.key == key)
                            .order_by(ProcessDefinition.version.desc()).limit(1)).scalar_one_or_none()
        else:
            raise AlurError("give a process key or a definition id")
        if row is None:
            raise NotFound(f"no process definition {definition_id or key!r}; deploy it first")
        return row

    # ------------------------------------------------------------------ start

    def start(self, key: str | None = None, *, definition_id: str | None = None, unit: str,
              business_key: str | None = None, variables: Mapping[str, Any] | None = None,
              actor: Actor = SYSTEM) -> InstanceView:
        """Start an instance of the latest version of `key` (or of `definition_id`) in unit `unit`."""
        clean_vars = forms.validate_submission(None, dict(variables or {}))
        if business_key is not None and len(business_key) > 200:
            raise AlurError("business key: at most 200 characters")
        if business_key is not None and (problem := forms.text_problem(business_key, 200, multiline=False,
                                                                         locale="en")):
            raise AlurError(f"business key: {problem}")  # NUL or a lone surrogate would break the database
        with self.db.write() as s:
            unit_row = accounts.get_unit(s, unit)
            if not actor.may_start_in(unit_row.id):
                raise PermissionDenied(f"{actor.username} holds no role in unit {unit!r}")
            row = self._resolve_definition(s, key, definition_id)
            loaded = self.specs.get(s, row.id)
            calendar = self.calendar_for(s, unit_row.id)
            workflow = AlurWorkflow(loaded.spec, loaded.subprocess_specs,
                                    script_engine=self._script_engine(calendar))
            workflow.data.update(copy.deepcopy(clean_vars))
            workflow.task_tree.data.update(copy.deepcopy(clean_vars))
            try:
                workflow.do_engine_steps()
            except SpiffWorkflowException as exc:  # e.g. a call nested too deep (engine/workflow.py)
                raise ProcessError(f"the process cannot start: {exc}") from exc
            now = self.clock()
            instance_id = str(uuid.uuid4())
            instance = ProcessInstance(
                id=instance_id, definition_id=row.id, process_key=row.key, business_key=business_key,
                unit_id=unit_row.id, status="running", started_at=now, started_by=actor.username,
                state="{}", version=0)
            s.add(instance)
            s.flush()
            ref = InstanceRef(instance_id, row.id, row.key, unit_row.id)
            save_instance(s, ref, workflow, expected_version=0, now=now)
            sync_tasks(s, ref, workflow, now=now, calendar=calendar, actor=actor.username)
            audit(s, at=now, actor=actor.username, action="start", instance_id=instance_id,
                  data={"definition_id": row.id, "business_key": business_key, "unit": unit,
                        "variables": clean_vars or None})
            return self._instance_view(s, instance_id, loaded=loaded)

    # ------------------------------------------------------------------ tasks

    def _task_rows_query(self):  # type: ignore[no-untyped-def]
        """Flat rows (the task's columns plus `business_key`, `process_name`, `unit_code`), not ORM objects:
        the inbox reads 25 at a time on every page view, and building entities was most of that cost."""
        return _TASK_ROWS

    def _candidate_filter(self, actor: Actor, *, unassigned_only: bool = True):  # type: ignore[no-untyped-def]
        """SQL condition: tasks the actor is a candidate for through roles, substitutions or name; by default
        only unclaimed ones (those they may claim)."""
        by_unit: dict[int, set[str]] = {}
        for unit_id, role in actor.unit_roles:
            by_unit.setdefault(unit_id, set()).add(role)
        conds = [and_(Task.unit_id == u, Task.candidate_role.in_(sorted(roles))) for u, roles in by_unit.items()]
        extra = [TaskCandidate.username == actor.username]
        extra += [and_(Task.unit_id == u, TaskCandidate.role.in_(sorted(r))) for u, r in by_unit.items()]
        conds.append(exists().where(TaskCandidate.task_id == Task.id, or_(*extra)))
        return and_(Task.assignee.is_(None), or_(*conds)) if unassigned_only else or_(*conds)

    def tasks_for(self, actor: Actor, *, process_key: str | None = None, unit: str | None = None,
                  include_claimable: bool = True, limit: int = 50, offset: int = 0) -> list[TaskView]:
        """READY tasks assigned to the actor, then those they may claim; earliest deadline first."""
        with self.db.read() as s:
            mine = Task.assignee == actor.username
            cond = or_(mine, self._candidate_filter(actor)) if include_claimable else mine
            q = self._task_rows_query().where(Task.state == "READY", cond)
            if process_key:
                q = q.where(Task.process_key == process_key)
            if unit:
                q = q.where(Unit.code == unit)
            q = q.order_by(Task.due_at.is_(None), Task.due_at, Task.created_at, Task.id)
            rows = s.connection().execute(q.limit(max(1, min(limit, 500))).offset(max(0, offset))).all()
            return [_task_view(r) for r in rows]

    def task(self, task_id: str, actor: Actor = SYSTEM) -> TaskView:
        with self.db.read() as s:
            row = s.connection().execute(self._task_rows_query().where(Task.id == task_id)).one_or_none()
            if row is None:
                raise NotFound(f"task {task_id!r} does not exist")
            if not (self._may_work(s, actor, row) or self._may_view_unit(s, actor, row.unit_id)):
                raise NotFound(f"task {task_id!r} does not exist")  # do not reveal others' tasks
            return _task_view(row)

    def _may_work(self, s: Session, actor: Actor, task: Any) -> bool:
        return accounts.may_work(s, actor, task)  # the one rule: a claim alone grants nothing

    def _may_view_unit(self, s: Session, actor: Actor, unit_id: int) -> bool:
        if actor.is_admin or unit_id in actor.unit_ids:  # the unit itself: no need to read the unit tree
            return True
        return any(u in actor.unit_ids for u in accounts.unit_ancestors(s, unit_id))

    def _load_task_for_change(self, s: Session, task_id: str, actor: Actor) -> Any:
        """The task joined with its instance (one query), if READY and the actor may work on it."""
        task = s.connection().execute(_TASK_FOR_CHANGE, {"tid": task_id}).one_or_none()
        if task is None or not (self._may_work(s, actor, task) or self._may_view_unit(s, actor, task.unit_id)):
            raise NotFound(f"task {task_id!r} does not exist")
        if task.state != "READY":
            raise ConflictError(f"task {task_id} is already {task.state.lower()}")
        if not self._may_work(s, actor, task):
            who = f"claimed by {task.assignee}" if task.assignee else f"for role {task.candidate_role!r}"
            raise PermissionDenied(f"task {task_id} is {who}; {actor.username} may not work on it")
        return task

    def claim(self, task_id: str, actor: Actor) -> TaskView:
        with self.db.write() as s:
            task = self._load_task_for_change(s, task_id, actor)
            if task.status != "running":  # as in Camunda: a suspended instance's tasks cannot be claimed
                raise InvalidState(f"instance {task.instance_id} is {task.status}")
            if task.assignee == actor.username:
                return self.task(task_id, actor)
            now = self.clock()
            done = s.execute(update(Task).where(Task.id == task_id, Task.assignee.is_(None),
                                                Task.state == "READY")
                             .values(assignee=actor.username, claimed_at=now)).rowcount  # type: ignore[attr-defined]
            if done != 1:
                raise ConflictError(f"task {task_id} was claimed by someone else first")
            audit(s, at=now, actor=actor.username, action="claim", instance_id=task.instance_id, task_id=task_id)
        return self.task(task_id, actor)

    def unclaim(self, task_id: str, actor: Actor) -> TaskView:
        with self.db.write() as s:
            task = s.get(Task, task_id)
            if task is None or not (actor.is_system or task.assignee == actor.username):
                raise NotFound(f"task {task_id!r} is not claimed by {actor.username}")
            if task.state != "READY":
                raise ConflictError(f"task {task_id} is already {task.state.lower()}")
            now = self.clock()
            # Conditional, like claim: a completion or another unclaim that committed since our read wins.
            done = s.execute(update(Task).where(Task.id == task_id, Task.state == "READY",
                                                Task.assignee == task.assignee)
                             .values(assignee=None, claimed_at=None)).rowcount  # type: ignore[attr-defined]
            if done != 1:
                raise ConflictError(f"task {task_id} was changed by someone else at the same time; reload")
            audit(s, at=now, actor=actor.username, action="unclaim", instance_id=task.instance_id,
                  task_id=task_id)
        return self.task(task_id, SYSTEM)

    def task_page(self, task_id: str, actor: Actor, *, documents: bool = True,
                  previous: bool = False) -> TaskPage:
        """Everything the task page needs, in one read and few round trips; the same checks as `task`,
        `may_work`, `task_form` and `attachments_for`/`comments_for` (with `documents`) each make on their own,
        plus the previous round's data (with `previous`, only when the actor may work on it)."""
        with self.db.read() as s:
            # The instance's unit and starter ride along: the documents' visibility check needs no query of its own.
            query = self._task_rows_query().add_columns(ProcessInstance.unit_id.label("instance_unit_id"),
                                                        ProcessInstance.started_by)
            if previous:  # in the same round trip; used only if the actor may work on the step
                query = query.add_columns(_PREVIOUS_SUBMISSION.label("previous_data"))
            row = s.connection().execute(query.where(Task.id == task_id)).one_or_none()
            if row is None:
                raise NotFound(f"task {task_id!r} does not exist")
            task = row
            instance_row = (row.instance_unit_id, row.started_by)
            allowed = self._may_work(s, actor, task)
            if not (allowed or self._may_view_unit(s, actor, task.unit_id)):
                raise NotFound(f"task {task_id!r} does not exist")  # do not reveal others' tasks
            may_work = task.state == "READY" and allowed
            loaded = self.specs.get(s, task.definition_id)
            form = self._form_for(s, loaded, self._task_spec(s, loaded, task))
            attachments = comments = None
            if documents:
                attachments, comments = self._documents(s, task.instance_id, actor, instance_row)
            last = None
            if previous and may_work and form is not None:
                last = dict(row.previous_data or {})
            return TaskPage(_task_view(row), may_work, form, loaded.info, attachments, comments, last)

    def instance_documents(self, instance_id: str, actor: Actor) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(attachments_for, comments_for) in one read."""
        with self.db.read() as s:
            return self._documents(s, instance_id, actor)

    def _documents(self, s: Session, instance_id: str, actor: Actor, instance_row: tuple[int, str] | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if not self._may_view_instance(s, actor, instance_id, instance_row):
            raise NotFound(f"instance {instance_id!r} does not exist")
        return self._read_documents(s, instance_id)

    @staticmethod
    def _read_documents(s: Session, instance_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The instance's attachments and comments, each oldest first, with their step's name: one statement."""
        attachments: list[dict[str, Any]] = []
        comments: list[dict[str, Any]] = []
        for r in s.connection().execute(_DOCUMENTS, {"iid": instance_id}):
            if r.kind == "a":
                attachments.append({
                    "id": r.doc_id, "sha256": r.sha256, "size": r.size, "content_type": r.content_type, "name": r.text,
                    "instance_id": instance_id, "task_id": r.task_id, "task_name": r.task_name,
                    "uploaded_by": r.who, "uploaded_at": r.at})
            else:
                comments.append({"id": r.doc_id, "task_id": r.task_id, "task_name": r.task_name, "author": r.who,
                                 "body": r.text, "created_at": r.at})
        return attachments, comments

    def _task_spec(self, s: Session, loaded: LoadedDefinition, task: Any) -> Any:
        """The spec of a task row. An element id found in exactly one of the definition's specs is that spec;
        only an id used twice (a called SOP reusing the caller's ids) needs the instance deserialized."""
        found = [spec for spec in (loaded.spec, *loaded.subprocess_specs.values())
                 if task.element_id in spec.task_specs]
        if len(found) == 1:
            return found[0].task_specs[task.element_id]
        state = s.scalar(select(ProcessInstance.state).where(ProcessInstance.id == task.instance_id))
        workflow = serializer.instance_from_json(state, loaded.spec, loaded.subprocess_specs,
                                                 SafeScriptEngine(clock=self.clock))
        spiff_task = find_task(workflow, uuid.UUID(task.id))  # a finished step may have been pruned
        return spiff_task.task_spec if spiff_task is not None else _find_spec(loaded, task.element_id)

    def task_form(self, task_id: str, actor: Actor = SYSTEM) -> forms.FormDefinition | None:
        with self.db.read() as s:
            task = s.get(Task, task_id)
            if task is None or not (self._may_work(s, actor, task) or self._may_view_unit(s, actor, task.unit_id)):
                raise NotFound(f"task {task_id!r} does not exist")
            loaded = self.specs.get(s, task.definition_id)
            return self._form_for(s, loaded, self._task_spec(s, loaded, task))

    def _form_for(self, s: Session, loaded: LoadedDefinition, task_spec: Any) -> forms.FormDefinition | None:
        ext = getattr(task_spec, "extensions", None) or {}
        query = None
        if ext.get("formRef"):
            query = select(FormRow.id).where(FormRow.form_id == ext["formRef"])
            binding = ext.get("formRefBinding") or "latest"
            if binding == "deployment":
                query = query.where(FormRow.deployment_id == loaded.deployment_id)
            elif binding == "version" and str(ext.get("formVersion") or "").isdigit():
                query = query.where(FormRow.version == int(ext["formVersion"]))
            query = query.order_by(FormRow.version.desc())
        elif str(ext.get("formKey") or "").startswith(FORM_KEY_PREFIX):
            file_name = ext["formKey"][len(FORM_KEY_PREFIX):]
            query = select(FormRow.id).where(FormRow.file_name == file_name).order_by(
                (FormRow.deployment_id == loaded.deployment_id).desc(), FormRow.version.desc())
        if query is not None:
            form_row_id = self._resolve_form_ref(s, loaded, ext, query)
            if form_row_id is not None:
                cached = self._forms.get(form_row_id)
                if cached is None:  # form versions never change: parse each one once per process
                    row = s.get(FormRow, form_row_id)
                    assert row is not None
                    cached = forms.load_form(row.schema_json.encode(), row.file_name, stored=True)
                    self._forms[form_row_id] = cached
                return cached
        spiff_form = getattr(task_spec, "form", None)
        if spiff_form is not None and getattr(spiff_form, "fields", None):
            found = self._spiff_forms.get(spiff_form)
            if found is None:  # camunda:formData is part of the immutable spec: convert it once
                found = self._spiff_forms[spiff_form] = forms.form_from_spiff(spiff_form)
            return found
        return None

    def _resolve_form_ref(self, s: Session, loaded: LoadedDefinition, ext: Mapping[str, Any], query: Any
                          ) -> int | None:
        """The form row a task's formRef/formKey points at (`query`, built by `_form_for` from `ext` and the
        deployment), remembered per process: for good when the answer cannot change (a pinned version, or a
        form of the definition's own deployment that a formKey or a "deployment" binding prefers: stored
        forms are never altered), else for FORM_REF_SECONDS, as a newer form changes what "latest" means."""
        binding = (ext.get("formRefBinding") or "latest") if ext.get("formRef") else "formKey"
        key = (loaded.deployment_id, ext.get("formRef"), ext.get("formKey"), binding, ext.get("formVersion"))
        hit = self._form_refs.get(key)
        now = time.monotonic()
        if hit is not None and (hit[1] is None or now < hit[1]):
            return hit[0]
        row = s.connection().execute(
            query.with_only_columns(FormRow.id, FormRow.deployment_id).limit(1)).one_or_none()
        if row is None:
            return None
        fixed = (binding == "version" and str(ext.get("formVersion") or "").isdigit()) or (
            binding in ("deployment", "formKey") and row.deployment_id == loaded.deployment_id)
        if len(self._form_refs) > 10_000:  # bounded: definitions come and go over a process's life
            self._form_refs.clear()
        self._form_refs[key] = (int(row.id), None if fixed else now + FORM_REF_SECONDS)
        return int(row.id)

    def complete(self, task_id: str, actor: Actor, data: Mapping[str, Any] | None = None, *,
                 late_reason: str | None = None, locale: str = "id", web_form: bool = False) -> InstanceView:
        """Complete a READY task with form data (validated against its form), then run the engine on.

        `web_form`: `data` is a submitted HTML form (a MultiDict with the CSRF token and buttons beside the
        fields): only the form's own fields are read, and typed date-times are in the unit's time zone.
        Problems with the data and a missing or unfit late reason come together in one FormValidationError,
        with messages in `locale`."""
        late_reason = (late_reason or "").strip() or None
        errors: dict[str, list[str]] = {}
        if late_reason and (problem := forms.text_problem(late_reason, 2000, locale=locale)):
            errors["late_reason"] = [problem]
        with self.db.write() as s:
            task = self._load_task_for_change(s, task_id, actor)
            if task.status != "running":
                raise InvalidState(f"instance {task.instance_id} is {task.status}")
            now = self.clock()
            if task.due_at is not None and now > task.due_at and not late_reason:
                errors["late_reason"] = [forms.message("required", locale)]
            loaded = self.specs.get(s, task.definition_id)
            calendar = self.calendar_for(s, task.unit_id)
            workflow = serializer.instance_from_json(task.instance_state, loaded.spec, loaded.subprocess_specs,
                                                     self._script_engine(calendar), instance_id=task.instance_id)
            spiff_task = workflow.get_task_from_id(uuid.UUID(task_id))
            if spiff_task is None or spiff_task.state != TaskState.READY:
                raise ConflictError(f"task {task_id} is no longer ready")
            # The form of this task's own spec: a called SOP may reuse the caller's element ids (Step_1…).
            form = self._form_for(s, loaded, spiff_task.task_spec)
            if web_form:
                data = forms.only_form_fields(form, data or {})
                tz: tzinfo = calendar.zone
            else:
                data, tz = dict(data or {}), forms.DEFAULT_TIMEZONE
            try:
                cleaned = forms.validate_submission(form, data, locale=locale, tz=tz)
            except FormValidationError as exc:
                errors = {**exc.errors, **errors}
            if errors:
                raise FormValidationError(errors)
            # Deep copy: SpiffWorkflow's data merge is shallow, later steps must not mutate this step's data.
            spiff_task.data.update(copy.deepcopy(cleaned))
            try:
                spiff_task.run()
                workflow.do_engine_steps()
            except SpiffWorkflowException as exc:  # e.g. a gateway condition naming a variable nobody set
                raise ProcessError(f"the process cannot continue after this step: {exc}") from exc
            ref = InstanceRef(task.instance_id, task.definition_id, task.process_key, task.unit_id)
            status = instance_status(workflow)
            version = save_instance(s, ref, workflow, expected_version=task.version, now=now, status=status)
            ready = sync_tasks(s, ref, workflow, now=now, calendar=calendar, actor=actor.username,
                               completed={task_id: cleaned}, assignees={task_id: task.assignee},
                               late_reasons={task_id: late_reason} if late_reason else None)
            audit(s, at=now, actor=actor.username, action="complete", instance_id=task.instance_id, task_id=task_id,
                  data={"element_id": task.element_id, "data": cleaned, "late_reason": late_reason})
            if status == "completed":
                audit(s, at=now, actor=None, action="end", instance_id=task.instance_id)
        return InstanceView(
            id=task.instance_id, definition_id=task.definition_id, process_key=task.process_key,
            process_name=loaded.name, business_key=task.business_key, unit_id=task.unit_id,
            unit_code=task.unit_code, status=status, started_at=task.started_at, started_by=task.started_by,
            ended_at=now if status == "completed" else None, version=version,
            next_due_at=next_timer_due(workflow) if status == "running" else None, ready_task_ids=ready,
            completed_step=task.name)

    # ------------------------------------------------------------------ instances

    def instance(self, instance_id: str, actor: Actor = SYSTEM) -> InstanceView:
        with self.db.read() as s:
            if not self._may_view_instance(s, actor, instance_id):
                raise NotFound(f"instance {instance_id!r} does not exist")
            return self._instance_view(s, instance_id)

    def _instance_view(self, s: Session, instance_id: str, *,
                       loaded: LoadedDefinition | None = None, with_details: bool = True) -> InstanceView:
        inst, def_name, unit_code = s.execute(
            select(ProcessInstance, ProcessDefinition.name, Unit.code)
            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
            .join(Unit, Unit.id == ProcessInstance.unit_id)
            .where(ProcessInstance.id == instance_id)).one()
        s.refresh(inst)  # the row was written with Core statements in this transaction
        tasks: list[TaskView] = []
        audit_rows: list[AuditView] = []
        data: dict[str, Any] = {}
        if with_details:
            rows = s.connection().execute(self._task_rows_query().where(Task.instance_id == instance_id).order_by(
                Task.created_at, Task.completed_at.is_(None), Task.completed_at)).all()
            tasks = [_task_view(r) for r in rows]
            from engine.models import AuditEvent

            audit_rows = [AuditView(a.at, a.actor, a.action, a.task_id, a.data) for a in s.scalars(
                select(AuditEvent).where(AuditEvent.instance_id == instance_id).order_by(AuditEvent.id))]
            loaded = loaded or self.specs.get(s, inst.definition_id)
            workflow = serializer.instance_from_json(inst.state, loaded.spec, loaded.subprocess_specs,
                                                     SafeScriptEngine(clock=self.clock), instance_id=inst.id)
            data = _instance_data(workflow)
        return InstanceView(
            id=inst.id, definition_id=inst.definition_id, process_key=inst.process_key, process_name=def_name,
            business_key=inst.business_key, unit_id=inst.unit_id, unit_code=unit_code, status=inst.status,
            started_at=inst.started_at, started_by=inst.started_by, ended_at=inst.ended_at,
            version=inst.version, next_due_at=inst.next_due_at, tasks=tasks, audit=audit_rows, data=data)

    # ------------------------------------------------------------------ web support: accounts, inbox, documents

    def login(self, username: str, password: str) -> str | None:
        """The username if the password is right and the account active (rehashing old hashes), else None."""
        with self.db.read() as s:  # a write only in the rare case of a rehash
            user = accounts.verify_password(s, username, password)
            return user.username if user is not None else None

    def verify_credentials(self, username: str, password: str) -> str | None:
        """The account's credentials fingerprint if the password is right and the account active, else None
        (REST Basic: what it caches is what it checked)."""
        with self.db.read() as s:
            user = accounts.verify_password(s, username, password)
            return accounts.credentials_fingerprint(user.password_hash, user.credentials_version) if user else None

    def session_user(self, username: str) -> tuple[Actor, dict[str, Any]] | None:
        """The actor plus what pages show about the user (name, locale, the bell's unread count up to
        UNREAD_CAP), in one round trip; None if unknown or inactive.
        `password_fingerprint` changes with the password and the credentials version (reset, disable), which
        ends every other session. The same actor as
        `accounts.load_actor` (roles, plus today's Plh/Plt for roles not held), read with one statement
        because every web request needs it."""
        with self.db.read() as s:
            rows = s.connection().execute(_SESSION_USER, {"username": username, "today": self._today()}).all()
        user = next((r for r in rows if r.row == "user"), None)
        if user is None:
            return None
        unit_roles = {(r.unit_id, r.a) for r in rows if r.row == "role" and r.unit_id is not None}
        global_roles = frozenset(r.a for r in rows if r.row == "role" and r.unit_id is None)
        acting: dict[tuple[int, str], str] = {}
        for r in rows:
            if r.row == "sub" and (r.unit_id, r.a) not in unit_roles:
                acting[(r.unit_id, r.a)] = r.b
        unit_roles |= set(acting)
        actor = Actor(username=username, user_id=user.user_id, unit_roles=frozenset(unit_roles),
                      global_roles=global_roles, acting=acting)
        unread = next((r.unit_id for r in rows if r.row == "bell"), 0)
        return actor, {"full_name": user.a, "email": user.b, "locale": user.c,
                       "password_fingerprint": accounts.credentials_fingerprint(user.d, user.e),
                       "unread": int(unread or 0)}

    def change_password(self, username: str, current: str, new: str) -> None:
        """The user's own change: other sessions, cached REST credentials and API tokens end (audited)."""
        with self.db.write() as s:
            if accounts.verify_password(s, username, current) is None:
                raise PermissionDenied("the current password is wrong")
            accounts.set_password(s, username, new, now=self.clock(), actor=username, action="password_changed")

    def rest_actor(self, username: str) -> tuple[Actor, str]:
        """The actor of a REST call and the account's credentials fingerprint (accounts.credentials_fingerprint),
        with the same statements as `actor`: the REST credentials cache checks it on every hit."""
        with self.db.read() as s:
            return accounts.load_actor_and_fingerprint(s, username, today=self._today())

    def set_locale(self, username: str, locale: str) -> None:
        if locale not in forms.LOCALES:
            raise AlurError(f"unknown locale {locale!r}")
        with self.db.write() as s:
            s.execute(update(User).where(User.username == username).values(locale=locale))

    def units(self) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [{"id": u.id, "code": u.code, "name": u.name, "timezone": u.timezone, "parent_id": u.parent_id}
                    for u in s.scalars(select(Unit).order_by(Unit.name))]

    def inbox(self, actor: Actor, *, process_key: str | None = None, unit: str | None = None,
              limit: int = 50, offset: int = 0, count_cap: int = COUNT_CAP) -> InboxPage:
        """READY tasks: the actor's own first, then those they may claim, each by deadline (see inbox_query)."""
        limit = max(1, min(limit, 500))
        offset = max(0, offset)
        with self.db.read() as s:
            found = inbox_rows(s, actor, _TASK_ROWS, process_key=process_key, unit=unit, limit=limit,
                               offset=offset, count_cap=count_cap)
        return InboxPage(tasks=[_task_view(r) for r in found.rows], total=found.total, capped=found.capped)

    def may_work(self, task_id: str, actor: Actor) -> bool:
        """Whether the actor may complete (or claim) this READY task now."""
        with self.db.read() as s:
            task = s.get(Task, task_id)
            return task is not None and task.state == "READY" and self._may_work(s, actor, task)

    def definition_info(self, definition_id: str) -> dict[str, Any]:
        """Process and user-task metadata (`sop.*` properties, lanes) as stored at deploy."""
        with self.db.read() as s:
            return self.specs.get(s, definition_id).info

    def _may_view_instance(self, s: Session, actor: Actor, instance_id: str,
                           instance_row: tuple[int, str] | None = None) -> bool:
        """Instances of the units the actor may see, those they started (a designer's test run in any
        unit), and those they worked on. `instance_row`: the instance's (unit_id, started_by) if already read."""
        if instance_row is None:
            instance_row = s.execute(select(ProcessInstance.unit_id, ProcessInstance.started_by)
                                     .where(ProcessInstance.id == instance_id)).one_or_none()
        if instance_row is None:
            return False
        unit_id, started_by = instance_row
        if started_by == actor.username or self._may_view_unit(s, actor, unit_id):
            return True
        # Candidate users outside the unit still see the instances they worked on, and those with an open step
        # they may still work: a claim whose right is gone (role revoked, Plh ended) shows nothing.
        worked = s.execute(select(Task.id, Task.instance_id, Task.assignee, Task.candidate_role, Task.unit_id,
                                  Task.state, Task.completed_by)
                           .where(Task.instance_id == instance_id, or_(Task.assignee == actor.username,
                                                                       Task.completed_by == actor.username))
                           .limit(20)).all()
        return any(t.completed_by == actor.username or (t.state == "READY" and self._may_work(s, actor, t))
                   for t in worked)

    def add_comment(self, task_id: str, actor: Actor, body: str) -> None:
        body = (body or "").strip()
        if not body:
            raise FormValidationError({"body": [forms.message("required")]})
        if problem := forms.text_problem(body, 5000):
            raise FormValidationError({"body": [problem]})
        with self.db.write() as s:
            task = s.get(Task, task_id)
            if task is None or not (self._may_work(s, actor, task) or self._may_view_unit(s, actor, task.unit_id)):
                raise NotFound(f"task {task_id!r} does not exist")
            now = self.clock()
            s.add(Comment(instance_id=task.instance_id, task_id=task_id, author=actor.username, body=body,
                          created_at=now))
            audit(s, at=now, actor=actor.username, action="comment", instance_id=task.instance_id, task_id=task_id)

    def comments_for(self, instance_id: str, actor: Actor) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return self._documents(s, instance_id, actor)[1]

    def add_attachment(self, task_id: str, actor: Actor, checked: CheckedFile, store: AttachmentStore
                       ) -> dict[str, Any]:
        """Attach a checked upload to a READY task the actor may work on. The file is written only after
        that check, inside the transaction, and removed again if the row cannot be stored or the COMMIT
        fails (a full disk, a lost connection): no file without its row."""
        written = False
        try:
            with self.db.write() as s:
                task = self._load_task_for_change(s, task_id, actor)
                written = not store.exists(checked.sha256)
                store.put(checked)
                now = self.clock()
                row = Attachment(sha256=checked.sha256, size=checked.size, content_type=checked.content_type,
                                 original_name=checked.name, instance_id=task.instance_id, task_id=task_id,
                                 uploaded_by=actor.username, uploaded_at=now)
                s.add(row)
                s.flush()
                audit(s, at=now, actor=actor.username, action="attach", instance_id=task.instance_id,
                      task_id=task_id, data={"attachment_id": row.id, "sha256": checked.sha256,
                                             "name": checked.name, "size": checked.size})
                result = _attachment_dict(row, None)
        except BaseException:
            if written:
                store.discard(checked.sha256)
            raise
        return result

    def attachments_for(self, instance_id: str, actor: Actor) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return self._documents(s, instance_id, actor)[0]

    def attachment(self, attachment_id: int, actor: Actor) -> dict[str, Any]:
        with self.db.read() as s:
            row = s.get(Attachment, attachment_id)
            if row is None or not self._may_view_instance(s, actor, row.instance_id):
                raise NotFound(f"attachment {attachment_id} does not exist")
            return _attachment_dict(row, None)

    def add_substitution(self, actor: Actor, username: str, role: str, unit: str, starts_on: date,
                         ends_on: date, *, kind: str = "Plh", note: str = "") -> None:
        """Plh/Plt: `username` acts for `role` in `unit` on those days (inclusive). Admins only."""
        if not actor.is_admin:
            raise PermissionDenied("adding a substitution needs the admin role")
        if problem := forms.text_problem(note, 500):
            raise FormValidationError({"note": [problem]})
        with self.db.write() as s:
            accounts.add_substitution(s, username, role.strip(), unit, starts_on, ends_on, kind=kind, note=note)
            audit(s, at=self.clock(), actor=actor.username, action="substitution", data={
                "username": username, "role": role, "unit": unit, "kind": kind,
                "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat()})

    def substitutions(self, actor: Actor) -> list[dict[str, Any]]:
        if not actor.is_admin:
            raise PermissionDenied("listing substitutions needs the admin role")
        with self.db.read() as s:
            rows = s.execute(select(Substitution, User.username, Unit.code, Unit.name)
                             .join(User, User.id == Substitution.user_id).join(Unit, Unit.id == Substitution.unit_id)
                             .order_by(Substitution.starts_on.desc(), Substitution.id.desc()).limit(200)).all()
            return [{"username": u, "role": sub.role, "unit_code": code, "unit_name": name, "kind": sub.kind,
                     "starts_on": sub.starts_on, "ends_on": sub.ends_on, "note": sub.note}
                    for sub, u, code, name in rows]

    def usernames(self, actor: Actor) -> list[str]:
        if not actor.is_admin:
            raise PermissionDenied("listing users needs the admin role")
        with self.db.read() as s:
            return list(s.scalars(select(User.username).where(User.is_active.is_(True)).order_by(User.username)))

    def notifications_for(self, actor: Actor, *, unread_only: bool = True, limit: int = 20,
                          locale: str = "id") -> list[dict[str, Any]]:
        """The actor's notifications, newest first, each `message` in `locale` where it can be rebuilt."""
        with self.db.read() as s:
            q = select(Notification).where(Notification.username == actor.username)
            if unread_only:
                q = q.where(Notification.read_at.is_(None))
            rows = s.scalars(q.order_by(Notification.id.desc()).limit(max(1, min(limit, 200))))
            return [{"id": n.id, "kind": n.kind, "message": notify.message_in(locale, n.kind, n.data, n.message),
                     "task_id": n.task_id,
                     "instance_id": n.instance_id, "created_at": n.created_at, "read_at": n.read_at} for n in rows]


    # ------------------------------------------------------------------ queries and changes for the REST API

    def _visible_units(self, s: Session, actor: Actor) -> frozenset[int] | None:
        """The actor's units and every unit below them (a supervisor sees the units under theirs);
        None means every unit (admin)."""
        if actor.is_admin:
            return None
        children: dict[int, list[int]] = {}
        for unit_id, parent_id in s.execute(select(Unit.id, Unit.parent_id)):
            if parent_id is not None:
                children.setdefault(parent_id, []).append(unit_id)
        seen: set[int] = set()
        stack = list(actor.unit_ids)
        while stack:
            unit_id = stack.pop()
            if unit_id not in seen:
                seen.add(unit_id)
                stack.extend(children.get(unit_id, ()))
        return frozenset(seen)

    def instance_statuses(self, instance_ids: list[str]) -> dict[str, str]:
        """Status of each of these instances (running, suspended, …). Ids the caller got from views the actor
        may see (e.g. the tasks of a REST task list), so no rights are checked here."""
        if not instance_ids:
            return {}
        with self.db.read() as s:
            return dict(s.execute(select(ProcessInstance.id, ProcessInstance.status)
                                  .where(ProcessInstance.id.in_(sorted(set(instance_ids))))).all())

    def definition(self, definition_id: str) -> DefinitionView:
        with self.db.read() as s:
            row = s.get(ProcessDefinition, definition_id)
            if row is None:
                raise NotFound(f"no process definition {definition_id!r}")
            return _definition_view(row)

    def definition_xml(self, definition_id: str) -> str:
        with self.db.read() as s:
            xml = s.scalar(select(ProcessDefinition.bpmn_xml).where(ProcessDefinition.id == definition_id))
            if xml is None:
                raise NotFound(f"no process definition {definition_id!r}")
            return xml

    def deployments(self, *, deployment_id: str | None = None, name: str | None = None,
                    source: str | None = None, first: int = 0, limit: int = 100
                    ) -> tuple[list[dict[str, Any]], int]:
        """Deployments, oldest first, and their total."""
        conds = []
        if deployment_id:
            conds.append(Deployment.id == deployment_id)
        if name:
            conds.append(Deployment.name == name)
        if source:
            conds.append(Deployment.source == source)
        with self.db.read() as s:
            total = s.scalar(select(func.count()).select_from(Deployment).where(*conds)) or 0
            rows = s.scalars(select(Deployment).where(*conds).order_by(Deployment.deployed_at, Deployment.id)
                             .offset(max(0, first)).limit(max(0, limit))).all() if limit > 0 else []
            return [{"id": d.id, "name": d.name, "source": d.source, "deployed_at": d.deployed_at,
                     "deployed_by": d.deployed_by} for d in rows], total

    def delete_deployment(self, deployment_id: str, actor: Actor, *, cascade: bool = False) -> None:
        """Delete a deployment with its definitions and forms. Refused (ConflictError) while any instance
        of its definitions exists unless `cascade`, which deletes those instances with their tasks (the
        audit trail stays); refused always when another deployment's process calls a key or uses a form
        that only this deployment has."""
        if not actor.is_designer:
            raise PermissionDenied("deleting a deployment needs the designer role")
        with self.db.write() as s:
            if s.get(Deployment, deployment_id) is None:
                raise NotFound(f"deployment {deployment_id!r} does not exist")
            defs = s.execute(select(ProcessDefinition.id, ProcessDefinition.key)
                             .where(ProcessDefinition.deployment_id == deployment_id)).all()
            def_ids = [d.id for d in defs]
            counts: dict[str, int] = {status: n for status, n in s.execute(
                select(ProcessInstance.status, func.count()).where(ProcessInstance.definition_id.in_(def_ids))
                .group_by(ProcessInstance.status))} if def_ids else {}
            if counts and not cascade:
                raise ConflictError(
                    f"deployment {deployment_id} has {sum(counts.values())} process instance(s), "
                    f"{counts.get('running', 0)} of them running; delete with cascade=true to delete them too")
            keys = {d.key for d in defs}
            kept_keys = set(s.scalars(select(ProcessDefinition.key).where(
                ProcessDefinition.key.in_(keys), ProcessDefinition.deployment_id != deployment_id))) if keys else set()
            forms_here = s.execute(select(FormRow.id, FormRow.form_id, FormRow.file_name)
                                   .where(FormRow.deployment_id == deployment_id)).all()
            kept_forms = s.execute(select(FormRow.form_id, FormRow.file_name)
                                   .where(FormRow.deployment_id != deployment_id)).all()
            lost_keys = keys - kept_keys
            lost_form_ids = {f.form_id for f in forms_here} - {f.form_id for f in kept_forms}
            lost_files = {f.file_name for f in forms_here} - {f.file_name for f in kept_forms}
            if lost_keys or lost_form_ids or lost_files:
                for other_id, info in s.execute(select(ProcessDefinition.id, ProcessDefinition.info)
                                                .where(ProcessDefinition.deployment_id != deployment_id)):
                    info = info or {}
                    needs = set(info.get("called_keys") or []) & lost_keys
                    for task in (info.get("user_tasks") or {}).values():
                        ext = task.get("extensions") or {}
                        if ext.get("formRef") in lost_form_ids:
                            needs.add(f"form {ext['formRef']}")
                        form_key = str(ext.get("formKey") or "")
                        if form_key.startswith(FORM_KEY_PREFIX) and form_key[len(FORM_KEY_PREFIX):] in lost_files:
                            needs.add(f"form file {form_key[len(FORM_KEY_PREFIX):]}")
                    if needs:
                        raise ConflictError(f"process definition {other_id} still needs {', '.join(sorted(needs))}, "
                                            f"which only deployment {deployment_id} has")
            now = self.clock()
            deleted_instances = 0
            if def_ids and counts:
                # Tasks, candidates, comments and attachment rows go with their instance (ON DELETE CASCADE).
                deleted_instances = s.execute(delete(ProcessInstance).where(
                    ProcessInstance.definition_id.in_(def_ids))).rowcount  # type: ignore[attr-defined]
            s.execute(delete(ProcessDefinition).where(ProcessDefinition.deployment_id == deployment_id))
            s.execute(delete(FormRow).where(FormRow.deployment_id == deployment_id))
            s.execute(delete(Deployment).where(Deployment.id == deployment_id))
            audit(s, at=now, actor=actor.username, action="delete_deployment", data={
                "deployment_id": deployment_id, "definitions": def_ids, "cascade": cascade,
                "deleted_instances": deleted_instances})
        for form_row_id, _form_id, _file in forms_here:
            self._forms.pop(form_row_id, None)  # SQLite may reuse the row id

    def cancel_instance(self, instance_id: str, actor: Actor, *, reason: str | None = None) -> None:
        """Stop a running or suspended instance: its open tasks become CANCELLED, its timers never fire.
        Admins, and the user who started it, may do this; it is audited with the reason."""
        reason = (reason or "").strip()[:1000] or None
        with self.db.write() as s:
            inst = s.execute(select(ProcessInstance.unit_id, ProcessInstance.status, ProcessInstance.version,
                                    ProcessInstance.started_by).where(ProcessInstance.id == instance_id)).one_or_none()
            started_it = inst is not None and inst.started_by == actor.username
            if inst is None or not (started_it or self._may_view_instance(s, actor, instance_id)):
                raise NotFound(f"instance {instance_id!r} does not exist")
            if not (actor.is_admin or started_it):
                raise PermissionDenied("cancelling an instance needs the admin role or having started it")
            if inst.status not in ("running", "suspended"):
                raise InvalidState(f"instance {instance_id} is already {inst.status}")
            if change_instance_status(s, instance_id, from_states=("running", "suspended"), to="cancelled",
                                      now=self.clock(), actor=actor.username, action="cancel",
                                      reason=reason) is None:
                raise ConflictError(f"instance {instance_id} was changed by someone else at the same time")

    _INSTANCE_ORDER: ClassVar[dict[str, Any]] = {
        "started_at": ProcessInstance.started_at, "ended_at": ProcessInstance.ended_at,
                       "id": ProcessInstance.id, "business_key": ProcessInstance.business_key,
                       "definition_id": ProcessInstance.definition_id, "process_key": ProcessInstance.process_key}

    def query_instances(self, actor: Actor, *, instance_ids: list[str] | None = None,
                        definition_id: str | None = None, process_key: str | None = None,
                        business_key: str | None = None, statuses: list[str] | None = None,
                        unit: str | None = None, started_by: str | None = None,
                        started_before: datetime | None = None, started_after: datetime | None = None,
                        first: int = 0, limit: int = 100, order_by: str = "started_at",
                        descending: bool = False) -> tuple[list[InstanceView], int]:
        """Instances the actor may see (units they may see, or tasks they worked on), filtered, with the total.
        The views carry no tasks, audit or data (use `instance` for those)."""
        P = ProcessInstance
        conds: list[Any] = []
        with self.db.read() as s:
            visible = self._visible_units(s, actor)
            if visible is not None:
                conds.append(or_(P.unit_id.in_(sorted(visible)), P.started_by == actor.username, exists().where(
                    Task.instance_id == P.id,
                    or_(Task.assignee == actor.username, Task.completed_by == actor.username))))
            if instance_ids is not None:
                conds.append(P.id.in_(instance_ids))
            if definition_id:
                conds.append(P.definition_id == definition_id)
            if process_key:
                conds.append(P.process_key == process_key)
            if business_key:
                conds.append(P.business_key == business_key)
            if statuses is not None:
                conds.append(P.status.in_(statuses))
            if unit:
                conds.append(P.unit_id == select(Unit.id).where(Unit.code == unit).scalar_subquery())
            if started_by:
                conds.append(P.started_by == started_by)
            if started_before:
                conds.append(P.started_at < started_before)
            if started_after:
                conds.append(P.started_at > started_after)
            total = s.scalar(select(func.count()).select_from(P).where(*conds)) or 0
            if limit <= 0:
                return [], total
            column = self._INSTANCE_ORDER.get(order_by, P.started_at)
            rows = s.execute(
                select(P.id, P.definition_id, P.process_key, ProcessDefinition.name, P.business_key, P.unit_id,
                       Unit.code, P.status, P.started_at, P.started_by, P.ended_at, P.version, P.next_due_at)
                .join(ProcessDefinition, ProcessDefinition.id == P.definition_id).join(Unit, Unit.id == P.unit_id)
                .where(*conds).order_by(column.desc() if descending else column, P.id)
                .offset(max(0, first)).limit(limit)).all()
            return [InstanceView(*r) for r in rows], total

    _TASK_ORDER: ClassVar[dict[str, Any]] = {
        "created_at": Task.created_at, "due_at": Task.due_at, "follow_up_at": Task.follow_up_at,
                   "name": Task.name, "id": Task.id, "assignee": Task.assignee, "completed_at": Task.completed_at,
                   "instance_id": Task.instance_id, "element_id": Task.element_id}

    def query_tasks(self, actor: Actor, *, states: list[str] | None = None, task_id: str | None = None,
                    instance_id: str | None = None, definition_id: str | None = None,
                    process_key: str | None = None, element_id: str | None = None, assignee: str | None = None,
                    assigned: bool | None = None, candidate_group: str | None = None,
                    candidate_user: str | None = None, include_assigned: bool = False,
                    instance_statuses: list[str] | None = None, unit: str | None = None, name: str | None = None,
                    due_before: datetime | None = None, due_after: datetime | None = None,
                    created_before: datetime | None = None, created_after: datetime | None = None,
                    first: int = 0, limit: int = 100, order_by: str = "created_at",
                    descending: bool = False) -> tuple[list[TaskView], int]:
        """Task rows (any state unless `states`) the actor may see, filtered, with the total.
        `candidate_group`/`candidate_user` mean what Camunda means: unclaimed tasks that group or user may claim;
        with `include_assigned` (Camunda's includeAssignedTasks) claimed ones too. `instance_statuses` keeps
        tasks whose instance has one of those statuses (running = active, suspended)."""
        conds: list[Any] = []
        with self.db.read() as s:
            visible = self._visible_units(s, actor)
            if visible is not None:
                conds.append(or_(Task.unit_id.in_(sorted(visible)), Task.assignee == actor.username,
                                 Task.completed_by == actor.username,
                                 exists().where(TaskCandidate.task_id == Task.id,
                                                TaskCandidate.username == actor.username)))
            if states is not None:
                conds.append(Task.state.in_(states))
            for column, value in ((Task.id, task_id), (Task.instance_id, instance_id),
                                  (Task.definition_id, definition_id), (Task.process_key, process_key),
                                  (Task.element_id, element_id), (Task.assignee, assignee), (Task.name, name)):
                if value:
                    conds.append(column == value)
            if assigned is not None:
                conds.append(Task.assignee.is_not(None) if assigned else Task.assignee.is_(None))
            if instance_statuses is not None:
                held = ProcessInstance.__table__.alias("held")  # the row query joins ProcessInstance itself
                conds.append(exists().where(held.c.id == Task.instance_id, held.c.status.in_(instance_statuses)))
            if candidate_group:
                by_group = or_(Task.candidate_role == candidate_group,
                               exists().where(TaskCandidate.task_id == Task.id, TaskCandidate.role == candidate_group))
                conds.append(by_group if include_assigned else and_(Task.assignee.is_(None), by_group))
            if candidate_user:
                try:
                    who = actor if candidate_user == actor.username else accounts.load_actor(
                        s, candidate_user, today=self._today())
                    conds.append(self._candidate_filter(who, unassigned_only=not include_assigned))
                except NotFound:
                    return [], 0
            if unit:
                conds.append(Task.unit_id == select(Unit.id).where(Unit.code == unit).scalar_subquery())
            for column, bound, before in ((Task.due_at, due_before, True), (Task.due_at, due_after, False),
                                          (Task.created_at, created_before, True),
                                          (Task.created_at, created_after, False)):
                if bound is not None:
                    conds.append(column < bound if before else column > bound)
            total = s.scalar(select(func.count()).select_from(Task).where(*conds)) or 0
            if limit <= 0:
                return [], total
            column = self._TASK_ORDER.get(order_by, Task.created_at)
            rows = s.connection().execute(self._task_rows_query().where(*conds)
                             .order_by(column.desc() if descending else column, Task.id)
                             .offset(max(0, first)).limit(limit)).all()
            return [_task_view(r) for r in rows], total


def _attachment_dict(row: Attachment, task_name: str | None) -> dict[str, Any]:
    return {"id": row.id, "sha256": row.sha256, "size": row.size, "content_type": row.content_type,
            "name": row.original_name, "instance_id": row.instance_id, "task_id": row.task_id,
            "task_name": task_name, "uploaded_by": row.uploaded_by, "uploaded_at": row.uploaded_at}

def _instance_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Process variables: the workflow's own data once ended, else what the last completed step left."""
    if is_finished(workflow) or workflow.last_task is None:
        return dict(workflow.data)
    return dict(workflow.last_task.data)


def _find_spec(loaded: LoadedDefinition, element_id: str) -> Any:
    spec = loaded.spec.task_specs.get(element_id)
    if spec is None:
        for sub in loaded.subprocess_specs.values():
            spec = sub.task_specs.get(element_id)
            if spec is not None:
                break
    if spec is None:
        raise NotFound(f"element {element_id!r} is not in definition {loaded.id}")
    return spec


def _definition_view(row: ProcessDefinition, *, is_new: bool = False) -> DefinitionView:
    return DefinitionView(row.id, row.key, row.version, row.name, row.resource, row.deployment_id,
                          row.deployed_at, is_new)


def _task_view(task: Any) -> TaskView:
    """A row of `Alur._task_rows_query`."""
    return TaskView(
        id=task.id, instance_id=task.instance_id, process_key=task.process_key, definition_id=task.definition_id,
        element_id=task.element_id, name=task.name, lane=task.lane, candidate_role=task.candidate_role,
        assignee=task.assignee, state=task.state, unit_id=task.unit_id, created_at=task.created_at,
        due_at=task.due_at, follow_up_at=task.follow_up_at, claimed_at=task.claimed_at,
        completed_at=task.completed_at, completed_by=task.completed_by, late_reason=task.late_reason,
        business_key=task.business_key, process_name=task.process_name, unit_code=task.unit_code,
        form_data=task.form_data)


def _info_json(info: Any) -> dict[str, Any]:
    """ProcessInfo as plain JSON for the definition row (pages and reports read it without parsing XML)."""
    return {
        "key": info.key, "name": info.name, "properties": dict(info.properties),
        "documentation": info.documentation, "lanes": list(info.lanes),
        "user_tasks": {tid: {"name": t.name, "lane": t.lane, "documentation": t.documentation,
                             "extensions": t.extensions} for tid, t in info.user_tasks.items()},
        "called_keys": sorted(info.called_keys),
    }
