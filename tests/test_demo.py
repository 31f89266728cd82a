"""`alur demo`: units, every deployed SOP's lane users, instances with some steps done and some overdue."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.demo import DEMO_PASSWORD, run_demo, sample_data, username_for
from engine.models import ProcessInstance, Task, Unit
from engine.service import Alur


def test_demo_sets_up_a_usable_database(sqlite_db, clock):  # type: ignore[no-untyped-def]
    service = Alur(sqlite_db, clock=clock)
    lines: list[str] = []
    logins = run_demo(service, echo=lines.append, per_sop=2)
    names = {login.username for login in logins}
    assert {"admin", "designer", "camat.wangon", "camat.jurai"} <= names
    with sqlite_db.read() as s:
        units = set(s.scalars(select(Unit.code)))
        assert {"kab-pessel", "kec-iv-jurai", "setda-pessel", "kab-banyumas", "kec-wangon"} <= units
        instances = s.scalar(select(func.count()).select_from(ProcessInstance)) or 0
        overdue = s.scalar(select(func.count()).select_from(Task).where(
            Task.state == "READY", Task.due_at < clock())) or 0
        completed = s.scalar(select(func.count()).select_from(Task).where(Task.state == "COMPLETED")) or 0
    assert instances >= 10
    assert overdue > 0
    assert completed > 0
    # Every lane user can sign in with the demo password and sees work in the inbox.
    assert service.login("camat.wangon", DEMO_PASSWORD) == "camat.wangon"
    assert service.tasks_for(service.actor("camat.wangon"))
    # Running it again adds nothing.
    run_demo(service, echo=lines.append, per_sop=2)
    with sqlite_db.read() as s:
        assert s.scalar(select(func.count()).select_from(ProcessInstance)) == instances


def test_usernames_are_valid() -> None:
    assert username_for("Kasi/Kasubbag Umpeg", "kec-wangon") == "kasi-kasubbag-umpeg.wangon"
    assert username_for("Sek. Tim", "kec-iv-jurai") == "sek-tim.jurai"


def test_sample_data_passes_the_forms(clock):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from engine import forms

    for path in sorted(Path("forms").glob("*.form")):
        form = forms.load_form(path.read_bytes(), path.name)
        forms.validate_submission(form, sample_data(form, clock()))
