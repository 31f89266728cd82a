"""Task forms: Camunda Forms (form-js JSON) and `camunda:formData`, validated server-side.

Every path that completes a task (CLI, web, REST) passes the submitted data through
`validate_submission`; SpiffWorkflow stores form constraints but never enforces them.

Decisions (see also the module's tests):
- Result shape: with `partial=False` every value-bearing field of the form appears in the cleaned
  dict, in form order. An empty optional field is `None`; a checkbox is always a bool; a checklist is
  always a list (empty = `[]`). Hidden fields (`conditional.hide`) are `None`. With `partial=True`
  (a draft) only submitted keys appear, `required` is not enforced, everything else is.
- `readonly`/`disabled` fields and `expression` fields are never taken from a submission: a value sent
  for them is ignored (browsers do submit readonly inputs, so refusing would break plain HTML forms).
  They never appear in the output, except expressions, which are computed here.
- Values come out as str / int / float / bool / list[str] / None only: numbers are int when integral,
  float otherwise (never Decimal); dates and times are ISO 8601 strings (never date objects).
- Field keys must be simple names (`[A-Za-z_][A-Za-z0-9_]*`): they become process variables that
  gateway conditions and FEEL expressions refer to by name. Dotted keys / group paths are refused.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from engine import jsregex
from engine.errors import DeployError, FormValidationError, Problem
from engine.moments import FIRST_DAY, LAST_DAY, OutOfWindow, check_day, check_moment

MAX_FORM_BYTES = 512 * 1024
MAX_STRING_CHARS = 10_000
MAX_FREE_KEYS = 200  # form-less submissions (REST variables with no form)
MAX_FREE_DEPTH = 5
MAX_FREE_NODES = 10_000
MAX_CHOICES = 1_000
# Beyond 2**53 JSON numbers lose precision in browsers; 10**15 still holds any rupiah budget.
MAX_NUMBER = Decimal(10) ** 15
MAX_EXPRESSION_CHARS = 2_000
FORM_ERROR_KEY = "__form__"  # errors that belong to no single field
DEFAULT_TIMEZONE: tzinfo = ZoneInfo("Asia/Jakarta")

KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")

# --------------------------------------------------------------------------------------------------
# Messages: Bahasa Indonesia first, English twin. The web layer picks with `locale`.

LOCALES = ("id", "en")
_MESSAGES: dict[str, tuple[str, str]] = {
    "required": ("wajib diisi", "is required"),
    "unknown_field": ("field tidak dikenal", "unknown field"),
    "min_length": ("minimal {n} karakter", "must be at least {n} characters"),
    "max_length": ("maksimal {n} karakter", "must be at most {n} characters"),
    "too_long": ("terlalu panjang (maksimal {n} karakter)", "is too long (at most {n} characters)"),
    "min": ("minimal {n}", "must be at least {n}"),
    "max": ("maksimal {n}", "must be at most {n}"),
    "pattern": ("format tidak sesuai", "does not match the required format"),
    "pattern_too_long": ("terlalu panjang untuk diperiksa formatnya: maksimal {n} karakter",
                         "is too long to check against its format: at most {n} characters"),
    "pattern_unsupported": (
        "aturan format di formulir ini tidak dapat diperiksa; minta perancang proses memperbaikinya",
        "this form's format rule cannot be checked; ask the process designer to fix it"),
    "email": ("alamat email tidak valid", "is not a valid email address"),
    "phone": ("nomor telepon tidak valid", "is not a valid phone number"),
    "number": ("harus angka", "must be a number"),
    "integer": ("harus bilangan bulat", "must be a whole number"),
    "number_too_large": ("angka terlalu besar", "number is too large"),
    "decimal_digits": ("maksimal {n} angka di belakang koma", "at most {n} decimal places"),
    "increment": ("harus kelipatan {n}", "must be a multiple of {n}"),
    "choice": ("pilihan tidak dikenal", "unknown choice"),
    "too_many_choices": ("terlalu banyak pilihan", "too many choices"),
    "boolean": ("harus ya atau tidak", "must be yes or no"),
    "date": ("tanggal tidak valid (format TTTT-BB-HH)", "invalid date (format YYYY-MM-DD)"),
    "time": ("waktu tidak valid (format JJ:MM)", "invalid time (format HH:MM)"),
    "datetime": ("tanggal dan waktu tidak valid", "invalid date and time"),
    "date_range": ("tanggal harus antara {first} dan {last}", "the date must be between {first} and {last}"),
    "text": ("harus teks", "must be text"),
    "control_chars": ("mengandung karakter kontrol yang tidak diizinkan", "contains control characters"),
    "encoding": ("berisi karakter rusak (bukan teks UTF-8 yang sah)", "contains garbled characters (not valid UTF-8)"),
    "not_mapping": ("data harus berupa objek", "data must be an object"),
    "too_many_keys": ("terlalu banyak field (maksimal {n})", "too many fields (at most {n})"),
    "too_deep": ("data terlalu bertingkat (maksimal {n} tingkat)", "data nested too deeply (at most {n})"),
    "too_big": ("data terlalu besar", "data is too large"),
    "bad_key": ("nama field tidak valid", "invalid field name"),
    "unsupported_value": ("jenis nilai tidak didukung", "unsupported kind of value"),
}


def messages(locale: str = "id") -> dict[str, str]:
    """The message catalogue (rule -> template with `{n}` placeholders) for `locale` ('id' or 'en')."""
    idx = 1 if locale == "en" else 0
    return {rule: pair[idx] for rule, pair in _MESSAGES.items()}


def message(rule: str, locale: str = "id", **params: Any) -> str:
    idx = 1 if locale == "en" else 0
    return _MESSAGES[rule][idx].format(**{k: _fmt(v) for k, v in params.items()})


def _fmt(value: Any) -> str:
    if isinstance(value, Decimal):
        value = _to_number(value)
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else str(value)
    return str(value)


# --------------------------------------------------------------------------------------------------
# A tiny FEEL subset for `expression` components and `conditional.hide`. Own tokenizer and
# recursive-descent parser: nothing here reaches Python's eval.


class FeelError(ValueError):
    """A FEEL expression could not be parsed."""


_TOKEN_RE = re.compile(
    r"""\s*(?:
      (?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|[-+*/()<>=])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"if", "then", "else", "and", "or", "not", "true", "false", "null"}
_MAX_DEPTH = 60


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    end = len(text.rstrip())
    while pos < end:
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise FeelError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "kw"
        tokens.append((kind, value))
        pos = m.end()
    tokens.append(("end", ""))
    return tokens


class _Parser:
    # Grammar (lowest precedence first):
    #   expr   := 'if' expr 'then' expr 'else' expr | or
    #   or     := and ('or' and)*          and := cmp ('and' cmp)*
    #   cmp    := sum (('='|'!='|'<'|'<='|'>'|'>=') sum)?
    #   sum    := prod (('+'|'-') prod)*   prod := unary (('*'|'/') unary)*
    #   unary  := '-' unary | atom
    #   atom   := number | string | true | false | null | name | '(' expr ')' | 'not' '(' expr ')'
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.pos = 0
        self.depth = 0
        self.names: set[str] = set()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, kind: str, value: str) -> None:
        tok = self.take()
        if tok != (kind, value):
            raise FeelError(f"expected {value!r}, found {tok[1] or 'end of expression'!r}")

    def parse(self) -> tuple:
        node = self.expr()
        if self.peek()[0] != "end":
            raise FeelError(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self) -> tuple:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise FeelError("expression is nested too deeply")
        try:
            if self.peek() == ("kw", "if"):
                self.take()
                cond = self.expr()
                self.expect("kw", "then")
                then = self.expr()
                self.expect("kw", "else")
                return ("if", cond, then, self.expr())
            return self.disjunction()
        finally:
            self.depth -= 1

    def disjunction(self) -> tuple:
        node = self.conjunction()
        while self.peek() == ("kw", "or"):
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple:
        node = self.comparison()
        while self.peek() == ("kw", "and"):
            self.take()
            node = ("and", node, self.comparison())
        return node

    def comparison(self) -> tuple:
        node = self.sum()
        if self.peek()[0] == "op" and self.peek()[1] in ("=", "!=", "<", "<=", ">", ">="):
            op = self.take()[1]
            node = ("cmp", op, node, self.sum())
        return node

    def sum(self) -> tuple:
        node = self.product()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.take()[1]
            node = ("arith", op, node, self.product())
        return node

    def product(self) -> tuple:
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in "*/":
            op = self.take()[1]
            node = ("arith", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.peek() == ("op", "-"):
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise FeelError("expression is nested too deeply")
            try:
                return ("neg", self.unary())
            finally:
                self.depth -= 1
        return self.atom()

    def atom(self) -> tuple:
        kind, value = self.take()
        if kind == "num":
            return ("const", Decimal(value))
        if kind == "str":
            return ("const", re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "name":
            self.names.add(value)
            return ("name", value)
        if kind == "kw" and value in ("true", "false", "null"):
            return ("const", {"true": True, "false": False, "null": None}[value])
        if (kind, value) == ("kw", "not"):
            self.expect("op", "(")
            node = self.expr()
            self.expect("op", ")")
            return ("not", node)
        if (kind, value) == ("op", "("):
            node = self.expr()
            self.expect("op", ")")
            return node
        raise FeelError(f"unexpected {value or 'end of expression'!r}")


@lru_cache(maxsize=1024)
def parse_feel(expression: str) -> tuple[tuple, frozenset[str]]:
    """Parse `expression` (with or without form-js's leading '='): (syntax tree, names it reads)."""
    text = expression.strip()
    if text.startswith("="):
        text = text[1:]
    if len(text) > MAX_EXPRESSION_CHARS:
        raise FeelError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    if not text.strip():
        raise FeelError("expression is empty")
    parser = _Parser(text)
    return parser.parse(), frozenset(parser.names)


_FEEL_CONTEXT = Context(prec=34, traps=[InvalidOperation, DivisionByZero, Overflow])  # decimal128, as FEEL


def evaluate_feel(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a FEEL expression against `context`. Missing names, type clashes and division by
    zero give None (FEEL's null). Numbers come back as int or float. Raises FeelError on bad syntax."""
    tree, _ = parse_feel(expression)
    with localcontext(_FEEL_CONTEXT):
        return _from_feel(_eval(tree, context))


def _to_feel(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    return None  # lists, dicts: not part of our subset


def _from_feel(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Same bound as submitted numbers: keeps results JSON- and JavaScript-safe.
        return _to_number(value) if value.is_finite() and abs(value) <= MAX_NUMBER else None
    return value


def _eval(node: tuple, ctx: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "name":
        return _to_feel(ctx.get(node[1]))
    if kind == "neg":
        v = _eval(node[1], ctx)
        return -v if isinstance(v, Decimal) else None
    if kind == "not":
        v = _eval(node[1], ctx)
        return (not v) if isinstance(v, bool) else None
    if kind == "if":
        return _eval(node[2] if _eval(node[1], ctx) is True else node[3], ctx)
    if kind in ("and", "or"):
        a, b = _eval(node[1], ctx), _eval(node[2], ctx)
        a = a if isinstance(a, bool) else None
        b = b if isinstance(b, bool) else None
        if kind == "and":
            return False if False in (a, b) else (None if None in (a, b) else True)
        return True if True in (a, b) else (None if None in (a, b) else False)
    if kind == "arith":
        return _arith(node[1], _eval(node[2], ctx), _eval(node[3], ctx))
    if kind == "cmp":
        return _compare(node[1], _eval(node[2], ctx), _eval(node[3], ctx))
    raise FeelError(f"unknown node {kind}")  # pragma: no cover - the parser makes no other nodes


def _arith(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        try:
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            return a / b
        except ArithmeticError:  # division by zero, overflow: null, as FEEL
            return None
    if op == "+" and isinstance(a, str) and isinstance(b, str) and len(a) + len(b) <= MAX_STRING_CHARS:
        return a + b
    return None


def _compare(op: str, a: Any, b: Any) -> Any:
    if op in ("=", "!="):
        same_kind = type(a) is type(b) or a is None or b is None
        equal = same_kind and a == b
        return equal if op == "=" else not equal
    both_numbers = isinstance(a, Decimal) and isinstance(b, Decimal)
    if not (both_numbers or (isinstance(a, str) and isinstance(b, str))):
        return None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


# --------------------------------------------------------------------------------------------------
# The model: what a form is, for rendering (components) and for validation (fields).

VALUE_TYPES = ("textfield", "textarea", "number", "select", "radio", "checkbox", "checklist", "datetime")
SUPPORTED_TYPES = (*VALUE_TYPES, "expression", "text", "group")
IGNORED_TYPES = ("separator", "spacer")
OPTION_TYPES = ("select", "radio", "checklist")
_KNOWN_RULES = {"required", "min", "max", "minLength", "maxLength", "pattern", "validationType"}
TEXT_TYPES = ("textfield", "textarea")


@dataclass(frozen=True)
class Field:
    """One value-bearing field. `min`/`max` bound numbers; `min_length`/`max_length` bound text."""

    key: str
    type: str  # one of VALUE_TYPES, or "expression"
    label: str = ""
    description: str = ""
    required: bool = False
    min: int | float | None = None
    max: int | float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    validation_type: str | None = None  # "email" | "phone"
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    default: Any = None
    readonly: bool = False  # readonly or disabled: never taken from a submission
    decimal_digits: int | None = None  # number: digits allowed after the decimal point
    increment: int | float | None = None  # number: the value must be a multiple of it
    subtype: str | None = None  # datetime: "date" | "time" | "datetime"
    time_format: str | None = None  # datetime: "utc_offset" | "utc_normalized" | "no_timezone"
    expression: str | None = None  # expression: the FEEL text (with its leading "=")
    hide: str | None = None  # FEEL condition (own or inherited from the group): hidden when true


@dataclass(frozen=True)
class Component:
    """A node of the form's layout tree, in document order. `field` is set for value-bearing ones;
    `text` holds a `text` component's markdown; `components` holds a group's children."""

    type: str
    id: str | None = None
    key: str | None = None
    label: str = ""
    text: str = ""
    hide: str | None = None
    field: Field | None = None
    components: tuple[Component, ...] = ()


@dataclass(frozen=True)
class FormDefinition:
    id: str
    file_name: str
    components: tuple[Component, ...]
    fields: tuple[Field, ...]
    source: str = "camunda-forms"  # or "formData" for generated forms

    def field(self, key: str) -> Field | None:
        return next((f for f in self.fields if f.key == key), None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (json.dumps works on it) of the whole definition."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Loading a .form file


def load_form(data: bytes, file_name: str, *, stored: bool = False) -> FormDefinition:
    """Parse a Camunda Form (form-js JSON). Raises DeployError listing every problem found.

    `stored`: the form was accepted by an earlier deploy; a pattern today's checks refuse is kept (its field then
    refuses every value with a clear message) instead of making the task unusable."""
    if len(data) > MAX_FORM_BYTES:
        raise DeployError([Problem(file_name, None, None, f"form is larger than {MAX_FORM_BYTES} bytes")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DeployError([Problem(file_name, None, None, f"form is not UTF-8 text: {exc.reason}")]) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = Problem(file_name, exc.lineno, None, f"form is not valid JSON: {exc.msg}")
        raise DeployError([problem]) from None
    except RecursionError:
        raise DeployError([Problem(file_name, None, None, "form JSON is nested too deeply")]) from None
    if not isinstance(doc, dict):
        raise DeployError([Problem(file_name, 1, None, "form must be a JSON object")])
    return _FormLoader(file_name, text, stored=stored).load(doc)


class _FormLoader:
    def __init__(self, file_name: str, text: str, *, stored: bool = False):
        self.file_name = file_name
        self.text = text
        self.stored = stored
        self.form_id = ""
        self.problems: list[Problem] = []
        self.fields: list[Field] = []
        self.expressions: list[tuple[str | None, str, frozenset[str]]] = []

    def problem(self, element_id: str | None, msg: str) -> None:
        self.problems.append(Problem(self.file_name, self._line_of(element_id), element_id, msg))

    def _line_of(self, element_id: str | None) -> int | None:
        # JSON keeps no positions: find the line that declares this id (or key).
        if not element_id:
            return None
        m = re.search(r'"(?:id|key)"\s*:\s*' + re.escape(json.dumps(element_id)), self.text)
        return self.text.count("\n", 0, m.start()) + 1 if m else None

    def load(self, doc: dict[str, Any]) -> FormDefinition:
        form_id = doc.get("id")
        if not isinstance(form_id, str) or not form_id.strip():
            self.problem(None, "form has no id (Camunda Modeler writes it as the form's top-level 'id')")
            form_id = ""
        self.form_id = form_id.strip()
        raw = doc.get("components")
        if not isinstance(raw, list):
            self.problem(None, "form has no 'components' list")
            raw = []
        components = self.components(raw, group=None)
        seen = {f.key for f in self.fields}
        for element_id, what, names in self.expressions:
            for name in sorted(names - seen):
                self.problem(element_id, f"{what} refers to {name!r}, which is no field of this form")
        if self.problems:
            raise DeployError(self.problems)
        return FormDefinition(form_id.strip(), self.file_name, tuple(components), tuple(self.fields))

    def components(self, raw: list[Any], group: Component | None) -> list[Component]:
        out = []
        for item in raw:
            comp = self.component(item, group)
            if comp is not None:
                out.append(comp)
        return out

    def feel(self, element_id: str | None, what: str, expression: Any) -> str | None:
        if expression is None or expression is False or expression == "":
            return None
        if not isinstance(expression, str) or not expression.strip().startswith("="):
            self.problem(element_id, f"{what} must be a FEEL expression starting with '='")
            return None
        try:
            _, names = parse_feel(expression)
        except FeelError as exc:
            self.problem(element_id, f"{what} {expression!r}: {exc}")
            return None
        self.expressions.append((element_id, what, names))
        return expression.strip()

    def component(self, c: Any, group: Component | None) -> Component | None:
        if not isinstance(c, dict):
            self.problem(None, "every component must be a JSON object")
            return None
        ctype = c.get("type")
        cid = c.get("id") if isinstance(c.get("id"), str) else None
        key = c.get("key") if isinstance(c.get("key"), str) else None
        where = cid or key
        if ctype in IGNORED_TYPES:
            return None
        if ctype not in SUPPORTED_TYPES:
            self.problem(where, f"component type {ctype!r} is not supported")
            return None
        label = c.get("label") if isinstance(c.get("label"), str) else ""
        hide = None
        conditional = c.get("conditional")
        if isinstance(conditional, dict):
            hide = self.feel(where, "conditional.hide", conditional.get("hide"))
        if group is not None and group.hide:
            hide = f"=({group.hide.lstrip('=')}) or ({hide.lstrip('=')})" if hide else group.hide

        if ctype == "group":
            if group is not None:
                self.problem(where, "groups inside groups are not supported")
                return None
            if c.get("path"):
                self.problem(where, "group 'path' (nested data) is not supported: leave it empty")
            me = Component("group", cid, None, label, hide=hide)
            children = c.get("components")
            if not isinstance(children, list):
                children = []
            return Component("group", cid, None, label, hide=hide,
                             components=tuple(self.components(children, me)))
        if ctype == "text":
            text = c.get("text") if isinstance(c.get("text"), str) else ""
            return Component("text", cid, None, label, text=text, hide=hide)

        if key is None or not key:
            self.problem(cid, f"{ctype} component has no key")
            return None
        if not KEY_RE.fullmatch(key):
            self.problem(where, f"key {key!r} must be a simple name (letters, digits, _; no dots or spaces)")
            return None
        if any(f.key == key for f in self.fields):
            self.problem(where, f"key {key!r} is used by more than one component")
            return None
        field = self.field(c, ctype, key, where, label, hide)
        if field is None:
            return None
        self.fields.append(field)
        return Component(ctype, cid, key, label, hide=hide, field=field)

    def field(self, c: dict[str, Any], ctype: str, key: str, where: str | None, label: str,
              hide: str | None) -> Field | None:
        start = len(self.problems)
        description = c.get("description") if isinstance(c.get("description"), str) else ""
        readonly = bool(c.get("readonly")) or bool(c.get("disabled"))  # an expression counts as readonly
        if ctype == "expression":
            expr = self.feel(where, "expression", c.get("expression"))
            if expr is None and len(self.problems) == start:
                self.problem(where, "expression component has no expression")
            return Field(key, "expression", label, description, readonly=True, expression=expr, hide=hide)

        validate = c.get("validate") or {}
        if not isinstance(validate, dict):
            self.problem(where, "'validate' must be an object")
            validate = {}
        allowed = {"required"}
        if ctype in TEXT_TYPES:
            allowed |= {"minLength", "maxLength", "pattern", "validationType"}
        if ctype == "number":
            allowed |= {"min", "max"}
        rules: dict[str, Any] = {}
        for rule, value in validate.items():
            if rule not in allowed:
                why = f"does not apply to a {ctype}" if rule in _KNOWN_RULES else "is unknown"
                self.problem(where, f"validate rule {rule!r} {why}")
                continue
            if isinstance(value, str) and value.startswith("="):
                self.problem(where, f"validate rule {rule!r}: expressions are not supported, use a value")
                continue
            rules[rule] = value

        required = rules.get("required", False)
        if not isinstance(required, bool):
            self.problem(where, "validate.required must be true or false")
            required = False
        lengths = {}
        for rule in ("minLength", "maxLength"):
            v = rules.get(rule)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                self.problem(where, f"validate.{rule} must be a whole number >= 0")
                v = None
            lengths[rule] = v
        if None not in lengths.values() and lengths["minLength"] > lengths["maxLength"]:
            self.problem(where, "validate.minLength is greater than validate.maxLength")
        bounds = {}
        for rule in ("min", "max"):
            v = rules.get(rule)
            if v is not None:
                v = _config_number(v)
                if v is None:
                    self.problem(where, f"validate.{rule} must be a number")
            bounds[rule] = v
        if None not in bounds.values() and bounds["min"] > bounds["max"]:
            self.problem(where, "validate.min is greater than validate.max")
        pattern = rules.get("pattern") or None
        if pattern is not None:
            if not isinstance(pattern, str):
                self.problem(where, "validate.pattern must be a string")
                pattern = None
            else:
                try:
                    limit = jsregex.max_checked_chars(pattern)
                    if (lengths["maxLength"] or 0) > limit:  # run time would refuse values it allows
                        self.problem(where, f"validate.maxLength {lengths['maxLength']} is more than pattern "
                                            f"{pattern!r} can be checked against (at most {limit} characters; "
                                            f"lower maxLength or simplify the pattern) "
                                            f"(form {self.form_id!r}, field {key!r})")
                except jsregex.PatternError as exc:
                    if not self.stored:  # a form deployed before RE2: its fields refuse values at run time
                        self.problem(where, f"validate.pattern {pattern!r} {exc} "
                                            f"(form {self.form_id!r}, field {key!r})")
                        pattern = None
        vtype = rules.get("validationType") or None
        if vtype not in (None, "email", "phone"):
            self.problem(where, f"validate.validationType {vtype!r} is unknown (use email or phone)")
            vtype = None

        options: tuple[tuple[str, str], ...] = ()
        if ctype in OPTION_TYPES:
            options = self.options(c, ctype, where)

        decimal_digits = increment = None
        if ctype == "number":
            decimal_digits = c.get("decimalDigits")
            if decimal_digits is not None and (
                isinstance(decimal_digits, bool) or not isinstance(decimal_digits, int)
                or not 0 <= decimal_digits <= 20
            ):
                self.problem(where, "decimalDigits must be a whole number from 0 to 20")
                decimal_digits = None
            if c.get("increment") not in (None, ""):
                increment = _config_number(c.get("increment"))
                if increment is None or increment <= 0:
                    self.problem(where, "increment must be a number greater than 0")
                    increment = None

        subtype = time_format = None
        if ctype == "datetime":
            subtype = c.get("subtype") or "date"
            if subtype not in ("date", "time", "datetime"):
                self.problem(where, f"datetime subtype {subtype!r} is unknown")
            time_format = c.get("timeSerializingFormat") or "utc_offset"
            if time_format not in ("utc_offset", "utc_normalized", "no_timezone"):
                self.problem(where, f"timeSerializingFormat {time_format!r} is unknown")

        if len(self.problems) > start:
            return None
        field = Field(
            key, ctype, label, description, required=required,
            min=_to_number(bounds["min"]) if bounds["min"] is not None else None,
            max=_to_number(bounds["max"]) if bounds["max"] is not None else None,
            min_length=lengths["minLength"], max_length=lengths["maxLength"], pattern=pattern,
            validation_type=vtype, options=options, readonly=readonly, decimal_digits=decimal_digits,
            increment=_to_number(increment) if increment is not None else None,
            subtype=subtype, time_format=time_format, hide=hide,
        )
        default = c.get("defaultValue")
        if default not in (None, "", []):
            try:
                default = _clean_value(field, default, "en", DEFAULT_TIMEZONE, partial=True)
            except _Invalid as exc:
                self.problem(where, f"defaultValue {default!r} is invalid: {exc.text}")
                return None
            field = _replace_default(field, default)
        return field

    def options(self, c: dict[str, Any], ctype: str, where: str | None) -> tuple[tuple[str, str], ...]:
        values = c.get("values")
        if not values:
            if c.get("valuesKey") or c.get("valuesExpression"):
                self.problem(where, f"{ctype} takes its options from process data (valuesKey/"
                                    "valuesExpression): not supported, list the values in the form")
            else:
                self.problem(where, f"{ctype} has no values to choose from")
            return ()
        if not isinstance(values, list):
            self.problem(where, "'values' must be a list")
            return ()
        out: list[tuple[str, str]] = []
        for v in values:
            value = v.get("value") if isinstance(v, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                self.problem(where, "every value needs a non-empty 'value'")
                continue
            label = v.get("label") if isinstance(v.get("label"), str) else value
            if any(value == o[0] for o in out):
                self.problem(where, f"value {value!r} is listed twice")
                continue
            out.append((value, label))
        return tuple(out)


def _replace_default(field: Field, default: Any) -> Field:
    return replace(field, default=default)


def _config_number(value: Any) -> Decimal | None:
    """A number from form configuration (int, float, or a numeric string as form-js writes `increment`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            d = _parse_number(value)
        except _Invalid:
            return None
        return d
    return None


# --------------------------------------------------------------------------------------------------
# camunda:formData (generated forms), as SpiffWorkflow's Camunda parser stores them

_SPIFF_TYPES = {"string": "textfield", "long": "number", "boolean": "checkbox", "date": "datetime",
                "enum": "select"}


def form_from_spiff(spiff_form: Any, file_name: str = "", element_id: str | None = None) -> FormDefinition:
    """Convert a `SpiffWorkflow.camunda.specs.user_task.Form` (camunda:formData) to a FormDefinition.
    `file_name`/`element_id` (the user task) locate problems; raises DeployError on unsupported parts."""
    problems: list[Problem] = []
    fields: list[Field] = []
    seen: set[str] = set()

    def problem(fid: Any, msg: str) -> None:
        problems.append(Problem(file_name, None, element_id, f"formField {fid!r}: {msg}" if fid else msg))

    for sf in getattr(spiff_form, "fields", None) or []:
        fid = getattr(sf, "id", None)
        if not isinstance(fid, str) or not KEY_RE.fullmatch(fid):
            problem(fid or "?", "id must be a simple name (letters, digits, _)")
            continue
        if fid in seen:
            problem(fid, "id is used twice")
            continue
        seen.add(fid)
        ctype = _SPIFF_TYPES.get(sf.type)
        if ctype is None:
            problem(fid, f"type {sf.type!r} is not supported (use string, long, boolean, date or enum)")
            continue
        kwargs: dict[str, Any] = {}
        bad = False
        for v in sf.validation:
            name, config = v.name, v.config
            if name == "required":
                kwargs["required"] = config is None or str(config).strip().lower() != "false"
            elif name == "readonly":
                kwargs["readonly"] = config is None or str(config).strip().lower() != "false"
            elif name in ("minlength", "maxlength") and ctype == "textfield":
                try:
                    n = int(str(config).strip())
                    if n < 0:
                        raise ValueError
                except ValueError:
                    problem(fid, f"constraint {name} needs a whole number >= 0, not {config!r}")
                    bad = True
                    continue
                kwargs["min_length" if name == "minlength" else "max_length"] = n
            elif name in ("min", "max") and ctype == "number":
                n = _config_number(str(config).strip()) if config is not None else None
                if n is None:
                    problem(fid, f"constraint {name} needs a number, not {config!r}")
                    bad = True
                    continue
                kwargs[name] = _to_number(n)
            else:
                problem(fid, f"constraint {name!r} is not supported on a {sf.type} field")
                bad = True
        if ctype == "number":
            kwargs["decimal_digits"] = 0  # Camunda's long
        if ctype == "datetime":
            kwargs.update(subtype="date", time_format="no_timezone")
        if ctype == "select":
            options = [(str(o.id), str(o.name or o.id)) for o in getattr(sf, "options", []) if o.id]
            if not options:
                problem(fid, "enum field has no values")
                bad = True
            kwargs["options"] = tuple(options)
        if bad:
            continue
        field = Field(fid, ctype, sf.label or "", **kwargs)
        if sf.default_value not in (None, ""):
            try:
                field = _replace_default(field, _clean_value(field, sf.default_value, "en", DEFAULT_TIMEZONE,
                                                             partial=True))
            except _Invalid as exc:
                problem(fid, f"defaultValue {sf.default_value!r} is invalid: {exc.text}")
                continue
        fields.append(field)
    if problems:
        raise DeployError(problems)
    key = getattr(spiff_form, "key", "") or ""
    components = tuple(Component(f.type, f.key, f.key, f.label, field=f) for f in fields)
    return FormDefinition(key, file_name, components, tuple(fields), source="formData")


# --------------------------------------------------------------------------------------------------
# Validating a submission


class _Invalid(Exception):
    def __init__(self, rule: str, locale: str, **params: Any):
        self.text = message(rule, locale, **params)
        super().__init__(self.text)


def validate_submission(
    form: FormDefinition | None,
    data: Mapping[str, Any],
    *,
    partial: bool = False,
    locale: str = "id",
    tz: tzinfo = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """Check and clean `data` (strings from an HTML form, or typed JSON values) against `form`.

    Returns the cleaned values (see the module docstring for their shape) or raises FormValidationError
    with every problem, keyed by field (FORM_ERROR_KEY for the submission as a whole). With no form,
    any bounded JSON-like dict is accepted. `tz` is where naive date-times typed by a user live.
    `data` may be a werkzeug MultiDict: a checklist then reads every value of its key (`getlist`).
    """
    if form is None:
        return _validate_free(data, locale)
    if not isinstance(data, Mapping):
        raise FormValidationError({FORM_ERROR_KEY: [message("not_mapping", locale)]})
    errors: dict[str, list[str]] = {}
    known = {f.key for f in form.fields}
    unknown = []
    for key in list(data.keys())[: MAX_FREE_KEYS + len(known)]:
        if not isinstance(key, str) or key not in known:
            unknown.append(_error_key(key))
    if len(data) > MAX_FREE_KEYS + len(known):
        unknown.append(FORM_ERROR_KEY)

    values: dict[str, Any] = {}
    field_errors: dict[str, list[str]] = {}
    for f in form.fields:
        if f.type == "expression" or f.readonly:
            continue  # never taken from the client
        if partial and f.key not in data:
            continue
        raw = _get(data, f)
        try:
            values[f.key] = _clean_value(f, raw, locale, tz, partial=partial)
        except _Invalid as exc:
            values[f.key] = None
            field_errors[f.key] = [exc.text]
        else:
            problems = _check_rules(f, values[f.key], locale, partial=partial)
            if problems:
                field_errors[f.key] = problems

    context: dict[str, Any] = {f.key: f.default for f in form.fields if f.readonly and f.type != "expression"}
    context.update(values)
    _compute_expressions(form, context)
    hidden = {f.key for f in form.fields if f.hide and evaluate_feel(f.hide, context) is True}
    if hidden:
        for key in hidden:
            if key in values:
                values[key] = context[key] = None
            field_errors.pop(key, None)
        _compute_expressions(form, context)  # inputs may have become None

    for f in form.fields:
        if f.key in field_errors:
            errors[f.key] = field_errors[f.key]
    for key in unknown:
        errors.setdefault(key, []).append(
            message("too_many_keys", locale, n=MAX_FREE_KEYS) if key == FORM_ERROR_KEY
            else message("unknown_field", locale))
    if errors:
        raise FormValidationError(errors)

    result: dict[str, Any] = {}
    for f in form.fields:
        if f.type == "expression":
            result[f.key] = None if f.key in hidden else context.get(f.key)
        elif f.key in values:
            result[f.key] = values[f.key]
    return result


class _FormFields(Mapping[str, Any]):
    """A submitted HTML form (a MultiDict) seen through the form's own keys: the CSRF token, the late reason
    and the buttons ride in the same body but are not form data."""

    def __init__(self, data: Any, keys: list[str]):
        self._data = data
        self._keys = [k for k in keys if k in data]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def getlist(self, key: str) -> list[Any]:
        return list(self._data.getlist(key)) if key in self._keys else []


def only_form_fields(form: FormDefinition | None, data: Any) -> Mapping[str, Any]:
    """The fields of `form` in a submitted HTML form (a MultiDict); nothing when there is no form."""
    return _FormFields(data, [f.key for f in form.fields] if form is not None else [])


def _compute_expressions(form: FormDefinition, context: dict[str, Any]) -> None:
    # In form order: a later expression may use an earlier one.
    for f in form.fields:
        if f.type == "expression" and f.expression:
            value = evaluate_feel(f.expression, context)
            if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
                value = None
            context[f.key] = value


def _get(data: Mapping[str, Any], f: Field) -> Any:
    if hasattr(data, "getlist"):  # a MultiDict from an HTML form
        values = data.getlist(f.key)
        if f.type == "checklist":  # one entry per ticked box
            return values if len(values) != 1 else values[0]
        if len(values) > 1:  # a one-value field sent twice: a tampered form, refused as a list (not the first wins)
            return values
    return data.get(f.key)


def _error_key(key: Any) -> str:
    text = key if isinstance(key, str) else repr(key)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[:100])
    return text


def _is_empty(f: Field, value: Any) -> bool:
    return value is None or value is False or value == []


def _check_rules(f: Field, value: Any, locale: str, *, partial: bool) -> list[str]:
    """The rules that apply to an already coerced value; every broken rule is reported."""
    if _is_empty(f, value):
        return [message("required", locale)] if f.required and not partial else []
    errs: list[str] = []
    if f.type in TEXT_TYPES:
        if f.min_length is not None and len(value) < f.min_length:
            errs.append(message("min_length", locale, n=f.min_length))
        if f.max_length is not None and len(value) > f.max_length:
            errs.append(message("max_length", locale, n=f.max_length))
        if f.pattern:
            try:
                if len(value) > (limit := jsregex.max_checked_chars(f.pattern)):
                    errs.append(message("pattern_too_long", locale, n=limit))
                elif not jsregex.matches(f.pattern, value):  # form-js: RegExp.test, i.e. a search
                    errs.append(message("pattern", locale))
            except jsregex.PatternError:  # only in a form stored before deploy checked patterns with RE2
                errs.append(message("pattern_unsupported", locale))
        if f.validation_type == "email" and not _EMAIL_RE.fullmatch(value):
            errs.append(message("email", locale))
        if f.validation_type == "phone" and not _is_phone(value):
            errs.append(message("phone", locale))
    if f.type == "number":
        number = Decimal(str(value))
        if f.min is not None and number < Decimal(str(f.min)):
            errs.append(message("min", locale, n=f.min))
        if f.max is not None and number > Decimal(str(f.max)):
            errs.append(message("max", locale, n=f.max))
        if f.increment is not None:
            try:
                with localcontext(Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])):
                    off = number % Decimal(str(f.increment))
            except ArithmeticError:
                off = Decimal(0)  # an absurd increment/value ratio: skip rather than guess
            if off != 0:
                errs.append(message("increment", locale, n=f.increment))
    return errs


_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
_PHONE_CHARS_RE = re.compile(r"\+?[0-9][0-9 ().-]*")


def _is_phone(value: str) -> bool:
    # Indonesian numbers as people write them: 0812-3456-7890, +62 812 3456 7890, (0751) 123456.
    if value.startswith("("):
        value = value[1:]
    if not _PHONE_CHARS_RE.fullmatch(value):
        return False
    digits = sum(ch.isdigit() for ch in value)
    return 6 <= digits <= 15


_TRUE = {"on", "true", "1", "yes", "ya"}
_FALSE = {"off", "false", "0", "no", "tidak", ""}


def _clean_value(f: Field, raw: Any, locale: str, tz: tzinfo, *, partial: bool) -> Any:
    """Coerce one submitted value to the field's type, or raise _Invalid (type errors only)."""
    if f.type in TEXT_TYPES:
        return _clean_text(raw, locale, multiline=True)
    if f.type == "number":
        text = _clean_text(raw, locale, multiline=False) if isinstance(raw, str) else raw
        if text is None:
            return None
        number = _parse_number(text, locale)
        digits = max(0, -number.normalize().as_tuple().exponent)  # type: ignore[operator]
        if f.decimal_digits is not None and digits > f.decimal_digits:
            if f.decimal_digits == 0:
                raise _Invalid("integer", locale)
            raise _Invalid("decimal_digits", locale, n=f.decimal_digits)
        return _to_number(number)
    if f.type == "checkbox":
        if raw is None or isinstance(raw, bool):
            return bool(raw)
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise _Invalid("boolean", locale)
    if f.type in ("select", "radio"):
        choice = _clean_choice(raw, locale)
        if choice is not None and choice not in {v for v, _ in f.options}:
            raise _Invalid("choice", locale)
        return choice
    if f.type == "checklist":
        items = raw if isinstance(raw, list | tuple) else [raw]
        if len(items) > MAX_CHOICES:
            raise _Invalid("too_many_choices", locale)
        chosen = {c for c in (_clean_choice(item, locale) for item in items) if c is not None}
        allowed = [v for v, _ in f.options]
        if chosen - set(allowed):
            raise _Invalid("choice", locale)
        return [v for v in allowed if v in chosen]  # form order, no duplicates
    if f.type == "datetime":
        return _clean_datetime(f, raw, locale, tz)
    raise _Invalid("unsupported_value", locale)  # pragma: no cover - expression/readonly never get here


def _clean_text(raw: Any, locale: str, *, multiline: bool) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = str(raw)  # a JSON client sending a NIP or a year as a number
    if not isinstance(raw, str):
        raise _Invalid("text", locale)
    if len(raw) > 4 * MAX_STRING_CHARS:  # don't even scan megabytes
        raise _Invalid("too_long", locale, n=MAX_STRING_CHARS)
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _has_control_chars(text, allow_newlines=multiline):
        raise _Invalid("control_chars", locale)
    if "\ufffd" in text:  # what a server's decoder leaves of bytes that were not UTF-8
        raise _Invalid("encoding", locale)
    if len(text) > MAX_STRING_CHARS:
        raise _Invalid("too_long", locale, n=MAX_STRING_CHARS)
    return text or None


def text_problem(text: str, max_chars: int, *, multiline: bool = True, locale: str = "id") -> str | None:
    """Why free text outside a form (a comment, a reason, a business key) cannot be stored, or None: too long,
    control characters (NUL, ESC, ...; newlines only when `multiline`), lone surrogates, or U+FFFD."""
    if len(text) > max_chars:
        return message("max_length", locale, n=max_chars)
    if _has_control_chars(text, allow_newlines=multiline, allow_cr=multiline):
        return message("control_chars", locale)
    if "\ufffd" in text:
        return message("encoding", locale)
    return None


def _has_control_chars(text: str, *, allow_newlines: bool = True, allow_cr: bool = False) -> bool:
    allowed = {"\n", "\t"} if allow_newlines else set()
    if allow_cr:
        allowed.add("\r")
    # Cc = C0/C1 controls (NUL, ESC, ...); Cs = lone surrogates, which no database can store as UTF-8.
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed for ch in text)


def _clean_choice(raw: Any, locale: str) -> str | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _Invalid("choice", locale)
    if len(raw) > MAX_STRING_CHARS:
        raise _Invalid("choice", locale)
    return raw.strip() or None


_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def _parse_number(value: Any, locale: str = "id") -> Decimal:
    """A Decimal from an int, float or string; refuses bools, NaN/inf, commas and |x| > MAX_NUMBER."""
    if isinstance(value, bool):
        raise _Invalid("number", locale)
    if isinstance(value, int):
        number = Decimal(value) if -MAX_NUMBER <= value <= MAX_NUMBER else None
        if number is None:
            raise _Invalid("number_too_large", locale)
        return number
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _Invalid("number", locale)
        number = Decimal(repr(value))
    elif isinstance(value, str):
        # Only the dot: HTML number inputs always send it, and "1.000" vs "1,000" is ambiguous anyway.
        text = value.strip()
        if len(text) > 100 or not _NUMBER_RE.fullmatch(text):
            raise _Invalid("number", locale)
        number = Decimal(text)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise _Invalid("number", locale)
        number = value
    else:
        raise _Invalid("number", locale)
    if abs(number) > MAX_NUMBER:
        raise _Invalid("number_too_large", locale)
    return number


def _to_number(number: Decimal) -> int | float:
    if number == number.to_integral_value():
        return int(number)
    return float(number)


_DMY_RE = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})")  # Camunda formData's dd/MM/yyyy


def _clean_datetime(f: Field, raw: Any, locale: str, tz: tzinfo) -> str | None:
    subtype = f.subtype or "date"
    fmt = f.time_format or "utc_offset"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str) and (len(raw) > 100 or _has_control_chars(raw)):
        raise _Invalid(subtype, locale)
    try:
        if subtype == "date":
            if isinstance(raw, datetime):
                return check_day(raw.date()).isoformat()
            if isinstance(raw, date):
                return check_day(raw).isoformat()
            if not isinstance(raw, str):
                raise ValueError
            text = raw.strip()
            m = _DMY_RE.fullmatch(text)
            if m:
                return check_day(date(int(m[3]), int(m[2]), int(m[1]))).isoformat()
            return check_day(date.fromisoformat(text[:10] if len(text) > 10 and text[10] in "T " else text)).isoformat()
        if subtype == "time":
            if isinstance(raw, time):
                t = raw
            elif isinstance(raw, str):
                text = raw.strip()
                t = time.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            else:
                raise ValueError
            return _format_time(t, fmt, tz)
        if isinstance(raw, datetime):
            dt = raw
        elif isinstance(raw, str):
            text = raw.strip()
            if len(text) < 16:  # a date alone is not a date-time
                raise ValueError
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        else:
            raise ValueError
        return _format_datetime(check_moment(dt), fmt, tz)
    except OutOfWindow:  # a deadline or a working-time count from it would span millennia
        raise _Invalid("date_range", locale, first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat()) from None
    except (ValueError, OverflowError, TypeError):
        raise _Invalid(subtype, locale) from None


def _format_datetime(dt: datetime, fmt: str, tz: tzinfo) -> str:
    dt = dt.replace(microsecond=0)
    if fmt == "no_timezone":
        if dt.tzinfo is not None:
            dt = dt.astimezone(tz)
        return dt.replace(tzinfo=None).isoformat()
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)  # typed by a user in the unit's local time
    if fmt == "utc_normalized":
        return dt.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    return dt.isoformat()


def _format_time(t: time, fmt: str, tz: tzinfo) -> str:
    # A time has no date: apply the zone's offset as of today (Indonesia has no DST).
    today = datetime.now(tz).date()
    dt = datetime.combine(today, t)
    text = _format_datetime(dt, fmt, tz)
    return text.split("T", 1)[1]


# --------------------------------------------------------------------------------------------------
# Form-less submissions (REST variables for a task without a form): bounded JSON-like data


def _validate_free(data: Any, locale: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise FormValidationError({FORM_ERROR_KEY: [message("not_mapping", locale)]})
    if len(data) > MAX_FREE_KEYS:
        raise FormValidationError({FORM_ERROR_KEY: [message("too_many_keys", locale, n=MAX_FREE_KEYS)]})
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    budget = [MAX_FREE_NODES]
    for key, value in data.items():
        if not _is_free_key(key):
            errors.setdefault(_error_key(key), []).append(message("bad_key", locale))
            continue
        try:
            result[key] = _clean_free(value, 1, budget, locale)
        except _Invalid as exc:
            errors.setdefault(key, []).append(exc.text)
    if errors:
        raise FormValidationError(errors)
    return result


def _clean_free(value: Any, depth: int, budget: list[int], locale: str) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Invalid("too_big", locale)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        if isinstance(value, int) and abs(value) < 2**63:
            return value
        if isinstance(value, float) and value == value and abs(value) != float("inf"):
            return value
        if isinstance(value, Decimal) and value.is_finite() and abs(value) <= MAX_NUMBER:
            return _to_number(value)
        raise _Invalid("number", locale)
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise _Invalid("too_long", locale, n=MAX_STRING_CHARS)
        if _has_control_chars(value, allow_cr=True):
            raise _Invalid("control_chars", locale)
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()  # date objects fail in SpiffWorkflow's serializer later
    if isinstance(value, list | tuple | Mapping):
        if depth >= MAX_FREE_DEPTH:
            raise _Invalid("too_deep", locale, n=MAX_FREE_DEPTH)
        if isinstance(value, Mapping):
            out = {}
            for k, v in value.items():
                if not _is_free_key(k):
                    raise _Invalid("bad_key", locale)
                out[k] = _clean_free(v, depth + 1, budget, locale)
            return out
        return [_clean_free(v, depth + 1, budget, locale) for v in _bounded(value, budget, locale)]
    raise _Invalid("unsupported_value", locale)


def _is_free_key(key: Any) -> bool:
    return (isinstance(key, str) and bool(key.strip()) and len(key) <= 200
            and not _has_control_chars(key, allow_newlines=False))


def _bounded(items: Iterable[Any], budget: list[int], locale: str) -> Iterable[Any]:
    for item in items:
        if budget[0] <= 0:
            raise _Invalid("too_big", locale)
        yield item
