"""The 'Tugas Saya' query: READY tasks assigned to an actor, then those they may claim, each by deadline.

Staff in a busy kecamatan may claim tens of thousands of open steps, and the inbox is the page they open most,
so its cost must follow the page size, not the number of tasks. So:

- The candidates are split into disjoint arms: mine; one per (unit, role) and per "has a deadline or not"; the
  rare extra candidates. A role arm is an equality prefix of the covering index `ix_task_inbox_cover (state,
  unit_id, candidate_role, assignee, due_at, created_at, id)`, so it comes off the index already in deadline
  order and `LIMIT offset + limit` reads only that many entries; "mine" uses the small partial index of
  claimed READY tasks. The arms' entries (at most arms x (offset + limit) short rows) are then sorted and cut to
  the page in the same statement, which also joins the page's 25 rows to what the page shows: one round trip.
- Deadline-less steps come last through their own arms, as `due_at IS NULL` in ORDER BY would defeat the index.
- The total is counted only up to a bound: a page needs to know "more than a thousand", not the exact figure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, literal, not_, or_, select, union_all
from sqlalchemy.orm import Session

from engine.accounts import Actor
from engine.models import Task, TaskCandidate, Unit

COUNT_CAP = 1000


@dataclass(frozen=True)
class InboxIds:
    """One page of task ids in inbox order and the total, which is a lower bound when `capped`."""

    ids: list[str]
    total: int
    capped: bool


def _arm(*where: Any, no_due: bool, source: Any = Task) -> Select[Any]:
    q = select(Task.id, Task.due_at, Task.created_at)
    if source is not Task:
        q = q.select_from(source).join(Task, Task.id == source.c.task_id)
    q = q.where(*where, Task.due_at.is_(None) if no_due else Task.due_at.is_not(None))
    return q.order_by(Task.created_at, Task.id) if no_due else q.order_by(Task.due_at, Task.created_at, Task.id)


@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key of `_page_statement`
class _Statements:
    page: Any  # every arm's first :n entries, ranked by (claimable, no deadline), as one subquery
    count: Any  # every arm's row count up to :n, as one row of numbers: one round trip


@functools.lru_cache(maxsize=512)
def _statements(username: str, unit_roles: frozenset[tuple[int, str]], process_key: str | None,
                unit_id: int | None) -> _Statements:
    """The arms, which together hold each inbox task exactly once, as two statements. Cached per actor and
    filter: building them costs more than running them."""
    common: list[Any] = [Task.state == "READY"]
    if process_key:
        common.append(Task.process_key == process_key)
    if unit_id is not None:
        common.append(Task.unit_id == unit_id)
    by_unit: dict[int, set[str]] = {}
    for unit, role in unit_roles:
        by_unit.setdefault(unit, set()).add(role)

    groups: list[tuple[int, list[Any], Any]] = [(0, [*common, Task.assignee == username], Task)]
    unclaimed = [*common, Task.assignee.is_(None)]
    for unit, roles in sorted(by_unit.items()):
        for role in sorted(roles):
            groups.append((1, [*unclaimed, Task.unit_id == unit, Task.candidate_role == role], Task))
    # Extra candidates (more candidate groups, candidate users) come through task_candidate, minus the tasks the
    # role arms already return so that no task appears twice. The candidate rows are picked first, in a
    # materialised CTE: otherwise the planner walks every READY task in deadline order to spare a small sort.
    all_roles = sorted({r for roles in by_unit.values() for r in roles})
    mine = or_(TaskCandidate.username == username, *([TaskCandidate.role.in_(all_roles)] if all_roles else []))
    cte = select(TaskCandidate.task_id, TaskCandidate.role, TaskCandidate.username).where(mine)
    cand_rows = cte.cte("inbox_candidate").prefix_with("MATERIALIZED")
    cand = [cand_rows.c.username == username]
    cand += [and_(Task.unit_id == u, cand_rows.c.role.in_(sorted(r))) for u, r in by_unit.items()]
    # `candidate_role IS NOT NULL` keeps NOT(...) true, not NULL, for role-less tasks (three-valued logic).
    covered = [and_(Task.unit_id == u, Task.candidate_role.is_not(None), Task.candidate_role.in_(sorted(r)))
               for u, r in by_unit.items()]
    groups.append((1, [*unclaimed, or_(*cand), *([not_(or_(*covered))] if covered else [])], cand_rows))
    pages: list[Any] = []
    counts: list[Any] = []
    for claimable, where, source in groups:
        for no_due in (False, True):
            q = _arm(*where, no_due=no_due, source=source)
            q = q.distinct() if source is not Task else q
            sub = q.limit(bindparam("n")).subquery()
            pages.append(select(literal(claimable * 2 + int(no_due)).label("rank"), sub.c.id, sub.c.due_at,
                                sub.c.created_at))
            counts.append(select(func.count()).select_from(q.order_by(None).limit(bindparam("n")).subquery())
                          .scalar_subquery())
    return _Statements(page=union_all(*pages).subquery("inbox_arms"), count=select(*counts))


@functools.lru_cache(maxsize=512)
def _page_statement(st: _Statements, rows: Select[Any] | None) -> Select[Any]:
    """The page: every arm's first :n entries (offset + limit), ordered and cut to the page in the database
    (a sort of at most arms x :n short rows), joined to what the page shows in the same round trip."""
    arms = st.page
    q = select(arms.c.id) if rows is None else rows.join(arms, arms.c.id == Task.id)
    return (q.order_by(arms.c.rank, arms.c.due_at, arms.c.created_at, arms.c.id)
            .limit(bindparam("limit")).offset(bindparam("offset")))


@dataclass(frozen=True)
class InboxRows:
    """One page of rows (of the `rows` select given to `inbox_rows`) in inbox order, and the total, which is
    a lower bound when `capped`."""

    rows: list[Any]
    total: int
    capped: bool


def inbox_rows(s: Session, actor: Actor, rows: Select[Any] | None = None, *, process_key: str | None = None,
               unit: str | None = None, limit: int = 50, offset: int = 0, count_cap: int = COUNT_CAP) -> InboxRows:
    """The page as rows of `rows` (a select over `Task`, built once by the caller: statements are cached per
    select object), or of the task id alone; two round trips, the page and the bounded count."""
    conn = s.connection()  # Core execution: these are a dozen tiny index reads, ORM overhead would dominate
    unit_id = conn.execute(select(Unit.id).where(Unit.code == unit)).scalar() if unit else None
    if unit and unit_id is None:
        return InboxRows(rows=[], total=0, capped=False)
    st = _statements(actor.username, frozenset(actor.unit_roles), process_key, unit_id)
    page = conn.execute(_page_statement(st, rows), {"n": offset + limit, "limit": limit, "offset": offset}).all()
    # Count one past what the page needs so "is there a next page" is always known, even beyond the cap.
    bound = max(count_cap, offset + limit) + 1
    n = sum(conn.execute(st.count, {"n": bound}).one())
    return InboxRows(rows=page, total=min(n, bound - 1), capped=n >= bound)


def inbox_ids(s: Session, actor: Actor, *, process_key: str | None = None, unit: str | None = None,
              limit: int = 50, offset: int = 0, count_cap: int = COUNT_CAP) -> InboxIds:
    found = inbox_rows(s, actor, process_key=process_key, unit=unit, limit=limit, offset=offset,
                       count_cap=count_cap)
    return InboxIds(ids=[r.id for r in found.rows], total=found.total, capped=found.capped)
