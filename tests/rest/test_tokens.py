"""`alur token create/list/revoke`: the value is shown once, only its hash is stored, revoked tokens stop."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.cli import main
from engine.db import Database
from engine.models import ApiToken
from engine.tokens import token_hash, verify_token
from tests.rest.conftest import setup_accounts


def test_token_commands(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    setup_accounts(sqlite_db)
    monkeypatch.setenv("ALUR_DATABASE_URL", sqlite_db.url)
    runner = CliRunner()
    created = runner.invoke(main, ["token", "create", "desainer", "--name", "Modeler"])
    assert created.exit_code == 0, created.output
    value = created.output.strip().splitlines()[-1]
    assert value.startswith("alur_") and len(value) > 40
    with sqlite_db.read() as s:
        stored = s.scalars(select(ApiToken.token_sha256)).all()
        assert stored == [token_hash(value)] and value not in stored
        assert verify_token(s, value) == "desainer"
    listed = runner.invoke(main, ["token", "list"])
    assert "desainer" in listed.output and value not in listed.output
    token_id = created.output.split()[1]
    assert runner.invoke(main, ["token", "revoke", token_id]).exit_code == 0
    with sqlite_db.read() as s:
        assert verify_token(s, value) is None
    assert runner.invoke(main, ["token", "create", "tidak-ada"]).exit_code == 1
