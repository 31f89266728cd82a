"""The page header is drawn once per locale, menu and bell count and reused (web/chrome.py). What is reused
must never carry one request's values into another: each page's own CSRF token and return path, each user's
own menu and bell, each locale's own words."""

from __future__ import annotations

import re

from flask import Flask

from engine.models import Notification
from tests.web.conftest import PASSWORD, Env, csrf_token, login, make_app


def _lang_next(html: str) -> str:
    m = re.search(r'<form method="post" action="/bahasa".*?name="next" value="([^"]*)"', html, re.S)
    assert m, "no language switch in the header"
    return m.group(1)


def _header(html: str) -> str:
    return html[html.index('<header class="top">'):html.index("</header>")]


def test_each_page_returns_the_language_switch_to_itself(app: Flask) -> None:
    client = app.test_client()
    login(client, "kasubag")
    assert _lang_next(client.get("/profil").get_data(as_text=True)) == "/profil"
    assert _lang_next(client.get("/?sop=web_flow&unit=kec-a").get_data(as_text=True)) == \
        "/?sop=web_flow&amp;unit=kec-a"  # escaped where it is filled in
    assert _lang_next(client.get("/").get_data(as_text=True)) == "/"


def test_menus_follow_each_users_rights_whoever_drew_the_header_first(app: Flask) -> None:
    admin, staff = app.test_client(), app.test_client()
    login(admin, "admin")
    login(staff, "kasubag")
    for _ in range(2):  # the second round is served from the cache
        assert "/admin/pengganti" in _header(admin.get("/").get_data(as_text=True))
        assert "/admin/pengganti" not in _header(staff.get("/").get_data(as_text=True))


def test_every_session_gets_its_own_token_in_the_header_and_it_works(env: Env) -> None:
    app = make_app(env, WTF_CSRF_ENABLED=True)
    tokens = []
    for username in ("kasubag", "camat"):
        client = app.test_client()
        page = client.get("/masuk").get_data(as_text=True)
        client.post("/masuk", data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(page)})
        header = _header(client.get("/").get_data(as_text=True))
        tokens.append(csrf_token(header))
        assert client.post("/keluar", data={"csrf_token": tokens[-1]}).status_code == 302
        assert client.get("/").status_code == 302  # signed out: back to the sign-in page
    assert tokens[0] != tokens[1]


def test_the_bell_and_the_locale_change_the_header(app: Flask, env: Env) -> None:
    client = app.test_client()
    login(client, "camat")
    assert "alur-bell-count" not in _header(client.get("/").get_data(as_text=True))
    with env.db.write() as s:
        s.add(Notification(dedupe_key="uji-bell", username="camat", kind="late", message="Terlambat",
                           created_at=env.clock.now))
    assert 'class="alur-bell-count">1<' in _header(client.get("/").get_data(as_text=True))
    assert "Keluar" in _header(client.get("/").get_data(as_text=True))
    client.post("/bahasa", data={"locale": "en", "next": "/"})
    english = _header(client.get("/").get_data(as_text=True))
    assert "Sign out" in english and "Keluar" not in english


def test_the_header_is_drawn_once_per_locale_and_menu(app: Flask) -> None:
    from flask import template_rendered

    drawn: list[str] = []

    def record(_app: Flask, template, context) -> None:  # type: ignore[no-untyped-def]
        drawn.append(template.name)

    client = app.test_client()
    login(client, "kasubag")
    with template_rendered.connected_to(record, app):
        for path in ("/", "/profil", "/", "/profil"):
            assert client.get(path).status_code == 200
    assert drawn.count("_header.html") == 1
