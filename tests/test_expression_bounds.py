"""Bounds of the expression evaluator (engine/expressions.py): the full size of every value an expression builds
and the work of one evaluation, so that no condition, due date, timer or assignee expression can hold the
GIL for long. `[[0] * 10**5] * 10**5 == ...` passed the old per-list length bound and ran 10**10 comparisons.

The timeout markers only guard against a hang; what is asserted is the bound named in the error, and the
evaluator's own work counter."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import expressions
from engine.db import Database
from engine.errors import DeployError, ProcessError
from engine.expressions import (
    MAX_INT_BITS,
    MAX_SEQUENCE_LENGTH,
    MAX_WORK,
    ExpressionError,
    ExpressionLimitError,
    check_expression,
    evaluate,
)
from engine.service import Alur
from tests.conftest import DATA
from tests.test_service import counts, service_files, setup_people

N = 100_000
CONTEXT: dict[str, Any] = {"n": N, "m": 10**5, "big": 10**1000, "s": "a" * 10_000, "items": list(range(10_000)),
                           "nested": [[0] * 100] * 100, "x": 1}

REFUSED = [
    # (expression, the bound it must name)
    ("[[0]*100000]*100000 == [[0]*100000]*100000", "longer than"),  # the expression
    ("[[0]*n]*n == [[0]*n]*n", "longer than"),
    ("[[x]*m]*m", "longer than"),
    ("'a'*1000000000", "longer than"),
    ("[0]*100000000", "longer than"),
    ("[[[0]*100]*100]*100", "longer than"),  # three levels, 10**6 items in all
    ("[nested]*11", "longer than"),  # nested holds 10**4 items: 11 copies are over the bound
    ("[s]*11", "longer than"),  # characters inside lists count too
    ("[[0]*50000]*2 + [[0]*50000]*2", "longer than"),  # concatenation adds the full sizes
    ("[[0]*50000, [0]*50000, [0]]", "longer than"),  # a list literal adds its items' sizes
    ("big*big*big*big*big", f"more than {MAX_INT_BITS} bits"),
    ("big*big*big*big*(big + 1)", f"more than {MAX_INT_BITS} bits"),
    ("x*big*big*big*big*big", f"more than {MAX_INT_BITS} bits"),
    # Each comparison below is allowed on its own; together they exceed the work budget.
    (" and ".join(["[0]*100000 == [0]*100000"] * 6), f"more than {MAX_WORK} steps"),
    (" and ".join(["items == items"] * 40), f"more than {MAX_WORK} steps"),
    (" == ".join(["[0]*100000"] * 7), f"more than {MAX_WORK} steps"),  # chained: every pair compared
    (" and ".join(["s in [s]*10"] * 12), f"more than {MAX_WORK} steps"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("text", "bound"), REFUSED)
def test_oversized_values_and_work_are_refused_naming_expression_and_bound(text: str, bound: str) -> None:
    with pytest.raises(ExpressionLimitError) as exc:
        evaluate(text, CONTEXT)
    assert bound in str(exc.value)
    assert repr(text) in str(exc.value)  # the expression is named
    assert "bound" in str(exc.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("[0]*100000 == [0]*100000", True),  # the old per-list bound still holds: 100,000 items is fine
    ("'a'*100000 == 'a'*100000", True),
    ("[[0]*1000]*100 == [[0]*1000]*100", True),
    ("nested == nested", True),
    ("[s]*10 == [s]*10", True),
    ("9999 in items", True),
    ("big*big > big", True),
    ("(1, 2)*50000 < (1, 2)*50000", False),
    ("x + 1 == 2 and 'a' in s", True),
])
def test_large_but_bounded_values_still_work(text: str, expected: Any) -> None:
    assert evaluate(text, CONTEXT) == expected


def test_work_is_counted_and_stays_under_the_budget() -> None:
    ev = expressions._Evaluator(CONTEXT)
    assert ev.eval(expressions.compile_expression("[0]*100000 == [0]*100000").body) is True
    assert 300_000 <= ev.work <= MAX_WORK  # two lists built, one comparison of 100,000 items
    ev = expressions._Evaluator(CONTEXT)
    ev.eval(expressions.compile_expression("x > 0").body)
    assert ev.work < 10


def test_constant_expressions_over_a_bound_are_refused_at_deploy_check() -> None:
    problem = check_expression("${[[0]*100000]*100000 == [[0]*100000]*100000}")
    assert problem is not None and "longer than" in problem and "[[0]*100000]*100000" in problem
    assert check_expression("${jumlah > 5}") is None  # needs data: nothing known before run time
    assert check_expression("${[[jumlah]*100000]*100000 == 1}") is None  # the data-dependent part waits


def _gerbang(condition: str) -> bytes:
    text = (DATA / "candidates" / "gerbang.bpmn").read_text()
    assert "${nilai &gt; 5}" in text
    return text.replace("${nilai &gt; 5}", condition).encode()


@pytest.fixture
def svc(db: Database, clock: Any) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy(service_files())
    setup_people(db)
    return service


@pytest.mark.timeout(60)
def test_a_condition_over_the_bound_refuses_the_step_cleanly(svc: Alur, db: Database) -> None:
    condition = "${[[nilai]*100000]*100000 == [[nilai]*100000]*100000 or nilai &gt; 5}"
    svc.deploy({"gerbang.bpmn": _gerbang(condition)})  # the bound depends on data: known only at run time
    kasubag = svc.actor("kasubag")
    inst = svc.start("gerbang", unit="iv-jurai")
    [task] = [t for t in svc.tasks_for(kasubag) if t.instance_id == inst.id]
    before = counts(db)
    with pytest.raises(ProcessError) as exc:
        svc.complete(task.id, kasubag, {"nilai": 7})
    assert "longer than" in str(exc.value) and "[[nilai]*100000]*100000" in str(exc.value)
    assert counts(db) == before and svc.task(task.id, kasubag).state == "READY"


def test_a_constant_condition_over_the_bound_is_refused_at_deploy(svc: Alur, db: Database) -> None:
    before = counts(db)
    with pytest.raises(DeployError) as exc:
        svc.deploy({"gerbang.bpmn": _gerbang("${[[0]*100000]*100000 == [[0]*100000]*100000}")})
    assert "longer than" in str(exc.value)
    assert counts(db) == before


def test_every_place_that_evaluates_uses_the_bounded_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Due and follow-up dates, assignees, timers and conditions all reach `expressions.evaluate`."""
    from engine import deadlines, store
    from engine.expressions import SafeEnvironment, SafeScriptEngine

    seen: list[str] = []
    real = expressions.evaluate

    def spy(text: str, context: Any) -> Any:
        seen.append(text)
        return real(text, context)

    monkeypatch.setattr(expressions, "evaluate", spy)
    with pytest.raises(ExpressionLimitError):
        SafeEnvironment().evaluate("[[x]*m]*m", CONTEXT)
    assert deadlines.resolve_moment("${[[x]*m]*m}", datetime.now(UTC), None, CONTEXT) is None  # type: ignore[arg-type]

    class Task:
        data = CONTEXT
        task_spec = type("Spec", (), {"extensions": {"assignee": "${[[x]*m]*m}"}})()

    monkeypatch.setattr(store, "task_extensions", lambda task: {"assignee": "${[[x]*m]*m}"})
    assert store._static_assignee(Task()) is None  # type: ignore[arg-type]
    # Conditions and timers go through SafeScriptEngine.evaluate -> its environment (the condition test above
    # runs that path end to end); the environment is SafeEnvironment.
    assert isinstance(SafeScriptEngine().environment, SafeEnvironment)
    assert seen == ["[[x]*m]*m", "${[[x]*m]*m}", "${[[x]*m]*m}"]


# --- property: any expression built from repetition, concatenation, lists and comparisons finishes within the
# budget, and what it returns is what Python computes and within the size bound.

_leaves = st.one_of(st.integers(0, 3).map(str), st.sampled_from(["'ab'", "[]", "x", "nested", "[0]"]))


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    counts_ = st.sampled_from(["2", "10", "1000", "100000", "m"])
    return st.one_of(
        st.tuples(inner, counts_).map(lambda t: f"({t[0]}) * {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) + ({t[1]})"),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(inner, st.sampled_from(["==", "<", "in", "!="]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
    )


def _full_size(value: Any, cap: int) -> int:
    """Items and characters of `value` counted through every level, as a plain walk (stops past cap)."""
    total, stack = 0, [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, list | tuple):
            total += not item
            stack.extend(item)
        else:
            total += max(1, len(item)) if isinstance(item, str) else 1
    return total


@pytest.mark.timeout(300)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_leaves, _grow, max_leaves=10))
def test_any_nesting_of_repetition_finishes_within_the_budget(text: str) -> None:
    context = {"x": 1, "m": 10**5, "nested": [[0] * 100] * 100}
    ev = expressions._Evaluator(context)
    try:
        tree = expressions.compile_expression(text)
    except ExpressionError:
        return
    try:
        result = ev.eval(tree.body)
    except ExpressionError:  # a bound (charged before the work is done) or a plain refusal
        return
    except TypeError:  # 'ab' < [0] and the like: evaluate() turns these into ExpressionError
        return
    assert ev.work <= MAX_WORK
    assert _full_size(result, MAX_SEQUENCE_LENGTH) <= MAX_SEQUENCE_LENGTH
    if ev.work < 20_000:  # small enough to check against Python itself
        assert result == eval(compile(ast.Expression(tree.body), "<expr>", "eval"), {"__builtins__": {}}, context)
