"""Users, units, role assignments and substitutions (Plh/Plt), and the `Actor` a request acts as."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import AlurError, NotFound
from engine.models import ApiToken, AuditEvent, RoleAssignment, Substitution, Task, TaskCandidate, Unit, User
from engine.store import audit

GLOBAL_ROLES = frozenset({"designer", "admin"})
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_UNIT_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")



class AccountError(AlurError):
    pass


class HashingBusy(AlurError):
    """Every password-hashing slot of this process is taken: the caller answers "busy, try again" (503 with
    Retry-After) instead of queueing. Each argon2 call costs ~0.4 s of CPU and 64 MiB."""

    retry_after = 5


class _BoundedHasher:
    """argon2 behind a process-wide bound: at most `slots` hashes or verifications at once; a caller waits at
    most `wait_seconds` for a slot, then gets HashingBusy. Without it, a stream of sign-ins with made-up names
    (each costing a full hash, see verify_password) makes every other request wait and eats memory.
    `performed` counts the argon2 calls made (for tests and diagnostics)."""

    def __init__(self, slots: int, wait_seconds: float) -> None:
        self._argon2 = PasswordHasher()
        self.configure(slots, wait_seconds)
        self.performed = 0
        self._count_lock = threading.Lock()

    def configure(self, slots: int, wait_seconds: float) -> None:
        self.slots = max(1, slots)
        self.wait_seconds = max(0.0, wait_seconds)
        self._slots = threading.BoundedSemaphore(self.slots)

    def _run(self, fn: Any, *args: Any) -> Any:
        slots = self._slots
        acquired = slots.acquire(timeout=self.wait_seconds) if self.wait_seconds > 0 else slots.acquire(False)
        if not acquired:
            raise HashingBusy("too many sign-ins at once; try again in a few seconds")
        try:
            with self._count_lock:
                self.performed += 1
            return fn(*args)
        finally:
            slots.release()

    def hash(self, password: str) -> str:
        return str(self._run(self._argon2.hash, password))

    def verify(self, password_hash: str, password: str) -> bool:
        return bool(self._run(self._argon2.verify, password_hash, password))

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)


# Per process (each gunicorn worker has its own): ALUR_MAX_CONCURRENT_HASHES at once (default 2, ~128 MiB),
# waiting at most ALUR_HASH_WAIT_SECONDS (default 1) for a slot.
_hasher = _BoundedHasher(int(os.environ.get("ALUR_MAX_CONCURRENT_HASHES", "2")),
                         float(os.environ.get("ALUR_HASH_WAIT_SECONDS", "1")))


def configure_hashing(slots: int, wait_seconds: float) -> None:
    """Change the bound on concurrent password hashing (tests, the app's settings)."""
    _hasher.configure(slots, wait_seconds)


def hashing() -> _BoundedHasher:
    return _hasher


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user with their unit roles (substitutions included) and global roles."""

    username: str
    user_id: int | None = None
    unit_roles: frozenset[tuple[int, str]] = frozenset()  # (unit_id, role)
    global_roles: frozenset[str] = frozenset()
    # Roles held only through a substitution today: (unit_id, role) -> "Plh"/"Plt"
    acting: dict[tuple[int, str], str] = field(default_factory=dict, compare=False, hash=False)
    is_system: bool = False

    def has_role(self, unit_id: int, role: str) -> bool:
        return (unit_id, role) in self.unit_roles

    @property
    def is_admin(self) -> bool:
        return self.is_system or "admin" in self.global_roles

    @property
    def is_designer(self) -> bool:
        return self.is_admin or "designer" in self.global_roles

    @property
    def unit_ids(self) -> frozenset[int]:
        return frozenset(u for u, _ in self.unit_roles)

    def may_start_in(self, unit_id: int) -> bool:
        """Starting an instance: in a unit where one holds a role; designers (test runs) and admins anywhere."""
        return self.is_designer or unit_id in self.unit_ids


# The operator at the command line, and the engine itself (timers): may do anything.
SYSTEM = Actor(username="system", is_system=True, global_roles=frozenset({"admin"}))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def add_unit(session: Session, code: str, name: str, *, parent: str | None = None,
             timezone: str = "Asia/Jakarta") -> Unit:
    if not _UNIT_CODE.match(code):
        raise AccountError(f"unit code {code!r}: use lowercase letters, digits, '.', '_' or '-'")
    if session.scalar(select(Unit.id).where(Unit.code == code)) is not None:
        raise AccountError(f"unit {code!r} already exists")
    parent_id = get_unit(session, parent).id if parent else None
    _check_timezone(timezone)
    unit = Unit(code=code, name=name, parent_id=parent_id, timezone=timezone)
    session.add(unit)
    session.flush()
    return unit


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AccountError(f"unknown time zone {name!r}") from exc


def get_unit(session: Session, code: str) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound(f"unit {code!r} does not exist")
    return unit


def unit_ancestors(session: Session, unit_id: int) -> list[int]:
    """The unit and every unit above it, nearest first."""
    parents = dict(session.execute(select(Unit.id, Unit.parent_id)).all())
    chain: list[int] = []
    current: int | None = unit_id
    while current is not None and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return chain


def add_user(session: Session, username: str, password: str, *, full_name: str = "",
             email: str | None = None) -> User:
    if not _USERNAME.match(username):
        raise AccountError(f"username {username!r}: 2–64 lowercase letters, digits, '.', '_' or '-'")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), full_name=full_name,
                email=email, created_at=datetime.now(UTC))
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    return user


def credentials_fingerprint(password_hash: str, credentials_version: int | None) -> str:
    """What a session and the REST credentials cache remember of the account: it changes with the password
    and with credentials_version (disable, enable, reset), so either ends them at once in every process."""
    if not credentials_version:  # as before migration 0007: sessions signed in before the upgrade go on
        return hashlib.sha256(password_hash.encode()).hexdigest()[:16]
    return hashlib.sha256(f"{credentials_version}:{password_hash}".encode()).hexdigest()[:16]


def _audit(session: Session, now: datetime | None, actor: str | None, action: str, **data: Any) -> None:
    audit(session, at=now or datetime.now(UTC), actor=actor, action=action, data=data)


def _new_credentials(session: Session, user: User, *, now: datetime | None, actor: str | None,
                     reason: str) -> int:
    """Bump the account's credentials version and revoke its API tokens (each audited); the count revoked."""
    session.execute(update(User).where(User.id == user.id)
                    .values(credentials_version=User.credentials_version + 1))
    tokens = session.execute(select(ApiToken.id).where(ApiToken.user_id == user.id)).scalars().all()
    for token_id in tokens:
        _audit(session, now, actor, "token_revoked", token_id=token_id, username=user.username, reason=reason)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.expire(user, ["credentials_version"])
    return len(tokens)


def set_password(session: Session, username: str, password: str, *, now: datetime | None = None,
                 actor: str | None = "cli", action: str = "password_reset") -> int:
    """Set a new password (an operator's reset, or `action="password_changed"` by the user): every session,
    cached REST credential and API token of the account ends. Audited; returns the number of tokens revoked."""
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    revoked = _new_credentials(session, user, now=now, actor=actor, reason=action)
    _audit(session, now, actor, action, username=username, tokens_revoked=revoked)
    return revoked


def disable_user(session: Session, username: str, *, now: datetime | None = None,
                 actor: str | None = "cli") -> list[str]:
    """The account can no longer sign in (web, REST Basic, tokens): its sessions end, its API tokens are
    revoked and its claims on open steps are released. Audited; returns the released task ids."""
    user = get_user(session, username)
    if not user.is_active:
        raise AccountError(f"user {username!r} is already disabled")
    user.is_active = False
    revoked = _new_credentials(session, user, now=now, actor=actor, reason="user_disabled")
    _audit(session, now, actor, "user_disabled", username=username, tokens_revoked=revoked)
    session.flush()
    return release_claims(session, username, now=now, actor=actor, reason=RELEASED_DISABLED)


def enable_user(session: Session, username: str, *, now: datetime | None = None, actor: str | None = "cli") -> None:
    """Let a disabled account sign in again (with its password; its old sessions and tokens stay ended)."""
    user = get_user(session, username)
    if user.is_active:
        raise AccountError(f"user {username!r} is not disabled")
    user.is_active = True
    _new_credentials(session, user, now=now, actor=actor, reason="user_enabled")
    _audit(session, now, actor, "user_enabled", username=username)


def verify_password(session: Session, username: str, password: str) -> User | None:
    """The user if the password matches and the account is active; rehashes outdated hashes.
    Raises HashingBusy when every hashing slot is taken (nothing was checked)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        # Same cost whether or not the user exists (no timing oracle), under the same bound as a real check.
        _hasher.hash("timing-equaliser")
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def grant(session: Session, username: str, role: str, unit: str | None = None) -> RoleAssignment:
    role = role.strip()
    if not role:
        raise AccountError("role must not be empty")
    if role in GLOBAL_ROLES and unit is not None:
        raise AccountError(f"{role!r} is a global role: give no unit")
    if role not in GLOBAL_ROLES and unit is None:
        raise AccountError(f"role {role!r} is held in a unit: give --unit")
    user = get_user(session, username)
    unit_id = get_unit(session, unit).id if unit else None
    existing = session.scalar(select(RoleAssignment).where(
        RoleAssignment.user_id == user.id, RoleAssignment.role == role,
        RoleAssignment.unit_id.is_(None) if unit_id is None else RoleAssignment.unit_id == unit_id))
    if existing is not None:
        return existing
    assignment = RoleAssignment(user_id=user.id, role=role, unit_id=unit_id)
    session.add(assignment)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent grant of the same role
        raise AccountError(f"{username} already holds {role!r}") from exc
    return assignment


def revoke(session: Session, username: str, role: str, unit: str | None = None, *, now: datetime | None = None,
           actor: str | None = "cli") -> list[str] | None:
    """Take a role away; None if the user did not hold it. The user's claims on open steps they may no longer
    work (see may_work) are released at once, each audited. Returns the released task ids."""
    user = get_user(session, username)
    unit_id = get_unit(session, unit).id if unit else None
    result = session.execute(delete(RoleAssignment).where(
        RoleAssignment.user_id == user.id, RoleAssignment.role == role,
        RoleAssignment.unit_id.is_(None) if unit_id is None else RoleAssignment.unit_id == unit_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    _audit(session, now, actor, "role_revoked", username=username, role=role, unit=unit)
    return release_claims(session, username, now=now, actor=actor, reason=RELEASED_REVOKED)


# ------------------------------------------------------------------------------------------------ who may work

RELEASED_REVOKED = "released because the role was revoked"
RELEASED_DISABLED = "released because the user was disabled"
RELEASED_SUBSTITUTION = "released because the substitution ended"


def may_work(session: Session, actor: Actor, task: Any) -> bool:
    """The one rule for who may claim, complete or add to an open step (`task`: a task row or entity).

    A claim (assignee) only narrows who may act, it never grants a right by itself: the assignee must still
    hold the step's role, be one of its named candidates, hold a role in the step's unit (the rule a
    supervisor's reassignment follows), or have been named by the model itself (camunda:assignee with no
    candidates). Roles are the actor's at the time of the action (loaded per request)."""
    if actor.is_system:
        return True
    if task.assignee is not None and task.assignee != actor.username:
        return False
    if task.candidate_role and actor.has_role(task.unit_id, task.candidate_role):
        return True
    if task.assignee is not None and task.unit_id in actor.unit_ids and not _claimed_oneself(session, task):
        return True
    others = session.execute(select(TaskCandidate.role, TaskCandidate.username)
                             .where(TaskCandidate.task_id == task.id)).all()
    if any(u == actor.username or (r and actor.has_role(task.unit_id, r)) for r, u in others):
        return True
    return task.assignee is not None and not task.candidate_role and not others


def _claimed_oneself(session: Session, task: Any) -> bool:
    """Whether the step's assignee took it by claiming it (rather than a supervisor's reassignment or the
    model naming them): such a claim lasts only as long as the right it was made with, so holding another role
    in the unit (a Kasubag moved to Staf, a Plh from the same unit after the substitution) keeps nothing."""
    last = session.scalar(select(AuditEvent.action).where(
        AuditEvent.instance_id == task.instance_id, AuditEvent.task_id == task.id,
        AuditEvent.action.in_(("claim", "reassign"))).order_by(AuditEvent.id.desc()).limit(1))
    return last == "claim"


def unworkable_claims(session: Session, username: str, *, today: date) -> list[Any]:
    """`username`'s claims on open steps they may no longer work (all of them if the account is disabled)."""
    user = get_user(session, username)
    who = load_actor(session, username, today=today) if user.is_active else None
    claimed = session.execute(select(Task.id, Task.instance_id, Task.assignee, Task.candidate_role, Task.unit_id)
                              .where(Task.assignee == username, Task.state == "READY")).all()
    return [t for t in claimed if who is None or not may_work(session, who, t)]


def release_claims(session: Session, username: str, *, now: datetime | None = None, actor: str | None = "cli",
                   reason: str) -> list[str]:
    """Release `username`'s claims on open steps they may no longer work, each audited with `reason`.
    Returns the released task ids."""
    now = now or datetime.now(UTC)
    released = []
    for task in unworkable_claims(session, username, today=now.date()):
        done = session.execute(update(Task).where(Task.id == task.id, Task.assignee == username,
                                                  Task.state == "READY")
                               .values(assignee=None, claimed_at=None)).rowcount  # type: ignore[attr-defined]
        if done:
            audit(session, at=now, actor=actor, action="release", instance_id=task.instance_id, task_id=task.id,
                  data={"username": username, "reason": reason})
            released.append(str(task.id))
    return released


def ended_substitution_claimants(session: Session, *, today: date, days_back: int = 7) -> list[str]:
    """Users whose Plh/Plt ended in the last `days_back` days (a worker that was down catches up) and who
    still claim a step they may no longer work. Read-only: the worker writes only when there is something."""
    ended = session.scalars(select(User.username).join(Substitution, Substitution.user_id == User.id).where(
        Substitution.ends_on < today, Substitution.ends_on >= today - timedelta(days=days_back),
        select(Task.id).where(Task.assignee == User.username, Task.state == "READY").exists()).distinct()).all()
    return [u for u in ended if unworkable_claims(session, u, today=today)]


def release_after_substitutions(session: Session, usernames: list[str], *, now: datetime | None = None
                                ) -> list[str]:
    """Release the claims `usernames` hold through a substitution that has ended (see the worker)."""
    released: list[str] = []
    for username in usernames:
        released += release_claims(session, username, now=now, actor=None, reason=RELEASED_SUBSTITUTION)
    return released


def add_substitution(session: Session, username: str, role: str, unit: str, starts_on: date,
                     ends_on: date, *, kind: str = "Plh", note: str = "") -> Substitution:
    if ends_on < starts_on:
        raise AccountError("a substitution must end on or after its first day")
    if kind not in ("Plh", "Plt"):
        raise AccountError("kind must be Plh or Plt")
    sub = Substitution(user_id=get_user(session, username).id, role=role, unit_id=get_unit(session, unit).id,
                       starts_on=starts_on, ends_on=ends_on, kind=kind, note=note)
    session.add(sub)
    session.flush()
    return sub


def load_actor(session: Session, username: str, *, today: date | None = None) -> Actor:
    return load_actor_and_fingerprint(session, username, today=today)[0]


def load_actor_and_fingerprint(session: Session, username: str, *, today: date | None = None
                               ) -> tuple[Actor, str]:
    """The actor and the account's credentials_fingerprint, read with the same statements."""
    user = get_user(session, username)
    if not user.is_active:
        raise NotFound(f"user {username!r} is not active")
    today = today or datetime.now(UTC).date()
    rows = session.execute(select(RoleAssignment.unit_id, RoleAssignment.role)
                           .where(RoleAssignment.user_id == user.id)).all()
    unit_roles = {(u, r) for u, r in rows if u is not None}
    global_roles = {r for u, r in rows if u is None}
    acting: dict[tuple[int, str], str] = {}
    subs = session.execute(select(Substitution.unit_id, Substitution.role, Substitution.kind).where(
        Substitution.user_id == user.id, Substitution.starts_on <= today, Substitution.ends_on >= today,
    ))
    for unit_id, role, kind in subs:
        if (unit_id, role) not in unit_roles:
            acting[(unit_id, role)] = kind
            unit_roles.add((unit_id, role))
    actor = Actor(username=user.username, user_id=user.id, unit_roles=frozenset(unit_roles),
                  global_roles=frozenset(global_roles), acting=acting)
    return actor, credentials_fingerprint(user.password_hash, user.credentials_version)
