"""The inbox query against a plain-Python reference: same tasks, same order, every page, every filter.

Random task rows (assigned to me or others, several units and roles, extra candidate groups and users, deadlines
or none, ties) are written straight into the projection; `inbox_ids` must return exactly what a naive filter and
sort over all rows gives, without duplicates, and its capped total must say "at least" only when it is."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from engine import accounts
from engine.accounts import Actor
from engine.db import Database
from engine.inbox_query import inbox_ids
from engine.models import ProcessInstance, Task, TaskCandidate
from engine.service import Alur

DATA = Path(__file__).parent / "web" / "data"
ME = "budi"
ROLES = ["Camat", "Sekcam", "Kasubag"]
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _populate(db: Database, seed: int, n: int) -> tuple[dict[str, int], list[dict], list[dict]]:
    service = Alur(db)
    with db.write() as s:
        units = {code: accounts.add_unit(s, code, code.upper()).id for code in ("kec-a", "kec-b", "kec-c")}
    service.deploy({p.name: p.read_bytes() for p in DATA.iterdir() if p.suffix in (".bpmn", ".form")})
    view = service.start("web_flow", unit="kec-a", business_key="tpl")
    rng = random.Random(seed)
    tasks: list[dict] = []
    candidates: list[dict] = []
    with db.write() as s:
        inst = s.get(ProcessInstance, view.id)
        definition_id = inst.definition_id
    for i in range(n):
        unit = rng.choice(list(units.values()))
        tid = str(uuid.UUID(int=rng.getrandbits(128)))
        due = None if rng.random() < 0.2 else T0 + timedelta(minutes=rng.randrange(0, 50) * 30)  # many ties
        tasks.append({
            "id": tid, "instance_id": view.id, "definition_id": definition_id, "process_key": rng.choice(["p1", "p2"]),
            "unit_id": unit, "element_id": "Step", "name": f"Langkah {i}", "lane": None,
            "candidate_role": rng.choice([*ROLES, None]),
            "assignee": rng.choice([None, None, None, ME, "other"]),
            "state": rng.choice(["READY", "READY", "READY", "COMPLETED"]),
            "created_at": T0 - timedelta(minutes=rng.randrange(0, 5)), "due_at": due,
        })
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            candidates.append({"task_id": tid, "role": rng.choice([*ROLES, None]),
                               "username": rng.choice([None, ME, "other"])})
    with db.write() as s:
        s.execute(insert(Task), tasks)
        if candidates:
            s.execute(insert(TaskCandidate), candidates)
    with db.read() as s:  # read back, with the template instance's own first step among them
        tasks = [dict(r._mapping) for r in s.execute(select(*Task.__table__.c))]
        candidates = [dict(r._mapping) for r in s.execute(select(*TaskCandidate.__table__.c))]
    return units, tasks, candidates


def _reference(actor: Actor, tasks: list[dict], candidates: list[dict], process_key: str | None,
               unit_id: int | None) -> list[str]:
    extra: dict[str, list[dict]] = {}
    for c in candidates:
        extra.setdefault(c["task_id"], []).append(c)

    def claimable(t: dict) -> bool:
        if t["assignee"] is not None:
            return False
        if t["candidate_role"] and actor.has_role(t["unit_id"], t["candidate_role"]):
            return True
        return any(c["username"] == actor.username or (c["role"] and actor.has_role(t["unit_id"], c["role"]))
                   for c in extra.get(t["id"], []))

    rows = [t for t in tasks if t["state"] == "READY" and (process_key is None or t["process_key"] == process_key)
            and (unit_id is None or t["unit_id"] == unit_id) and (t["assignee"] == actor.username or claimable(t))]
    rows.sort(key=lambda t: (t["assignee"] != actor.username, t["due_at"] is None,
                             t["due_at"] or T0, t["created_at"], t["id"]))
    return [t["id"] for t in rows]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_page_matches_the_reference(db: Database, seed: int) -> None:
    units, tasks, candidates = _populate(db, seed, 400)
    actor = Actor(ME, unit_roles=frozenset({(units["kec-a"], "Camat"), (units["kec-a"], "Sekcam"),
                                            (units["kec-b"], "Kasubag")}))
    codes = {v: k for k, v in units.items()}
    for process_key in (None, "p1"):
        for unit_id in (None, units["kec-a"], units["kec-c"]):
            expected = _reference(actor, tasks, candidates, process_key, unit_id)
            unit = codes[unit_id] if unit_id else None
            got: list[str] = []
            for offset in range(0, len(expected) + 7, 7):
                with db.read() as s:
                    page = inbox_ids(s, actor, process_key=process_key, unit=unit, limit=7, offset=offset)
                got += page.ids
                assert page.total == len(expected) and not page.capped
            assert got == expected, (process_key, unit)
    assert len(expected) > 0  # the random data did exercise the query


def test_total_is_a_lower_bound_past_the_cap(db: Database) -> None:
    units, tasks, candidates = _populate(db, 4, 300)
    actor = Actor(ME, unit_roles=frozenset((u, r) for u in units.values() for r in ROLES))
    expected = _reference(actor, tasks, candidates, None, None)
    assert len(expected) > 60
    with db.read() as s:
        first = inbox_ids(s, actor, limit=10, offset=0, count_cap=50)
        far = inbox_ids(s, actor, limit=10, offset=len(expected) - 5, count_cap=50)
        exact = inbox_ids(s, actor, limit=10, offset=0, count_cap=len(expected))
    assert (first.total, first.capped) == (50, True)
    assert first.ids == expected[:10]
    # Beyond the cap, the count still reaches the end of the requested page and knows there is nothing after.
    assert far.ids == expected[-5:] and not far.capped and far.total == len(expected)
    assert (exact.total, exact.capped) == (len(expected), False)


def test_unknown_unit_filter_gives_nothing(db: Database) -> None:
    units, _, _ = _populate(db, 5, 50)
    actor = Actor(ME, unit_roles=frozenset({(units["kec-a"], "Camat")}))
    with db.read() as s:
        page = inbox_ids(s, actor, unit="no-such-unit")
    assert (page.ids, page.total, page.capped) == ([], 0, False)
