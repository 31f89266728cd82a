"""A claim by one user and a completion by another of the same task: never both (issue 13, item 11).

On PostgreSQL (READ COMMITTED) the completion read the task as unclaimed, a claim committed, and the
completion then overwrote the row: assignee A, completed by B. The completion's UPDATE now applies only to
the row as it was checked (READY, same assignee) and waits for the claim's row lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from engine import forms
from engine.db import Database
from engine.errors import ConflictError, PermissionDenied
from engine.models import AuditEvent, Task
from engine.service import Alur
from tests.conftest import PG_URL, FakeClock
from tests.test_service import service_files, setup_people

ROUNDS = 30
OUTCOMES = (ConflictError, PermissionDenied)  # what the loser of the race may get; anything else fails


@pytest.fixture
def svc(db: Database, clock: FakeClock) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy(service_files())
    setup_people(db)
    return service


def _attempt(results: dict[str, Any], name: str, action: Callable[[], object]) -> None:
    try:
        action()
        results[name] = "ok"
    except OUTCOMES as exc:
        results[name] = type(exc).__name__
    except BaseException as exc:  # reported by the test, not swallowed
        results[name] = exc


def _row(db: Database, task_id: str) -> tuple[str, str | None, str | None]:
    with db.read() as s:
        row = s.execute(select(Task.state, Task.assignee, Task.completed_by).where(Task.id == task_id)).one()
    return row.state, row.assignee, row.completed_by


def _check_consistent(db: Database, task_id: str, results: dict[str, Any]) -> None:
    assert all(v == "ok" or isinstance(v, str) for v in results.values()), results  # no unexpected error
    assert list(results.values()).count("ok") == 1, results  # exactly one of them won
    state, assignee, completed_by = _row(db, task_id)
    if results["claim"] == "ok":
        assert (state, assignee, completed_by) == ("READY", "kasubag", None)
    else:
        assert (state, assignee, completed_by) == ("COMPLETED", None, "kasubag2")
    with db.read() as s:
        actions = set(s.scalars(select(AuditEvent.action).where(AuditEvent.task_id == task_id)))
    assert actions == ({"claim"} if results["claim"] == "ok" else {"complete"})


def _race(claim: Callable[[], object], complete: Callable[[], object]) -> dict[str, Any]:
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def run(name: str, action: Callable[[], object]) -> None:
        barrier.wait(timeout=30)
        _attempt(results, name, action)

    threads = [threading.Thread(target=run, args=("claim", claim)),
               threading.Thread(target=run, args=("complete", complete))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_claim_and_completion_racing_never_both_succeed(svc: Alur, db: Database, clock: FakeClock) -> None:
    """Threads released together by a barrier, many rounds: one wins, the row says who."""
    claimer, completer = Alur(db, clock=clock), Alur(db, clock=clock)
    a, b = claimer.actor("kasubag"), completer.actor("kasubag2")
    for _ in range(ROUNDS):
        svc.start("pengajuan", unit="iv-jurai")
        [task] = [t for t in svc.tasks_for(a) if t.assignee is None]
        results = _race(lambda tid=task.id: claimer.claim(tid, a),
                        lambda tid=task.id: completer.complete(tid, b, {"judul": "Laporan"}))
        _check_consistent(db, task.id, results)


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set ALUR_TEST_DATABASE_URL (CI does)")
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_a_claim_committed_after_the_completion_read_the_task_wins(
        svc: Alur, db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The losing order forced: B's completion has checked the task (unclaimed, B may work on it), then A's
    claim commits, then B writes. (SQLite cannot interleave this: the completion holds the write lock.)"""
    claimer, completer = Alur(db, clock=clock), Alur(db, clock=clock)
    a, b = claimer.actor("kasubag"), completer.actor("kasubag2")
    svc.start("pengajuan", unit="iv-jurai")
    [task] = svc.tasks_for(a)
    completion_checked, claimed = threading.Event(), threading.Event()
    real_validate = forms.validate_submission

    def validate(*args: Any, **kwargs: Any) -> Any:  # runs inside the completion's transaction, after its checks
        if threading.current_thread().name == "completer":
            completion_checked.set()
            assert claimed.wait(timeout=30)
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(forms, "validate_submission", validate)
    results: dict[str, Any] = {}

    def claim() -> None:
        assert completion_checked.wait(timeout=30)
        _attempt(results, "claim", lambda: claimer.claim(task.id, a))
        claimed.set()

    threads = [threading.Thread(target=claim, name="claimer"),
               threading.Thread(name="completer", target=lambda: _attempt(
                   results, "complete", lambda: completer.complete(task.id, b, {"judul": "Laporan"})))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {"claim": "ok", "complete": "ConflictError"}
    _check_consistent(db, task.id, results)
