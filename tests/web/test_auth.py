"""Sign-in, sessions, rate limit, CSRF, password change, language and profile."""

from __future__ import annotations

from tests.web.conftest import PASSWORD, csrf_token, login, make_app


def _session_cookie(client) -> str | None:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("alur_session")
    return cookie.value if cookie is not None else None


def test_pages_need_sign_in(app):  # type: ignore[no-untyped-def]
    response = app.test_client().get("/")
    assert response.status_code == 302
    assert "/masuk" in response.headers["Location"]


def test_sign_in_and_out(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert login(client, "kasubag", "salah-sekali").status_code == 401
    response = login(client, "kasubag")
    assert response.status_code == 302
    assert "Tugas Saya" in client.get("/").get_data(as_text=True)
    assert client.post("/keluar").status_code == 302
    assert client.get("/").status_code == 302


def test_session_is_regenerated_at_sign_in(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    client.post("/bahasa", data={"locale": "id"})  # an anonymous session exists before sign-in
    with client.session_transaction() as sess:
        sess["planted"] = "by-attacker"
    before = _session_cookie(client)
    assert before
    login(client, "kasubag")
    after = _session_cookie(client)
    assert after and after != before
    with client.session_transaction() as sess:
        assert "planted" not in sess  # nothing from before sign-in survives (except the language)
        assert sess.get("sid")
        assert sess.get("locale") == "id"
    client.post("/keluar")
    login(client, "kasubag")
    with client.session_transaction() as sess:
        sid_2 = sess.get("sid")
    client.post("/keluar")
    login(client, "kasubag")
    with client.session_transaction() as sess:
        assert sess.get("sid") != sid_2


def test_cookie_flags(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = login(client, "kasubag")
    header = "; ".join(response.headers.getlist("Set-Cookie"))
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


def test_secure_cookie_flag_from_environment(env, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALUR_SECURE_COOKIES", "1")
    app = make_app(env)
    response = login(app.test_client(), "kasubag")
    assert "Secure" in "; ".join(response.headers.getlist("Set-Cookie"))


def test_sign_in_rate_limit(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    for _ in range(5):
        assert login(client, "kasubag", "salah-sekali").status_code == 401
    blocked = login(client, "kasubag")  # even the right password: the limit comes first
    assert blocked.status_code == 429
    assert "Terlalu banyak percobaan" in blocked.get_data(as_text=True)
    # Another user from the same address is not blocked.
    assert login(app.test_client(), "camat").status_code == 302


def test_rate_limit_counts_per_address(app):  # type: ignore[no-untyped-def]
    for _ in range(5):
        login(app.test_client(), "kasubag", "salah-sekali")
    other = app.test_client()
    response = other.post("/masuk", data={"username": "kasubag", "password": PASSWORD},
                          environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 302


def test_post_without_csrf_token_is_refused(env):  # type: ignore[no-untyped-def]
    app = make_app(env, WTF_CSRF_ENABLED=True)
    task_id = env.start()
    client = app.test_client()
    page = client.get("/masuk").get_data(as_text=True)
    assert client.post("/masuk", data={"username": "kasubag", "password": PASSWORD}).status_code == 400
    token = csrf_token(page)
    assert client.post("/masuk", data={"username": "kasubag", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    refused = client.post(f"/tugas/{task_id}", data={"judul": "Laporan", "sifat": "biasa", "action": "complete"})
    assert refused.status_code == 400
    assert "kedaluwarsa" in refused.get_data(as_text=True)
    assert env.service.task(task_id).state == "READY"
    refused = client.post(f"/tugas/{task_id}/ambil")
    assert refused.status_code == 400
    assert env.service.task(task_id).assignee is None
    token = csrf_token(client.get(f"/tugas/{task_id}").get_data(as_text=True))
    ok = client.post(f"/tugas/{task_id}", data={"judul": "Laporan", "sifat": "biasa", "action": "complete",
                                                "csrf_token": token})
    assert ok.status_code == 302
    assert env.service.task(task_id).state == "COMPLETED"


def test_change_password_ends_other_sessions(app, client_for):  # type: ignore[no-untyped-def]
    other = client_for("kasubag")
    client = client_for("kasubag")
    bad = client.post("/kata-sandi", data={"current": "salah", "new": "baru-sekali-1", "confirm": "baru-sekali-1"})
    assert bad.status_code == 422
    short = client.post("/kata-sandi", data={"current": PASSWORD, "new": "pendek", "confirm": "pendek"})
    assert short.status_code == 422
    ok = client.post("/kata-sandi", data={"current": PASSWORD, "new": "baru-sekali-1", "confirm": "baru-sekali-1"})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200  # this session goes on
    assert other.get("/").status_code == 302  # the other one ended
    assert login(app.test_client(), "kasubag", "baru-sekali-1").status_code == 302


def test_language_switch(env, client_for):  # type: ignore[no-untyped-def]
    client = client_for("kasubag")
    env.start()
    assert "Tugas Saya" in client.get("/").get_data(as_text=True)
    assert client.post("/bahasa", data={"locale": "en", "next": "/"}).status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "My tasks" in html
    assert 'lang="en"' in html
    assert "Mon, 23 Nov 2026 11:00 WIB" in html  # English date, the unit's local time
    with env.db.read() as s:
        from sqlalchemy import select

        from engine.models import User

        assert s.scalar(select(User.locale).where(User.username == "kasubag")) == "en"
    assert client.post("/bahasa", data={"locale": "xx"}).status_code == 400


def test_language_stored_on_user_is_used_at_next_sign_in(app, client_for):  # type: ignore[no-untyped-def]
    client_for("kasubag").post("/bahasa", data={"locale": "en"})
    assert "My tasks" in client_for("kasubag").get("/").get_data(as_text=True)


def test_profile_shows_roles(client_for):  # type: ignore[no-untyped-def]
    html = client_for("kasubag").get("/profil").get_data(as_text=True)
    assert "Kasubag" in html and "Kecamatan A" in html


def test_open_redirect_is_refused(app):  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = client.post("/masuk", data={"username": "kasubag", "password": PASSWORD,
                                           "next": "//evil.example/"})
    assert response.headers["Location"] == "/"

