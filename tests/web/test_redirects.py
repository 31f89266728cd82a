"""Open redirects: every `next` a request brings goes through web/redirects.py's safe_next, which reads the value
as a browser would (tabs, CR and LF dropped, backslash = slash) and accepts only a path on this site. Each
return address of the web is tried with hostile values: sign-in, the language switch, claim, release and
marking notifications read."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from tests.web.conftest import PASSWORD
from web.redirects import safe_next

DEFAULT = "/kembali"
HOSTILE = [
    "//evil.example/", "///evil.example/", "/\\evil.example/", "\\\\evil.example/", "\\/evil.example/",
    "/\t/evil.example/", "\t//evil.example/", " //evil.example/", "/\n/evil.example/", "/\r\n/evil.example/",
    "\r\n//evil.example/", "/\\\t\\evil.example", "https:evil.example", "https://evil.example/",
    "http:/evil.example", "HTTPS://evil.example", "javascript:alert(1)", " JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>", "evil.example", "tugas/1", "?next=//evil.example/", "#x",
    "/\x00//evil.example", "/x\x7f", "/" + "a" * 3000, "", None,
]
SAFE = [
    ("/", "/"), ("/tugas/abc?x=1#komentar", "/tugas/abc?x=1#komentar"),
    ("/pengawasan/instances?status=running&unit=kec-a", "/pengawasan/instances?status=running&unit=kec-a"),
    ("/a//b", "/a//b"), ("/%09/evil.example/", "/%09/evil.example/"),  # an encoded tab stays in the path
    ("/\r\n", "/"), ("/x\r\n", "/x"), ("/tu\tgas", "/tugas"), ("/a\\b", "/a/b"), (" /x ", "/x"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_give_the_default(value: str | None) -> None:
    assert safe_next(value, DEFAULT) == DEFAULT


@pytest.mark.parametrize(("value", "expected"), SAFE)
def test_paths_on_this_site_are_kept_as_a_browser_reads_them(value: str, expected: str) -> None:
    assert safe_next(value, DEFAULT) == expected


@pytest.mark.parametrize("value", [v for v in HOSTILE if v] + [s for s, _ in SAFE])
def test_whatever_comes_back_stays_on_this_site(value: str) -> None:
    target = safe_next(value, DEFAULT)
    assert not any(ch in target for ch in "\t\r\n\\")
    assert urlsplit(urljoin("https://alur.example.go.id/x/", target)).netloc == "alur.example.go.id"


RAW_HOSTILE = ["/%09/evil.example/", "/%5Cevil.example/", "%2F%2Fevil.example/", "/%0D%0A/evil.example/",
               "%09//evil.example/", "https:evil.example", "javascript:alert(1)"]
RAW_ODD = ["/%0D", "/%0D%0A", "/%0Atugas"]  # once normalised, paths here: no 500, no CR or LF in Location


def _location(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code in (302, 303), (response.status_code, response.get_data(as_text=True)[:300])
    return str(response.headers["Location"])


@pytest.mark.parametrize("raw", RAW_HOSTILE)
def test_sign_in_next(app, raw: str) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get(f"/masuk?next={raw}")
    assert page.status_code == 200
    assert 'name="next" value="/"' in page.get_data(as_text=True)
    response = client.post(f"/masuk?next={raw}", data={"username": "kasubag", "password": PASSWORD})
    assert _location(response) == "/"


@pytest.mark.parametrize("raw", RAW_ODD)
def test_sign_in_next_with_cr_or_lf_is_no_error(app, raw: str) -> None:  # type: ignore[no-untyped-def]
    response = app.test_client().post("/masuk", data=f"username=kasubag&password={PASSWORD}&next={raw}",
                                      content_type="application/x-www-form-urlencoded")
    assert _location(response) in ("/", "/tugas")


def test_sign_in_keeps_a_local_next(app) -> None:  # type: ignore[no-untyped-def]
    response = app.test_client().post("/masuk?next=/pengawasan/instances%3Fstatus%3Drunning",
                                      data={"username": "kasubag", "password": PASSWORD})
    assert _location(response) == "/pengawasan/instances?status=running"


def _form_routes(env, client_for):  # type: ignore[no-untyped-def]
    """(name, client, a fresh path per call, extra form fields, the default return for that path, a local path
    it keeps). Claim and release get a new task each time: a task is claimed or released only once."""
    client = client_for("kasubag")
    counter = iter(range(10_000))

    def to_claim() -> str:
        return env.start("kec-a", f"LAP-NEXT-{next(counter)}")  # type: ignore[no-any-return]

    def to_release() -> str:
        task_id = to_claim()
        assert client.post(f"/tugas/{task_id}/ambil").status_code == 302
        return task_id

    return [
        ("language", client, lambda: "/bahasa", {"locale": "id"}, lambda path: "/", "/profil"),
        ("claim", client, lambda: f"/tugas/{to_claim()}/ambil", {}, lambda path: path.removesuffix("/ambil"),
         "/?sop=web_flow"),
        ("release", client, lambda: f"/tugas/{to_release()}/lepas", {}, lambda path: "/", "/?page=1"),
        ("notifications read", client, lambda: "/pengawasan/notifikasi/baca", {},
         lambda path: "/pengawasan/notifikasi", "/profil"),
    ]


def _post_raw(client, path: str, raw: str, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    """As a browser sends a form: urlencoded, so %09 arrives as a tab and %0D%0A as CR LF."""
    body = "&".join([f"next={raw}"] + [f"{k}={v}" for k, v in fields.items()])
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded")


def test_every_return_address_refuses_hostile_next(env, client_for) -> None:  # type: ignore[no-untyped-def]
    for name, client, fresh_path, fields, default, _ in _form_routes(env, client_for):
        for raw in RAW_HOSTILE:
            path = fresh_path()
            assert _location(_post_raw(client, path, raw, fields)) == default(path), (name, raw)
        for raw in RAW_ODD:
            location = _location(_post_raw(client, fresh_path(), raw, fields))
            assert location in ("/", "/tugas"), (name, raw, location)


def test_every_return_address_keeps_a_local_next(env, client_for) -> None:  # type: ignore[no-untyped-def]
    for name, client, fresh_path, fields, _, local in _form_routes(env, client_for):
        assert _location(client.post(fresh_path(), data={**fields, "next": local})) == local, name
