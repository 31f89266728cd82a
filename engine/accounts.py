"""Users, units, role assignments and substitutions (Plh/Plt), and the `Actor` a request acts as."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import AlurError, NotFound
from engine.models import RoleAssignment, Substitution, Unit, User

GLOBAL_ROLES = frozenset({"designer", "admin"})
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_UNIT_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

_hasher = PasswordHasher()


class AccountError(AlurError):
    pass


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


def set_password(session: Session, username: str, password: str) -> None:
    get_user(session, username).password_hash = hash_password(password)


def verify_password(session: Session, username: str, password: str) -> User | None:
    """The user if the password matches and the account is active; rehashes outdated hashes."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        _hasher.hash("timing-equaliser")  # same cost whether or not the user exists
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


def revoke(session: Session, username: str, role: str, unit: str | None = None) -> bool:
    user = get_user(session, username)
    unit_id = get_unit(session, unit).id if unit else None
    result = session.execute(delete(RoleAssignment).where(
        RoleAssignment.user_id == user.id, RoleAssignment.role == role,
        RoleAssignment.unit_id.is_(None) if unit_id is None else RoleAssignment.unit_id == unit_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
    return Actor(username=user.username, user_id=user.id, unit_roles=frozenset(unit_roles),
                 global_roles=frozenset(global_roles), acting=acting)
