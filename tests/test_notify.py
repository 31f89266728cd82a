"""Notifications: messages in Bahasa Indonesia (or the reader's English) with the unit's local time, recipients,
and the e-mail outbox against a real (local) SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message

import pytest
from sqlalchemy import select

from engine import accounts, notify
from engine.db import Database
from engine.models import Notification
from engine.service import Alur
from engine.worker import run_round
from tests.conftest import FakeClock
from tests.test_timers_service import TIMERS_BPMN, wib

aiosmtpd = pytest.importorskip("aiosmtpd", reason="aiosmtpd (dev dependency) runs the test SMTP server")
from aiosmtpd.controller import Controller  # noqa: E402


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_local_time_text() -> None:
    moment = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert notify.local_time_text(moment, "Asia/Jakarta") == "Selasa, 24 November 2026 pukul 16.00 WIB"
    assert notify.local_time_text(moment, "Asia/Makassar") == "Selasa, 24 November 2026 pukul 17.00 WITA"
    assert notify.local_time_text(moment, "Asia/Jayapura") == "Selasa, 24 November 2026 pukul 18.00 WIT"


def test_messages() -> None:
    info = notify.TaskInfo("t1", "i1", "Memeriksa laporan", "Pengajuan Laporan", "Kecamatan Wangon",
                           "Asia/Makassar", datetime(2026, 3, 25, 8, 0, tzinfo=UTC), candidate_role="Camat")
    assert notify.reminder_message(info) == (
        "Pengingat: langkah 'Memeriksa laporan' (SOP Pengajuan Laporan, Kecamatan Wangon) jatuh tempo pada "
        "Rabu, 25 Maret 2026 pukul 16.00 WITA.")
    assert notify.escalation_message(info).startswith("Eskalasi: langkah 'Memeriksa laporan'")
    assert notify.escalation_message(info).endswith("belum selesai (menunggu Camat).")


def test_messages_in_english() -> None:
    moment = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert notify.local_time_text(moment, "Asia/Makassar", "en") == "Tuesday, 24 November 2026 at 17:00 WITA"
    info = notify.TaskInfo("t1", "i1", "Memeriksa laporan", "Pengajuan Laporan", "Kecamatan Wangon",
                           "Asia/Jakarta", moment, business_key="LAP-7", assignee="kasubag")
    assert notify.reminder_message(info, "en") == (
        "Reminder: step 'Memeriksa laporan' (SOP Pengajuan Laporan, Kecamatan Wangon, no. LAP-7) is due on "
        "Tuesday, 24 November 2026 at 16:00 WIB.")
    assert notify.escalation_message(info, "en").endswith("is not done yet (handled by kasubag).")
    # Rebuilt from what the notification is about, in the reader's language; the stored text otherwise.
    data = {"task": info.to_json()}
    assert notify.message_in("en", "reminder", data, "Pengingat: ...") == notify.reminder_message(info, "en")
    assert notify.message_in("id", "reminder", data, "x") == notify.reminder_message(info)
    assert notify.message_in("en", "reminder", None, "Pengingat: lama") == "Pengingat: lama"  # stored before 0006
    assert notify.message_in("en", "reminder", {"task": {"name": 1}}, "Pengingat: rusak") == "Pengingat: rusak"


def test_supervisor_role_and_fallback_to_the_unit_above(sqlite_db: Database) -> None:
    assert notify.supervisor_role({"properties": {"alur.supervisorRole": "Sekda"}, "lanes": ["Camat"]}) == "Sekda"
    assert notify.supervisor_role({"properties": {}, "lanes": ["Camat", "Staf"]}) == "Camat"
    assert notify.supervisor_role({}) is None
    today = date(2026, 11, 23)
    with sqlite_db.write() as s:
        accounts.add_unit(s, "kab", "Kabupaten Pesisir Selatan")
        child = accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai", parent="kab")
        accounts.add_user(s, "bupati", "rahasia-123")
        accounts.grant(s, "bupati", "Kepala", "kab")
        assert notify.supervisors(s, child.id, "Kepala", today) == {"bupati"}
        accounts.add_user(s, "kepala-iv", "rahasia-123")
        accounts.grant(s, "kepala-iv", "Kepala", "iv-jurai")
        assert notify.supervisors(s, child.id, "Kepala", today) == {"kepala-iv"}


def test_store_is_deduplicated(sqlite_db: Database) -> None:
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    with sqlite_db.write() as s:
        assert notify.store(s, kind="reminder", usernames=["a", "b"], message="m", now=now, task_id="t") == 2
        assert notify.store(s, kind="reminder", usernames=["b", "c"], message="m", now=now, task_id="t") == 1
        assert notify.store(s, kind="escalation", usernames=["a"], message="m", now=now, task_id="t") == 1
        assert notify.unread(s, "a")[0].kind == "escalation"
        assert notify.mark_read(s, "a", None, now) == 2
        assert notify.unread(s, "a") == []


def _service_with_a_due_reminder(db: Database, clock: FakeClock) -> Alur:
    svc = Alur(db, clock=clock)
    svc.deploy({TIMERS_BPMN.name: TIMERS_BPMN.read_bytes()})
    with db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
        accounts.add_user(s, "kasubag", "rahasia-123", email="kasubag@example.test")
        accounts.add_user(s, "tanpa-surel", "rahasia-123")  # no e-mail: bell only
        for name in ("kasubag", "tanpa-surel"):
            accounts.grant(s, name, "Kasubag", "iv-jurai")
    svc.start("tenggat", unit="iv-jurai")
    clock.now = wib(2026, 11, 24, 12, 0)  # past the reminder time, before the deadline
    return svc


def test_outbox_sends_once_and_retries_after_a_failure(
        db: Database, clock: FakeClock, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    svc = _service_with_a_due_reminder(db, clock)
    down = notify.SmtpSettings(host="127.0.0.1", port=free_port(), sender="alur@pesisirselatan.test", timeout=2)
    report = run_round(svc, smtp=down)  # the server is unreachable: nothing is lost, nothing blocks
    assert (report.reminders, report.notifications, report.emailed, report.email_errors) == (1, 2, 0, 1)
    with db.read() as s:
        assert s.scalars(select(Notification.emailed_at)).all() == [None, None]

    up = notify.SmtpSettings(host="127.0.0.1", port=port, sender="alur@pesisirselatan.test",
                             base_url="https://alur.example.test")
    clock.advance(minutes=5)
    report = run_round(svc, smtp=up)
    assert (report.reminders, report.emailed, report.email_errors) == (0, 1, 0)
    assert not run_round(svc, smtp=up)  # sent once
    [mail] = inbox.messages
    assert mail["To"] == "kasubag@example.test" and mail["From"] == "alur@pesisirselatan.test"
    assert mail["Subject"] == "[Alur] Pengingat"
    body = mail.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    assert "Pengingat: langkah 'Memverifikasi berkas'" in body and "Selasa, 24 November 2026 pukul 16.00 WIB" in body
    with db.read() as s:
        sent = dict(s.execute(select(Notification.username, Notification.emailed_at)).all())
        mailed_id = s.scalar(select(Notification.id).where(Notification.username == "kasubag"))
    assert sent == {"kasubag": clock.now, "tanpa-surel": None}
    assert f"Buka: https://alur.example.test/pengawasan/notifikasi/{mailed_id}\r\n" in body


def test_reminders_reach_an_english_reader_in_english(
        db: Database, clock: FakeClock, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    svc = _service_with_a_due_reminder(db, clock)
    svc.set_locale("kasubag", "en")
    up = notify.SmtpSettings(host="127.0.0.1", port=port, sender="alur@pesisirselatan.test",
                             base_url="https://alur.example.test")
    assert run_round(svc, smtp=up).emailed == 1
    [mail] = inbox.messages
    body = mail.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
    assert mail["Subject"] == "[Alur] Reminder"
    assert "Reminder: step 'Memverifikasi berkas'" in body and "Tuesday, 24 November 2026 at 16:00 WIB" in body
    assert "Open: https://alur.example.test/pengawasan/notifikasi/" in body and "Buka" not in body
    with db.read() as s:
        kasubag = accounts.load_actor(s, "kasubag")
    english = svc.notifications_for(kasubag, locale="en")
    assert english[0]["message"].startswith("Reminder: step 'Memverifikasi berkas'")
    with db.read() as s:  # stored in Indonesian, as before
        assert s.scalar(select(Notification.message).where(Notification.username == "kasubag")).startswith(
            "Pengingat: langkah 'Memverifikasi berkas'")


def test_old_notifications_are_not_emailed(
        sqlite_db: Database, clock: FakeClock, smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    svc = _service_with_a_due_reminder(sqlite_db, clock)
    run_round(svc)  # no SMTP configured: stored for the bell only
    clock.advance(days=4)
    run_round(svc, smtp=notify.SmtpSettings(host="127.0.0.1", port=port))
    # Only the escalation made in this round is mailed; the 4-day-old reminder stays on the bell.
    assert [m["Subject"] for m in inbox.messages] == ["[Alur] Eskalasi: langkah terlambat"]
    assert timedelta(days=3) == notify.EMAIL_MAX_AGE


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALUR_SMTP_HOST", raising=False)
    assert notify.SmtpSettings.from_env() is None
    monkeypatch.setenv("ALUR_SMTP_HOST", "mail.example.test")
    monkeypatch.setenv("ALUR_SMTP_PORT", "587")
    monkeypatch.setenv("ALUR_SMTP_STARTTLS", "true")
    monkeypatch.setenv("ALUR_SMTP_USER", "alur")
    monkeypatch.setenv("ALUR_BASE_URL", "https://alur.example.test/")
    settings = notify.SmtpSettings.from_env()
    assert settings is not None and (settings.port, settings.starttls, settings.user) == (587, True, "alur")
    assert settings.base_url == "https://alur.example.test"
