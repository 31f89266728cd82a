"""A small world for hostile-input tests: units kab > kec-a, kec-b; staff of both units; a designer; the web test
SOP (lanes Kasubag → Camat → Kasubag) and the three-step SOP with supervisor role Camat; one app serving the web
and /engine-rest. Plus `snapshot()`, which captures every row of every table and every stored file, so a test can
say "nothing changed" and mean it."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from engine import accounts
from engine.db import Database
from engine.migrate import upgrade
from engine.models import Base
from engine.service import Alur
from tests.conftest import FakeClock
from tests.report_fixtures import linear_sop_bpmn
from tests.web.conftest import DATA as WEB_DATA
from tests.web.conftest import PASSWORD, setup_data
from web.app import create_app

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
GOOD_FORM = {"judul": "Laporan bulanan", "sifat": "biasa", "action": "complete"}


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": "application/json"}


def web_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(WEB_DATA.iterdir()) if p.suffix in (".bpmn", ".form")}


@dataclass
class World:
    service: Alur
    clock: FakeClock
    db: Database
    instance_dir: Path
    app: Flask

    def client(self, username: str | None = None) -> FlaskClient:
        client = self.app.test_client()
        if username is not None:
            response = client.post("/masuk", data={"username": username, "password": PASSWORD})
            assert response.status_code == 302, response.get_data(as_text=True)[:300]
        return client

    def start(self, unit: str = "kec-a", business_key: str = "LAP-001", key: str = "web_flow") -> str:
        """Start an instance; the id of its first READY task."""
        view = self.service.start(key, unit=unit, business_key=business_key)
        return next(t.id for t in view.tasks if t.state == "READY")

    def make_app(self, **config: Any) -> Flask:
        settings = {"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False,
                    "ALUR_INSTANCE_DIR": str(self.instance_dir), **config}
        return create_app(settings, service=self.service)


def build_world(tmp: Path, **app_config: Any) -> World:
    db = Database(f"sqlite:///{tmp / 'alur.sqlite3'}")
    upgrade(db)
    clock = FakeClock()
    service = setup_data(db, clock)  # kab > kec-a, kec-b; kasubag, camat, kasubag.b, staf, admin; web_flow
    with db.write() as s:
        for username, role, unit in (("desainer", "designer", None), ("camat.b", "Camat", "kec-b")):
            accounts.add_user(s, username, PASSWORD, full_name=username.title())
            accounts.grant(s, username, role, unit)
    service.deploy({"sop_uji.bpmn": linear_sop_bpmn()})
    world = World(service, clock, db, tmp / "instance", None)  # type: ignore[arg-type]
    world.app = world.make_app(**app_config)
    return world


def snapshot(world: World) -> dict[str, Any]:
    """Every row of every table, and every file in the instance folder (but the sign-out list)."""
    state: dict[str, Any] = {}
    with world.db.read() as s:
        for table in Base.metadata.sorted_tables:
            state[table.name] = sorted(repr(tuple(row)) for row in s.execute(select(table)).all())
    files = world.instance_dir.rglob("*") if world.instance_dir.exists() else []
    state["files"] = sorted(str(p.relative_to(world.instance_dir)) for p in files
                            if p.is_file() and "revoked-sessions" not in p.parts)
    return state


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of the tables (or 'files') that differ."""
    return [name for name in before if before[name] != after.get(name)]


class Listener:
    """A TCP server on 127.0.0.1 recording every connection it gets (the first bytes of each): proof that a
    hostile document made no network request."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.1)
        self.port: int = self.server.getsockname()[1]
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.connections.append(conn.recv(200) or b"(connected)")
                except OSError:
                    self.connections.append(b"(connected)")


@contextmanager
def listening() -> Iterator[Listener]:
    listener = Listener()
    listener._thread.start()
    try:
        yield listener
    finally:
        listener._stop.set()
        listener._thread.join(5)
        listener.server.close()
