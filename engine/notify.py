"""Notifications: rows for the web's bell, and an e-mail outbox when SMTP is configured.

A notification is stored in the same transaction as what caused it (the worker's reminder or escalation),
each one at most once thanks to the unique `dedupe_key`. E-mail is sent afterwards, from committed rows
(`emailed_at IS NULL`), so a slow or failing mail server never holds a transaction or loses a message:
a failed send is simply tried again on the next round.

Configuration (environment): ALUR_SMTP_HOST (no host = no e-mail), ALUR_SMTP_PORT (25),
ALUR_SMTP_FROM, ALUR_SMTP_USER, ALUR_SMTP_PASSWORD, ALUR_SMTP_STARTTLS (1/true), ALUR_SMTP_TIMEOUT (10 s).
"""

from __future__ import annotations

import logging
import os
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine.db import Database
from engine.models import Notification, RoleAssignment, Substitution, TaskCandidate, Unit, User

log = logging.getLogger(__name__)

# Notifications older than this are not e-mailed any more (e.g. SMTP configured long after they were made).
EMAIL_MAX_AGE = timedelta(days=3)

_ZONE_NAMES = {"Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}

# A notification keeps what it is about (`data["task"]`) beside the Indonesian text it was stored with, so the
# page and the e-mail speak the reader's language (`user_account.locale`): "id" (default) or "en".
_WORDS: dict[str, dict[str, Any]] = {
    "id": {
        "days": ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu"),
        "months": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September",
                   "Oktober", "November", "Desember"),
        "moment": "{day}, {d} {month} {y} pukul {h:02d}.{m:02d} {zone}",
        "about": "langkah '{name}' (SOP {process}, {unit}{number})", "number": ", no. {key}",
        "reminder": "Pengingat: {about} jatuh tempo pada {due}.",
        "escalation": "Eskalasi: {about} melewati batas waktu {due} dan belum selesai ({who}).",
        "handled_by": "ditangani oleh {user}", "waiting_for": "menunggu {role}", "pelaksana": "pelaksana",
        "subjects": {"reminder": "Pengingat", "escalation": "Eskalasi: langkah terlambat"},
        "subject": "Pemberitahuan", "open": "Buka",
        "footer": "Pesan otomatis dari Alur. Buka kotak tugas Anda untuk menindaklanjuti.",
    },
    "en": {
        "days": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        "months": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                   "October", "November", "December"),
        "moment": "{day}, {d} {month} {y} at {h:02d}:{m:02d} {zone}",
        "about": "step '{name}' (SOP {process}, {unit}{number})", "number": ", no. {key}",
        "reminder": "Reminder: {about} is due on {due}.",
        "escalation": "Escalation: {about} passed its deadline of {due} and is not done yet ({who}).",
        "handled_by": "handled by {user}", "waiting_for": "waiting for {role}", "pelaksana": "the pelaksana",
        "subjects": {"reminder": "Reminder", "escalation": "Escalation: step overdue"},
        "subject": "Notification", "open": "Open",
        "footer": "An automatic message from Alur. Open your task list to follow it up.",
    },
}


def _words(lang: str | None) -> dict[str, Any]:
    return _WORDS.get(lang or "id") or _WORDS["id"]


# ---------------------------------------------------------------------------------------------- messages

def local_time_text(moment: datetime, timezone: str, lang: str = "id") -> str:
    """`Senin, 23 November 2026 pukul 16.00 WIB` (or `Monday, 23 November 2026 at 16:00 WIB`): the unit's
    local time, as letters write it."""
    local = moment.astimezone(ZoneInfo(timezone))
    zone = _ZONE_NAMES.get(timezone) or local.tzname() or timezone
    w = _words(lang)
    return w["moment"].format(day=w["days"][local.weekday()], d=local.day, month=w["months"][local.month - 1],
                              y=local.year, h=local.hour, m=local.minute, zone=zone)


@dataclass(frozen=True)
class TaskInfo:
    """What a message says about a step."""

    task_id: str
    instance_id: str
    name: str
    process_name: str
    unit_name: str
    timezone: str
    due_at: datetime | None
    business_key: str | None = None
    assignee: str | None = None
    candidate_role: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "due_at": self.due_at.isoformat() if self.due_at else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskInfo:
        due = data.get("due_at")
        return cls(**{**data, "due_at": datetime.fromisoformat(due) if due else None})


def _about(t: TaskInfo, lang: str) -> str:
    w = _words(lang)
    number = w["number"].format(key=t.business_key) if t.business_key else ""
    return w["about"].format(name=t.name, process=t.process_name, unit=t.unit_name, number=number)


def reminder_message(t: TaskInfo, lang: str = "id") -> str:
    due = local_time_text(t.due_at, t.timezone, lang) if t.due_at else "-"
    return _words(lang)["reminder"].format(about=_about(t, lang), due=due)


def escalation_message(t: TaskInfo, lang: str = "id") -> str:
    w = _words(lang)
    due = local_time_text(t.due_at, t.timezone, lang) if t.due_at else "-"
    who = (w["handled_by"].format(user=t.assignee) if t.assignee
           else w["waiting_for"].format(role=t.candidate_role or w["pelaksana"]))
    return w["escalation"].format(about=_about(t, lang), due=due, who=who)


_MESSAGES = {"reminder": reminder_message, "escalation": escalation_message}


def message_in(lang: str | None, kind: str, data: dict[str, Any] | None, stored: str) -> str:
    """A notification's text in `lang`, from what it is about; the stored (Indonesian) text when it carries
    nothing to rebuild it from (notifications stored before 0006, other kinds)."""
    make = _MESSAGES.get(kind)
    task = (data or {}).get("task")
    if make is None or not isinstance(task, dict):
        return stored
    try:
        return make(TaskInfo.from_json(task), lang or "id")
    except (TypeError, ValueError):
        return stored


def subject(kind: str, lang: str | None = "id") -> str:
    w = _words(lang)
    return str(w["subjects"].get(kind, w["subject"]))


# ---------------------------------------------------------------------------------------------- recipients

def role_holders(s: Session, unit_id: int, roles: Iterable[str], today: date) -> set[str]:
    """Active users holding one of `roles` in the unit, directly or as Plh/Plt today."""
    roles = sorted({r for r in roles if r})
    if not roles:
        return set()
    direct = select(User.username).join(RoleAssignment, RoleAssignment.user_id == User.id).where(
        RoleAssignment.unit_id == unit_id, RoleAssignment.role.in_(roles), User.is_active.is_(True))
    acting = select(User.username).join(Substitution, Substitution.user_id == User.id).where(
        Substitution.unit_id == unit_id, Substitution.role.in_(roles), Substitution.starts_on <= today,
        Substitution.ends_on >= today, User.is_active.is_(True))
    return set(s.scalars(direct.union(acting)))


def task_workers(s: Session, task_id: str, unit_id: int, assignee: str | None, candidate_role: str | None,
                 today: date) -> set[str]:
    """Who should act on the step: its assignee, else everyone who may claim it."""
    if assignee:
        return {assignee}
    extra = s.execute(select(TaskCandidate.role, TaskCandidate.username)
                      .where(TaskCandidate.task_id == task_id)).all()
    users = {u for _, u in extra if u}
    if users:
        users = set(s.scalars(select(User.username).where(User.username.in_(sorted(users)),
                                                          User.is_active.is_(True))))
    return users | role_holders(s, unit_id, [candidate_role or "", *(r for r, _ in extra if r)], today)


def supervisor_role(info: dict[str, Any] | None) -> str | None:
    """Process property `alur.supervisorRole`, else the top lane of the pool (in an SOP: the head)."""
    info = info or {}
    role = (info.get("properties") or {}).get("alur.supervisorRole")
    if role:
        return str(role)
    lanes = info.get("lanes") or []
    return str(lanes[0]) if lanes else None


def supervisors(s: Session, unit_id: int, role: str | None, today: date) -> set[str]:
    """Holders of the supervisor role in the unit; when nobody holds it there, in the nearest unit above."""
    if not role:
        return set()
    parents = dict(s.execute(select(Unit.id, Unit.parent_id)).all())
    current: int | None = unit_id
    seen: set[int] = set()
    while current is not None and current not in seen:
        seen.add(current)
        found = role_holders(s, current, [role], today)
        if found:
            return found
        current = parents.get(current)
    return set()


# ---------------------------------------------------------------------------------------------- storing

def store(s: Session, *, kind: str, usernames: Iterable[str], message: str, now: datetime,
          task_id: str | None = None, instance_id: str | None = None, key: str | None = None,
          data: dict[str, Any] | None = None) -> int:
    """Insert one notification per user, skipping any whose dedupe key exists; returns how many were new.

    The dedupe key is `<kind>:<key or task id>:<username>`: the second guard (after the caller's
    conditional UPDATE) that makes each reminder happen once even with several workers.
    """
    rows = [{"dedupe_key": f"{kind}:{key or task_id}:{u}", "username": u, "kind": kind, "task_id": task_id,
             "instance_id": instance_id, "message": message, "data": data, "created_at": now}
            for u in sorted(set(usernames))]
    if not rows:
        return 0
    dialect = s.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = (module.insert(Notification.__table__).values(rows)
            .on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Notification.__table__.c.id))
    return len(s.connection().execute(stmt).all())  # rowcount is -1 for this on psycopg: count what came back


# ---------------------------------------------------------------------------------------------- e-mail

def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "alur@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0
    base_url: str | None = None  # e.g. https://alur.pesisirselatankab.go.id: mails then link to their step

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        host = os.environ.get("ALUR_SMTP_HOST", "").strip()
        if not host:
            return None
        return cls(host=host, port=int(os.environ.get("ALUR_SMTP_PORT") or 25),
                   sender=os.environ.get("ALUR_SMTP_FROM") or "alur@localhost",
                   user=os.environ.get("ALUR_SMTP_USER") or None,
                   password=os.environ.get("ALUR_SMTP_PASSWORD") or None,
                   starttls=_flag(os.environ.get("ALUR_SMTP_STARTTLS")),
                   timeout=float(os.environ.get("ALUR_SMTP_TIMEOUT") or 10),
                   base_url=(os.environ.get("ALUR_BASE_URL") or "").strip().rstrip("/") or None)


@dataclass
class OutboxReport:
    sent: int = 0
    failed: int = 0


def _build_email(settings: SmtpSettings, to: str, kind: str, message: str, notification_id: int,
                 lang: str | None = "id") -> EmailMessage:
    w = _words(lang)
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = to
    mail["Subject"] = f"[Alur] {subject(kind, lang)}"
    # The notification's own page leads to its step (or instance) after sign-in and checks the rights again.
    link = (f"\n\n{w['open']}: {settings.base_url}/pengawasan/notifikasi/{notification_id}"
            if settings.base_url else "")
    mail.set_content(message + link + f"\n\n-- \n{w['footer']}\n")
    return mail


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    if settings.starttls:
        smtp.starttls()
    if settings.user:
        smtp.login(settings.user, settings.password or "")
    return smtp


def _outbox_query(now: datetime, limit: int) -> Any:
    return (select(Notification.id, Notification.kind, Notification.message, Notification.data, User.email,
                   User.locale)
            .join(User, User.username == Notification.username)
            .where(Notification.emailed_at.is_(None), Notification.created_at >= now - EMAIL_MAX_AGE,
                   User.email.is_not(None), User.email != "", User.is_active.is_(True))
            .order_by(Notification.id).limit(limit))


def _send_rows(settings: SmtpSettings, rows: Sequence[Any]) -> tuple[list[int], int]:
    """Send each row over one connection; (ids sent, failures). Never raises."""
    sent: list[int] = []
    failed = 0
    try:
        smtp = _connect(settings)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("e-mail: cannot reach %s:%s (%s); %d message(s) wait for the next round",
                    settings.host, settings.port, exc, len(rows))
        return [], len(rows)
    try:
        for row in rows:
            try:
                text = message_in(row.locale, row.kind, row.data, row.message)
                smtp.send_message(_build_email(settings, row.email, row.kind, text, row.id, row.locale))
                sent.append(row.id)
            except (OSError, smtplib.SMTPException) as exc:
                failed += 1
                log.warning("e-mail to %s failed (%s); retried next round", row.email, exc)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
    return sent, failed


def send_outbox(db: Database, settings: SmtpSettings | None, now: datetime, limit: int = 100) -> OutboxReport:
    """E-mail committed notifications not yet e-mailed (users with an address only) and mark them.

    PostgreSQL: rows are locked (SKIP LOCKED) while they are sent, so two workers never send the same one.
    SQLite: read, send, then mark in a short write, so the single write lock is never held during SMTP.
    Either way a message is marked only after it was handed to the server (at least once).
    """
    report = OutboxReport()
    if settings is None:
        return report
    if not db.is_sqlite:
        with db.write() as s:
            rows = s.execute(_outbox_query(now, limit).with_for_update(of=Notification, skip_locked=True)).all()
            sent, report.failed = _send_rows(settings, rows)
            _mark(s, sent, now)
    else:
        with db.read() as s:
            rows = s.execute(_outbox_query(now, limit)).all()
        if not rows:
            return report
        sent, report.failed = _send_rows(settings, rows)
        if sent:
            with db.write() as s:
                _mark(s, sent, now)
    report.sent = len(sent)
    return report


def _mark(s: Session, ids: list[int], now: datetime) -> None:
    if ids:
        s.execute(update(Notification).where(Notification.id.in_(ids), Notification.emailed_at.is_(None))
                  .values(emailed_at=now))


def unread(s: Session, username: str, limit: int = 20) -> list[Notification]:
    """The user's newest unread notifications (for the bell)."""
    return list(s.scalars(select(Notification).where(Notification.username == username,
                                                     Notification.read_at.is_(None))
                          .order_by(Notification.id.desc()).limit(limit)))


def mark_read(s: Session, username: str, ids: Iterable[int] | None, now: datetime) -> int:
    """Mark the user's notifications read (all unread ones when `ids` is None); returns how many."""
    cond = and_(Notification.username == username, Notification.read_at.is_(None))
    if ids is not None:
        cond = and_(cond, or_(Notification.id.in_(sorted(set(ids)))))
    return int(s.execute(update(Notification).where(cond).values(read_at=now)).rowcount or 0)  # type: ignore[attr-defined]
