"""Property tests of the expression evaluator (engine/expressions.py), beyond tests/test_expressions.py:

- whatever the text or AST, `evaluate` raises ExpressionError or returns; never another exception;
- nothing reaches the interpreter: no audit event (import, open, exec, os.*, ...) fires while evaluating, no
  attribute of a context object is read, no context callable is called, no builtin is returned;
- a tree holding any node the whitelist forbids (attribute, call, lambda, comprehension, f-string, walrus, slice,
  starred, `**`, a name starting with `_`) is always refused, however it is spelt or nested;
- results are plain data built from constants and context values.
"""

from __future__ import annotations

import ast
import sys
import threading
import unicodedata  # noqa: F401  (loaded now: the parser imports it for non-ASCII names, which is not ours)
from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.expressions import MAX_EXPRESSION_LENGTH, ExpressionError, SafeEnvironment, evaluate

_watch = threading.local()
_events: list[tuple[str, str]] = []
ALLOWED_EVENTS = {"compile"}  # ast.parse compiles the text into a tree; nothing else may happen


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if getattr(_watch, "on", False) and event not in ALLOWED_EVENTS:
        _events.append((event, repr(args)[:120]))


sys.addaudithook(_audit)  # cannot be removed; it only records while `_watch.on` is set, in this thread


class Spy:
    """A context value that records every attribute read and every call made on it."""

    log: ClassVar[list[str]] = []

    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattribute__(self, attr: str) -> Any:
        if attr != "__class__":  # isinstance() reads __class__; the evaluator's type checks are fine
            Spy.log.append(f"getattr {object.__getattribute__(self, '_name')}.{attr}")
        return object.__getattribute__(self, attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        Spy.log.append(f"call {object.__getattribute__(self, '_name')}")
        return None


def _context() -> dict[str, Any]:
    return {"x": 1, "y": "s", "z": [1, 2], "d": {"k": 1}, "n": None, "spy": Spy("spy"), "open": Spy("open"),
            "system": Spy("system"), "execution": Spy("execution"), "f": 1.5, "b": True}


PLAIN = (str, int, float, bool, type(None), list, tuple, dict, Spy)


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return type(value) in PLAIN


def run(text: str, evaluator: Callable[[str, dict[str, Any]], Any] = evaluate) -> tuple[bool, Any]:
    """(accepted, result). Fails the test on any exception but ExpressionError or any forbidden effect."""
    context = _context()
    snapshot = {k: repr(v) for k, v in context.items() if not isinstance(v, Spy)}
    Spy.log = []
    _events.clear()
    _watch.on = True
    try:
        result = evaluator(text, context)
        accepted = True
    except ExpressionError:
        result, accepted = None, False
    finally:
        _watch.on = False
    assert _events == [], (text, _events)
    assert Spy.log == [], (text, Spy.log)
    assert {k: repr(v) for k, v in context.items() if not isinstance(v, Spy)} == snapshot, text
    if accepted:
        assert _plain(result), (text, type(result))
    return accepted, result


# ------------------------------------------------------------------------------------------------ text

# Refused when deployed, wherever they stand in an expression.
MUST_REFUSE = [
    "__import__('os').system('id')", "().__class__.__bases__[0].__subclasses__()", "[].__class__.__mro__",
    "x.__class__", "spy.__dict__", "open('/etc/passwd').read()", "system('id')", "spy()", "spy.x", "eval('1')",
    "exec('1')", "globals()", "vars()", "getattr(x, 'real')", "breakpoint()", "__builtins__", "__builtins__['open']",
    "(lambda: 1)()", "[c for c in z]", "{c: 1 for c in z}", "(c for c in z)", "f'{x}'", "(a := 1)", "z[0:1]",
    "[*z]", "2 ** 1000", "x.real", "execution.getVariable('x')", "'{}'.format(spy)", "y.join(z)",
    "\uff45\uff56\uff41\uff4c(1)", "\uff3f\uff3fimport\uff3f\uff3f", "__class__", "_", "d['k'].__class__",
    "z[0].__class__", "{'a': spy}", "{spy}", "z[x]", "b'x'", "x is 1",
]
# Allowed to parse; whatever happens at run time, nothing is read from or called on the spies.
PROBES = ["-spy", "not spy", "spy == 1", "spy in z", "1 in spy", "spy + 1", "spy < 1", "spy if b else x", "spy[0]",
          "spy['x']", "'%s' % spy", "[spy, open] * 3", "(spy, system)", "spy is None", "z * 10**6", "y * 10**9"]
_TOKENS = [*MUST_REFUSE, *PROBES, *"xyzdnfb()[]'\",.:+-*/%<>=! 0123456789_", " and ", " or ", " not ", " if ",
           " else ", " in ", " is ", " eq ", " gt ", " && ", " || ", "${", "}", "#{", "true", "null", "[0]", "['k']",
           "\n", "\\", "\x00", "\ud800", "lambda", "for", "import", "yield", "await", "async"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12).map("".join))
def test_token_soup_never_escapes(text: str) -> None:
    run(text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MUST_REFUSE), st.sampled_from([
    "{}", "${{{}}}", "#{{{}}}", "({})", "x if b else {}", "{} if n else x", "n and {}", "[{}][0]", "not {}",
    "({}) == 1", " {} ", "${{x > 1 && {}}}", "[x, [y, ({})]]"]))
def test_code_reaching_expressions_are_refused_in_any_position(escape: str, template: str) -> None:
    text = template.format(escape)
    accepted, _ = run(text)
    assert not accepted, text  # even in a branch that would never be evaluated


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PROBES), st.sampled_from(["{}", "${{{}}}", "x if b else {}", "[{}]", "b and ({})"]))
def test_operations_on_context_objects_touch_nothing(probe: str, template: str) -> None:
    run(template.format(probe))


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=MAX_EXPRESSION_LENGTH - 5, max_size=MAX_EXPRESSION_LENGTH + 50))
def test_long_text_is_refused_or_evaluated_cleanly(text: str) -> None:
    run(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_safe_environment_used_by_spiffworkflow_is_the_same_evaluator(text: str) -> None:
    env = SafeEnvironment()
    run(text, lambda t, ctx: env.evaluate(t, ctx, {"system": Spy("external")}))


# ------------------------------------------------------------------------------------------------ trees

FORBIDDEN = (ast.Attribute, ast.Call, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
             ast.JoinedStr, ast.NamedExpr, ast.Starred, ast.Slice, ast.Dict, ast.Set, ast.Await)
NAMES = ["x", "y", "z", "d", "n", "spy", "open", "system", "f", "b", "__import__", "__builtins__", "_x", "__class__"]

_leaf = st.one_of(
    st.sampled_from(NAMES).map(lambda n: ast.Name(n, ast.Load())),
    st.one_of(st.integers(-5, 10**6), st.text(max_size=4), st.booleans(), st.none(), st.floats(allow_nan=True),
              st.binary(max_size=3)).map(ast.Constant),
)


def _extend(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    ops = st.sampled_from([ast.Add(), ast.Sub(), ast.Mult(), ast.Div(), ast.FloorDiv(), ast.Mod(), ast.Pow(),
                           ast.BitOr(), ast.MatMult()])
    cmps = st.sampled_from([ast.Eq(), ast.Lt(), ast.In(), ast.NotIn(), ast.Is(), ast.IsNot(), ast.GtE()])
    comp = st.builds(lambda t, it: ast.comprehension(ast.Name(t, ast.Store()), it, [], 0),
                     st.sampled_from(["c", "_c"]), children)
    return st.one_of(
        st.builds(ast.BinOp, children, ops, children),
        st.builds(lambda a, b: ast.BoolOp(ast.Or(), [a, b]), children, children),
        st.builds(ast.UnaryOp, st.sampled_from([ast.Not(), ast.USub(), ast.Invert()]), children),
        st.builds(lambda a, o, b: ast.Compare(a, [o], [b]), children, cmps, children),
        st.builds(ast.IfExp, children, children, children),
        st.builds(lambda e: ast.List(e, ast.Load()), st.lists(children, max_size=3)),
        st.builds(lambda e: ast.Tuple(e, ast.Load()), st.lists(children, max_size=3)),
        st.builds(lambda v, k: ast.Subscript(v, k, ast.Load()), children, children),
        st.builds(lambda v, lo: ast.Subscript(v, ast.Slice(lo, None, None), ast.Load()), children, children),
        st.builds(lambda v, a: ast.Attribute(v, a, ast.Load()), children,
                  st.sampled_from(["__class__", "real", "system", "__globals__", "getVariable"])),
        st.builds(lambda fn, a: ast.Call(fn, a, []), children, st.lists(children, max_size=2)),
        st.builds(lambda body: ast.Lambda(ast.arguments([], [], None, [], [], None, []), body), children),
        st.builds(lambda e, g: ast.ListComp(e, [g]), children, comp),
        st.builds(lambda e, g: ast.GeneratorExp(e, [g]), children, comp),
        st.builds(lambda v: ast.JoinedStr([ast.FormattedValue(v, -1, None)]), children),
        st.builds(lambda v: ast.NamedExpr(ast.Name("w", ast.Store()), v), children),
        st.builds(lambda v: ast.List([ast.Starred(v, ast.Load())], ast.Load()), children),
        st.builds(lambda k, v: ast.Dict([k], [v]), children, children),
    )


def _forbidden(tree: ast.AST) -> str | None:
    """Why an independent reading of the whitelist says no, or None."""
    for node in ast.walk(tree):
        if isinstance(node, FORBIDDEN):
            return type(node).__name__
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            return f"name {node.id}"
        if isinstance(node, ast.BinOp) and not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div,
                                                                    ast.FloorDiv, ast.Mod)):
            return type(node.op).__name__
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return "Invert"
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            return "bytes"
    return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_leaf, _extend, max_leaves=10))
def test_forbidden_nodes_are_always_refused(node: ast.expr) -> None:
    try:
        text = ast.unparse(ast.fix_missing_locations(ast.Expression(node)))
    except Exception:  # a generated tree that has no source form cannot be deployed either
        return
    reparsed = ast.parse(text, mode="eval")  # what the evaluator will actually see
    accepted, _ = run(text)
    why = _forbidden(reparsed)
    if why is not None:
        assert not accepted, f"{text!r} was accepted although it holds {why}"
