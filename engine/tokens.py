"""API tokens for REST clients (Camunda Modeler, scripts): `alur token create USER` / `alur token revoke ID`.

A token is 32 random bytes (URL-safe base64, prefixed `alur_`), shown once at creation. Only its SHA-256
is stored (`api_token.token_sha256`), so a copy of the database does not let anyone act as its users.
A token acts with its user's current roles; it stops working when the user is deactivated or the token
is revoked. `last_used_at` is written at most once an hour per token, so authenticated reads stay reads.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine import accounts
from engine.errors import NotFound
from engine.models import ApiToken, User
from engine.store import audit

TOKEN_PREFIX = "alur_"
TOKEN_BYTES = 32
LAST_USED_RESOLUTION = timedelta(hours=1)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    username: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, username: str, *, name: str = "", now: datetime | None = None,
                 actor: str | None = None) -> tuple[int, str]:
    """Store a new token for `username`; returns (id, token). The token is never retrievable again."""
    user = accounts.get_user(session, username)
    if not user.is_active:
        raise NotFound(f"user {username!r} is not active")
    now = now or datetime.now(UTC)
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiToken(user_id=user.id, token_sha256=token_hash(token), name=name[:200], created_at=now)
    session.add(row)
    session.flush()
    audit(session, at=now, actor=actor, action="token_created", data={"token_id": row.id, "username": username,
                                                                       "name": row.name})
    return row.id, token


def verify_token(session: Session, token: str, *, now: datetime | None = None) -> str | None:
    """The username the token belongs to if it is valid and the user active, else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    row = session.execute(select(ApiToken.id, ApiToken.token_sha256, ApiToken.last_used_at, User.username,
                                 User.is_active)
                          .join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.token_sha256 == digest)).one_or_none()
    if row is None or not hmac.compare_digest(row.token_sha256, digest) or not row.is_active:
        return None
    now = now or datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return str(row.username)


def revoke_token(session: Session, token_id: int, *, now: datetime | None = None, actor: str | None = None) -> str:
    """Delete token `token_id`; returns its user's name."""
    row = session.execute(select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.id == token_id)).one_or_none()
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    token, username = row
    session.delete(token)
    audit(session, at=now or datetime.now(UTC), actor=actor, action="token_revoked",
          data={"token_id": token_id, "username": username})
    return str(username)


def list_tokens(session: Session, username: str | None = None) -> list[TokenInfo]:
    q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
    if username:
        q = q.where(User.username == username)
    return [TokenInfo(t.id, u, t.name, t.created_at, t.last_used_at) for t, u in session.execute(q)]


# ---------------------------------------------------------------------------------------------- CLI


@click.group("token")
def token() -> None:
    """API tokens for REST clients such as Camunda Modeler (docs/camunda-modeler.md)."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="", help="What the token is for, e.g. 'Camunda Modeler, laptop Bagian Organisasi'.")
def create_command(username: str, name: str) -> None:
    """Create a token for USERNAME and print it once (only its hash is kept)."""
    from engine.cli import _service

    service = _service()
    with service.db.write() as s:
        token_id, value = create_token(s, username, name=name, now=service.clock(), actor="cli")
    click.echo(f"token {token_id} for {username} (shown once, keep it safe):")
    click.echo(value)


@token.command("revoke")
@click.argument("token_id", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke token TOKEN_ID (see `alur token list`)."""
    from engine.cli import _service

    service = _service()
    with service.db.write() as s:
        username = revoke_token(s, token_id, now=service.clock(), actor="cli")
    click.echo(f"revoked token {token_id} of {username}")


@token.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
def list_command(username: str | None) -> None:
    """List tokens (never their values)."""
    from engine.cli import _service

    with _service().db.read() as s:
        rows = list_tokens(s, username)
    for t in rows:
        used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never"
        click.echo(f"{t.id}\t{t.username}\t{t.created_at.isoformat(timespec='minutes')}\tlast used {used}\t{t.name}")
