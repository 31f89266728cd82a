"""Helpers every resource module uses: Camunda's date format, paging and boolean query parameters,
and the actor of the request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import current_app, g, request

from engine.accounts import Actor
from engine.moments import OutOfWindow, check_moment
from engine.service import Alur
from web.rest.errors import bad_request

MAX_RESULTS_LIMIT = 1000
# yyyy-MM-dd'T'HH:mm:ss.SSSZ, e.g. 2026-11-23T09:00:00.000+0700; ISO 8601 (with ':' in the offset, or Z) too.
_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?$")


def service() -> Alur:
    return current_app.extensions["alur"]  # type: ignore[no-any-return]


def actor() -> Actor:
    return g.rest_actor  # type: ignore[no-any-return]


def format_date(value: datetime | None) -> str | None:
    """Camunda's `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, in UTC (`+0000`)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_date(text: str, what: str = "date") -> datetime:
    """A Camunda date (or ISO 8601). Without an offset it is read as UTC."""
    if isinstance(text, str) and re.search(r" \d{2}:?\d{2}$", text):
        text = text[:-5] + text[-5:].replace(" ", "+")  # an unencoded '+' in a query string arrives as ' '
        text = text[:-6] + text[-6:].replace(" ", "+")
    m = _DATE_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise bad_request(f"Cannot convert value '{text}' to java type java.util.Date ({what}): "
                          "use yyyy-MM-dd'T'HH:mm:ss.SSSZ")
    day, hh, mm, ss, frac, offset = m.groups()
    try:
        base = datetime.strptime(f"{day} {hh}:{mm}:{ss or '00'}", "%Y-%m-%d %H:%M:%S")
        micro = int((frac or "0").ljust(6, "0")[:6])
        tz = UTC
        if offset and offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            if delta >= timedelta(hours=24):
                raise ValueError(offset)
            tz = timezone(sign * delta)
        # Checked before the conversion to UTC, which overflows at year 1 and 9999.
        return check_moment(base.replace(microsecond=micro, tzinfo=tz), "").astimezone(UTC)
    except OutOfWindow as exc:
        raise bad_request(f"Cannot set {what} to value '{text}': {exc}") from exc
    except ValueError as exc:
        raise bad_request(f"Cannot convert value '{text}' to java type java.util.Date ({what})") from exc


def arg_date(name: str) -> datetime | None:
    value = request.args.get(name)
    return parse_date(value, name) if value else None


def arg_bool(name: str) -> bool | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request(f"Cannot set query parameter '{name}' to value '{value}': use true or false")


def body_bool(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"'{name}' must be true or false")


def arg_int(name: str, default: int) -> int:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise bad_request(f"Cannot set query parameter '{name}' to value '{value}'") from exc
    if number < 0 or number > 2**31 - 1:
        raise bad_request(f"Cannot set query parameter '{name}' to value '{value}'")
    return number


def paging() -> tuple[int, int]:
    """(firstResult, maxResults). Unbounded queries return at most MAX_RESULTS_LIMIT rows."""
    first = arg_int("firstResult", 0)
    limit = arg_int("maxResults", MAX_RESULTS_LIMIT)
    if limit > MAX_RESULTS_LIMIT:
        raise bad_request(f"Max results limit of {MAX_RESULTS_LIMIT} exceeded!")
    return first, limit


def sorting(allowed: dict[str, str], default: str) -> tuple[str, bool]:
    """(service order key, descending) from Camunda's sortBy/sortOrder."""
    sort_by = request.args.get("sortBy")
    sort_order = request.args.get("sortOrder")
    if sort_by is None and sort_order is None:
        return default, False
    if sort_by is None or sort_order is None:
        raise bad_request("Only a single sorting parameter specified. sortBy and sortOrder required")
    if sort_by not in allowed:
        raise bad_request(f"Cannot set query parameter 'sortBy' to value '{sort_by}'")
    if sort_order not in ("asc", "desc"):
        raise bad_request(f"Cannot set query parameter 'sortOrder' to value '{sort_order}'")
    return allowed[sort_by], sort_order == "desc"


def json_body() -> dict[str, Any]:
    """The JSON object sent, or {} for an empty body; anything else is a 400."""
    if not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # '[' * 100000: Python's JSON parser recurses per level
        raise bad_request("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise bad_request("the request body must be a JSON object")
    return data


def definition_version(definition_id: str) -> int | None:
    """Alur's definition ids are `key:version:deployment-prefix`."""
    parts = definition_id.rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
