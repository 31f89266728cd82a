"""A safe expression evaluator for gateway conditions, timers and due dates (never `eval`).

Accepts Python-style expressions and Camunda JUEL style (`${approved && jumlah gt 5}`). The parsed
AST is checked against a whitelist and interpreted by a small tree walker, so a deployed BPMN file
cannot reach attributes, calls, imports or builtins.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections import ChainMap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

MAX_EXPRESSION_LENGTH = 2000
MAX_DEPTH = 40
MAX_SEQUENCE_LENGTH = 100_000  # characters of a string / items of a list built by an expression
SCRIPTS_REFUSED = "script tasks are not allowed; use a user task or a service"


class ExpressionError(ValueError):
    """The expression is not allowed, does not parse, or failed to evaluate."""


_JUEL_WRAPPED = re.compile(r"^\s*[$#]\{(.*)\}\s*$", re.DOTALL)
# Strings first so that operators inside literals are left alone.
_TOKEN = re.compile(
    r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(&&|\|\||!(?!=))|([A-Za-z_][A-Za-z0-9_]*)""", re.DOTALL
)
_JUEL_OPERATORS = {"&&": " and ", "||": " or ", "!": " not "}
_JUEL_WORDS = {
    "eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">=",
    "true": "True", "false": "False", "null": "None",
}


def unwrap(text: str) -> str:
    """Strip one `${…}` / `#{…}` wrapper (JUEL), if the whole text is wrapped."""
    match = _JUEL_WRAPPED.match(text)
    return match.group(1) if match else text


def is_wrapped(text: str) -> bool:
    return _JUEL_WRAPPED.match(text) is not None


def translate(text: str) -> str:
    """Rewrite JUEL operators and literals into their Python spelling, leaving string literals alone."""

    def replace(match: re.Match[str]) -> str:
        literal, symbol, word = match.groups()
        if literal is not None:
            return literal
        if symbol is not None:
            return _JUEL_OPERATORS[symbol]
        return _JUEL_WORDS.get(word, word)

    return _TOKEN.sub(replace, unwrap(text)).strip()


_BIN_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_CMP_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {
    ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos,
}
_CONSTANT_TYPES = (str, int, float, bool, type(None))
_REFUSED_NAMES = {
    ast.Attribute: "attribute access ('x.y') is not allowed",
    ast.Call: "function calls are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "assignment ('x := …') is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Slice: "slices are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Await: "await is not allowed",
}


def _is_constant_key(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, int)) and not isinstance(node.value, bool)
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int)


def _check(node: ast.AST, depth: int = 0) -> None:
    """Raise ExpressionError unless every node is on the whitelist."""
    if depth > MAX_DEPTH:
        raise ExpressionError("expression is nested too deeply")
    for refused, message in _REFUSED_NAMES.items():
        if isinstance(node, refused):
            raise ExpressionError(message)
    children: list[ast.AST]
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, _CONSTANT_TYPES):
            raise ExpressionError(f"constants of type {type(node.value).__name__} are not allowed")
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ExpressionError(f"names starting with '_' are not allowed ('{node.id}')")
        return
    if isinstance(node, ast.BoolOp):
        children = list(node.values)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY_OPS:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        children = [node.operand]
    elif isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            raise ExpressionError("'**' is not allowed")
        if type(node.op) not in _BIN_OPS:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        children = [node.left, node.right]
    elif isinstance(node, ast.Compare):
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.Is, ast.IsNot)) and not (
                isinstance(right, ast.Constant) and right.value is None
            ):
                raise ExpressionError("'is' may only be used as 'is None' / 'is not None'")
        children = [node.left, *node.comparators]
    elif isinstance(node, ast.IfExp):
        children = [node.test, node.body, node.orelse]
    elif isinstance(node, (ast.List, ast.Tuple)):
        children = list(node.elts)
    elif isinstance(node, ast.Subscript):
        if not _is_constant_key(node.slice):
            raise ExpressionError("subscripts need a constant key or index, like data['x'] or items[0]")
        children = [node.value]
    else:
        raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")
    for child in children:
        _check(child, depth + 1)


@lru_cache(maxsize=2048)
def compile_expression(text: str) -> ast.Expression:
    """Parse and whitelist-check `text` (Python or JUEL style). Cached; the tree must not be mutated."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be text")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_EXPRESSION_LENGTH} characters")
    source = translate(text)
    if not source:
        raise ExpressionError("expression is empty")
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": the ExpressionError says enough
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise ExpressionError(f"invalid expression {text!r}: {err.msg}") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise ExpressionError(f"invalid expression {text!r}: {err}") from None
    _check(tree.body)
    return tree


def check_expression(text: str) -> str | None:
    """The reason `text` is not an acceptable expression, or None when it is."""
    try:
        compile_expression(text)
    except ExpressionError as err:
        return str(err)
    return None


_SEQUENCES = (str, list, tuple)


def _sized(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_SEQUENCE_LENGTH:
        raise ExpressionError(f"result is longer than {MAX_SEQUENCE_LENGTH}")
    return value


def _binary(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(op, ast.Mod) and isinstance(left, (str, bytes)):
        raise ExpressionError("string formatting with '%' is not allowed")
    # Bound repetition before computing it: 'a' * 10**9 must fail fast, not allocate.
    if isinstance(op, ast.Mult):
        for seq, count in ((left, right), (right, left)):
            if (isinstance(seq, _SEQUENCES) and isinstance(count, int)
                    and len(seq) * max(count, 0) > MAX_SEQUENCE_LENGTH):
                raise ExpressionError(f"result is longer than {MAX_SEQUENCE_LENGTH}")
    if (isinstance(op, ast.Add) and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES)
            and len(left) + len(right) > MAX_SEQUENCE_LENGTH):
        raise ExpressionError(f"result is longer than {MAX_SEQUENCE_LENGTH}")
    return _sized(_BIN_OPS[type(op)](left, right))


class _Evaluator:
    def __init__(self, context: Mapping[str, Any]):
        self.context = context

    def eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.context:
                raise ExpressionError(f"unknown variable '{node.id}'")
            return self.context[node.id]
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            value: Any = None
            for child in node.values:
                value = self.eval(child)
                if bool(value) != is_and:
                    return value
            return value
        if isinstance(node, ast.UnaryOp):
            return _UNARY_OPS[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.BinOp):
            return _binary(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.eval(right_node)
                if not _CMP_OPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
        if isinstance(node, ast.List):
            return _sized([self.eval(e) for e in node.elts])
        if isinstance(node, ast.Tuple):
            return _sized(tuple(self.eval(e) for e in node.elts))
        if isinstance(node, ast.Subscript):
            container = self.eval(node.value)
            if not isinstance(container, (dict, list, tuple, str)):
                raise ExpressionError(f"cannot subscript a {type(container).__name__}")
            key = node.slice.value if isinstance(node.slice, ast.Constant) else -node.slice.operand.value  # type: ignore[attr-defined]
            try:
                return container[key]
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(f"no item {key!r}") from None
        raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")  # pragma: no cover


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """Evaluate `text` against `context` (task data). Every failure is an ExpressionError."""
    tree = compile_expression(text)
    try:
        return _Evaluator(context).eval(tree.body)
    except ExpressionError:
        raise
    except (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError) as err:
        raise ExpressionError(f"cannot evaluate {text!r}: {err}") from None


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Some SpiffWorkflow code calls `script_engine.environment.evaluate` directly: keep that safe too."""

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Mapping | None = None
    ) -> Any:
        # Task data wins over external context, as in SpiffWorkflow's TaskDataEnvironment.
        return evaluate(expression, ChainMap(context, external_context or {}))  # type: ignore[arg-type]

    def execute(self, script: str, context: Any, external_context: Any = None) -> Any:
        raise ExpressionError(SCRIPTS_REFUSED)

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        raise ExpressionError("service calls are not supported")


def utc_now() -> datetime:
    return datetime.now(UTC)


class SafeScriptEngine(PythonScriptEngine):
    """SpiffWorkflow script engine that evaluates with the safe evaluator and runs no scripts.

    It also carries the clock and working calendar that our timers read (engine/timers.py).
    """

    def __init__(self, clock: Callable[[], datetime] | None = None, calendar: object | None = None):
        super().__init__(environment=SafeEnvironment())
        self.clock = clock or utc_now
        self.calendar = calendar

    def now(self) -> datetime:
        return self.clock()

    def validate(self, expression: str) -> None:
        compile_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: Mapping | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except Exception as err:
            raise WorkflowTaskException(f"Error evaluating expression '{expression}': {err}", task=task,
                                        exception=err) from err

    def execute(self, task: Any, script: str, external_context: Any = None) -> Any:
        raise WorkflowTaskException(SCRIPTS_REFUSED, task=task)

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        raise WorkflowTaskException("service calls are not supported", task=task)
