"""The safe evaluator: JUEL and Python spellings work; everything that could reach code is refused."""

from __future__ import annotations

import ast
import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.util.task import TaskState

from engine.expressions import (
    ExpressionError,
    SafeScriptEngine,
    check_expression,
    compile_expression,
    evaluate,
)
from engine.loader import build_specs

DATA = Path(__file__).parent / "data" / "engine"

CONTEXT = {"approved": True, "jumlah": 7, "nama": "Budi", "data": {"x": {"y": 3}}, "items": [1, 2, 3],
           "kosong": None, "x": 1}


@pytest.mark.parametrize(("text", "expected"), [
    ("${approved}", True),
    ("#{!approved}", False),
    ("${jumlah > 5 && approved}", True),
    ("${jumlah gt 10 || nama eq 'Budi'}", True),
    ("${jumlah ne 7}", False),
    ("jumlah >= 7 and not kosong", True),
    ("${kosong == null}", True),
    ("${true and false}", False),
    ("kosong is None", True),
    ("nama is not None", True),
    ("data['x']['y'] * 2", 6),
    ("items[0] + items[-1]", 4),
    ("2 in items and 5 not in items", True),
    ("'ok' if approved else 'revisi'", "ok"),
    ("[1, 2] + [3]", [1, 2, 3]),
    ("(1, 'a')", (1, "a")),
    ("-jumlah + +1", -6),
    ("7 // 2 + 7 % 2 + 1 / 2", 4.5),
    ("1 < jumlah <= 7", True),
    ("nama + ' && ' + 'x'", "Budi && x"),  # operators inside strings are left alone
    ("'a' * 3", "aaa"),
    ("${jumlah != 7}", False),
])
def test_accepted(text: str, expected: object) -> None:
    assert evaluate(text, CONTEXT) == expected
    assert check_expression(text) is None


@pytest.mark.parametrize(("text", "message"), [
    ("__import__('os')", "function calls"),
    ("().__class__", "attribute access"),
    ("x.y", "attribute access"),
    ("f()", "function calls"),
    ("[c for c in x]", "comprehensions"),
    ("{c for c in x}", "comprehensions"),
    ("(c for c in x)", "comprehensions"),
    ("lambda: 1", "lambda"),
    ("'a' * 10**9", "'**'"),
    ("2 ** 8", "'**'"),
    ("f'{x}'", "f-strings"),
    ("__builtins__", "'_'"),
    ("_private", "'_'"),
    ("items[1:2]", "constant key"),
    ("items[x]", "constant key"),
    ("(y := 1)", "assignment"),
    ("{'a': 1}", "dict literals"),
    ("b'abc'", "bytes"),
    ("x is 1", "is None"),
    ("x & 1", "BitAnd"),
    ("~x", "Invert"),
    ("x if", "invalid expression"),
    ("", "empty"),
    ("${}", "empty"),
    ("import os", "invalid expression"),
    ("x = 1", "invalid expression"),
])
def test_refused_at_compile(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert message in str(info.value)
    assert check_expression(text) is not None


@pytest.mark.parametrize(("text", "message"), [
    ("'a' * 1000000000", "longer than"),
    ("items * 1000000000", "longer than"),
    ("1000000000 * 'a'", "longer than"),
    ("'%s' % nama", "formatting"),
    ("unknown > 1", "unknown variable 'unknown'"),
    ("data['nope']", "no item"),
    ("items[10]", "no item"),
    ("jumlah / 0", "cannot evaluate"),
    ("nama + 1", "cannot evaluate"),
    ("nama < 1", "cannot evaluate"),
    ("jumlah[0]", "cannot subscript"),
])
def test_refused_at_runtime(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(text, CONTEXT)
    assert message in str(info.value)


def test_deep_nesting_refused_cleanly() -> None:
    with pytest.raises(ExpressionError):
        compile_expression("(" * 500 + "1" + ")" * 500)
    with pytest.raises(ExpressionError):
        compile_expression("-" * 100 + "1")
    with pytest.raises(ExpressionError):
        compile_expression("x" + " + x" * 2000)


def test_compile_is_cached() -> None:
    assert compile_expression("jumlah > 1") is compile_expression("jumlah > 1")


def _task(engine: SafeScriptEngine, data: dict) -> object:
    spec, subs = build_specs({"linear.bpmn": (DATA / "linear.bpmn").read_bytes()}, "linear")
    workflow = BpmnWorkflow(spec, subs, script_engine=engine)
    workflow.do_engine_steps()
    task = workflow.get_next_task(state=TaskState.READY)
    task.data = data
    return task


def test_script_engine_evaluates_and_refuses_scripts() -> None:
    engine = SafeScriptEngine()
    task = _task(engine, {"a": 2})
    assert engine.evaluate(task, "${a gt 1}") is True
    assert engine.evaluate(task, "a + b", external_context={"b": 3, "a": 100}) == 5  # task data wins
    with pytest.raises(WorkflowTaskException):
        engine.evaluate(task, "a.__class__")
    with pytest.raises(WorkflowTaskException, match="script tasks are not allowed"):
        engine.execute(task, "import os")
    with pytest.raises(ExpressionError):
        engine.environment.evaluate("open('/etc/passwd')", {})
    with pytest.raises(ExpressionError):
        engine.environment.execute("x = 1", {})


def test_script_engine_clock_and_calendar() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 1, 5, tzinfo=UTC)
    calendar = object()
    engine = SafeScriptEngine(clock=lambda: moment, calendar=calendar)
    assert engine.now() == moment
    assert engine.calendar is calendar
    assert SafeScriptEngine().now().tzinfo is not None


# --- fuzzing: nothing but ExpressionError, and no side effects ---------------------------------------

_SENTINEL = "/tmp/alur-expression-fuzz-sentinel"


def _run(text: str) -> None:
    context = {"x": 1, "y": "s", "z": [1, 2], "d": {"k": 1}, "n": None}
    snapshot = repr(context)
    with contextlib.suppress(ExpressionError):
        evaluate(text, context)
    assert repr(context) == snapshot
    assert not os.path.exists(_SENTINEL)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_random_text(text: str) -> None:
    _run(text)


_ALPHABET = [
    *"xyzdn()[]{}'\",.:;+-*/%<>=!&|^~@ 0123456789_",
    " and ", " or ", " not ", " if ", " else ", " in ", " is ", " lambda ", "__class__", "__import__",
    "os", "system", "open", "${", "}", "&&", "||", " eq ", " gt ", "true", "null", "**", "10", "[0]", "['k']",
    "for", "import", f"open('{_SENTINEL}','w')",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_ALPHABET), max_size=25).map("".join))
def test_fuzz_token_soup(text: str) -> None:
    _run(text)


_leaf = st.one_of(
    st.sampled_from(["x", "y", "z", "d", "n", "unknown", "__class__"]).map(lambda n: ast.Name(n, ast.Load())),
    st.one_of(st.integers(-5, 10**6), st.text(max_size=5), st.booleans(), st.none(), st.floats(allow_nan=True))
    .map(ast.Constant),
)


def _extend(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    ops = st.sampled_from([ast.Add(), ast.Sub(), ast.Mult(), ast.Div(), ast.FloorDiv(), ast.Mod(), ast.Pow(),
                           ast.BitAnd(), ast.LShift()])
    cmps = st.sampled_from([ast.Eq(), ast.Lt(), ast.In(), ast.NotIn(), ast.Is(), ast.IsNot()])
    return st.one_of(
        st.builds(ast.BinOp, children, ops, children),
        st.builds(lambda a, b: ast.BoolOp(ast.And(), [a, b]), children, children),
        st.builds(lambda o, a: ast.UnaryOp(o, a), st.sampled_from([ast.Not(), ast.USub(), ast.Invert()]), children),
        st.builds(lambda a, o, b: ast.Compare(a, [o], [b]), children, cmps, children),
        st.builds(ast.IfExp, children, children, children),
        st.builds(lambda e: ast.List(e, ast.Load()), st.lists(children, max_size=3)),
        st.builds(lambda v, k: ast.Subscript(v, k, ast.Load()), children, children),
        st.builds(lambda v: ast.Attribute(v, "__class__", ast.Load()), children),
        st.builds(lambda f, a: ast.Call(f, a, []), children, st.lists(children, max_size=2)),
    )


@settings(max_examples=500, deadline=None)
@given(st.recursive(_leaf, _extend, max_leaves=12))
def test_fuzz_random_ast(node: ast.expr) -> None:
    try:
        text = ast.unparse(ast.fix_missing_locations(ast.Expression(node)))
    except Exception:  # some generated trees cannot be rendered back to source
        return
    _run(text)
