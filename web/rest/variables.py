"""Camunda typed variables ⇄ Alur's plain process data.

In: `{"name": {"value": ..., "type": "String|Integer|Short|Long|Double|Boolean|Date|Json|Null|Object",
"valueInfo": {...}}}`; the type is case-insensitive and inferred from the JSON value when missing.
Dates (Camunda's `yyyy-MM-dd'T'HH:mm:ss.SSSZ` or ISO 8601) become ISO 8601 strings, because process
data holds only JSON values (a `datetime` would fail when the state is saved). `Json` (and `Object`
with `serializationDataFormat: application/json`) takes a JSON text or an already-parsed value.
Java-serialized objects, `Bytes` and `File` are refused: nothing here can run Java.

Out: values are typed by what they are: bool → Boolean, int → Integer (Long beyond 32 bits),
float → Double, str → String, None → Null, list/dict → Json (the value is JSON text, as Camunda does).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from engine.forms import KEY_RE, FormDefinition
from web.rest.common import format_date, parse_date
from web.rest.errors import bad_request

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
SHORT_MIN, SHORT_MAX = -(2**15), 2**15 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
MAX_VARIABLES = 200
MAX_JSON_TEXT = 256 * 1024
ALUR_UNIT_VARIABLE = "alurUnit"


def _fail(name: str, type_: str, value: Any, why: str = "") -> Exception:
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    suffix = f": {why}" if why else ""
    return bad_request(f"Cannot convert value {text} of variable '{name}' to type {type_}{suffix}")


def _infer(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if INT_MIN <= value <= INT_MAX else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "json"


def variable_from_rest(name: str, typed: Any) -> Any:
    """One typed variable to a plain JSON value."""
    if not isinstance(typed, dict):
        raise bad_request(f"variable '{name}' must be an object with 'value' and 'type'")
    value = typed.get("value")
    type_raw = typed.get("type")
    if type_raw is not None and not isinstance(type_raw, str):
        raise bad_request(f"variable '{name}': 'type' must be a string")
    kind = (type_raw or _infer(value)).lower()
    if value is None and kind not in ("json", "object"):
        return None
    if kind == "null":
        return None
    if kind == "string":
        if not isinstance(value, str):
            raise _fail(name, "String", value)
        return value
    if kind in ("integer", "short", "long"):
        low, high = {"integer": (INT_MIN, INT_MAX), "short": (SHORT_MIN, SHORT_MAX),
                     "long": (LONG_MIN, LONG_MAX)}[kind]
        number = value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            if len(value.strip()) > 40:  # beyond any Long; and int() refuses > 4,300 digits with a ValueError
                raise _fail(name, type_raw or kind.title(), value)
            number = int(value.strip())
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            raise _fail(name, type_raw or kind.title(), value)
        return number
    if kind == "double":
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError as exc:
                raise _fail(name, "Double", value) from exc
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise _fail(name, "Double", value)
        return float(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _fail(name, "Boolean", value)
    if kind == "date":
        if not isinstance(value, str):
            raise _fail(name, "Date", value)
        return parse_date(value, f"variable {name}").isoformat()
    if kind in ("json", "object"):
        if kind == "object":
            info = typed.get("valueInfo") or {}
            fmt = info.get("serializationDataFormat") if isinstance(info, dict) else None
            if fmt not in (None, "application/json"):
                raise _fail(name, "Object", value, "only serializationDataFormat application/json is accepted")
        if isinstance(value, str):
            if len(value) > MAX_JSON_TEXT:
                raise _fail(name, "Json", value, "too large")
            try:
                return json.loads(value)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise _fail(name, "Json", value, "not valid JSON") from exc
            except ValueError as exc:  # an integer of more than 4,300 digits (Python's int-string limit)
                raise _fail(name, "Json", value, "a number has too many digits") from exc
        return value
    raise bad_request(f"Unsupported value type '{type_raw}' for variable '{name}': use String, Integer, Short, "
                      "Long, Double, Boolean, Date, Json or Null")


def variables_from_rest(variables: Any) -> dict[str, Any]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise bad_request("'variables' must be an object of {name: {value, type}}")
    if len(variables) > MAX_VARIABLES:
        raise bad_request(f"at most {MAX_VARIABLES} variables")
    result: dict[str, Any] = {}
    for name, typed in variables.items():
        if not KEY_RE.fullmatch(name):
            raise bad_request(f"variable name {name[:80]!r}: use letters, digits and '_' (not starting with a digit)")
        result[name] = variable_from_rest(name, typed)
    return result


def fit_to_form(values: dict[str, Any], typed: dict[str, Any], form: FormDefinition | None) -> dict[str, Any]:
    """Date variables sent for a form's date or time field become what that field expects
    (`YYYY-MM-DD`, `HH:MM`): Camunda clients send every date as a full timestamp."""
    if form is None:
        return values
    by_key = {f.key: f for f in form.fields}
    out = dict(values)
    for name, value in values.items():
        field = by_key.get(name)
        spec = typed.get(name)
        if field is None or field.type != "datetime" or not isinstance(value, str) or not isinstance(spec, dict):
            continue
        if str(spec.get("type") or "").lower() != "date":
            continue
        from engine.forms import DEFAULT_TIMEZONE

        local = datetime.fromisoformat(value).astimezone(DEFAULT_TIMEZONE)
        if field.subtype == "date":
            out[name] = local.date().isoformat()
        elif field.subtype == "time":
            out[name] = local.strftime("%H:%M")
    return out


def variable_to_rest(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        return {"type": "Date", "value": format_date(value if value.tzinfo else value.replace(tzinfo=UTC)),
                "valueInfo": {}}
    kind = _infer(value)
    if kind == "json":
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = json.dumps(str(value))
        return {"type": "Json", "value": text, "valueInfo": {}}
    return {"type": kind.title(), "value": value, "valueInfo": {}}


def variables_to_rest(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(k): variable_to_rest(v) for k, v in data.items()}


FORM_FIELD_TYPES = {"textfield": "String", "textarea": "String", "select": "String", "radio": "String",
                    "number": "Double", "checkbox": "Boolean", "checklist": "Json", "datetime": "String",
                    "expression": "String"}


def form_variables(form: FormDefinition | None, names: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """GET /task/{id}/form-variables: each form field with its default value and Camunda type."""
    if form is None:
        return {}
    result: dict[str, dict[str, Any]] = {}
    for f in form.fields:
        if names and f.key not in names:
            continue
        type_ = FORM_FIELD_TYPES.get(f.type, "String")
        if f.type == "number" and f.decimal_digits == 0:
            type_ = "Long"
        value = f.default
        if type_ == "Json":
            value = json.dumps(value if value is not None else [], ensure_ascii=False)
        result[f.key] = {"type": type_, "value": value, "valueInfo": {"label": f.label, "required": f.required}}
    return result
