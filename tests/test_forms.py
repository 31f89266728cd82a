"""Task forms: loading .form files and camunda:formData, server-side validation, the FEEL subset."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from SpiffWorkflow.camunda.specs.user_task import EnumFormField, Form, FormField

from engine.errors import DeployError, FormValidationError
from engine.forms import (
    FORM_ERROR_KEY,
    MAX_FORM_BYTES,
    MAX_STRING_CHARS,
    FeelError,
    FormDefinition,
    evaluate_feel,
    form_from_spiff,
    load_form,
    message,
    messages,
    validate_submission,
)

DATA = Path(__file__).parent / "data" / "forms"


def _load(name: str) -> FormDefinition:
    return load_form((DATA / name).read_bytes(), name)


@pytest.fixture(scope="module")
def all_fields() -> FormDefinition:
    return _load("all_fields.form")


@pytest.fixture(scope="module")
def sakip() -> FormDefinition:
    return _load("sakip_capaian.form")


# A submission of all_fields.form that passes; tests break one value at a time.
GOOD: dict[str, Any] = {"nama": "Budi", "setuju": "on"}


def _errors(form: FormDefinition | None, data: Any, **kw: Any) -> dict[str, list[str]]:
    with pytest.raises(FormValidationError) as exc:
        validate_submission(form, data, **kw)
    return exc.value.errors


def _ok(form: FormDefinition, **changes: Any) -> dict[str, Any]:
    return validate_submission(form, {**GOOD, **changes})


def _bad(form: FormDefinition, key: str, value: Any) -> list[str]:
    errors = _errors(form, {**GOOD, key: value})
    assert list(errors) == [key], errors
    return errors[key]


# ---------------------------------------------------------------------------------------------- loading


def test_loads_modeler_form_tree_and_fields(sakip: FormDefinition) -> None:
    assert sakip.id == "Form_sakip_capaian"
    assert sakip.file_name == "sakip_capaian.form"
    assert [c.type for c in sakip.components][:5] == ["text", "number", "select", "textfield", "group"]
    assert "separator" not in [c.type for c in sakip.components]
    group = sakip.components[4]
    assert [c.key for c in group.components] == ["sasaran", "indikator", "satuan", "polaritas"]
    polaritas = sakip.field("polaritas")
    assert polaritas is not None
    assert polaritas.options[0] == ("naik", "Naik (makin tinggi makin baik)")
    assert polaritas.default == "naik" and polaritas.required
    tahun = sakip.field("tahun")
    assert tahun is not None and (tahun.min, tahun.max, tahun.decimal_digits) == (2000, 2100, 0)
    assert sakip.field("satuan").description == "misalnya %, dokumen, orang"  # type: ignore[union-attr]
    assert sakip.field("capaian").readonly  # type: ignore[union-attr]
    json.dumps(sakip.to_json())
    assert sakip.to_json()["fields"][0]["key"] == "tahun"


def test_all_fields_form_reads_every_attribute(all_fields: FormDefinition) -> None:
    f = all_fields.field
    assert f("nama").min_length == 3 and f("nama").max_length == 20  # type: ignore[union-attr]
    assert f("nilai").increment == 0.25 and f("nilai").decimal_digits == 2  # type: ignore[union-attr]
    assert f("waktu_rapat").subtype == "datetime"  # type: ignore[union-attr]
    assert f("nomor_register").readonly and f("nomor_register").default == "REG-001"  # type: ignore[union-attr]
    assert f("dinonaktifkan").readonly  # type: ignore[union-attr]
    assert f("alasan").hide == '=jenis != "keluar"'  # type: ignore[union-attr]
    assert f("arsip").default is False  # type: ignore[union-attr]


def test_every_deploy_problem_is_reported_with_location() -> None:
    with pytest.raises(DeployError) as exc:
        _load("bad_many_problems.form")
    text = "\n".join(str(p) for p in exc.value.problems)
    expected = [
        "form has no id",
        "[Field_nokey]: textfield component has no key",
        "[Field_a2]: key 'a' is used by more than one component",
        "[Field_file]: component type 'filepicker' is not supported",
        "[Field_rule]: validate rule 'customRule' is unknown",
        "[Field_pola]: validate.pattern '([a-z' is no valid regular expression",
        "[Field_pilih]: select has no values",
        "[Group_dalam]: groups inside groups are not supported",
        "[Field_hitung]: expression refers to 'tidak_ada'",
    ]
    for part in expected:
        assert part in text
    assert len(exc.value.problems) == len(expected)
    lines = {p.element_id: p.line for p in exc.value.problems}
    assert lines["Field_file"] == 6
    assert all(p.file == "bad_many_problems.form" for p in exc.value.problems)


def test_not_json_names_the_line() -> None:
    with pytest.raises(DeployError) as exc:
        _load("not_json.form")
    (problem,) = exc.value.problems
    assert problem.line == 1 and "not valid JSON" in problem.message


def _form_json(*components: dict[str, Any], **top: Any) -> bytes:
    doc = {"components": list(components), "type": "default", "id": "Form_t", "schemaVersion": 16,
           "executionPlatform": "Camunda Platform", "executionPlatformVersion": "7.24.0", **top}
    return json.dumps(doc).encode()


def _problems(*components: dict[str, Any], **top: Any) -> list[str]:
    with pytest.raises(DeployError) as exc:
        load_form(_form_json(*components, **top), "t.form")
    return [p.message for p in exc.value.problems]


@pytest.mark.parametrize("ctype", ["filepicker", "dynamiclist", "iframe", "html", "table", "button"])
def test_unsupported_component_types(ctype: str) -> None:
    assert _problems({"type": ctype, "id": "X", "key": "x"}) == [f"component type {ctype!r} is not supported"]


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        ({"type": "number", "key": "n", "validate": {"minLength": 2}}, "does not apply to a number"),
        ({"type": "textfield", "key": "t", "validate": {"min": 2}}, "does not apply to a textfield"),
        ({"type": "textfield", "key": "t", "validate": {"maxLength": "x"}}, "maxLength must be a whole number"),
        ({"type": "textfield", "key": "t", "validate": {"minLength": 5, "maxLength": 2}}, "greater than"),
        ({"type": "number", "key": "n", "validate": {"min": 5, "max": 2}}, "min is greater than"),
        ({"type": "number", "key": "n", "validate": {"min": "=x"}}, "expressions are not supported"),
        ({"type": "textfield", "key": "t", "validate": {"validationType": "url"}}, "validationType 'url'"),
        ({"type": "textfield", "key": "t", "validate": {"required": "yes"}}, "required must be true or false"),
        ({"type": "radio", "key": "r", "values": []}, "radio has no values"),
        ({"type": "checklist", "key": "c", "valuesKey": "opsi"}, "valuesKey"),
        ({"type": "select", "key": "s", "values": [{"label": "A", "value": "a"}, {"label": "B", "value": "a"}]},
         "listed twice"),
        ({"type": "number", "key": "n", "decimalDigits": -1}, "decimalDigits"),
        ({"type": "number", "key": "n", "increment": "0"}, "increment must be"),
        ({"type": "datetime", "key": "d", "subtype": "week"}, "subtype 'week'"),
        ({"type": "textfield", "key": "a.b"}, "must be a simple name"),
        ({"type": "textfield", "key": ""}, "has no key"),
        ({"type": "expression", "key": "e", "expression": "=1 +"}, "expression '=1 +'"),
        ({"type": "expression", "key": "e", "expression": "1 + 1"}, "must be a FEEL expression"),
        ({"type": "expression", "key": "e"}, "has no expression"),
        ({"type": "textfield", "key": "t", "conditional": {"hide": "=x >"}}, "conditional.hide"),
        ({"type": "number", "key": "n", "defaultValue": "abc"}, "defaultValue 'abc' is invalid"),
        ({"type": "group", "id": "G", "path": "alamat", "components": []}, "group 'path'"),
        ({"type": "textfield", "key": "t", "validate": "required"}, "'validate' must be an object"),
    ],
)
def test_component_deploy_problems(component: dict[str, Any], expected: str) -> None:
    problems = _problems(component)
    assert any(expected in p for p in problems), problems


def test_form_level_problems() -> None:
    assert _problems(id="")[0].startswith("form has no id")
    assert "no 'components' list" in _problems(components="x")[0]
    with pytest.raises(DeployError) as exc:
        load_form(b"[1, 2]", "t.form")
    assert "must be a JSON object" in str(exc.value)
    with pytest.raises(DeployError) as exc:
        load_form(b"\xff\xfe", "t.form")
    assert "UTF-8" in str(exc.value)
    with pytest.raises(DeployError) as exc:
        load_form(b"[" * 100_000, "t.form")
    assert "t.form" in str(exc.value)


def test_too_large_form_is_refused() -> None:
    big = _form_json({"type": "text", "text": "x" * MAX_FORM_BYTES})
    with pytest.raises(DeployError) as exc:
        load_form(big, "besar.form")
    assert "larger than" in str(exc.value)


def test_group_hide_is_inherited_by_children() -> None:
    form = load_form(_form_json(
        {"type": "checkbox", "key": "lain"},
        {"type": "group", "id": "G", "conditional": {"hide": "=not(lain)"}, "components": [
            {"type": "textfield", "key": "keterangan", "validate": {"required": True}},
        ]},
    ), "t.form")
    assert validate_submission(form, {}) == {"lain": False, "keterangan": None}
    assert _errors(form, {"lain": "on"}) == {"keterangan": ["wajib diisi"]}


# ---------------------------------------------------------------------------------------------- rules


def test_good_submission_shape(all_fields: FormDefinition) -> None:
    out = _ok(all_fields)
    assert out == {
        "nama": "Budi", "kode": None, "email": None, "telepon": None, "catatan": None, "jumlah": None,
        "nilai": None, "setuju": True, "arsip": False, "jenis": None, "sifat": None, "tembusan": [],
        "tanggal": None, "waktu_rapat": None, "waktu_utc": None, "jam": None, "alasan": None,
        "dua_kali": None,
    }
    json.dumps(out)


def test_required(all_fields: FormDefinition) -> None:
    errors = _errors(all_fields, {})
    assert errors == {"nama": ["wajib diisi"], "setuju": ["wajib diisi"]}
    assert _bad(all_fields, "nama", "   ") == ["wajib diisi"]
    assert _errors(all_fields, {}, locale="en") == {"nama": ["is required"], "setuju": ["is required"]}


def test_min_and_max_length(all_fields: FormDefinition) -> None:
    assert _bad(all_fields, "nama", "Bu") == ["minimal 3 karakter"]
    assert _bad(all_fields, "nama", "x" * 21) == ["maksimal 20 karakter"]
    assert _ok(all_fields, nama="  Ani  ")["nama"] == "Ani"  # stripped before counting
    assert _ok(all_fields, nama="x" * 20)["nama"] == "x" * 20


def test_pattern(all_fields: FormDefinition) -> None:
    assert _bad(all_fields, "kode", "ab-123") == ["format tidak sesuai"]
    assert _ok(all_fields, kode="AB-123")["kode"] == "AB-123"


def test_email(all_fields: FormDefinition) -> None:
    for bad in ("budi", "budi@", "budi@localhost", "bu di@x.go.id"):
        assert _bad(all_fields, "email", bad) == ["alamat email tidak valid"], bad
    assert _ok(all_fields, email="budi.s@pesisirselatankab.go.id")["email"] == "budi.s@pesisirselatankab.go.id"


def test_phone(all_fields: FormDefinition) -> None:
    for bad in ("telepon saya", "12", "0812-abc"):
        assert _bad(all_fields, "telepon", bad) == ["nomor telepon tidak valid"], bad
    for good in ("0812-3456-7890", "+62 812 3456 7890", "(0756) 21234"):
        assert _ok(all_fields, telepon=good)["telepon"] == good


def test_number_coercion(all_fields: FormDefinition) -> None:
    assert _ok(all_fields, jumlah="5")["jumlah"] == 5
    assert type(_ok(all_fields, jumlah="5")["jumlah"]) is int
    assert _ok(all_fields, jumlah=7)["jumlah"] == 7
    assert _ok(all_fields, nilai="2.50")["nilai"] == 2.5
    assert type(_ok(all_fields, nilai="2.25")["nilai"]) is float
    assert _ok(all_fields, nilai=Decimal("1.75"))["nilai"] == 1.75
    assert _ok(all_fields, jumlah="")["jumlah"] is None
    for bad in ("lima", "1,5", "1e", "nan", "inf", "\u0661\u0662", True, [1], {"a": 1}, float("nan")):
        assert _bad(all_fields, "jumlah", bad) == ["harus angka"], bad
    assert _bad(all_fields, "jumlah", "2.5") == ["harus bilangan bulat"]
    assert _bad(all_fields, "nilai", "1.125") == ["maksimal 2 angka di belakang koma"]
    assert _bad(all_fields, "jumlah", "1e20") == ["angka terlalu besar"]
    assert _bad(all_fields, "jumlah", 10**400) == ["angka terlalu besar"]


def test_number_min_max_and_increment(all_fields: FormDefinition) -> None:
    assert _bad(all_fields, "jumlah", "0") == ["minimal 1"]
    assert _bad(all_fields, "jumlah", 11) == ["maksimal 10"]
    assert _ok(all_fields, jumlah=1)["jumlah"] == 1
    assert _ok(all_fields, jumlah="10")["jumlah"] == 10
    assert _bad(all_fields, "nilai", "0.3") == ["harus kelipatan 0.25"]
    assert _ok(all_fields, nilai="0.75")["nilai"] == 0.75


def test_checkbox(all_fields: FormDefinition) -> None:
    for true in ("on", "true", "1", True, 1, "TRUE"):
        assert _ok(all_fields, arsip=true)["arsip"] is True
    for false in ("", "false", "0", "off", False, 0, None):
        assert _ok(all_fields, arsip=false)["arsip"] is False
    assert _bad(all_fields, "arsip", "mungkin") == ["harus ya atau tidak"]
    assert _bad(all_fields, "setuju", "false") == ["wajib diisi"]  # a required checkbox must be ticked


def test_select_and_radio(all_fields: FormDefinition) -> None:
    assert _bad(all_fields, "jenis", "lainnya") == ["pilihan tidak dikenal"]
    assert _bad(all_fields, "sifat", ["biasa"]) == ["pilihan tidak dikenal"]
    assert _ok(all_fields, sifat="segera")["sifat"] == "segera"
    assert _ok(all_fields, sifat="")["sifat"] is None


def test_checklist(all_fields: FormDefinition) -> None:
    assert _bad(all_fields, "tembusan", ["camat", "bupati"]) == ["pilihan tidak dikenal"]
    assert _bad(all_fields, "tembusan", [1.5]) == ["pilihan tidak dikenal"]
    assert _ok(all_fields, tembusan="camat")["tembusan"] == ["camat"]
    # form order, no duplicates
    assert _ok(all_fields, tembusan=["arsip", "camat", "arsip"])["tembusan"] == ["camat", "arsip"]
    assert _bad(all_fields, "tembusan", ["camat"] * 5000) == ["terlalu banyak pilihan"]


class _MultiDict(dict):
    """The bit of werkzeug's MultiDict the validator uses (engine never imports flask/werkzeug)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__()
        self.pairs = pairs
        for k, v in pairs:
            self.setdefault(k, v)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key]


def test_checklist_from_html_multidict(all_fields: FormDefinition) -> None:
    data = _MultiDict([("nama", "Budi"), ("setuju", "on"), ("tembusan", "sekcam"), ("tembusan", "camat")])
    assert validate_submission(all_fields, data)["tembusan"] == ["camat", "sekcam"]


def test_datetime(all_fields: FormDefinition) -> None:
    assert _ok(all_fields, tanggal="2025-03-31")["tanggal"] == "2025-03-31"
    assert _ok(all_fields, tanggal="31/03/2025")["tanggal"] == "2025-03-31"
    assert _ok(all_fields, tanggal=date(2025, 3, 31))["tanggal"] == "2025-03-31"
    assert _bad(all_fields, "tanggal", "2025-02-30") == ["tanggal tidak valid (format TTTT-BB-HH)"]
    assert _bad(all_fields, "tanggal", 20250331) == ["tanggal tidak valid (format TTTT-BB-HH)"]
    # naive input is the unit's local time (Asia/Jakarta by default)
    assert _ok(all_fields, waktu_rapat="2025-03-31T09:30")["waktu_rapat"] == "2025-03-31T09:30:00+07:00"
    assert _ok(all_fields, waktu_utc="2025-03-31T09:30")["waktu_utc"] == "2025-03-31T02:30:00Z"
    assert _ok(all_fields, waktu_utc="2025-03-31T02:30:00Z")["waktu_utc"] == "2025-03-31T02:30:00Z"
    assert _ok(all_fields, waktu_rapat=datetime(2025, 3, 31, 9, 30))["waktu_rapat"] == "2025-03-31T09:30:00+07:00"
    assert _bad(all_fields, "waktu_rapat", "2025-03-31") == ["tanggal dan waktu tidak valid"]
    assert _bad(all_fields, "waktu_rapat", "besok pagi") == ["tanggal dan waktu tidak valid"]
    assert _ok(all_fields, jam="14:05")["jam"] == "14:05:00"
    assert _bad(all_fields, "jam", "25:00") == ["waktu tidak valid (format JJ:MM)"]
    out = _ok(all_fields, tanggal=date(2025, 1, 2), waktu_rapat=datetime(2025, 1, 2, 8))
    assert all(isinstance(v, str) for v in (out["tanggal"], out["waktu_rapat"]))


def test_unknown_key(all_fields: FormDefinition) -> None:
    assert _errors(all_fields, {**GOOD, "hacker": 1}) == {"hacker": ["field tidak dikenal"]}
    assert _errors(all_fields, {**GOOD, 7: 1}) == {"7": ["field tidak dikenal"]}


def test_readonly_disabled_and_expression_values_are_never_taken(all_fields: FormDefinition) -> None:
    out = _ok(all_fields, nomor_register="REG-999", dinonaktifkan="x", jumlah=3, dua_kali=1000)
    assert "nomor_register" not in out and "dinonaktifkan" not in out
    assert out["dua_kali"] == 6


def test_control_characters(all_fields: FormDefinition) -> None:
    for bad in ("Bu\x00di", "Bu\x1bdi", "Bu\x7fdi", "Bu\x85di", "Bu\ud800di"):
        assert _bad(all_fields, "nama", bad) == ["mengandung karakter kontrol yang tidak diizinkan"], repr(bad)
    assert _ok(all_fields, catatan="baris 1\r\n\tbaris 2")["catatan"] == "baris 1\n\tbaris 2"


def test_oversize_strings(all_fields: FormDefinition) -> None:
    assert _ok(all_fields, catatan="x" * MAX_STRING_CHARS)["catatan"] == "x" * MAX_STRING_CHARS
    assert _bad(all_fields, "catatan", "x" * (MAX_STRING_CHARS + 1)) == ["terlalu panjang (maksimal 10000 karakter)"]
    assert _bad(all_fields, "catatan", "x" * 10**6) == ["terlalu panjang (maksimal 10000 karakter)"]
    assert _bad(all_fields, "catatan", b"bytes") == ["harus teks"]


def test_every_problem_is_reported_at_once(all_fields: FormDefinition) -> None:
    errors = _errors(all_fields, {"nama": "B", "jumlah": "x", "email": "y", "zzz": 1})
    assert errors == {
        "nama": ["minimal 3 karakter"], "email": ["alamat email tidak valid"], "jumlah": ["harus angka"],
        "setuju": ["wajib diisi"], "zzz": ["field tidak dikenal"],
    }


def test_several_rules_on_one_field() -> None:
    form = load_form(_form_json({"type": "textfield", "key": "k",
                                 "validate": {"minLength": 5, "pattern": "^[0-9]+$"}}), "t.form")
    assert _errors(form, {"k": "ab"}) == {"k": ["minimal 5 karakter", "format tidak sesuai"]}


def test_hidden_field_is_not_required_and_is_none(all_fields: FormDefinition) -> None:
    assert _ok(all_fields, jenis="masuk", alasan="diabaikan")["alasan"] is None
    assert _errors(all_fields, {**GOOD, "jenis": "keluar"}) == {"alasan": ["wajib diisi"]}
    assert _ok(all_fields, jenis="keluar", alasan="rusak")["alasan"] == "rusak"


def test_partial_submission(all_fields: FormDefinition) -> None:
    assert validate_submission(all_fields, {"catatan": "draf"}, partial=True) == {
        "catatan": "draf", "dua_kali": None}
    assert validate_submission(all_fields, {"nama": ""}, partial=True) == {"nama": None, "dua_kali": None}
    assert _errors(all_fields, {"jumlah": "x", "nope": 1}, partial=True) == {
        "jumlah": ["harus angka"], "nope": ["field tidak dikenal"]}


def test_not_a_mapping(all_fields: FormDefinition) -> None:
    assert _errors(all_fields, ["nama"]) == {FORM_ERROR_KEY: ["data harus berupa objek"]}  # type: ignore[arg-type]
    assert _errors(None, "x") == {FORM_ERROR_KEY: ["data harus berupa objek"]}  # type: ignore[arg-type]


def test_message_catalogue() -> None:
    id_, en = messages("id"), messages("en")
    assert id_.keys() == en.keys()
    assert id_["required"] == "wajib diisi" and en["required"] == "is required"
    assert message("min_length", "id", n=3) == "minimal 3 karakter"
    assert message("min_length", "en", n=3) == "must be at least 3 characters"
    assert message("required", "fr") == "wajib diisi"  # unknown locale: Indonesian


# ---------------------------------------------------------------------------------------------- no form


def test_form_less_submission_accepts_bounded_json() -> None:
    data = {"a": 1, "b": [1, "x", None, {"c": True}], "d": {"e": {"f": 1.5}}, "t": date(2025, 1, 2),
            "n": Decimal("2.50")}
    out = validate_submission(None, data)
    assert out == {"a": 1, "b": [1, "x", None, {"c": True}], "d": {"e": {"f": 1.5}}, "t": "2025-01-02",
                   "n": 2.5}
    json.dumps(out)


def test_form_less_submission_limits() -> None:
    assert FORM_ERROR_KEY in _errors(None, {f"k{i}": i for i in range(201)})
    assert _errors(None, {"a": "x" * 10_001}) == {"a": ["terlalu panjang (maksimal 10000 karakter)"]}
    assert _errors(None, {"a": [[[[[1]]]]]}) == {"a": ["data terlalu bertingkat (maksimal 5 tingkat)"]}
    assert validate_submission(None, {"a": [[[[1]]]]}) == {"a": [[[[1]]]]}
    assert _errors(None, {"a": "\x00"}) == {"a": ["mengandung karakter kontrol yang tidak diizinkan"]}
    assert _errors(None, {"a": {1, 2}}) == {"a": ["jenis nilai tidak didukung"]}
    assert _errors(None, {"a": float("inf")}) == {"a": ["harus angka"]}
    assert _errors(None, {"": 1, 3: 2}) == {"": ["nama field tidak valid"], "3": ["nama field tidak valid"]}
    assert _errors(None, {"a": list(range(20_000))}) == {"a": ["data terlalu besar"]}


# ---------------------------------------------------------------------------------------------- formData


def _spiff_form() -> Form:
    form = Form()
    form.key = "generated"
    nama = FormField("string")
    nama.id, nama.label, nama.default_value = "nama", "Nama", None
    nama.add_validation("required", None)
    nama.add_validation("minlength", "3")
    nama.add_validation("maxlength", "10")
    jumlah = FormField("long")
    jumlah.id, jumlah.label, jumlah.default_value = "jumlah", "Jumlah", "2"
    jumlah.add_validation("min", "1")
    jumlah.add_validation("max", "5")
    setuju = FormField("boolean")
    setuju.id, setuju.label, setuju.default_value = "setuju", "Setuju", "false"
    tanggal = FormField("date")
    tanggal.id, tanggal.label, tanggal.default_value = "tanggal", "Tanggal", "01/02/2025"
    sifat = EnumFormField()
    sifat.id, sifat.label, sifat.default_value = "sifat", "Sifat", "biasa"
    sifat.add_option("biasa", "Biasa")
    sifat.add_option("segera", "Segera")
    nomor = FormField("string")
    nomor.id, nomor.label, nomor.default_value = "nomor", "Nomor", "N-1"
    nomor.add_validation("readonly", None)
    for f in (nama, jumlah, setuju, tanggal, sifat, nomor):
        form.add_field(f)
    return form


def test_form_data_conversion() -> None:
    form = form_from_spiff(_spiff_form(), "p.bpmn", "Task_1")
    assert form.source == "formData" and form.id == "generated"
    assert [(f.key, f.type) for f in form.fields] == [
        ("nama", "textfield"), ("jumlah", "number"), ("setuju", "checkbox"), ("tanggal", "datetime"),
        ("sifat", "select"), ("nomor", "textfield")]
    assert form.field("jumlah").default == 2  # type: ignore[union-attr]
    assert form.field("setuju").default is False  # type: ignore[union-attr]
    assert form.field("tanggal").default == "2025-02-01"  # type: ignore[union-attr]
    assert form.field("nomor").readonly  # type: ignore[union-attr]
    json.dumps(form.to_json())


def test_form_data_validation() -> None:
    form = form_from_spiff(_spiff_form(), "p.bpmn", "Task_1")
    errors = _errors(form, {"nama": "ab", "jumlah": "2.5", "sifat": "kilat", "tanggal": "kemarin"})
    assert errors == {"nama": ["minimal 3 karakter"], "jumlah": ["harus bilangan bulat"],
                      "tanggal": ["tanggal tidak valid (format TTTT-BB-HH)"], "sifat": ["pilihan tidak dikenal"]}
    assert _errors(form, {"nama": "abc", "jumlah": 9}) == {"jumlah": ["maksimal 5"]}
    out = validate_submission(form, {"nama": "Budi", "jumlah": "3", "setuju": "true", "tanggal": "2025-04-01",
                                     "sifat": "segera", "nomor": "N-2"})
    assert out == {"nama": "Budi", "jumlah": 3, "setuju": True, "tanggal": "2025-04-01", "sifat": "segera"}


def test_form_data_problems() -> None:
    form = Form()
    form.key = "k"
    odd = FormField("custom")
    odd.id = "odd"
    bad = FormField("long")
    bad.id, bad.default_value = "bad", None
    bad.add_validation("min", "satu")
    val = FormField("string")
    val.id, val.default_value = "val", None
    val.add_validation("validator", "com.example.X")
    enum = EnumFormField()
    enum.id, enum.default_value = "enum", None
    for f in (odd, bad, val, enum):
        form.add_field(f)
    with pytest.raises(DeployError) as exc:
        form_from_spiff(form, "p.bpmn", "Task_1")
    text = str(exc.value)
    assert "p.bpmn [Task_1]: formField 'odd': type 'custom' is not supported" in text
    assert "formField 'bad': constraint min needs a number" in text
    assert "formField 'val': constraint 'validator' is not supported" in text
    assert "formField 'enum': enum field has no values" in text


def test_form_data_from_parsed_bpmn() -> None:
    from SpiffWorkflow.camunda.parser import CamundaParser

    bpmn = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="P" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="T" name="Isi" camunda:formKey="gen">
      <bpmn:extensionElements><camunda:formData>
        <camunda:formField id="jumlah" label="Jumlah" type="long" defaultValue="1">
          <camunda:validation><camunda:constraint name="required" />
            <camunda:constraint name="max" config="9" /></camunda:validation>
        </camunda:formField>
        <camunda:formField id="jenis" label="Jenis" type="enum">
          <camunda:value id="a" name="A" /><camunda:value id="b" name="B" />
        </camunda:formField>
      </camunda:formData></bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>"""
    parser = CamundaParser()
    parser.add_bpmn_str(bpmn.encode(), "p.bpmn")
    spec = parser.get_spec("P")
    form = form_from_spiff(spec.task_specs["T"].form, "p.bpmn", "T")
    assert _errors(form, {"jumlah": "10", "jenis": "c"}) == {"jumlah": ["maksimal 9"],
                                                            "jenis": ["pilihan tidak dikenal"]}
    assert validate_submission(form, {"jumlah": "9", "jenis": "b"}) == {"jumlah": 9, "jenis": "b"}


# ---------------------------------------------------------------------------------------------- FEEL


@pytest.mark.parametrize(
    ("expression", "context", "expected"),
    [
        ("=1 + 2 * 3", {}, 7),
        ("=(1 + 2) * 3", {}, 9),
        ("=10 / 4", {}, 2.5),
        ("=0.1 + 0.2", {}, 0.3),  # decimal arithmetic, as FEEL
        ("=-x + 1", {"x": 3}, -2),
        ("=a - b - c", {"a": 10, "b": 3, "c": 2}, 5),
        ('="Kec. " + nama', {"nama": "IV Jurai"}, "Kec. IV Jurai"),
        ("=x / 0", {"x": 1}, None),
        ("=x / y", {"x": 1}, None),  # missing input
        ("=x * 2", {"x": "dua"}, None),
        ("=x > 5", {"x": 6}, True),
        ("=x >= 6 and x <= 6", {"x": 6}, True),
        ("=x < 5 or x = 6", {"x": 6}, True),
        ("=x != 6", {"x": 6}, False),
        ('=s = "naik"', {"s": "naik"}, True),
        ("=x = null", {}, True),
        ("=x > 1", {}, None),
        ("=not(x > 1)", {"x": 0}, True),
        ("=not(x)", {"x": None}, None),
        ("=true and null", {}, None),
        ("=false and null", {}, False),
        ("=true or null", {}, True),
        ("=if x > 1 then \"besar\" else \"kecil\"", {"x": 2}, "besar"),
        ("=if x > 1 then \"besar\" else \"kecil\"", {"x": 1}, "kecil"),
        ("=if x > 1 then 1 else 0", {}, 0),  # a null condition takes the else branch
        ("=if a then if b then 1 else 2 else 3", {"a": True, "b": False}, 2),
        ("=1 = true", {}, False),
        ("=ok", {"ok": True}, True),
        ("=x", {"x": 1.5}, 1.5),
        ("=x", {"x": [1, 2]}, None),
    ],
)
def test_feel(expression: str, context: dict[str, Any], expected: Any) -> None:
    result = evaluate_feel(expression, context)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("bad", ["=", "=1 +", "=(1", "=1 2", "=x ** 2", "=a.b", "=if x then 1", "=not x",
                                 "=__import__('os')", "=x; y", "=" + "(" * 200 + "1" + ")" * 200])
def test_feel_syntax_errors(bad: str) -> None:
    with pytest.raises(FeelError):
        evaluate_feel(bad, {})


def test_feel_huge_numbers_give_null_not_crash() -> None:
    expr = "=" + " * ".join(["x"] * 300)
    assert evaluate_feel(expr, {"x": 10**15}) is None


# SAKIP capaian (§9): realisasi/target×100 when higher is better, (2T−R)/T×100 when lower is better.
SAKIP_GOOD = {"tahun": "2025", "triwulan": "2", "unit_kerja": "Kecamatan IV Jurai", "sasaran": "Meningkatnya",
              "indikator": "Persentase layanan tepat waktu", "satuan": "%", "target_tahunan": "90",
              "target_triwulan": "80", "realisasi_triwulan": "88"}


@pytest.mark.parametrize(
    ("polaritas", "target", "realisasi", "capaian"),
    [
        ("naik", "80", "88", 110),
        ("naik", "80", "60", 75),
        ("turun", "80", "60", 125),  # (2·80 − 60) / 80 · 100
        ("turun", "80", "100", 75),
        ("turun", "4", "1.5", 162.5),
        ("naik", "3", "1", 100 / 3),
        ("naik", "0", "5", None),  # division by zero: no capaian rather than a crash
        ("rentang", "80", "88", None),  # no rule in §9 for a range: left empty
    ],
)
def test_sakip_capaian(sakip: FormDefinition, polaritas: str, target: str, realisasi: str, capaian: Any) -> None:
    out = validate_submission(sakip, {**SAKIP_GOOD, "polaritas": polaritas, "target_triwulan": target,
                                      "realisasi_triwulan": realisasi})
    assert out["capaian"] == pytest.approx(capaian) if capaian is not None else out["capaian"] is None
    assert out["tahun"] == 2025 and out["triwulan"] == "2"
    json.dumps(out)


def test_sakip_capaian_from_client_is_ignored(sakip: FormDefinition) -> None:
    out = validate_submission(sakip, {**SAKIP_GOOD, "polaritas": "naik", "capaian": 999})
    assert out["capaian"] == 110


def test_sakip_errors(sakip: FormDefinition) -> None:
    errors = _errors(sakip, {**SAKIP_GOOD, "tahun": "1999", "triwulan": "5", "realisasi_triwulan": "-1",
                             "pagu_anggaran": "1500000.5"})
    assert errors == {"tahun": ["minimal 2000"], "triwulan": ["pilihan tidak dikenal"],
                      "polaritas": ["wajib diisi"], "realisasi_triwulan": ["minimal 0"],
                      "pagu_anggaran": ["harus bilangan bulat"]}


# ---------------------------------------------------------------------------------------------- property


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50), st.binary(max_size=10), st.decimals(), st.dates(), st.datetimes(),
    st.sampled_from(["on", "true", "", "2025-01-01", "2025-01-01T10:00", "camat", "1.5", "10", "14:00",
                     "naik", "turun", "x" * 10_001]),
    st.builds(object),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner), st.frozensets(st.integers()),
                            st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=4)),
    max_leaves=20,
)
_all_keys = ["nama", "kode", "email", "telepon", "catatan", "jumlah", "nilai", "setuju", "arsip", "jenis",
             "sifat", "tembusan", "tanggal", "waktu_rapat", "waktu_utc", "jam", "nomor_register",
             "dinonaktifkan", "alasan", "dua_kali"]
_keys = st.one_of(st.sampled_from(_all_keys), st.text(max_size=8), st.integers())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.dictionaries(_keys, _values, max_size=12), partial=st.booleans(),
       which=st.sampled_from(["all", "sakip", "none"]))
def test_any_input_gives_clean_json_or_form_validation_error(data: dict[Any, Any], partial: bool,
                                                             which: str) -> None:
    form = {"all": _load("all_fields.form"), "sakip": _load("sakip_capaian.form"), "none": None}[which]
    try:
        out = validate_submission(form, data, partial=partial)
    except FormValidationError as exc:
        assert exc.errors and all(isinstance(k, str) and v for k, v in exc.errors.items())
        return
    json.dumps(out, allow_nan=False)
    assert isinstance(out, dict)
