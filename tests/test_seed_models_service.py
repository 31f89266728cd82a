"""Every bundled SOP model runs start to end through the service API alone, on SQLite and (in CI) PostgreSQL.

One deployment holds every file of `bpmn/` and `forms/`. Each lane of each deployed definition (the called
meeting SOP's lanes too) gets one user holding that role in the unit. A driver then works the instance the
way staff would: it takes the READY tasks, fills each task's form generically from `Alur.task_form` (every
required field with a value its rules accept), answers each decision "tidak" the first time it is reached
and "ya" after, and completes the task as the holder of the task's role, moving the clock on a little per
step and giving a late reason when a step is past its deadline.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import accounts
from engine.accounts import Actor
from engine.db import Database
from engine.errors import FormValidationError, PermissionDenied
from engine.forms import Field, FormDefinition, load_form, validate_submission
from engine.service import Alur
from engine.sop.render import read_sop
from engine.views import TaskView
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parent.parent
BPMN_DIR = ROOT / "bpmn"
FORMS_DIR = ROOT / "forms"
MEETING = "sop_pelaksanaan_rapat"
UNIT = "uji-seed"
DECISION_KEY = "keputusan"
STEP = timedelta(minutes=20)  # per completion: enough for the 10- and 15-minute steps to run late
MAX_STEPS = 200

SEED_KEYS = sorted(p.stem for p in BPMN_DIR.glob("*.bpmn") if p.stem != MEETING)


def seed_files() -> dict[str, bytes]:
    paths = sorted([*BPMN_DIR.glob("*.bpmn"), *FORMS_DIR.glob("*.form")])
    return {p.name: p.read_bytes() for p in paths}


def test_seed_folder_is_as_expected() -> None:
    # Guards the parametrisation: a renamed or removed model must not silently drop out of the run.
    assert len(SEED_KEYS) >= 4
    assert (BPMN_DIR / f"{MEETING}.bpmn").is_file()


# --------------------------------------------------------------------------------------------------
# Generic form filling


def _text_value(f: Field) -> str:
    if f.validation_type == "email":
        candidates = ["uji@example.go.id"]
    elif f.validation_type == "phone":
        candidates = ["0812-3456-7890"]
    else:
        candidates = [f"Isian uji {f.key}", "ABC-123", "2026", "1", "a", "A", "x@example.go.id"]
    for text in candidates:
        if f.min_length is not None and len(text) < f.min_length:
            text = text + "x" * (f.min_length - len(text))
        if f.max_length is not None:
            text = text[: f.max_length]
        if f.pattern and not re.search(f.pattern, text):
            continue
        if text.strip():
            return text
    raise AssertionError(f"no test value satisfies field {f.key!r} (pattern {f.pattern!r})")


def _number_value(f: Field) -> int | float:
    lo = Decimal(str(f.min)) if f.min is not None else None
    hi = Decimal(str(f.max)) if f.max is not None else None
    if lo is not None and hi is not None:
        value = (lo + hi) / 2
    elif lo is not None:
        value = lo + 10  # strictly above the minimum: targets are divisors in computed fields
    elif hi is not None:
        value = hi - 1
    else:
        value = Decimal(10)
    if f.increment:
        step = Decimal(str(f.increment))
        value = Decimal(math.ceil(value / step)) * step
    if f.decimal_digits is not None:
        value = value.quantize(Decimal(1).scaleb(-f.decimal_digits))
    assert (lo is None or value >= lo) and (hi is None or value <= hi), f"no number fits {f.key!r}"
    return int(value) if value == value.to_integral_value() else float(value)


def fill_form(form: FormDefinition | None, decision: str | None, clock: FakeClock) -> dict[str, Any]:
    """Valid data for `form`: every required field filled; `keputusan` set to `decision`."""
    if form is None:
        return {}
    data: dict[str, Any] = {}
    for f in form.fields:
        if f.type == "expression" or f.readonly:
            continue
        if f.key == DECISION_KEY:
            assert decision is not None
            assert decision in {v for v, _ in f.options}, f"{form.id}: no option {decision!r}"
            data[f.key] = decision
            continue
        if not f.required:
            continue
        if f.type in ("textfield", "textarea"):
            data[f.key] = _text_value(f)
        elif f.type == "number":
            data[f.key] = _number_value(f)
        elif f.type == "checkbox":
            data[f.key] = True
        elif f.type in ("select", "radio"):
            assert f.options, f"{form.id}.{f.key}: a choice without options"
            data[f.key] = f.options[0][0]
        elif f.type == "checklist":
            assert f.options, f"{form.id}.{f.key}: a checklist without options"
            data[f.key] = [f.options[0][0]]
        elif f.type == "datetime":
            now = clock()
            data[f.key] = {"date": now.date().isoformat(), "time": "10:00"}.get(
                f.subtype or "date", now.isoformat())
        else:  # pragma: no cover - a new field type needs a generator here
            raise AssertionError(f"{form.id}.{f.key}: no test value for field type {f.type!r}")
    if decision == "tidak" and form.field("catatan") is not None:
        data["catatan"] = "Mohon diperbaiki sesuai arahan."  # the form asks for it when the answer is "tidak"
    return data


def test_fill_form_satisfies_every_bundled_form(clock: FakeClock) -> None:
    for path in sorted(FORMS_DIR.glob("*.form")):
        form = load_form(path.read_bytes(), path.name)
        answers = ["ya", "tidak"] if form.field(DECISION_KEY) else [None]
        for answer in answers:
            cleaned = validate_submission(form, fill_form(form, answer, clock))
            assert all(cleaned.get(f.key) not in (None, "", []) for f in form.fields if f.required), path.name


# --------------------------------------------------------------------------------------------------
# The world: one deployment, one unit, one user per role


@pytest.fixture(autouse=True)
def one_password_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody signs in here: hash the shared password once instead of ~20 times (Argon2 takes ~0.3 s)."""
    hashed = _password_hash()
    monkeypatch.setattr(accounts, "hash_password", lambda password: hashed)


@functools.cache
def _password_hash() -> str:
    return accounts.hash_password("rahasia-123")


@dataclass
class World:
    svc: Alur
    clock: FakeClock
    definition_ids: dict[str, str]  # process key -> deployed definition id
    infos: dict[str, dict[str, Any]]  # process key -> definition info (lanes, user_tasks, called_keys)
    user_of: dict[str, str]  # role -> username
    actors: dict[str, Actor] = field(default_factory=dict)  # role -> actor


def make_world(db: Database, clock: FakeClock) -> World:
    svc = Alur(db, clock=clock)
    files = seed_files()
    result = svc.deploy(files)
    keys = {d.key for d in result.definitions}
    assert keys == {p.removesuffix(".bpmn") for p in files if p.endswith(".bpmn")}
    assert {f.file_name for f in result.forms} == {p for p in files if p.endswith(".form")}
    definition_ids = {d.key: d.id for d in result.definitions}
    infos = {key: svc.definition_info(def_id) for key, def_id in definition_ids.items()}

    roles: list[str] = []
    for key in sorted(infos):
        roles += [lane for lane in infos[key]["lanes"] if lane not in roles]
    user_of = {role: f"pegawai-{i:02d}" for i, role in enumerate(roles, start=1)}
    with db.write() as s:
        accounts.add_unit(s, UNIT, "Unit uji model SOP")
        for role, username in user_of.items():
            accounts.add_user(s, username, "rahasia-123", full_name=f"Pemegang {role}")
            accounts.grant(s, username, role, UNIT)
    world = World(svc, clock, definition_ids, infos, user_of)
    world.actors = {role: svc.actor(username) for role, username in user_of.items()}
    return world


def test_every_lane_of_every_definition_has_a_user(db: Database, clock: FakeClock) -> None:
    world = make_world(db, clock)
    assert MEETING in world.infos and set(SEED_KEYS) <= set(world.infos)
    assert {"Pimpinan Rapat", "Sekretariat Rapat"} <= set(world.user_of)
    for key, info in world.infos.items():
        assert info["lanes"], f"{key} has no lanes"
        for lane in info["lanes"]:
            assert {role for _, role in world.actors[lane].unit_roles} == {lane}


# --------------------------------------------------------------------------------------------------
# What a full run must complete, read from the models themselves


def scopes_of(world: World, key: str) -> list[str]:
    """The process key and every SOP it calls (transitively), caller first."""
    order = [key]
    for k in order:
        order += [c for c in world.infos[k]["called_keys"] if c not in order]
    return order


def expected_completions(world: World, key: str) -> Counter[tuple[str, str]]:
    """(scope key, element id) -> how often the run completes it: once, plus once per decision loop around it
    (each decision answers "tidak" exactly once)."""
    expected: Counter[tuple[str, str]] = Counter()
    for scope in scopes_of(world, key):
        user_tasks = world.infos[scope]["user_tasks"]
        doc = read_sop((BPMN_DIR / f"{scope}.bpmn").read_bytes(), f"{scope}.bpmn")
        ids = [row.element_id for row in doc.rows]
        for element_id in user_tasks:
            expected[(scope, element_id)] = 1
        for i, row in enumerate(doc.rows):
            if row.kind != "decision":
                continue
            back = [link.target for link in row.links if link.target is not None and link.target <= i]
            assert len(back) == 1, f"{scope} {row.element_id}: expected one loop-back, got {row.links}"
            for j in range(back[0], i + 1):
                assert ids[j] in user_tasks, f"{scope}: loop {row.element_id} spans non-user-task {ids[j]}"
                expected[(scope, ids[j])] += 1
    return expected


def loop_targets(world: World, key: str) -> set[tuple[str, str]]:
    """The steps a "tidak" sends the instance back to."""
    targets = set()
    for scope in scopes_of(world, key):
        doc = read_sop((BPMN_DIR / f"{scope}.bpmn").read_bytes(), f"{scope}.bpmn")
        for i, row in enumerate(doc.rows):
            if row.kind == "decision":
                targets |= {(scope, doc.rows[link.target].element_id) for link in row.links
                            if link.target is not None and link.target <= i}
    return targets


# --------------------------------------------------------------------------------------------------
# The driver


@dataclass
class Run:
    instance_id: str
    completions: Counter[tuple[str, str]] = field(default_factory=Counter)
    completed_by: dict[str, str] = field(default_factory=dict)  # task id -> username
    refused: int = 0
    late: int = 0
    decisions: list[tuple[tuple[str, str], str]] = field(default_factory=list)


def scope_of(world: World, key: str, task: TaskView) -> str:
    """Which SOP (caller or called) a task belongs to. Tasks of a called SOP carry the caller's process key
    and element ids like the caller's own (`Step_1`), so the lane tells them apart."""
    matches = [s for s in scopes_of(world, key)
               if task.element_id in world.infos[s]["user_tasks"]
               and world.infos[s]["user_tasks"][task.element_id]["lane"] == task.lane]
    assert len(matches) == 1, f"task {task.element_id} in lane {task.lane!r}: scopes {matches}"
    return matches[0]


def drive(world: World, key: str) -> Run:
    svc, clock = world.svc, world.clock
    instance = svc.start(key, unit=UNIT, business_key=f"UJI-{key}")
    run = Run(instance.id)
    seen_decisions: set[tuple[str, str]] = set()
    for _ in range(MAX_STEPS):
        view = svc.instance(run.instance_id)
        if view.status == "completed":
            return run
        assert view.status == "running", view.status
        ready = [t for t in view.tasks if t.state == "READY"]
        assert ready, f"{key}: running with no READY task (elements so far: {dict(run.completions)})"
        task = ready[0]
        scope = scope_of(world, key, task)
        lane = world.infos[scope]["user_tasks"][task.element_id]["lane"]
        assert task.candidate_role == task.lane == lane, (task.element_id, task.candidate_role, lane)
        actor = world.actors[lane]
        assert task.id in {t.id for t in svc.tasks_for(actor, process_key=key)}, "not in the lane holder's inbox"

        # Another lane's holder, same unit: sees the unit but may not work the task.
        other = next(a for role, a in world.actors.items() if role != lane)
        form = svc.task_form(task.id, actor)
        form_ref = world.infos[scope]["user_tasks"][task.element_id]["extensions"].get("formRef")
        assert (form.id if form else None) == form_ref, (
            f"{scope} {task.element_id}: task_form gave {form.id if form else None}, the step links {form_ref}")
        decision = None
        if form is not None and form.field(DECISION_KEY) is not None:
            decision = "ya" if (scope, task.element_id) in seen_decisions else "tidak"
            seen_decisions.add((scope, task.element_id))
        data = fill_form(form, decision, clock)
        with pytest.raises(PermissionDenied):
            svc.complete(task.id, other, data)
        run.refused += 1

        clock.advance(seconds=STEP.total_seconds())
        late_reason = None
        if task.due_at is not None and clock() > task.due_at:
            late_reason = "Menunggu kelengkapan dokumen (uji)."
            with pytest.raises(FormValidationError) as err:
                svc.complete(task.id, actor, data)
            assert "late_reason" in err.value.errors
            run.late += 1
        result = svc.complete(task.id, actor, data, late_reason=late_reason)
        assert task.id not in result.ready_task_ids
        run.completions[(scope, task.element_id)] += 1
        run.completed_by[task.id] = actor.username
        if decision is not None:
            run.decisions.append(((scope, task.element_id), decision))
    raise AssertionError(f"{key}: not completed after {MAX_STEPS} steps; completed {dict(run.completions)}")


# --------------------------------------------------------------------------------------------------
# The runs


def _check_run(world: World, key: str, run: Run) -> None:
    view = world.svc.instance(run.instance_id)
    assert view.status == "completed" and view.ended_at is not None

    # Every user task of the model and of the SOP it calls, as often as the loops demand.
    expected = expected_completions(world, key)
    assert run.completions == expected
    for target in loop_targets(world, key):
        assert run.completions[target] == 2, f"looped-back step {target} completed {run.completions[target]}×"

    # Each decision: "tidak" first, then "ya".
    by_decision: dict[tuple[str, str], list[str]] = {}
    for element, answer in run.decisions:
        by_decision.setdefault(element, []).append(answer)
    assert by_decision and all(answers == ["tidak", "ya"] for answers in by_decision.values()), by_decision

    # The projection agrees: all done, each by the holder of its lane's role, late reasons kept.
    assert all(t.state == "COMPLETED" for t in view.tasks)
    assert len(view.tasks) == sum(expected.values())
    for t in view.tasks:
        assert t.completed_by == run.completed_by[t.id] == world.user_of[t.candidate_role or ""]
        assert (t.late_reason is not None) == (t.due_at is not None and t.completed_at is not None
                                               and t.completed_at > t.due_at)
    assert run.refused == len(view.tasks)
    assert sum(1 for t in view.tasks if t.late_reason) == run.late
    assert run.late >= 1, "every seed has a step shorter than the clock step: the late path must be taken"
    assert [a.action for a in view.audit].count("complete") == len(view.tasks)
    assert view.audit[-1].action == "end"


@pytest.mark.parametrize("key", SEED_KEYS)
def test_seed_model_runs_to_completion(db: Database, clock: FakeClock, key: str) -> None:
    world = make_world(db, clock)
    _check_run(world, key, drive(world, key))


def test_a_called_sops_task_gets_the_called_sops_form(sqlite_db: Database, clock: FakeClock) -> None:
    """The meeting SOP's steps are `Step_1`… like the caller's own: `task_form` (and `complete`, which
    validates with the same lookup) must use the called SOP's step, not the caller's step of the same id."""
    world = make_world(sqlite_db, clock)
    key = "sop_pengukuran_kinerja_wangon"
    meeting_lanes = set(world.infos[MEETING]["lanes"])
    inst = world.svc.start(key, unit=UNIT)
    for _ in range(MAX_STEPS):
        [task] = [t for t in world.svc.instance(inst.id).tasks if t.state == "READY"]
        if task.lane in meeting_lanes:
            break
        clock.advance(minutes=1)
        world.svc.complete(task.id, world.actors[task.lane or ""],
                           fill_form(world.svc.task_form(task.id), None, clock))
    else:  # pragma: no cover
        raise AssertionError("the meeting SOP was never reached")
    wanted = world.infos[MEETING]["user_tasks"][task.element_id]["extensions"]["formRef"]
    caller_step = world.infos[key]["user_tasks"].get(task.element_id, {}).get("extensions", {}).get("formRef")
    form = world.svc.task_form(task.id, world.actors[task.lane or ""])
    assert form is not None
    assert form.id == wanted, f"{MEETING} {task.element_id} got {form.id} (the caller's {task.element_id} uses " \
                              f"{caller_step})"
