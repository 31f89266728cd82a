"""Values at the edges of what Python can hold give a clear 400 naming the parameter, never a 500: date filters
and Date variables at year 1 / 9999 (the conversion to UTC overflowed), and numbers of more than 4,300 digits
(Python's int-string limit raises a ValueError while parsing)."""

from __future__ import annotations

from urllib.parse import quote

from tests.rest.conftest import Rest

FAR = ["0001-01-01T00:00:00.000+0700", "9999-12-31T23:59:59.000-0500", "9999-12-31T23:00:00.000+0000",
       "1899-12-31T23:59:59.000+0000", "2200-01-01T00:00:00.000+0000"]


FILTERS = [("/task", "dueBefore"), ("/task", "createdAfter"), ("/task/count", "dueAfter"),
           ("/history/process-instance", "startedBefore"), ("/history/process-instance/count", "startedAfter"),
           ("/history/task", "taskDueBefore"), ("/history/task/count", "taskDueAfter")]


def test_far_date_filters_are_a_400_naming_the_parameter(rest: Rest) -> None:
    for path, name in FILTERS:
        for value in FAR:
            r = rest.get(f"{path}?{name}={quote(value)}")
            assert r.status_code == 400, (path, name, value, r.get_data(as_text=True)[:300])
            assert r.json["type"] == "InvalidRequestException"
            assert name in r.json["message"], r.json
            assert "outside the supported range 1900-01-01 to 2199-12-31" in r.json["message"]
        for value in FAR[:3]:  # the same in a POST query body
            if path.startswith("/task"):
                r = rest.post(path, json={name: value})
                assert r.status_code == 400 and name in r.json["message"], (path, name, value)
        # The window's own ends are fine.
        for value in ("1900-01-01T00:00:00.000+0000", "2199-12-31T23:59:59.000+0000"):
            assert rest.get(f"{path}?{name}={quote(value)}").status_code == 200


UNUSABLE = [
    ({"type": "Date", "value": "0001-01-01T00:00:00.000+0700"}, "outside the supported range"),
    ({"type": "Date", "value": "9999-12-31T23:59:59.000-0500"}, "outside the supported range"),
    ({"type": "Json", "value": "[" + "7" * 5000 + "]"}, "too many digits"),
    ({"type": "Json", "value": '{"a": {"b": -' + "9" * 4301 + "}}"}, "too many digits"),
    ({"type": "Long", "value": "9" * 5000}, "to type Long"),
    ({"type": "Integer", "value": "-" + "1" * 4400}, "to type Integer"),
]


def test_unusable_variables_are_a_400_and_start_nothing(rest: Rest) -> None:
    rest.deploy()
    start = "/process-definition/key/web_flow/tenant-id/kec-a/start"
    for typed, needle in UNUSABLE:
        r = rest.post(start, "kasubag", json={"businessKey": "JAUH", "variables": {"batas": typed}})
        assert r.status_code == 400, (typed["type"], r.get_data(as_text=True)[:300])
        assert r.json["type"] == "InvalidRequestException"
        assert "batas" in r.json["message"] and needle in r.json["message"], r.json
    # A whole request body with such a number is refused too.
    body = '{"businessKey": "JAUH", "variables": {"n": {"value": ' + "8" * 5000 + "}}}"
    r = rest.client.post(f"/engine-rest{start}", data=body, headers={**_auth(), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["type"] == "InvalidRequestException"
    assert rest.get("/history/process-instance").json == []
    ok = {"type": "Date", "value": "2026-12-31T10:00:00.000+0700"}
    assert rest.post(start, "kasubag", json={"variables": {"batas": ok}}).status_code == 200


def _auth() -> dict[str, str]:
    from tests.rest.conftest import basic

    return basic("kasubag")
