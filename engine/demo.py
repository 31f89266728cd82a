"""`alur demo`: a ready-to-try database — the seeds' units, every SOP in bpmn/ and forms/, one user per lane
role and unit, and a few instances per SOP, some advanced, some overdue.

Demo only: every account gets the same published password. Never run this on a production database.
Running it twice adds nothing new (units, users and demo instances are looked up first).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from engine import accounts, forms
from engine.accounts import SYSTEM
from engine.errors import AlurError, FormValidationError
from engine.models import ProcessDefinition, ProcessInstance, Unit, User
from engine.service import Alur

DEMO_PASSWORD = "alur-demo-2026"
ROOT = Path(__file__).resolve().parent.parent

# code, name, parent code. The two kabupaten of the seeds and the units whose SOPs we run.
UNITS: tuple[tuple[str, str, str | None], ...] = (
    ("kab-pessel", "Kabupaten Pesisir Selatan", None),
    ("kec-iv-jurai", "Kecamatan IV Jurai", "kab-pessel"),
    ("setda-pessel", "Sekretariat Daerah Kabupaten Pesisir Selatan", "kab-pessel"),
    ("kab-banyumas", "Kabupaten Banyumas", None),
    ("kec-wangon", "Kecamatan Wangon", "kab-banyumas"),
)
SHORT = {"kec-iv-jurai": "jurai", "setda-pessel": "setda", "kec-wangon": "wangon"}
ALL_UNITS = tuple(SHORT)
# The SOP's `sop.unit` property → where it runs. "Semua unit kerja" (a supporting SOP) runs everywhere.
UNIT_BY_SOP_UNIT = {
    "kecamatan iv jurai": ("kec-iv-jurai",),
    "sekretariat daerah kabupaten pesisir selatan": ("setda-pessel",),
    "setda pesisir selatan": ("setda-pessel",),
    "kecamatan wangon": ("kec-wangon",),
    "semua unit kerja": ALL_UNITS,
}


@dataclass
class DemoLogin:
    username: str
    role: str
    unit: str | None


class _Clock:
    """A settable clock: instances start in the past so some steps are already overdue."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def units_for(info: dict[str, Any]) -> tuple[str, ...]:
    props = info.get("properties") or {}
    for key in ("sop.unit", "sop.instansi"):
        units = UNIT_BY_SOP_UNIT.get(str(props.get(key, "")).strip().lower())
        if units:
            return units
    return ALL_UNITS


def username_for(role: str, unit: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", role.lower()).strip("-") or "staf"
    return f"{slug[:40]}.{SHORT.get(unit, unit)}"


def sample_value(field: forms.Field, now: datetime) -> Any:
    """A plausible value that passes the field's rules; None when we cannot make one (e.g. a pattern)."""
    if field.type in ("expression",) or field.readonly:
        return None
    if field.type in ("textfield", "textarea"):
        if field.pattern or field.validation_type:
            return None
        text = f"Contoh: {field.label or field.key}" if field.type == "textfield" else \
            f"Isian contoh untuk {field.label or field.key} (data demo)."
        if field.min_length and len(text) < field.min_length:
            text = text.ljust(field.min_length, ".")
        return text[: field.max_length] if field.max_length else text
    if field.type == "number":
        value: float = now.year if "tahun" in field.key else 100
        if field.min is not None:
            value = max(value, field.min)
        if field.max is not None:
            value = min(value, field.max)
        return value
    if field.type in ("select", "radio"):
        values = [v for v, _ in field.options]
        return "ya" if "ya" in values else (values[0] if values else None)
    if field.type == "checklist":
        return [field.options[0][0]] if field.options else []
    if field.type == "checkbox":
        return True
    if field.type == "datetime":
        local = now.astimezone(forms.DEFAULT_TIMEZONE)
        return {"date": local.date().isoformat(), "time": "09:00"}.get(field.subtype or "date",
                                                                       local.replace(microsecond=0).isoformat())
    return None


def sample_data(form: forms.FormDefinition | None, now: datetime) -> dict[str, Any]:
    if form is None:
        return {}
    data = {}
    for f in form.fields:
        value = sample_value(f, now)
        if value is not None:
            data[f.key] = value
    return data


def _ensure_units(service: Alur) -> None:
    with service.db.write() as s:
        for code, name, parent in UNITS:
            if s.scalar(select(Unit.id).where(Unit.code == code)) is None:
                accounts.add_unit(s, code, name, parent=parent)


def _deploy(service: Alur, root: Path, echo: Callable[[str], None]) -> None:
    files = {p.name: p.read_bytes() for folder in ("forms", "bpmn") if (root / folder).is_dir()
             for p in sorted((root / folder).iterdir()) if p.suffix in (".bpmn", ".form")}
    if not files:
        echo("  (no files in bpmn/ and forms/ to deploy)")
        return
    result = service.deploy(files, name="demo", source="alur demo")
    echo(f"  deployed {sum(d.is_new for d in result.definitions)} new process version(s), "
         f"{sum(f.is_new for f in result.forms)} new form version(s)")


def _ensure_users(service: Alur, password: str) -> list[DemoLogin]:
    logins: list[DemoLogin] = []
    with service.db.read() as s:
        rows = s.execute(select(ProcessDefinition.key, ProcessDefinition.info)
                         .order_by(ProcessDefinition.key, ProcessDefinition.version.desc())).all()
    latest: dict[str, dict[str, Any]] = {}
    for key, info in rows:
        latest.setdefault(key, info)
    wanted: dict[str, tuple[str, str]] = {}
    for info in latest.values():
        for unit in units_for(info):
            for role in info.get("lanes") or []:
                wanted.setdefault(username_for(role, unit), (role, unit))
    with service.db.write() as s:
        existing = set(s.scalars(select(User.username)))
        for username, (role, unit) in sorted(wanted.items()):
            if username not in existing:
                accounts.add_user(s, username, password, full_name=f"{role} ({SHORT.get(unit, unit)}, demo)")
            accounts.grant(s, username, role, unit)
            logins.append(DemoLogin(username, role, unit))
        for username, role in (("designer", "designer"), ("admin", "admin")):
            if username not in existing:
                accounts.add_user(s, username, password, full_name=f"{role.title()} (demo)")
            accounts.grant(s, username, role)
            logins.append(DemoLogin(username, role, None))
    return logins


def _advance(service: Alur, instance_id: str, steps: int, clock: _Clock) -> int:
    """Complete up to `steps` READY tasks, each an hour after the last, as a user of the task's lane."""
    done = 0
    for _ in range(steps):
        view = service.instance(instance_id)
        ready = [t for t in view.tasks if t.state == "READY"]
        if not ready:
            break
        task = ready[0]
        clock.now += timedelta(hours=1)
        username = username_for(task.candidate_role or "", view.unit_code)
        try:
            actor = service.actor(username)
        except AlurError:
            actor = SYSTEM
        data = sample_data(service.task_form(task.id), clock.now)
        late = "Data contoh (demo): diselesaikan terlambat" if task.due_at and clock.now > task.due_at else None
        try:
            service.complete(task.id, actor, data, late_reason=late)
        except FormValidationError:
            break  # a form our sample data cannot satisfy: leave the step for a person
        done += 1
    return done


def _start_instances(service: Alur, per_sop: int, echo: Callable[[str], None]) -> None:
    with service.db.read() as s:
        infos = {key: info for key, info in s.execute(
            select(ProcessDefinition.key, ProcessDefinition.info).order_by(ProcessDefinition.version))}
        already = {(k, u) for k, u in s.execute(
            select(ProcessInstance.process_key, Unit.code).join(Unit, Unit.id == ProcessInstance.unit_id)
            .where(ProcessInstance.business_key.like("DEMO-%")))}
    real_now = service.clock()
    clock = _Clock(real_now)
    past = Alur(service.db, clock=clock)  # same database, a clock we move
    for key, info in sorted(infos.items()):
        for unit in units_for(info):
            if (key, unit) in already:
                continue
            for i in range(per_sop):
                # Oldest first: started a week ago (overdue), then 3 days ago, then now.
                clock.now = real_now - timedelta(days=max(0, 7 - 4 * i))
                bkey = f"DEMO-{SHORT.get(unit, unit).upper()}-{key[:40]}-{i + 1}"
                view = past.start(key, unit=unit, business_key=bkey)
                advanced = _advance(past, view.id, i, clock)  # 0, 1, 2 … steps done
                echo(f"  {bkey}: {advanced} step(s) done")


def run_demo(service: Alur, *, root: Path = ROOT, password: str = DEMO_PASSWORD, per_sop: int = 3,
             echo: Callable[[str], None] = print) -> list[DemoLogin]:
    echo("Units…")
    _ensure_units(service)
    echo("Deploying bpmn/ and forms/…")
    _deploy(service, root, echo)
    echo("Users…")
    logins = _ensure_users(service, password)
    echo("Instances…")
    _start_instances(service, per_sop, echo)
    return logins


@click.command()
@click.option("--instances", "per_sop", default=3, show_default=True, type=click.IntRange(0, 20),
              help="Instances per SOP and unit.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=ROOT, show_default=False,
              help="Folder holding bpmn/ and forms/ (default: this checkout).")
def demo(per_sop: int, root: Path) -> None:
    """Fill an initialised database with demo units, SOPs, users and instances (DEMO ONLY)."""
    from engine.config import Settings
    from engine.db import Database
    from engine.migrate import current_revision, head_revision

    db = Database(Settings.from_env().database_url)
    if current_revision(db) != head_revision():
        raise click.ClickException("the database is not initialised or not up to date: run `alur init` first")
    service = Alur(db)
    logins = run_demo(service, root=root, per_sop=per_sop, echo=click.echo)
    click.echo("")
    click.echo(f"Demo logins — every account uses the password {DEMO_PASSWORD!r} (DEMO ONLY: never in production):")
    width = max(len(login.username) for login in logins) if logins else 10
    for login in logins:
        where = f"  @ {login.unit}" if login.unit else ""
        click.echo(f"  {login.username.ljust(width)}  {login.role}{where}")
    click.echo(f"(generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
