"""Fixtures for the Camunda 7 REST subset: units kab > kec-a, kec-b; users per lane; a designer; an admin;
the web test SOP (lanes Kasubag → Camat → Kasubag) and its forms, deployed over HTTP like the Modeler does."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine import accounts
from engine.db import Database
from engine.service import Alur
from tests.conftest import FakeClock
from web.app import create_app

WEB_DATA = Path(__file__).parent.parent / "web" / "data"
PASSWORD = "rahasia-uji-123"
USERS: dict[str, list[tuple[str, str | None]]] = {
    "desainer": [("designer", None)],
    "kasubag": [("Kasubag", "kec-a")],
    "camat": [("Camat", "kec-a")],
    "kasubag.b": [("Kasubag", "kec-b")],
    "staf": [("Staf", "kec-a")],
    "admin": [("admin", None)],
}


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": "application/json"}


@dataclass
class Rest:
    app: Flask
    client: FlaskClient
    service: Alur
    clock: FakeClock

    def get(self, path: str, user: str = "admin", **kw: Any) -> Any:
        return self.client.get(f"/engine-rest{path}", headers=basic(user), **kw)

    def post(self, path: str, user: str = "admin", json: Any = None, **kw: Any) -> Any:
        return self.client.post(f"/engine-rest{path}", headers=basic(user), json=json, **kw)

    def delete(self, path: str, user: str = "admin", **kw: Any) -> Any:
        return self.client.delete(f"/engine-rest{path}", headers=basic(user), **kw)

    def deploy(self, user: str = "desainer", files: dict[str, bytes] | None = None, **fields: str) -> Any:
        """POST /deployment/create exactly as Camunda Modeler builds it."""
        files = files if files is not None else modeler_files()
        data: dict[str, Any] = {
            "deployment-name": fields.pop("name", "web_flow"),
            "deployment-source": "Camunda Modeler",
            "enable-duplicate-filtering": "true",
            "deploy-changed-only": "true",
            **fields,
        }
        import io

        for name, content in files.items():
            ctype = "text/xml" if name.endswith(".bpmn") else "application/json"
            data[name] = (io.BytesIO(content), name, ctype)
        return self.client.post("/engine-rest/deployment/create", headers=basic(user), data=data,
                                content_type="multipart/form-data")


def modeler_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(WEB_DATA.iterdir()) if p.suffix in (".bpmn", ".form")}


def setup_accounts(db: Database) -> None:
    with db.write() as s:
        accounts.add_unit(s, "kab", "Kabupaten Uji")
        accounts.add_unit(s, "kec-a", "Kecamatan A", parent="kab")
        accounts.add_unit(s, "kec-b", "Kecamatan B", parent="kab")
        for username, roles in USERS.items():
            accounts.add_user(s, username, PASSWORD, full_name=username.title())
            for role, unit in roles:
                accounts.grant(s, username, role, unit)


@pytest.fixture
def rest(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[Rest]:
    setup_accounts(sqlite_db)
    service = Alur(sqlite_db, clock=clock)
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "ALUR_INSTANCE_DIR": str(tmp_path / "instance")},
                     service=service)
    yield Rest(app, app.test_client(), service, clock)
