"""form-js `validate.pattern`: JavaScript syntax, matched by RE2 in linear time (engine/jsregex.py).

The evil patterns below take exponential time with Python's backtracking `re` (29 characters took 15 s): with
RE2 each 10,000-character value is checked at once. The timeout markers only guard against a hang.
The differential test runs the same patterns through node's own RegExp (what form-js uses in the browser)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import jsregex
from engine.db import Database
from engine.errors import DeployError, FormValidationError
from engine.forms import MAX_STRING_CHARS, Field, FormDefinition, load_form, validate_submission
from engine.service import Alur
from tests.test_service import SERVICE_DATA, counts, service_files

EVIL = [r"^(a+)+$", r"^(a|aa)+$", r"^(a|a?)+$", r"(a*)*b", r"^(([a-z])+.)+[A-Z]([a-z])+$", r"(x+x+)+y",
        r"^(\w+\s?)*$",
        r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
        r"(.*a){8}"]


def _form(pattern: str) -> FormDefinition:
    return FormDefinition("f", "f.form", (), (Field("kode", "textfield", pattern=pattern),))


def _errors(pattern: str, value: str) -> list[str]:
    try:
        validate_submission(_form(pattern), {"kode": value})
    except FormValidationError as exc:
        return exc.errors["kode"]
    return []


def _form_file(pattern: str) -> bytes:
    return json.dumps({"id": "Form_pola", "components": [
        {"type": "textfield", "key": "nomor_surat", "id": "Field_nomor", "validate": {"pattern": pattern}}]}).encode()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("pattern", EVIL)
def test_evil_patterns_on_10000_characters_finish(pattern: str) -> None:
    n = MAX_STRING_CHARS
    for value in ("a" * (n - 1) + "!", "x" * (n - 1) + "@", "aB" * (n // 2)):
        assert len(value) <= MAX_STRING_CHARS
        errors = _errors(pattern, value)
        assert errors in ([], ["format tidak sesuai"])
        assert (errors == []) == jsregex.matches(pattern, value)
    assert _errors(r"^(a+)+$", "a" * (MAX_STRING_CHARS - 1) + "!") == ["format tidak sesuai"]
    assert _errors(r"^(a+)+$", "a" * MAX_STRING_CHARS) == []


@pytest.mark.parametrize(("pattern", "value", "ok"), [
    # Each of these differs between Python's `re` and JavaScript; the JavaScript answer is the one kept.
    (r"^\d+$", "\u0661\u0662", False),  # \d is ASCII in JavaScript, any Unicode digit in Python
    (r"^[0-9]{3}$", "123\n", False),  # JavaScript's $ is the very end; Python's also matches before a final \n
    (r"^.$", "\r", False),  # . excludes every line terminator in JavaScript
    (r"^.$", "\u2028", False),
    (r"^a.b$", "a\u2029b", False),
    (r"^\s$", "\ufeff", True),  # JavaScript's \s includes the BOM; Python's does not
    (r"^a{,2}$", "a{,2}", True),  # not a quantifier in JavaScript: a literal
    (r"^a{,2}$", "aa", False),
    (r"[]a]", "a", False),  # an empty class, then "a]"
    (r"[]a]", "a]", False),
    (r"^[^]$", "\n", True),  # [^] is anything
    (r"^\a\e\q$", "aeq", True),  # identity escapes (Annex B); Python: \a is BEL, \q an error
    (r"^\x41\u0042$", "AB", True),
    (r"^\u{3}$", "uuu", True),  # without the u flag, \u{3} is "u" three times
    (r"^\cJ$", "\n", True),
    (r"^[\d-z]$", "-", True),  # a class escape cannot start a range: the - is literal
    (r"^[a\-z]$", "b", False),
    (r"^(?<tahun>\d{4})-(?:0[1-9]|1[0-2])$", "2024-12", True),  # named group, translated to (?P<...>)
    (r"^(?<tahun>\d{4})-(?:0[1-9]|1[0-2])$", "2024-13", False),
    (r"[A-Z]{2}", "nomor AB-1", True),  # form-js tests with RegExp.test: a search, not a full match
    (r"\bfoo\b", "a foo b", True),
    (r"^\uD83D\uDE00$", "\U0001F600", True),  # a surrogate pair escape is one character
])
def test_javascript_meaning_is_kept(pattern: str, value: str, ok: bool) -> None:
    assert jsregex.matches(pattern, value) is ok
    if value == value.strip() and "\r" not in value:  # the form strips text and refuses a bare CR
        assert (_errors(pattern, value) == []) is ok


@pytest.mark.parametrize(("pattern", "construct"), [
    (r"^(?=.*\d)[a-z0-9]+$", "lookahead (?=...)"),
    (r"^(?!admin)\w+$", "negative lookahead (?!...)"),
    (r"(?<=Rp)\d+", "lookbehind (?<=...)"),
    (r"(?<!-)\d+", "negative lookbehind (?<!...)"),
    (r"^(a)\1$", "backreference \\1"),
    (r"^(?<x>a)\k<x>$", "named backreference \\k"),
    (r"^\p{L}+$", "\\p"),
    (r"^\012$", "octal escape \\012"),
    ("^\U0001F600$", "outside the Basic Multilingual Plane"),
    (r"^[^\Sx]$", "\\S inside a negated class"),
])
def test_constructs_re2_cannot_do_are_refused_by_name(pattern: str, construct: str) -> None:
    with pytest.raises(jsregex.PatternError, match="uses .*" + re.escape(construct)):
        jsregex.compile_pattern(pattern)
    with pytest.raises(DeployError) as exc:
        load_form(_form_file(pattern), "pola.form")
    [problem] = exc.value.problems
    assert problem.element_id == "Field_nomor"
    for part in ("Form_pola", "nomor_surat", construct, repr(pattern)):
        assert part in problem.message, (part, problem.message)


@pytest.mark.parametrize(("pattern", "why"), [
    ("(?i)abc", "no JavaScript group"),  # Python and RE2 know inline flags; JavaScript does not
    ("[a-z", "no closing ]"),
    ("[z-a]", "a range starts after its end"),
    ("(?<a>x)(?<a>y)", "used twice"),
    ("a{1001}", "at most 1000"),
    ("(?:a{100}){100}", "at most 1000"),  # nested counts multiply
    ("a" * (jsregex.MAX_PATTERN_CHARS + 1), f"longer than {jsregex.MAX_PATTERN_CHARS} characters"),
    ("(?:[ab][ab]?){1000}z", "too complex to check quickly"),  # bounded RE2 program: bounded time per character
    ("[a-z]{0,999}[a-z]{0,999}[a-z]{0,999}z", "too complex to check quickly"),
])
def test_invalid_or_too_costly_patterns_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(jsregex.PatternError, match=re.escape(why)):
        jsregex.compile_pattern(pattern)


def test_accepted_patterns_stay_within_the_program_bound() -> None:
    for pattern in (r"^[A-Z]{2}-\d{3}$", r"^\d{18}$", r"^(\+62|0)8[1-9][0-9]{6,10}$", r"^[\w.-]+@[\w-]+\.go\.id$",
                    r"^\d{3}/[A-Z]{2,10}/[IVX]{1,4}/\d{4}$", *EVIL):
        assert jsregex.compile_pattern(pattern).programsize <= jsregex.MAX_PROGRAM_SIZE


@pytest.mark.parametrize(("pattern", "value"), [(r"^[A-Za-z .,'-]{3,100}$", "Budi Santoso, S.Sos"),
                                              (r"^(?:[a-z]{1,20} ?){1,20}$", "seksi pemerintahan")])
def test_realistic_patterns_with_large_counts_deploy(pattern: str, value: str) -> None:
    assert jsregex.compile_pattern(pattern).programsize <= jsregex.MAX_PROGRAM_SIZE
    assert _errors(pattern, value) == []
    assert _errors(pattern, value + "!") == ["format tidak sesuai"]


def test_a_value_beyond_the_check_budget_is_refused_with_the_limit_not_matched() -> None:
    pattern = r"^[A-Za-z .,'-]{3,100}$"  # a big program (the count unrolled): each character costs more
    limit = jsregex.max_checked_chars(pattern)
    assert limit == jsregex.CHECK_BUDGET // jsregex.compile_pattern(pattern).programsize < MAX_STRING_CHARS
    assert _errors(pattern, "x" * limit) == ["format tidak sesuai"]  # checked: longer than 100
    too_long = f"terlalu panjang untuk diperiksa formatnya: maksimal {limit} karakter"
    assert _errors(pattern, "x" * (limit + 1)) == [too_long]
    assert _errors(r"^\d+$", "1" * MAX_STRING_CHARS) == []  # a small program checks the longest value allowed


def test_a_max_length_the_pattern_cannot_check_is_refused_at_deploy() -> None:
    pattern = r"^[A-Za-z .,'-]{3,100}$"
    limit = jsregex.max_checked_chars(pattern)
    for max_length, refused in ((limit, False), (limit + 1, True)):
        data = json.dumps({"id": "Form_pola", "components": [{
            "type": "textfield", "key": "uraian", "id": "Field_uraian",
            "validate": {"pattern": pattern, "maxLength": max_length}}]}).encode()
        if refused:
            with pytest.raises(DeployError, match=r"maxLength .*at most \d+ characters.*field 'uraian'"):
                load_form(data, "pola.form")
        else:
            load_form(data, "pola.form")


def test_a_form_stored_before_re2_refuses_values_clearly_instead_of_breaking() -> None:
    data = _form_file(r"^(?=.*\d).+$")
    with pytest.raises(DeployError):
        load_form(data, "pola.form")
    form = load_form(data, "pola.form", stored=True)  # what the service does with an already stored form row
    with pytest.raises(FormValidationError) as exc:
        validate_submission(form, {"nomor_surat": "abc1"})
    assert exc.value.errors["nomor_surat"] == ["aturan format di formulir ini tidak dapat diperiksa; minta "
                                               "perancang proses memperbaikinya"]
    assert validate_submission(form, {}) == {"nomor_surat": None}  # an empty optional field is still fine


@pytest.mark.parametrize(("pattern", "construct"), [(r"^(?=.*[0-9]).{8,}$", "lookahead"),
                                                    (r"^(\d)\1$", "backreference \\1")])
def test_deploy_refuses_the_pattern_naming_form_field_and_construct(svc: Alur, db: Database, pattern: str,
                                                                   construct: str) -> None:
    before = counts(db)
    form = json.loads((SERVICE_DATA / "laporan.form").read_text())
    form["components"][0]["validate"]["pattern"] = pattern
    with pytest.raises(DeployError) as exc:
        svc.deploy({**service_files(), "laporan.form": json.dumps(form).encode()})
    [problem] = exc.value.problems
    assert problem.file == "laporan.form"
    assert "'Form_laporan'" in problem.message and "field 'judul'" in problem.message
    assert construct in problem.message and "linear time" in problem.message
    assert counts(db) == before


@pytest.fixture
def svc(db: Database, clock: Any) -> Alur:
    service = Alur(db, clock=clock)
    service.deploy(service_files())
    return service


# ---------------------------------------------------------------------------------------------------------------
# Differential: the translated pattern answers like JavaScript's own RegExp (node), on fixed and random cases.

_NODE_TEST = """
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(cases.map(([p, vals]) => {
  let r; try { r = new RegExp(p); } catch (e) { return null; }
  return vals.map(v => r.test(v));
})));
"""
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def _javascript(cases: list[tuple[str, list[str]]]) -> list[list[bool] | None]:
    proc = subprocess.run(["node", "-e", _NODE_TEST], input=json.dumps(cases), capture_output=True, text=True,
                          check=True, timeout=60)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _ours(pattern: str, values: list[str]) -> list[bool] | None:
    try:
        return [jsregex.matches(pattern, v) for v in values]
    except jsregex.PatternError:
        return None


VALUES = ["", "a", "aa", "ab", "AB-123", "x y", "a\nb", "1\u00a02", "\r", "\u2028", "_", "-", "{", "]", "a{2}",
          "\u0661", "é", "uu", "k", "p{L}", "A1b2", "\t", "\ufeff", "2024-12-31", "a-z"]
FIXED = [r"^[A-Z]{2}-[0-9]{3}$", r"^\d+$", r"^\w+$", r"^\s$", r"^\S+$", r"^[\s\d]+$", r"^[x\S]+$", r"^.$", r"^[]$",
         r"^[^]$", r"[]a]", r"^a{2}$", r"^a{,2}$", r"^{abc}$", r"^a}$", r"^\a\e\/\-\q$", r"^\x41\u0042\x4$",
         r"^\u{2}$", r"^\cJ$", r"^\c1$", r"^[\c1]$", r"^\0$", r"^[\b]$", r"\bab\b", r"^[a\-z]+$", r"^[\d-z]+$",
         r"^[--/]+$", r"^(?<y>\d{4})-\d{2}-\d{2}$", r"a|b", r"^$", r"^a*?b+?$", r"^[^abc]$", r"^\W\D$", r"[.]",
         r"^[$^*+?()[{}|]+$", r"^\B.\B$", r"[\u00e9\u0661]", r"^[\s\S]*$"]


@needs_node
def test_fixed_patterns_answer_like_javascript() -> None:
    cases = [(p, VALUES) for p in FIXED]
    for (pattern, _), expected in zip(cases, _javascript(cases), strict=True):
        assert expected is not None, pattern
        assert _ours(pattern, VALUES) == expected, pattern


_PIECES = ["a", "b", "-", ".", "\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\b", "\\-", "\\{", "{", "}", "]",
           "[ab]", "[^a]", "[a-z]", "[\\d-]", "[\\s]", "[]", "[^]", "(", ")", "(?:", "(?<g>", "|", "*", "+", "?",
           "{2}", "{1,3}", "{,2}", "^", "$", "\\x41", "\\u00e9", "\\t", "\\n", "\\cA", "\\0", "\\/", "\\q"]
_CHARS = "ab-A_ \n\t{}]\u00e9\u00a0\u2028\r1"


@needs_node
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=8).map("".join),
                          st.lists(st.text(_CHARS, max_size=8), min_size=1, max_size=6)),
                min_size=20, max_size=20))
def test_random_patterns_answer_like_javascript(cases: list[tuple[str, list[str]]]) -> None:
    for (pattern, values), expected in zip(cases, _javascript(cases), strict=True):
        ours = _ours(pattern, values)
        if expected is None:
            continue  # a JavaScript syntax error: form-js would break on it as well; RE2 may still refuse it
        if ours is None:  # JavaScript takes it and we refused: only for one of the cost bounds
            with pytest.raises(jsregex.PatternError) as exc:
                jsregex.compile_pattern(pattern)
            assert "at most 1000" in str(exc.value) or "too complex" in str(exc.value), (pattern, str(exc.value))
            continue
        assert ours == expected, (pattern, values)
