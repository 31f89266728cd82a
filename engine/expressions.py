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
# Every value an expression builds is bounded in full: characters of a string, items of a list counted through
# every nesting level (`[[0] * 1000] * 1000` holds 10**6 items even though each list has 1000).
MAX_SEQUENCE_LENGTH = 100_000
MAX_INT_BITS = 13_300  # integers of about 4,000 decimal digits
# Work units per evaluation: one per node, plus the items or characters an operation touches (building,
# comparing, searching with `in`). No loops exist, so this caps the time of any expression.
MAX_WORK = 1_000_000
SCRIPTS_REFUSED = "script tasks are not allowed; use a user task or a service"


class ExpressionError(ValueError):
    """The expression is not allowed, does not parse, or failed to evaluate."""


class ExpressionLimitError(ExpressionError):
    """The expression would build too large a value or need too much work (a bound, not a data problem)."""


class _NeedsData(Exception):
    """Raised by the deploy-time check when the expression reads task data: nothing more can be known then."""


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
    """The reason `text` is not an acceptable expression, or None when it is.

    Besides the syntax and the whitelist, the part that needs no task data is evaluated: an expression that
    always hits a size or work bound (`[[0] * 10**5] * 10**5 == 0`) is refused at deploy, not at run time."""
    try:
        tree = compile_expression(text)
        _Evaluator(_NO_DATA).eval(tree.body)
    except ExpressionLimitError as err:
        return f"{text!r}: {err}"
    except ExpressionError as err:
        return str(err)
    except Exception:  # _NeedsData, or an error the data might avoid (1 / 0 in a branch never taken)
        return None
    return None


class _NoData(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise _NeedsData(key)

    def __contains__(self, key: object) -> bool:
        raise _NeedsData(key)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


_NO_DATA = _NoData()
_SEQUENCES = (str, list, tuple)
_SIZED_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _too_long() -> ExpressionLimitError:
    return ExpressionLimitError(f"result is longer than {MAX_SEQUENCE_LENGTH} items or characters (the bound on "
                                "every value an expression builds, nested lists counted in full)")


_NUMBERS = frozenset({int, float, bool, type(None)})


def _scalar_size(value: Any) -> int:
    if isinstance(value, str):
        return max(1, len(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return 1 + value.bit_length() // 64
    return 1


def _flat_size(items: list[Any] | tuple[Any, ...]) -> int | None:
    """The size of a list holding only plain numbers or only strings (type() and len run in C); else None."""
    kinds = set(map(type, items))
    if not kinds:
        return 1
    if kinds <= _NUMBERS:  # a huge integer counts as one here: comparing it is a single memcmp
        return len(items)
    if kinds == {str}:
        return sum(map(len, items)) + items.count("")
    return None


class _Evaluator:
    """Walks the tree. Each step returns (value, size): the size (items and characters through every level) is
    known for what the expression built and measured on demand for task data; `work` counts what was done."""

    def __init__(self, context: Mapping[str, Any]):
        self.context = context
        self.work = 0

    def charge(self, units: int) -> None:
        self.work += units
        if self.work > MAX_WORK:
            raise ExpressionLimitError(f"needs more than {MAX_WORK} steps (the bound on the work of one expression)")

    def measure(self, value: Any, size: int | None, cap: int) -> int:
        """`size` if known, else the size of `value`, at most cap + 1 (measuring stops there). Measuring is
        work too: it is charged, so that no expression can spend long on it."""
        if size is not None:
            return size
        if not isinstance(value, (list, tuple, dict)):
            return _scalar_size(value)
        total, stack = 0, [value]
        while stack and total <= cap:
            item = stack.pop()
            if isinstance(item, dict):
                total += 1
                parts: list[Any] = [list(item.keys()), list(item.values())]
            else:
                parts = [item]
            for part in parts:
                flat = _flat_size(part)
                if flat is not None:  # only numbers, or only strings: counted without a Python-level loop
                    total += flat
                    continue
                total += not part  # an empty list counts as one item
                for element in part:
                    if isinstance(element, (list, tuple, dict)):
                        stack.append(element)
                    else:
                        total += _scalar_size(element)
        self.charge(min(total, cap + 1))
        return min(total, cap + 1)

    def built(self, value: Any, size: int) -> tuple[Any, int]:
        if size > MAX_SEQUENCE_LENGTH:
            raise _too_long()
        self.charge(len(value) // 64 if isinstance(value, str) else len(value))
        return value, size

    def binary(self, op: ast.operator, left: tuple[Any, int | None], right: tuple[Any, int | None]
               ) -> tuple[Any, int | None]:
        a, b = left[0], right[0]
        if isinstance(op, ast.Mod) and isinstance(a, (str, bytes)):
            raise ExpressionError("string formatting with '%' is not allowed")
        # Bound every result before computing it: 'a' * 10**9 must fail fast, not allocate.
        if isinstance(op, ast.Mult):
            for (seq, seq_size), (count, _) in ((left, right), (right, left)):
                if isinstance(seq, _SEQUENCES) and isinstance(count, int):
                    times = max(count, 0)
                    if len(seq) * times > MAX_SEQUENCE_LENGTH:
                        raise _too_long()
                    size = max(1, self.measure(seq, seq_size, MAX_SEQUENCE_LENGTH) * times) if seq else 1
                    if size > MAX_SEQUENCE_LENGTH:  # before multiplying: nothing is built in vain
                        raise _too_long()
                    return self.built(seq * times, size)
        if isinstance(op, ast.Add) and isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
            if len(a) + len(b) > MAX_SEQUENCE_LENGTH:
                raise _too_long()
            size = self.measure(*left, MAX_SEQUENCE_LENGTH) + self.measure(*right, MAX_SEQUENCE_LENGTH)
            if size > MAX_SEQUENCE_LENGTH:
                raise _too_long()
            return self.built(operator.add(a, b), size)
        if isinstance(a, int) and isinstance(b, int):
            if isinstance(op, (ast.Mult, ast.Add, ast.Sub)):
                bits = (a.bit_length() + b.bit_length() if isinstance(op, ast.Mult)
                        else max(a.bit_length(), b.bit_length()) + 1)
                if bits > MAX_INT_BITS:
                    raise ExpressionLimitError(f"result is a number of more than {MAX_INT_BITS} bits (about 4,000 "
                                               "digits, the bound on numbers an expression computes)")
            self.charge((a.bit_length() + b.bit_length()) // 64)
        return _BIN_OPS[type(op)](a, b), None

    def compare(self, op: ast.cmpop, left: tuple[Any, int | None], right: tuple[Any, int | None]) -> bool:
        a, b = left[0], right[0]
        if isinstance(op, _SIZED_COMPARISONS):
            # Comparing stops at the smaller side: measure the second only as far as the first goes.
            first = self.measure(*left, MAX_WORK - self.work)
            self.charge(min(first, self.measure(*right, first)))
        elif isinstance(op, (ast.In, ast.NotIn)):
            if isinstance(b, str):  # a substring search
                self.charge(len(b) + (len(a) if isinstance(a, str) else 0))
            elif isinstance(b, dict):  # a hash lookup
                self.charge(self.measure(*left, MAX_WORK - self.work))
            elif isinstance(b, (list, tuple)):  # one comparison per item, each up to the item's size
                if isinstance(a, (list, tuple, dict)):
                    self.charge(self.measure(*right, MAX_WORK - self.work))
                else:  # a scalar equals an item only if that item is a scalar of its kind: no deep walk
                    self.charge(len(b) * self.measure(*left, MAX_WORK - self.work))
        return bool(_CMP_OPS[type(op)](a, b))

    def eval(self, node: ast.AST) -> Any:
        return self.step(node)[0]

    def step(self, node: ast.AST) -> tuple[Any, int | None]:
        self.charge(1)
        if isinstance(node, ast.Constant):
            return node.value, None
        if isinstance(node, ast.Name):
            if node.id not in self.context:
                raise ExpressionError(f"unknown variable '{node.id}'")
            return self.context[node.id], None
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            result: tuple[Any, int | None] = (None, None)
            for child in node.values:
                result = self.step(child)
                if bool(result[0]) != is_and:
                    return result
            return result
        if isinstance(node, ast.UnaryOp):
            return _UNARY_OPS[type(node.op)](self.eval(node.operand)), None
        if isinstance(node, ast.BinOp):
            return self.binary(node.op, self.step(node.left), self.step(node.right))
        if isinstance(node, ast.Compare):
            left = self.step(node.left)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self.step(right_node)
                if not self.compare(op, left, right):
                    return False, None
                left = right
            return True, None
        if isinstance(node, ast.IfExp):
            return self.step(node.body) if self.eval(node.test) else self.step(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple)):
            parts = [self.step(e) for e in node.elts]
            size = max(1, sum(self.measure(value, known, MAX_SEQUENCE_LENGTH) for value, known in parts))
            items = [value for value, _ in parts]
            return self.built(items if isinstance(node, ast.List) else tuple(items), size)
        if isinstance(node, ast.Subscript):
            container = self.eval(node.value)
            if not isinstance(container, (dict, list, tuple, str)):
                raise ExpressionError(f"cannot subscript a {type(container).__name__}")
            key = node.slice.value if isinstance(node.slice, ast.Constant) else -node.slice.operand.value  # type: ignore[attr-defined]
            try:
                return container[key], None
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(f"no item {key!r}") from None
        raise ExpressionError(f"{type(node).__name__} is not allowed in expressions")  # pragma: no cover


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """Evaluate `text` against `context` (task data). Every failure is an ExpressionError; one that hits a
    size or work bound is an ExpressionLimitError naming the expression and the bound."""
    tree = compile_expression(text)
    try:
        return _Evaluator(context).eval(tree.body)
    except ExpressionLimitError as err:
        raise ExpressionLimitError(f"expression {text!r} refused: {err}") from None
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
