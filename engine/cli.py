"""`alur`: the operator's and designer's command line. Every command goes through the service API."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from engine import accounts, faults
from engine.config import Settings
from engine.db import Database
from engine.errors import AlurError, DeployError, FormValidationError
from engine.service import BPMN_SUFFIXES, FORM_SUFFIX, Alur

DEPLOYABLE = (*BPMN_SUFFIXES, FORM_SUFFIX)


def _database() -> Database:
    return Database(Settings.from_env().database_url)


def _service() -> Alur:
    db = _database()
    from engine.migrate import current_revision, head_revision

    if current_revision(db) != head_revision():
        raise click.ClickException("the database is not initialised or not up to date: run `alur init` first")
    return Alur(db)


def _fail(exc: AlurError) -> None:
    if isinstance(exc, DeployError):
        click.echo(f"error: deployment refused, {len(exc.problems)} problem(s); nothing was deployed:", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
    elif isinstance(exc, FormValidationError):
        click.echo("error: the data was refused:", err=True)
        for key, messages in exc.errors.items():
            for message in messages:
                click.echo(f"  {key}: {message}", err=True)
    else:
        click.echo(f"error: {exc}", err=True)
    sys.exit(1)


class AlurGroup(click.Group):
    """Turns the service's refusals, a damaged instance state (CorruptState) and the machine's faults (a locked
    or unreachable database, a full disk: engine/faults.py) into a message and exit status 1 instead of a
    traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AlurError as exc:
            _fail(exc)
        except Exception as exc:
            fault = faults.classify(exc)
            if fault is None:
                raise
            # One transaction per command, rolled back on a fault, except a connection lost during COMMIT.
            _fail(faults.Unavailable(fault.with_outcome(partly_saved=False,
                                                        outcome_unknown=fault.kind == "disconnected")))


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _parse_json_object(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=what) from exc
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=what)
    return value


@click.group(cls=AlurGroup)
@click.version_option(package_name="alur")
def main() -> None:
    """Alur: run SOP AP as BPMN workflows. Database: $ALUR_DATABASE_URL (default: SQLite in ./instance)."""


@main.command()
def init() -> None:
    """Create the database, or upgrade it to the current schema (keeps all data)."""
    from engine.migrate import upgrade

    db = _database()
    before, after = upgrade(db)
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    elif before is None:
        click.echo(f"database created (revision {after})")
    else:
        click.echo(f"database upgraded from {before} to {after}")


def _collect(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(DEPLOYABLE))
        else:
            yield path


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Deployment name (default: the file names).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def deploy(paths: tuple[Path, ...], name: str | None, as_json: bool) -> None:
    """Deploy .bpmn and .form files (or every such file under the given folders) together."""
    files: dict[str, bytes] = {}
    for path in _collect(paths):
        if path.name in files:
            raise click.ClickException(f"two files are named {path.name}; deploy them separately")
        files[path.name] = path.read_bytes()
    if not files:
        raise click.ClickException("no .bpmn or .form files found")
    result = _service().deploy(files, name=name, source="alur CLI")
    if as_json:
        _print_json(result.to_json())
        return
    for d in result.definitions:
        click.echo(f"{d.key}  version {d.version}  {'deployed' if d.is_new else 'unchanged'}  ({d.resource})")
    for f in result.forms:
        click.echo(f"form {f.form_id}  version {f.version}  {'deployed' if f.is_new else 'unchanged'}  ({f.file_name})")
    if not result.changed:
        click.echo("nothing changed: every file is identical to its latest version")


@main.command()
@click.option("--key", help="Only this process key.")
@click.option("--latest", is_flag=True, help="Only the latest version of each key.")
@click.option("--json", "as_json", is_flag=True)
def definitions(key: str | None, latest: bool, as_json: bool) -> None:
    """List deployed process definitions."""
    rows = _service().definitions(key=key, latest_only=latest)
    if as_json:
        _print_json([r.to_json() for r in rows])
        return
    for r in rows:
        click.echo(f"{r.key}  v{r.version}  {r.name}  ({r.id})")


# ---------------------------------------------------------------- units, users, roles

@main.group()
def unit() -> None:
    """Organisation units (unit kerja)."""


@unit.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--parent", help="Code of the unit above this one (a kabupaten above its kecamatan).")
@click.option("--timezone", default="Asia/Jakarta", show_default=True, help="Asia/Makassar (WITA), Asia/Jayapura (WIT)")
def unit_add(code: str, name: str, parent: str | None, timezone: str) -> None:
    """Add a unit: CODE is a short lowercase id, NAME its full name."""
    with _service().db.write() as s:
        accounts.add_unit(s, code, name, parent=parent, timezone=timezone)
    click.echo(f"unit {code} added")


@unit.command("list")
@click.option("--json", "as_json", is_flag=True)
def unit_list(as_json: bool) -> None:
    from sqlalchemy import select

    from engine.models import Unit

    with _service().db.read() as s:
        units = s.scalars(select(Unit).order_by(Unit.code)).all()
        codes = {u.id: u.code for u in units}
        rows = [{"code": u.code, "name": u.name, "parent": codes.get(u.parent_id), "timezone": u.timezone}
                for u in units]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        click.echo(f"{r['code']}  {r['name']}  tz={r['timezone']}" + (f"  parent={r['parent']}" if r["parent"] else ""))


def _read_new_password() -> str:
    """Twice from a prompt, or two lines on stdin for scripts: never from argv (it shows in `ps`)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    first, second = sys.stdin.readline().rstrip("\r\n"), sys.stdin.readline().rstrip("\r\n")
    if first != second:
        raise click.ClickException("the two passwords on stdin differ")
    return first


@main.group()
def user() -> None:
    """User accounts."""


@user.command("add")
@click.argument("username")
@click.option("--full-name", default="")
@click.option("--email")
def user_add(username: str, full_name: str, email: str | None) -> None:
    """Add a user; the password is read twice from a prompt or from two lines of stdin."""
    service = _service()
    password = _read_new_password()
    with service.db.write() as s:
        accounts.add_user(s, username, password, full_name=full_name, email=email)
    click.echo(f"user {username} added")


@user.command("password")
@click.argument("username")
def user_password(username: str) -> None:
    """Set a user's password (read twice from a prompt or stdin)."""
    service = _service()
    password = _read_new_password()
    with service.db.write() as s:
        revoked = accounts.set_password(s, username, password, now=service.clock(), actor="cli")
    click.echo(f"password of {username} changed; their sessions ended" + (
        f", {revoked} API token(s) revoked" if revoked else ""))


@user.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Stop USERNAME signing in (web, REST, tokens): sessions end, tokens are revoked, claims released."""
    service = _service()
    with service.db.write() as s:
        released = accounts.disable_user(s, username, now=service.clock(), actor="cli")
    click.echo(f"user {username} disabled; {len(released)} claimed step(s) released")


@user.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    """Let a disabled USERNAME sign in again with their password (old sessions and tokens stay ended)."""
    service = _service()
    with service.db.write() as s:
        accounts.enable_user(s, username, now=service.clock(), actor="cli")
    click.echo(f"user {username} enabled")


@main.group()
def role() -> None:
    """Role assignments: a user holds a role (a lane name such as "Camat") in a unit."""


@role.command("grant")
@click.argument("username")
@click.argument("role_name", metavar="ROLE")
@click.option("--unit", "unit_code", help="Unit code; omit for the global roles designer and admin.")
def role_grant(username: str, role_name: str, unit_code: str | None) -> None:
    with _service().db.write() as s:
        accounts.grant(s, username, role_name, unit_code)
    click.echo(f"{username} holds {role_name!r}" + (f" in {unit_code}" if unit_code else ""))


@role.command("revoke")
@click.argument("username")
@click.argument("role_name", metavar="ROLE")
@click.option("--unit", "unit_code")
def role_revoke(username: str, role_name: str, unit_code: str | None) -> None:
    service = _service()
    with service.db.write() as s:
        released = accounts.revoke(s, username, role_name, unit_code, now=service.clock(), actor="cli")
    if released is None:
        click.echo(f"{username} did not hold {role_name!r}")
    else:
        click.echo("revoked" + (f"; {len(released)} claimed step(s) released" if released else ""))


@role.command("substitute")
@click.argument("username")
@click.argument("role_name", metavar="ROLE")
@click.option("--unit", "unit_code", required=True)
@click.option("--from", "starts_on", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "ends_on", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--kind", type=click.Choice(["Plh", "Plt"]), default="Plh", show_default=True)
def role_substitute(username: str, role_name: str, unit_code: str, starts_on: Any, ends_on: Any, kind: str) -> None:
    """USERNAME acts for ROLE in a unit (Plh/Plt) for a date range, inclusive."""
    with _service().db.write() as s:
        accounts.add_substitution(s, username, role_name, unit_code, starts_on.date(), ends_on.date(), kind=kind)
    click.echo(f"{username} is {kind} {role_name} in {unit_code} from {starts_on:%Y-%m-%d} to {ends_on:%Y-%m-%d}")


# ---------------------------------------------------------------- running

@main.command()
@click.argument("key")
@click.option("--unit", "unit_code", required=True, help="Unit the instance runs in.")
@click.option("--business-key", help="Your own reference, e.g. a letter number.")
@click.option("--data", help="Start variables as a JSON object.")
@click.option("--json", "as_json", is_flag=True)
def start(key: str, unit_code: str, business_key: str | None, data: str | None, as_json: bool) -> None:
    """Start the latest version of process KEY."""
    view = _service().start(key, unit=unit_code, business_key=business_key,
                            variables=_parse_json_object(data, "--data"))
    if as_json:
        _print_json(view.to_json())
        return
    click.echo(f"instance {view.id} started ({view.process_key} in {view.unit_code})")


def _due(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@main.command()
@click.option("--user", "username", required=True)
@click.option("--process", "process_key", help="Only tasks of this process key.")
@click.option("--unit", "unit_code", help="Only tasks of this unit.")
@click.option("--mine", is_flag=True, help="Only tasks claimed by the user.")
@click.option("--json", "as_json", is_flag=True)
def tasks(username: str, process_key: str | None, unit_code: str | None, mine: bool, as_json: bool) -> None:
    """Tasks a user has or may claim, earliest deadline first."""
    service = _service()
    rows = service.tasks_for(service.actor(username), process_key=process_key, unit=unit_code,
                             include_claimable=not mine, limit=500)
    if as_json:
        _print_json([r.to_json() for r in rows])
        return
    if not rows:
        click.echo("no tasks")
    for t in rows:
        who = f"claimed by {t.assignee}" if t.assignee else f"role {t.candidate_role}"
        click.echo(f"{t.id}  {t.name}  [{t.lane}]  due {_due(t.due_at)}  {who}  ({t.process_key}, {t.unit_code})")


@main.command()
@click.argument("task_id")
@click.option("--user", "username", required=True)
def claim(task_id: str, username: str) -> None:
    """Claim a task for a user."""
    service = _service()
    service.claim(task_id, service.actor(username))
    click.echo(f"task {task_id} claimed by {username}")


@main.command()
@click.argument("task_id")
@click.option("--user", "username", required=True)
def unclaim(task_id: str, username: str) -> None:
    """Give a claimed task back to its role."""
    service = _service()
    service.unclaim(task_id, service.actor(username))
    click.echo(f"task {task_id} unclaimed")


@main.command()
@click.argument("task_id")
@click.option("--user", "username", required=True)
@click.option("--data", help="Form data as a JSON object; validated like the web form.")
@click.option("--late-reason", help="Required when the task is past its deadline.")
@click.option("--json", "as_json", is_flag=True)
def complete(task_id: str, username: str, data: str | None, late_reason: str | None, as_json: bool) -> None:
    """Complete a task as a user."""
    service = _service()
    view = service.complete(task_id, service.actor(username), _parse_json_object(data, "--data"),
                            late_reason=late_reason)
    if as_json:
        _print_json(view.to_json())
        return
    click.echo(f"task {task_id} completed; instance {view.id} is {view.status}")


@main.command()
@click.argument("instance_id")
@click.option("--json", "as_json", is_flag=True)
def show(instance_id: str, as_json: bool) -> None:
    """An instance with its steps, data and audit trail."""
    view = _service().instance(instance_id)
    if as_json:
        _print_json(view.to_json())
        return
    click.echo(f"{view.process_name} ({view.definition_id})")
    click.echo(f"instance {view.id}  status {view.status}  unit {view.unit_code}  "
               f"business key {view.business_key or '-'}")
    click.echo(f"started {_due(view.started_at)} by {view.started_by or '-'}; ended {_due(view.ended_at)}")
    click.echo("steps:")
    for t in view.tasks:
        done = f"done {_due(t.completed_at)} by {t.completed_by}" if t.completed_at else f"due {_due(t.due_at)}"
        late = f"  late: {t.late_reason}" if t.late_reason else ""
        click.echo(f"  {t.state:<9} {t.name}  [{t.lane}]  {done}{late}")
    click.echo("data:")
    click.echo("  " + json.dumps(view.data, ensure_ascii=False, default=str))
    click.echo("audit:")
    for a in view.audit:
        click.echo(f"  {_due(a.at)}  {a.actor or 'engine'}  {a.action}")


# Commands that live beside the modules they drive; a missing module (not yet built) is skipped,
# any other import error is a bug and surfaces.
OPTIONAL_COMMANDS = (
    ("engine.sop.commands", "sop"),
    ("engine.calendar_commands", "calendar"),
    ("engine.worker", "worker"),
    ("engine.demo", "demo"),
    ("engine.tokens", "token"),
    ("engine.check", "check"),
    ("engine.repair", "repair"),
)


def _add_optional_commands() -> None:
    import importlib

    for module_name, attr in OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        main.add_command(getattr(module, attr))
    # The web layer adds `serve` this way, so engine never imports it.
    for ep in entry_points(group="alur.commands"):
        try:
            command = ep.load()
        except ModuleNotFoundError as exc:
            if exc.name != ep.module:
                raise
            continue
        main.add_command(command, ep.name)


_add_optional_commands()

