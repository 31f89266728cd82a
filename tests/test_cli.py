"""The `alur` command line as an operator uses it: exit codes, messages, --json output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from tests.conftest import DATA

SERVICE = DATA / "service"


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_commands_before_init_ask_for_init(run) -> None:  # type: ignore[no-untyped-def]
    result = run("definitions")
    assert result.exit_code == 1 and "alur init" in result.output


def test_operator_flow_from_init_to_completed_instance(run) -> None:  # type: ignore[no-untyped-def]
    assert "database created" in run("init").output
    assert "up to date" in run("init").output

    deployed = run("deploy", str(SERVICE))
    assert deployed.exit_code == 0, deployed.output
    assert "pengajuan  version 1  deployed" in deployed.output
    again = run("deploy", str(SERVICE))
    assert "pengajuan  version 1  unchanged" in again.output and "nothing changed" in again.output

    assert run("unit", "add", "iv-jurai", "Kecamatan IV Jurai").exit_code == 0
    for user, role in [("kasubag", "Kasubag"), ("camat", "Camat")]:
        added = run("user", "add", user, input="rahasia-123\nrahasia-123\n")
        assert added.exit_code == 0, added.output
        assert run("role", "grant", user, role, "--unit", "iv-jurai").exit_code == 0

    started = run("start", "pengajuan", "--unit", "iv-jurai", "--business-key", "LAP-7", "--json")
    instance_id = json.loads(started.output)["id"]

    [task] = json.loads(run("tasks", "--user", "kasubag", "--json").output)
    assert {k: task[k] for k in ("element_id", "name", "lane", "state")} == {
        "element_id": "Step_1", "name": "Menyusun laporan", "lane": "Kasubag", "state": "READY"}
    assert task["id"] and task["due_at"]
    assert json.loads(run("tasks", "--user", "camat", "--json").output) == []

    refused = run("complete", task["id"], "--user", "kasubag", "--data", '{"judul": "ab"}')
    assert refused.exit_code == 1 and "judul:" in refused.output
    wrong = run("complete", task["id"], "--user", "camat", "--data", '{"judul": "Laporan"}')
    assert wrong.exit_code == 1 and "may not work on it" in wrong.output

    done = run("complete", task["id"], "--user", "kasubag", "--data", '{"judul": "Laporan Q1"}')
    assert done.exit_code == 0, done.output
    [review] = json.loads(run("tasks", "--user", "camat", "--json").output)
    run("complete", review["id"], "--user", "camat", "--data", '{"keputusan": "ya"}')
    [archive] = json.loads(run("tasks", "--user", "kasubag", "--json").output)
    run("complete", archive["id"], "--user", "kasubag", "--data", '{"nomor_arsip": "A-1"}')

    shown = json.loads(run("show", instance_id, "--json").output)
    assert shown["status"] == "completed" and shown["business_key"] == "LAP-7"
    assert [t["element_id"] for t in shown["tasks"]] == ["Step_1", "Step_2", "Step_3"]
    assert "completed" in run("show", instance_id).output

    checked = run("check")
    assert checked.exit_code == 0 and checked.output.strip() == "checked 1 instance(s): no problem found"


def test_check_before_init_asks_for_init(run) -> None:  # type: ignore[no-untyped-def]
    result = run("check")
    assert result.exit_code == 1 and "alur init" in result.output


def test_invalid_deploy_exits_1_with_every_problem(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("init")
    bad = tmp_path / "bad.bpmn"
    bad.write_text((SERVICE / "pengajuan.bpmn").read_text().replace('camunda:formRef="Form_laporan"',
                                                                    'camunda:formRef="Form_tidak_ada"'))
    script = tmp_path / "script.bpmn"
    script.write_text((SERVICE / "pengajuan.bpmn").read_text()
                      .replace('id="pengajuan"', 'id="dengan_skrip"')
                      .replace("<bpmn:userTask id=\"Step_3\"", "<bpmn:scriptTask id=\"Step_3\"")
                      .replace("</bpmn:userTask>\n    <bpmn:endEvent", "</bpmn:scriptTask>\n    <bpmn:endEvent"))
    result = run("deploy", str(bad), str(script))
    assert result.exit_code == 1
    assert "nothing was deployed" in result.output
    assert "bad.bpmn" in result.output and "Form_tidak_ada" in result.output
    assert "script.bpmn" in result.output and "Step_3" in result.output
    assert run("definitions", "--json").output.strip() == "[]"


def test_passwords_must_match_and_never_come_from_argv(run) -> None:  # type: ignore[no-untyped-def]
    run("init")
    result = run("user", "add", "siti", input="rahasia-123\nlain-lain-1\n")
    assert result.exit_code == 1 and "differ" in result.output
    result = run("user", "add", "siti", "--password", "x")
    assert result.exit_code == 2  # no such option
    assert run("user", "add", "siti", input="pendek\npendek\n").exit_code == 1


def test_global_roles_take_no_unit(run) -> None:  # type: ignore[no-untyped-def]
    run("init")
    run("unit", "add", "iv-jurai", "Kecamatan IV Jurai")
    run("user", "add", "desainer", input="rahasia-123\nrahasia-123\n")
    assert run("role", "grant", "desainer", "designer").exit_code == 0
    refused = run("role", "grant", "desainer", "designer", "--unit", "iv-jurai")
    assert refused.exit_code == 1 and "global role" in refused.output
    refused = run("role", "grant", "desainer", "Camat")
    assert refused.exit_code == 1 and "--unit" in refused.output
