"""`alur calendar`: extra days off and working days, seen by running services without a restart."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import accounts
from engine.cli import main
from engine.db import Database
from engine.models import AuditEvent, CalendarDay
from engine.service import Alur


@pytest.fixture
def cli(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_DATABASE_URL", sqlite_db.url)
    with sqlite_db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
        accounts.add_unit(s, "wangon", "Kecamatan Wangon", timezone="Asia/Makassar")

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["calendar", *args])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def rows(db: Database) -> list[tuple[date, int | None, str, str]]:
    with db.read() as s:
        return [tuple(r) for r in s.execute(select(CalendarDay.day, CalendarDay.unit_id, CalendarDay.kind,
                                                   CalendarDay.reason).order_by(CalendarDay.day)).all()]


def test_off_workday_list_remove(cli, sqlite_db: Database) -> None:  # type: ignore[no-untyped-def]
    assert "2026-11-27 is a day off" in cli("off", "2026-11-27", "--reason", "Hari jadi kabupaten")
    assert "is a day off in iv-jurai" in cli("off", "2026-11-26", "--unit", "iv-jurai", "--reason", "Banjir")
    assert "2026-11-28 is a working day" in cli("workday", "2026-11-28", "--reason", "Sabtu kerja")
    listing = cli("list")
    assert "2026-11-26  hari libur" in listing and "iv-jurai" in listing and "Hari jadi kabupaten" in listing
    # Marking a day the other way replaces it: never both lists.
    assert "(was a day off)" in cli("workday", "2026-11-27")
    assert [(d, k) for d, _, k, _ in rows(sqlite_db)] == [
        (date(2026, 11, 26), "off"), (date(2026, 11, 27), "work"), (date(2026, 11, 28), "work")]
    # Marking it the same way again only updates the reason.
    cli("workday", "2026-11-27", "--reason", "Pengganti")
    assert len(rows(sqlite_db)) == 3 and rows(sqlite_db)[1][3] == "Pengganti"
    assert "removed" in cli("remove", "2026-11-28")
    assert "was not listed" in cli("remove", "2026-11-28")
    assert "was not listed" in cli("remove", "2026-11-26")  # that one belongs to a unit
    assert "removed" in cli("remove", "2026-11-26", "--unit", "iv-jurai")
    data = json.loads(cli("list", "--json", "--year", "2026"))
    assert data == [{"day": "2026-11-27", "kind": "work", "reason": "Pengganti", "unit": None}]
    with sqlite_db.read() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.action == "calendar")).all()) == 7


def test_list_with_national_holidays(cli) -> None:  # type: ignore[no-untyped-def]
    listing = cli("list", "--year", "2026", "--holidays")
    assert "2026-03-19  libur nasional" in listing and "Nyepi" in listing


def test_refused_input(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch, cli) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["calendar", "off", "2026-11-27"])
    assert result.exit_code != 0 and "--reason" in result.output
    result = CliRunner().invoke(main, ["calendar", "off", "27-11-2026", "--reason", "x"])
    assert result.exit_code != 0
    result = CliRunner().invoke(main, ["calendar", "off", "2026-11-27", "--unit", "nowhere", "--reason", "x"])
    assert result.exit_code == 1 and "nowhere" in result.output


def test_a_running_service_sees_the_change(cli, sqlite_db: Database) -> None:  # type: ignore[no-untyped-def]
    service = Alur(sqlite_db)  # as in another process: its own calendar cache
    service.CALENDAR_RECHECK_SECONDS = 0  # check on every use (default: at most every 10 s)
    with sqlite_db.read() as s:
        unit_id = accounts.get_unit(s, "iv-jurai").id
        assert service.calendar_for(s, unit_id).is_working_day(date(2026, 11, 27))
    cli("off", "2026-11-27", "--unit", "iv-jurai", "--reason", "Banjir")
    with sqlite_db.read() as s:
        cal = service.calendar_for(s, unit_id)
        assert not cal.is_working_day(date(2026, 11, 27))
        # A P1D step started Thursday morning is now due Monday at close of business.
        assert cal.add(datetime(2026, 11, 26, 1, 0, tzinfo=UTC), "P2D") == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    cli("remove", "2026-11-27", "--unit", "iv-jurai")
    with sqlite_db.read() as s:
        assert service.calendar_for(s, unit_id).is_working_day(date(2026, 11, 27))
