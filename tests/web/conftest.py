"""Fixtures for the staff web: a deployed test SOP (lanes Kasubag → Camat → Kasubag) in two units,
users for each lane, an app over a FakeClock-driven service, and sign-in helpers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine import accounts
from engine.db import Database
from engine.service import Alur
from tests.conftest import FakeClock
from web.app import create_app

DATA = Path(__file__).parent / "data"
PASSWORD = "rahasia-uji-123"
USERS = {
    # username: [(role, unit)]
    "kasubag": [("Kasubag", "kec-a")],
    "camat": [("Camat", "kec-a")],
    "kasubag.b": [("Kasubag", "kec-b")],
    "staf": [("Staf", "kec-a")],
}


@dataclass
class Env:
    service: Alur
    clock: FakeClock
    db: Database
    instance_dir: Path

    def start(self, unit: str = "kec-a", business_key: str = "LAP-001") -> str:
        view = self.service.start("web_flow", unit=unit, business_key=business_key)
        return next(t.id for t in view.tasks if t.state == "READY")


def setup_data(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    with db.write() as s:
        accounts.add_unit(s, "kab", "Kabupaten Uji")
        accounts.add_unit(s, "kec-a", "Kecamatan A", parent="kab")
        accounts.add_unit(s, "kec-b", "Kecamatan B", parent="kab")
        for username, roles in USERS.items():
            accounts.add_user(s, username, PASSWORD, full_name=username.title())
            for role, unit in roles:
                accounts.grant(s, username, role, unit)
        accounts.add_user(s, "admin", PASSWORD, full_name="Admin")
        accounts.grant(s, "admin", "admin")
    files = {p.name: p.read_bytes() for p in DATA.iterdir() if p.suffix in (".bpmn", ".form")}
    service.deploy(files)
    return service


@pytest.fixture
def env(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Env:
    return Env(setup_data(sqlite_db, clock), clock, sqlite_db, tmp_path / "instance")


def make_app(env: Env, **config: object) -> Flask:
    settings = {"TESTING": True, "SECRET_KEY": "test-secret", "WTF_CSRF_ENABLED": False,
                "ALUR_INSTANCE_DIR": str(env.instance_dir), **config}
    return create_app(settings, service=env.service)


@pytest.fixture
def app(env: Env) -> Iterator[Flask]:
    yield make_app(env)


def login(client: FlaskClient, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/masuk", data={"username": username, "password": password})


@pytest.fixture
def client_for(app: Flask):  # type: ignore[no-untyped-def]
    """client_for("kasubag") → a test client signed in as that user."""

    def make(username: str) -> FlaskClient:
        client = app.test_client()
        response = login(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return make


def csrf_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in page"
    return m.group(1)
