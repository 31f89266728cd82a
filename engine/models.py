"""Tables. The `task` table is a projection of instance state that every list and report reads,
so nothing ever has to deserialize workflows to answer "what is on my desk"."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite (no tz support) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Unit(Base):
    """Unit kerja: Kecamatan IV Jurai, Setda Pesisir Selatan, … Units form a tree."""

    __tablename__ = "unit"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Jakarta")


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped by a password change or reset and by disable/enable (engine/accounts.py): part of the session's
    # fingerprint and of the REST credentials cache check, so both end at once, in every process.
    credentials_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locale: Mapped[str] = mapped_column(String(8), default="id")
    created_at: Mapped[datetime]


class RoleAssignment(Base):
    """User holds role R in unit U. Global roles (designer, admin) have no unit."""

    __tablename__ = "role_assignment"
    __table_args__ = (UniqueConstraint("user_id", "role", "unit_id", name="uq_role_assignment"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))


class Substitution(Base):
    """Plh/Plt: `user_id` acts for `role` in `unit_id` from `starts_on` to `ends_on` (inclusive)."""

    __tablename__ = "substitution"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8), default="Plh")
    note: Mapped[str] = mapped_column(String(500), default="")


class Deployment(Base):
    __tablename__ = "deployment"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(String(200))
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str | None] = mapped_column(String(64))


class ProcessDefinition(Base):
    """One version of one process key. The parsed spec is stored once here, never per instance."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_definition_key_version"),)
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id"), index=True)
    resource: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    spec_json: Mapped[str] = mapped_column(Text)
    # ProcessInfo as JSON: properties, lanes, user task metadata (for pages and reports without parsing).
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    deployed_at: Mapped[datetime]


class FormDefinition(Base):
    __tablename__ = "form_definition"
    __table_args__ = (UniqueConstraint("form_id", "version", name="uq_form_id_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(300), index=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    schema_json: Mapped[str] = mapped_column(Text)
    deployed_at: Mapped[datetime]


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    definition_id: Mapped[str] = mapped_column(ForeignKey("process_definition.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    started_at: Mapped[datetime]
    started_by: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None]
    # SpiffWorkflow state without the spec, as TEXT: key order carries meaning (task data deltas).
    state: Mapped[str] = mapped_column(Text)
    next_due_at: Mapped[datetime | None] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Task(Base):
    """Projection of every user task of every instance, rewritten in the transaction that changes it."""

    __tablename__ = "task"
    __table_args__ = (
        # Covers the inbox's role branches: filter, sort keys and id without touching the table.
        Index("ix_task_inbox_cover", "state", "unit_id", "candidate_role", "assignee", "due_at", "created_at", "id"),
        Index("ix_task_assignee_state", "assignee", "state"),
        # The inbox's "mine" arm: few rows (claimed, open), already in deadline order.
        Index("ix_task_claimed_ready", "assignee", "state", "due_at", "created_at", "id",
              sqlite_where=text("state = 'READY' AND assignee IS NOT NULL"),
              postgresql_where=text("state = 'READY' AND assignee IS NOT NULL")),
        Index("ix_task_instance", "instance_id"),
        # sync_tasks: the open rows of one instance, however long its history (migration 0008).
        Index("ix_task_instance_ready", "instance_id",
              sqlite_where=text("state = 'READY'"), postgresql_where=text("state = 'READY'")),
        Index("ix_task_due", "state", "due_at"),
        # The worker's two sweeps: only tasks still waiting for their reminder / escalation are indexed.
        Index("ix_task_reminder_pending", "follow_up_at",
              sqlite_where=text("state = 'READY' AND reminded_at IS NULL"),
              postgresql_where=text("state = 'READY' AND reminded_at IS NULL")),
        Index("ix_task_escalation_pending", "due_at",
              sqlite_where=text("state = 'READY' AND escalated_at IS NULL"),
              postgresql_where=text("state = 'READY' AND escalated_at IS NULL")),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow task id
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    definition_id: Mapped[str] = mapped_column(String(120))
    process_key: Mapped[str] = mapped_column(String(100))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    element_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    lane: Mapped[str | None] = mapped_column(String(200))
    # The role whose holders may claim it: first candidate group, else the lane. Others in task_candidate.
    candidate_role: Mapped[str | None] = mapped_column(String(200))
    assignee: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # READY, COMPLETED, CANCELLED
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None]
    follow_up_at: Mapped[datetime | None]
    late_reason: Mapped[str | None] = mapped_column(Text)
    form_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set by the worker exactly once each; reports read the two numbers below.
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    working_minutes: Mapped[int | None] = mapped_column(Integer)  # created → completed, in working time
    late_minutes: Mapped[int | None] = mapped_column(Integer)  # due → completed, in working time (0 if on time)


class TaskCandidate(Base):
    """Extra candidates beyond `task.candidate_role`: more candidate groups, or candidate users."""

    __tablename__ = "task_candidate"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    role: Mapped[str | None] = mapped_column(String(200), index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)


class AuditEvent(Base):
    """Append-only: who did what, when, with which data. Never updated or deleted by Alur."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(36), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CalendarDay(Base):
    """Operator-managed exceptions to the working calendar: extra days off or working days."""

    __tablename__ = "calendar_day"
    __table_args__ = (UniqueConstraint("day", "unit_id", name="uq_calendar_day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    kind: Mapped[str] = mapped_column(String(8))  # "off" or "work"
    reason: Mapped[str] = mapped_column(String(300), default="")


class Notification(Base):
    """A reminder, escalation or notice for one user. `dedupe_key` makes each one happen exactly once."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_inbox", "username", "read_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    username: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # reminder, escalation, ...
    instance_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(Text)  # as stored, in Indonesian
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what it is about: shown in the reader's language
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    emailed_at: Mapped[datetime | None] = mapped_column(index=True)


class Attachment(Base):
    """A document uploaded to a task. The file lives on disk under its sha256; the name is only shown."""

    __tablename__ = "attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(200))
    original_name: Mapped[str] = mapped_column(String(255))
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime]


class Comment(Base):
    __tablename__ = "comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[str | None] = mapped_column(String(36), index=True)
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ApiToken(Base):
    """Bearer tokens for REST clients (Camunda Modeler). Only a hash is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
