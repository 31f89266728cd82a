"""Form values and other free text of the wrong type, size or encoding, through the staff web and the REST API:
NUL and other control characters, lone surrogates, bytes that are not UTF-8, 1 MB strings, lists and objects
where one value is expected, numbers that are not numbers. Each gets a clear error and nothing is stored."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from tests.hostile.helpers import GOOD_FORM, World, basic, changed, snapshot, web_files

MB = 1024 * 1024


def _refused_web(world: World, task_id: str, data: Any, field_message: str, *, status: int = 422,
                 **kwargs: Any) -> None:
    client = world.client("kasubag")
    before = snapshot(world)
    response = client.post(f"/tugas/{task_id}", data=data, **kwargs)
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:500]
    assert field_message in body
    assert changed(before, snapshot(world)) == []
    assert world.service.task(task_id).state == "READY"


def _multipart(fields: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body built by hand, so that field values can be any bytes at all."""
    parts = [b'--XB\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value + b"\r\n"
             for name, value in fields]
    return b"".join(parts) + b"--XB--\r\n", "multipart/form-data; boundary=XB"


@pytest.mark.parametrize(("fields", "message"), [
    ({"judul": "Lap\x00oran"}, "karakter kontrol"),
    ({"judul": "Lap\x1b[31moran"}, "karakter kontrol"),
    ({"judul": "x" * MB}, "terlalu panjang"),
    ({"judul": "ab"}, "minimal 3 karakter"),
    ({"sifat": "<script>alert(1)</script>"}, "pilihan tidak dikenal"),
    ({"jumlah": "abc"}, "harus angka"),
    ({"jumlah": "1e999"}, "angka terlalu besar"),
    ({"jumlah": "NaN"}, "harus angka"),
    ({"jumlah": "Infinity"}, "harus angka"),
    ({"jumlah": "0x10"}, "harus angka"),
    ({"jumlah": "\u0661\u0662"}, "harus angka"),  # Arabic-Indic digits: Python's Decimal would take them
    ({"jumlah": "1_000"}, "harus angka"),
    ({"jumlah": "500"}, "maksimal 100"),
    ({"kode": "AB-123\n<script>"}, "format tidak sesuai"),
])
def test_wrong_values_in_the_web_form(world: World, fields: dict[str, str], message: str) -> None:
    task_id = world.start(business_key="FORM")
    _refused_web(world, task_id, {**GOOD_FORM, **fields}, message)


@pytest.mark.parametrize(("key", "values", "message"), [
    ("judul", ["Laporan satu", "Laporan dua"], "harus teks"),
    ("sifat", ["biasa", "segera"], "pilihan tidak dikenal"),
    ("jumlah", ["5", "6"], "harus angka"),
])
def test_one_value_field_sent_twice_is_refused_not_first_wins(world: World, key: str, values: list[str],
                                                              message: str) -> None:
    task_id = world.start(business_key="TWICE")
    data = MultiDict([(k, v) for k, v in GOOD_FORM.items() if k != key] + [(key, v) for v in values])
    _refused_web(world, task_id, data, message)


def test_bytes_that_are_not_utf8(world: World) -> None:
    task_id = world.start(business_key="BYTES")
    body, ctype = _multipart([("judul", b"Lap\xff\xfeoran"), ("sifat", b"biasa"), ("action", b"complete")])
    _refused_web(world, task_id, body, "karakter rusak", content_type=ctype)
    raw = b"judul=Lap\xff\xfeoran&sifat=biasa&action=complete"
    _refused_web(world, task_id, raw, "wajib diisi", content_type="application/x-www-form-urlencoded")


def test_one_megabyte_field_in_a_multipart_form_is_refused_before_it_is_kept(world: World) -> None:
    task_id = world.start(business_key="BIG")
    body, ctype = _multipart([("judul", b"x" * (MB + 10)), ("sifat", b"biasa"), ("action", b"complete")])
    _refused_web(world, task_id, body, "terlalu besar", status=413, content_type=ctype)


def test_unknown_fields_are_not_taken(world: World) -> None:
    task_id = world.start(business_key="EXTRA")
    client = world.client("kasubag")
    response = client.post(f"/tugas/{task_id}", data={**GOOD_FORM, "__proto__": "x", "alurUnit": "kec-b",
                                                      "dua_kali": "999", "assignee": "admin"})
    assert response.status_code == 302
    task = world.service.task(task_id)
    assert task.state == "COMPLETED" and task.completed_by == "kasubag"
    instance = world.service.instance(task.instance_id)
    assert instance.unit_code == "kec-a"
    assert not {"__proto__", "alurUnit", "assignee"} & set(instance.data)
    assert instance.data.get("dua_kali") != 999  # an expression field is computed, never taken


@pytest.mark.parametrize(("text", "message"), [
    ("Terlambat\x00karena", "karakter kontrol"), ("x" * 3000, "maksimal 2000 karakter"),
    ("Terlambat \ufffd", "karakter rusak"),
])
def test_late_reason_of_the_wrong_kind(world: World, text: str, message: str) -> None:
    task_id = world.start(business_key="LATE")
    start = world.clock.now
    world.clock.advance(hours=5)  # past the step's 2 hours
    try:
        _refused_web(world, task_id, {**GOOD_FORM, "late_reason": text}, message)
        before = snapshot(world)
        variables = {"judul": {"value": "Laporan"}, "sifat": {"value": "biasa"},
                     "alurLateReason": {"value": text}}
        response = world.app.test_client().post(f"/engine-rest/task/{task_id}/complete", headers=basic("kasubag"),
                                                json={"variables": variables})
        assert response.status_code == 400, response.get_data(as_text=True)
        assert changed(before, snapshot(world)) == []
    finally:
        world.clock.now = start


@pytest.mark.parametrize(("text", "message"), [
    ("a\x00b", "karakter kontrol"), ("x" * MB, "maksimal 5000 karakter"), ("\ufffd\ufffd", "karakter rusak"),
    ("\x07\x08", "karakter kontrol"),
])
def test_comment_of_the_wrong_kind(world: World, text: str, message: str) -> None:
    task_id = world.start(business_key="KOMENTAR")
    client = world.client("kasubag")
    before = snapshot(world)
    response = client.post(f"/tugas/{task_id}/komentar", data={"body": text})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert changed(before, snapshot(world)) == []


def test_supervisor_reason_of_the_wrong_kind(world: World) -> None:
    view = world.service.start("sop_uji", unit="kec-a", business_key="ALASAN")
    client = world.client("camat")  # sop_uji's supervisor role, in the instance's unit
    before = snapshot(world)
    for action in ("batalkan", "tangguhkan"):
        response = client.post(f"/pengawasan/instances/{view.id}/{action}", data={"reason": "Batal\x00"},
                               follow_redirects=True)
        assert "karakter kontrol" in response.get_data(as_text=True)
    assert changed(before, snapshot(world)) == []
    assert world.service.instance(view.id).status == "running"


def test_substitution_note_of_the_wrong_kind(world: World) -> None:
    admin = world.client("admin")
    before = snapshot(world)
    response = admin.post("/admin/pengganti", data={
        "username": "staf", "role": "Kasubag", "unit": "kec-a", "starts_on": "2026-11-23",
        "ends_on": "2026-11-24", "kind": "Plh", "note": "cuti\x00"})
    assert response.status_code == 422
    assert changed(before, snapshot(world)) == []


# ------------------------------------------------------------------------------------------------ REST


def _rest(world: World, path: str, body: Any, user: str = "kasubag", raw: bytes | None = None):  # type: ignore[no-untyped-def]
    data = raw if raw is not None else json.dumps(body)
    return world.app.test_client().post(f"/engine-rest{path}", headers=basic(user), data=data,
                                        content_type="application/json")


@pytest.mark.parametrize(("variables", "needle"), [
    ({"judul": {"value": "\ud800abc"}}, "karakter kontrol"),  # a lone surrogate, sent as JSON "\ud800"
    ({"judul": {"value": "ab\x00c"}}, "karakter kontrol"),
    ({"judul": {"value": "x" * MB}}, "terlalu panjang"),
    ({"judul": {"value": ["Laporan", "dua"]}}, "harus teks"),
    ({"judul": {"value": {"$gt": ""}}}, "harus teks"),
    ({"judul": {"value": "Laporan \ufffd"}}, "karakter rusak"),
    ({"sifat": {"value": ["biasa"]}}, "pilihan tidak dikenal"),
    ({"jumlah": {"value": "1e999"}}, "angka terlalu besar"),
    ({"jumlah": {"value": 10**400}}, "jumlah"),
    ({"jumlah": {"value": [5]}}, "jumlah"),
    ({"jumlah": {"value": "5", "type": "Object", "valueInfo": {"serializationDataFormat":
                                                                "application/x-java-serialized-object"}}}, "jumlah"),
    ({"judul": "Laporan"}, "judul"),  # not a typed variable at all
])
def test_wrong_values_through_rest(world: World, variables: dict[str, Any], needle: str) -> None:
    task_id = world.start(business_key="REST")
    base = {"judul": {"value": "Laporan"}, "sifat": {"value": "biasa"}}
    before = snapshot(world)
    response = _rest(world, f"/task/{task_id}/complete", {"variables": {**base, **variables}})
    text = response.get_data(as_text=True)
    assert response.status_code == 400, text[:500]
    assert needle in json.loads(text)["message"] + json.dumps(json.loads(text).get("errors", {}), ensure_ascii=False)
    assert changed(before, snapshot(world)) == []


def test_rest_bodies_that_are_not_json_objects(world: World) -> None:
    task_id = world.start(business_key="REST-RAW")
    before = snapshot(world)
    for raw in (b'{"variables": {"judul": {"value": "\xff\xfe"}}}', b"[1, 2]", b'"judul"', b"{" * 100_000,
                b'{"variables": ' * 5000, b"\x00\x00\x00{"):
        response = _rest(world, f"/task/{task_id}/complete", None, raw=raw)
        assert response.status_code == 400, (raw[:20], response.get_data(as_text=True)[:300])
    assert changed(before, snapshot(world)) == []


@pytest.mark.parametrize("business_key", ["\ud800", "LAP\x00001", "x" * 201, "LAP\n001"])
def test_business_key_of_the_wrong_kind(world: World, business_key: str) -> None:
    before = snapshot(world)
    response = _rest(world, "/process-definition/key/web_flow/start", {"businessKey": business_key})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "business key" in response.json["message"]
    assert changed(before, snapshot(world)) == []


def test_deployment_name_of_the_wrong_kind(world: World) -> None:
    files = web_files()
    before = snapshot(world)
    data: dict[str, Any] = {"deployment-name": "Revisi\x00", "deployment-source": "Camunda Modeler"}
    for name, content in files.items():
        data[name] = (io.BytesIO(content.replace(b"Laporan Uji Web", b"Laporan Uji Web 2")), name)
    response = world.app.test_client().post("/engine-rest/deployment/create", headers=basic("desainer"),
                                            data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "deployment name" in response.json["message"]
    assert changed(before, snapshot(world)) == []


def test_free_text_limits_are_the_same_for_every_client(world: World) -> None:
    """The web form caps the late reason at 2000 characters; the REST API used to store a megabyte."""
    task_id = world.start(business_key="LIMIT")
    start = world.clock.now
    world.clock.advance(hours=5)
    try:
        before = snapshot(world)
        response = _rest(world, f"/task/{task_id}/complete", {"variables": {
            "judul": {"value": "Laporan"}, "sifat": {"value": "biasa"}, "alurLateReason": {"value": "x" * MB}}})
        assert response.status_code == 400
        assert changed(before, snapshot(world)) == []
    finally:
        world.clock.now = start
