"""The operator's account commands (issue 13, items 10 and 15): `alur user disable/enable`, `alur user password`
and `alur role revoke` go through engine/accounts.py, are audited and say what they released or revoked; and
the nginx example limits sign-in posts and /engine-rest (item 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from engine.cli import main
from engine.config import Settings
from engine.db import Database
from engine.models import ApiToken, AuditEvent, User
from tests.conftest import DATA

ROOT = Path(__file__).parent.parent


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def _actions() -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with Database(Settings.from_env().database_url).read() as s:
        return [(e.action, e.data or {}) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
                if e.instance_id is None or e.action == "release"]


def test_disable_enable_password_and_revoke_commands(run) -> None:  # type: ignore[no-untyped-def]
    import json

    assert run("init").exit_code == 0
    assert run("deploy", str(DATA / "service")).exit_code == 0
    assert run("unit", "add", "iv-jurai", "Kecamatan IV Jurai").exit_code == 0
    assert run("user", "add", "siti", input="rahasia-123\nrahasia-123\n").exit_code == 0
    assert run("role", "grant", "siti", "Kasubag", "--unit", "iv-jurai").exit_code == 0
    run("start", "pengajuan", "--unit", "iv-jurai")
    [task] = json.loads(run("tasks", "--user", "siti", "--json").output)
    assert run("claim", task["id"], "--user", "siti").exit_code == 0
    assert run("token", "create", "siti").exit_code == 0

    disabled = run("user", "disable", "siti")
    assert disabled.exit_code == 0 and disabled.output.strip() == "user siti disabled; 1 claimed step(s) released"
    again = run("user", "disable", "siti")
    assert again.exit_code == 1 and "already disabled" in again.output
    with Database(Settings.from_env().database_url).read() as s:
        assert s.scalar(select(User.is_active).where(User.username == "siti")) is False
        assert s.scalar(select(ApiToken.id)) is None
    assert run("user", "enable", "siti").output.strip() == "user siti enabled"
    assert run("user", "enable", "siti").exit_code == 1

    assert run("claim", task["id"], "--user", "siti").exit_code == 0
    assert run("token", "create", "siti").exit_code == 0
    reset = run("user", "password", "siti", input="baru-sekali-1\nbaru-sekali-1\n")
    assert reset.output.strip() == "password of siti changed; their sessions ended, 1 API token(s) revoked"

    revoked = run("role", "revoke", "siti", "Kasubag", "--unit", "iv-jurai")
    assert revoked.output.strip() == "revoked; 1 claimed step(s) released"
    assert run("role", "revoke", "siti", "Kasubag", "--unit", "iv-jurai").output.strip() == \
        "siti did not hold 'Kasubag'"
    refused = run("complete", task["id"], "--user", "siti", "--data", '{"judul": "Laporan"}')
    assert refused.exit_code == 1

    actions = [(a, d.get("reason")) for a, d in _actions() if a in (
        "user_disabled", "user_enabled", "password_reset", "role_revoked", "token_revoked", "release")]
    assert actions == [
        ("token_revoked", "user_disabled"), ("user_disabled", None),
        ("release", "released because the user was disabled"),
        ("user_enabled", None),
        ("token_revoked", "password_reset"), ("password_reset", None),
        ("role_revoked", None), ("release", "released because the role was revoked")]


def test_nginx_example_limits_sign_in_posts_and_engine_rest() -> None:
    conf = (ROOT / "deploy" / "nginx" / "alur.conf").read_text()
    keys = {zone: key for key, zone in re.findall(r"limit_req_zone \$(\w+) zone=(\w+):", conf)}
    assert set(keys) == {"alur_login", "alur_rest"}
    # The keys are empty (not limited) except for sign-in posts and REST calls.
    assert re.search(r'map "\$request_method:\$uri" \$' + keys["alur_login"]
                     + r' \{\s*default "";\s*"~\^POST:\.\*/masuk\$" \$binary_remote_addr;', conf)
    assert re.search(r'map \$uri \$' + keys["alur_rest"]
                     + r' \{\s*default "";\s*"~/engine-rest/" \$binary_remote_addr;', conf)
    location = conf[conf.index("location / {"):]
    assert "limit_req zone=alur_login" in location and "limit_req zone=alur_rest" in location
    assert "limit_req_status 429;" in conf
