"""Property tests of the form validator (engine/forms.validate_submission) with random forms, not only the two
fixture forms of tests/test_forms.py: random fields (every value type, random required/length/pattern/email/phone/
number bounds/decimals/increment/options rules) get random submissions, as typed JSON and as an HTML form's
MultiDict (keys repeated). The validator raises nothing but FormValidationError, and whatever it accepts
satisfies every rule of the form."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from engine.errors import FormValidationError
from engine.forms import MAX_NUMBER, MAX_STRING_CHARS, Field, FormDefinition, validate_submission

PATTERNS = [None, r"^[A-Z]{2}-[0-9]{3}$", r"[0-9]", r"^\d{18}$", r"^[a-z ]*$"]
KEYS = ["nama", "nip", "jumlah", "nilai", "sifat", "jenis", "setuju", "tembusan", "tanggal", "jam", "catatan",
        "email", "telepon", "kode"]
OPTIONS = ["biasa", "segera", "rahasia", "1", "Ya", "tidak"]
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@st.composite
def fields(draw: st.DrawFn, key: str) -> Field:
    ftype = draw(st.sampled_from(["textfield", "textarea", "number", "select", "radio", "checkbox", "checklist",
                                  "datetime"]))
    common: dict[str, Any] = {"key": key, "type": ftype, "required": draw(st.booleans())}
    if ftype in ("textfield", "textarea"):
        lo = draw(st.one_of(st.none(), st.integers(0, 6)))
        hi = draw(st.one_of(st.none(), st.integers(lo or 0, 20)))
        common.update(min_length=lo, max_length=hi, pattern=draw(st.sampled_from(PATTERNS)),
                      validation_type=draw(st.sampled_from([None, None, "email", "phone"])))
    elif ftype == "number":
        lo = draw(st.one_of(st.none(), st.integers(-100, 100), st.floats(-100, 100, allow_nan=False)))
        hi = draw(st.one_of(st.none(), st.integers(-100, 1000)))
        common.update(min=lo, max=hi, decimal_digits=draw(st.sampled_from([None, 0, 2])),
                      increment=draw(st.sampled_from([None, 1, 5, 0.5, 0.25])))
    elif ftype in ("select", "radio", "checklist"):
        values = draw(st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=4, unique=True))
        common["options"] = tuple((v, v.title()) for v in values)
    elif ftype == "datetime":
        common.update(subtype=draw(st.sampled_from(["date", "time", "datetime"])),
                      time_format=draw(st.sampled_from([None, "utc_offset", "utc_normalized", "no_timezone"])))
    return Field(**common)


@st.composite
def forms(draw: st.DrawFn) -> FormDefinition:
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True))
    return FormDefinition(id="Form_fuzz", file_name="fuzz.form", components=(),
                          fields=tuple(draw(fields(k)) for k in keys))


_junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.binary(max_size=5), st.decimals(allow_nan=True), st.dates(), st.datetimes(), st.times(),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["\x00", "\ud800", "\ufffd", "x" * (MAX_STRING_CHARS + 1), " ", "\u200b", "١٢", "1e999",
                     "NaN", "-0", "0.1", "1.005", "+5", ".5", "5.", "AB-123", "a@b.co", "0812-3456-7890",
                     "2026-11-23", "23/11/2026", "2026-11-23T10:00", "2026-11-23T10:00:00Z", "10:00", "25:61",
                     "on", "true", "ya", "tidak", "biasa", "rahasia", "Ya"]),
)


def _targeted(f: Field) -> st.SearchStrategy[Any]:
    """Values near what the field takes, so that accepted submissions are common, not rare."""
    if f.type in ("textfield", "textarea"):
        return st.one_of(st.text(alphabet="abcAZ-09 @.\n\t", max_size=22), st.from_regex(r"[A-Z]{2}-[0-9]{3}"),
                         st.from_regex(r"\d{18}"), st.emails(), st.from_regex(r"\+62 8\d{2} \d{4} \d{3,4}"))
    if f.type == "number":
        return st.one_of(st.integers(-200, 1200), st.floats(-200, 1200), st.decimals(-200, 1200, places=3),
                         st.integers(-200, 1200).map(str), st.decimals(-200, 1200, places=2).map(str))
    if f.type in ("select", "radio"):
        return st.sampled_from([v for v, _ in f.options] + [""])
    if f.type == "checklist":
        return st.lists(st.sampled_from([v for v, _ in f.options]), max_size=4)
    if f.type == "checkbox":
        return st.sampled_from([True, False, "on", "true", "false", "", 1, 0])
    return st.one_of(st.dates().map(date.isoformat), st.times().map(lambda t: t.isoformat(timespec="minutes")),
                     st.datetimes().map(lambda d: d.isoformat(timespec="minutes")))


def _valid(f: Field) -> st.SearchStrategy[Any]:
    """Values meant to pass every rule of `f` (the validator may still find one that does not)."""
    if f.type in ("textfield", "textarea"):
        lo, hi = f.min_length or 1, f.max_length if f.max_length is not None else 30
        if f.pattern:
            base: st.SearchStrategy[str] = st.from_regex(f.pattern.strip("^$"), fullmatch=True)
        elif f.validation_type == "email":
            base = st.from_regex(r"[a-z]{1,5}@[a-z]{1,5}\.go\.id", fullmatch=True)
        elif f.validation_type == "phone":
            base = st.from_regex(r"08[0-9]{2}-[0-9]{4}-[0-9]{3,4}", fullmatch=True)
        else:
            base = st.text(alphabet="abcdefgh XYZ", min_size=lo, max_size=max(lo, hi))
        return base
    if f.type == "number":
        lo = int(f.min) + 1 if f.min is not None else -100
        hi = int(f.max) if f.max is not None else 1000
        step = int(f.increment) if f.increment and float(f.increment).is_integer() else 1
        return st.integers(lo, max(lo, hi)).map(lambda n: n - n % step).map(str)
    if f.type in ("select", "radio"):
        return st.sampled_from([v for v, _ in f.options])
    if f.type == "checklist":
        return st.lists(st.sampled_from([v for v, _ in f.options]), min_size=1, max_size=3)
    if f.type == "checkbox":
        return st.just("on")
    if f.subtype == "time":
        return st.times().map(lambda t: t.isoformat(timespec="minutes"))
    if f.subtype == "datetime":
        return st.datetimes(min_value=datetime(1900, 1, 2)).map(lambda d: d.isoformat(timespec="minutes"))
    return st.dates().map(date.isoformat)


@st.composite
def submissions(draw: st.DrawFn, form: FormDefinition) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in form.fields:
        choice = draw(st.integers(0, 19))
        if choice == 0:
            continue  # missing
        data[f.key] = draw(_junk) if choice == 1 else draw(_targeted(f)) if choice < 8 else draw(_valid(f))
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(max_size=6))] = draw(_junk)  # an unknown key
    return data


def _check_accepted(form: FormDefinition, out: dict[str, Any]) -> None:
    json.dumps(out, allow_nan=False)
    assert set(out) == {f.key for f in form.fields}
    for f in form.fields:
        v = out[f.key]
        empty = v is None or v is False or v == []
        assert not (f.required and empty), (f.key, v)
        if v is None:
            assert f.type not in ("checkbox", "checklist")
            continue
        if f.type in ("textfield", "textarea"):
            assert isinstance(v, str) and v == v.strip() and v and len(v) <= MAX_STRING_CHARS
            assert not any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in v), repr(v)
            assert "\ufffd" not in v
            assert f.min_length is None or len(v) >= f.min_length
            assert f.max_length is None or len(v) <= f.max_length
            assert f.pattern is None or re.search(f.pattern, v), (f.pattern, v)
            assert f.validation_type != "email" or _EMAIL_RE.fullmatch(v), v
            assert f.validation_type != "phone" or 6 <= sum(c.isdigit() for c in v) <= 15, v
        elif f.type == "number":
            assert isinstance(v, int | float) and not isinstance(v, bool)
            number = Decimal(str(v))
            assert number.is_finite() and abs(number) <= MAX_NUMBER
            assert f.min is None or number >= Decimal(str(f.min)), (f.min, v)
            assert f.max is None or number <= Decimal(str(f.max)), (f.max, v)
            if f.decimal_digits is not None:
                assert max(0, -number.normalize().as_tuple().exponent) <= f.decimal_digits, (f.decimal_digits, v)  # type: ignore[operator]
            assert f.increment is None or number % Decimal(str(f.increment)) == 0, (f.increment, v)
        elif f.type in ("select", "radio"):
            assert v in {o for o, _ in f.options}
        elif f.type == "checklist":
            allowed = [o for o, _ in f.options]
            assert isinstance(v, list) and v == [o for o in allowed if o in v] and len(set(v)) == len(v)
        elif f.type == "checkbox":
            assert isinstance(v, bool)
        else:
            assert isinstance(v, str)
            if f.subtype in (None, "date"):
                date.fromisoformat(v)
            elif f.subtype == "time":
                time.fromisoformat(v.removesuffix("Z"))
            else:
                datetime.fromisoformat(v.removesuffix("Z"))


def _validate(form: FormDefinition, data: Any) -> dict[str, Any] | None:
    try:
        return validate_submission(form, data)
    except FormValidationError as exc:
        assert exc.errors and all(isinstance(k, str) and isinstance(m, list) and m and all(isinstance(x, str)
                                                                                        for x in m)
                                  for k, m in exc.errors.items())
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_forms_accept_only_what_their_rules_allow(data: st.DataObject) -> None:
    form = data.draw(forms())
    out = _validate(form, data.draw(submissions(form)))
    event("accepted" if out is not None else "refused")
    if out is not None:
        _check_accepted(form, out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_html_form_submissions_with_repeated_keys(data: st.DataObject) -> None:
    """What a browser (or a tampered request) sends: strings only, any key any number of times."""
    form = data.draw(forms())
    keys = [f.key for f in form.fields] + ["csrf_token", "x"]
    text = st.one_of(st.text(max_size=25), st.sampled_from(["", "on", "biasa", "5", "2026-11-23", "10:00",
                                                            "AB-123", "a@b.co"]))
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(keys), text), max_size=12))
    out = _validate(form, MultiDict(pairs))
    event("accepted" if out is not None else "refused")
    if out is not None:
        _check_accepted(form, out)
        for f in form.fields:  # a one-value field sent twice is never silently cut to the first value
            if f.type != "checklist" and sum(1 for k, _ in pairs if k == f.key) > 1:
                raise AssertionError(f"{f.key} sent twice was accepted as {out[f.key]!r}")
