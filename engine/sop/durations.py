"""Turn an SOP's "waktu" (mutu baku waktu) as written into an ISO 8601 duration for `camunda:dueDate`.

The seeds spell it many ways: "15 menit", "10 Menit", "2 Jam", "1 hari", "1 minggu", or a bare number when
the column header says "Waktu (menit)". Units are kept as written (60 menit → PT60M, not PT1H) so the BPMN
shows the SOP's own figure; the engine's working calendar interprets hari/minggu as working days/weeks.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# unit word (lower case) -> (ISO designator, is a time-part unit, minutes per unit for fractional values)
_UNITS: dict[str, tuple[str, bool, int | None]] = {
    "menit": ("M", True, 1),
    "mnt": ("M", True, 1),
    "min": ("M", True, 1),
    "jam": ("H", True, 60),
    "j": ("H", True, 60),
    "hari": ("D", False, None),
    "hr": ("D", False, None),
    "hari kerja": ("D", False, None),
    "minggu": ("W", False, None),
    "pekan": ("W", False, None),
    "bulan": ("M", False, None),
}

_WAKTU_RE = re.compile(r"^\s*(?P<num>\d+(?:[.,]\d+)?)\s*(?P<unit>[a-z]+(?:\s+kerja)?)?\.?\s*$")


class WaktuError(ValueError):
    """The waktu text is not a duration Alur understands."""


def parse_waktu(waktu: str | int | float | None, default_unit: str | None = None) -> str:
    """Return the ISO 8601 duration for `waktu` ("15 menit" → "PT15M", "2 hari" → "P2D").

    `default_unit` applies to a bare number (e.g. "menit" when the column header reads "Waktu (menit)").
    Fractions are accepted for minutes/hours only ("1,5 jam" → "PT90M"): a fraction of a working day
    has no fixed length.
    """
    if waktu is None or (isinstance(waktu, str) and not waktu.strip()):
        raise WaktuError("waktu is empty")
    if isinstance(waktu, bool):
        raise WaktuError(f"waktu {waktu!r} is not a duration")
    text = str(waktu).strip().lower()
    match = _WAKTU_RE.match(text)
    if not match:
        raise WaktuError(f"cannot read waktu {waktu!r}; write e.g. '15 menit', '3 jam', '2 hari', '1 minggu'")
    unit_word = match.group("unit") or (default_unit or "").strip().lower()
    if not unit_word:
        raise WaktuError(f"waktu {waktu!r} has no unit (and the source sets no waktu_satuan)")
    if unit_word not in _UNITS:
        raise WaktuError(f"unknown unit {unit_word!r} in waktu {waktu!r}; use menit, jam, hari or minggu")
    designator, is_time, minutes_per_unit = _UNITS[unit_word]
    try:
        amount = Decimal(match.group("num").replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees digits
        raise WaktuError(f"cannot read the number in waktu {waktu!r}") from exc
    if amount <= 0:
        raise WaktuError(f"waktu {waktu!r} must be more than zero")
    if amount != amount.to_integral_value():
        if minutes_per_unit is None:
            raise WaktuError(f"waktu {waktu!r}: fractions are only allowed for menit and jam")
        minutes = amount * minutes_per_unit
        if minutes != minutes.to_integral_value():
            raise WaktuError(f"waktu {waktu!r} is not a whole number of minutes")
        return f"PT{int(minutes)}M"
    number = int(amount)
    return f"PT{number}{designator}" if is_time else f"P{number}{designator}"
