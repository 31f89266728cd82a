"""A form pattern made to backtrack (`^(a+)+$`) on the staff web: with Python's `re`, 29 characters took 15 s with
every other request waiting; with RE2 (engine/jsregex.py) a 10,000-character value is refused at once. The
pattern is also one the browser's `v`-flag HTML `pattern` would reject (`[\\w-]`): the page still works because
the pattern is never copied into the HTML. The timeout marker only guards against a hang."""

from __future__ import annotations

import json

import pytest

from engine.errors import DeployError
from engine.forms import MAX_STRING_CHARS
from tests.hostile.helpers import GOOD_FORM, World, changed, snapshot
from tests.web.conftest import DATA as WEB_DATA

EVIL = r"^(a+)+[\w-]$"


def _rules_form(pattern: str) -> bytes:
    form = json.loads((WEB_DATA / "web_rules.form").read_text())
    [kode] = [c for c in form["components"] if c.get("key") == "kode"]
    kode["validate"]["pattern"] = pattern
    return json.dumps(form).encode()


@pytest.fixture(scope="module")
def evil_world(world: World) -> World:
    world.service.deploy({"web_rules.form": _rules_form(EVIL)})
    return world


@pytest.mark.timeout(60)
def test_a_backtracking_pattern_on_10000_characters_is_refused_at_once(evil_world: World) -> None:
    task_id = evil_world.start(business_key="REDOS")
    client = evil_world.client("kasubag")
    page = client.get(f"/tugas/{task_id}")
    assert page.status_code == 200
    assert 'name="kode"' in page.get_data(as_text=True) and "pattern=" not in page.get_data(as_text=True)
    before = snapshot(evil_world)
    value = "a" * (MAX_STRING_CHARS - 2) + "!!"
    response = client.post(f"/tugas/{task_id}", data={**GOOD_FORM, "kode": value})
    assert response.status_code == 422
    assert "format tidak sesuai" in response.get_data(as_text=True)
    assert changed(before, snapshot(evil_world)) == []
    response = client.post(f"/tugas/{task_id}", data={**GOOD_FORM, "kode": "a" * (MAX_STRING_CHARS - 1) + "-"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]  # a matching value passes


def test_a_lookahead_pattern_is_refused_at_deploy(world: World) -> None:
    before = snapshot(world)
    with pytest.raises(DeployError) as exc:
        world.service.deploy({"web_rules.form": _rules_form(r"^(?=.*\d)[A-Z0-9-]+$")})
    [problem] = exc.value.problems
    assert "lookahead" in problem.message and "'Form_web_rules'" in problem.message and "'kode'" in problem.message
    assert changed(before, snapshot(world)) == []
