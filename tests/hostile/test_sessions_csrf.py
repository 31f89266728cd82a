"""Session fixation, replayed cookies and CSRF.

- A session cookie set before sign-in (e.g. planted by an attacker) never becomes a signed-in session; signing in
  issues a new cookie and a new session id.
- Signing out ends the session on the server too: a copy of the cookie no longer works (in another worker too).
- Every state-changing web route (enumerated from the URL map, so a new one without a case fails here) refuses a
  request without a valid CSRF token, or with another session's token, and changes nothing; the same request
  with the token goes through, so the token is what stopped it.
- /engine-rest never takes the web session cookie as credentials, so it needs no CSRF token.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from tests.hostile.helpers import GOOD_FORM, World, basic, build_world, changed, snapshot, web_files
from tests.web.conftest import PASSWORD

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def _cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("alur_session")
    return cookie.value if cookie is not None else None


def _signed_in(client: FlaskClient) -> bool:
    return client.get("/profil").status_code == 200


def _token(client: FlaskClient, page: str = "/profil") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).get_data(as_text=True))
    assert match, page
    return match.group(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("csrf"), WTF_CSRF_ENABLED=True)


def _sign_in(world: World, username: str, client: FlaskClient | None = None) -> FlaskClient:
    client = client or world.app.test_client()
    token = _token(client, "/masuk")
    response = client.post("/masuk", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


# ------------------------------------------------------------------------------------------------ fixation


def test_cookie_set_before_sign_in_is_not_signed_in_afterwards(world: World) -> None:
    attacker = world.app.test_client()
    token = _token(attacker, "/masuk")
    attacker.post("/bahasa", data={"locale": "id", "csrf_token": token})  # an anonymous session now exists
    planted = _cookie(attacker)
    assert planted
    victim = world.app.test_client()
    victim.set_cookie("alur_session", planted)  # e.g. set through a sibling subdomain
    _sign_in(world, "kasubag", victim)
    assert _signed_in(victim)
    assert _cookie(victim) != planted  # a new cookie was issued at sign-in
    assert not _signed_in(attacker)  # the attacker's copy is still nobody
    replay = world.app.test_client()
    replay.set_cookie("alur_session", planted)
    assert not _signed_in(replay)


def test_sign_in_gives_a_new_session_id_every_time(world: World) -> None:
    ids = set()
    client = world.app.test_client()
    for _ in range(3):
        _sign_in(world, "kasubag", client)
        with client.session_transaction() as sess:
            ids.add(sess["sid"])
        client.post("/keluar", data={"csrf_token": _token(client)})
    assert len(ids) == 3


def test_forged_session_cookie_is_refused(world: World) -> None:
    """A cookie claiming to be kasubag's, signed with a guessed key, is nobody."""
    forged = URLSafeTimedSerializer("test-secret-guess", salt="cookie-session", signer_kwargs={
        "key_derivation": "hmac", "digest_method": __import__("hashlib").sha1}).dumps(
        {"_user_id": "kasubag|0000", "sid": "A" * 22, "_fresh": True})
    client = world.app.test_client()
    client.set_cookie("alur_session", forged)
    assert not _signed_in(client)


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(world: World, tmp_path: Path) -> None:
    client = _sign_in(world, "kasubag")
    stolen = _cookie(client)
    assert stolen
    thief = world.app.test_client()
    thief.set_cookie("alur_session", stolen)
    assert _signed_in(thief)  # the copy works while the session lives...
    assert client.post("/keluar", data={"csrf_token": _token(client)}).status_code == 302
    assert not _signed_in(client)
    assert not _signed_in(thief)  # ...and not after sign-out
    # Another worker (another app over the same instance folder) refuses it as well.
    other_worker = world.make_app(WTF_CSRF_ENABLED=True).test_client()
    other_worker.set_cookie("alur_session", stolen)
    assert not _signed_in(other_worker)
    # Signing in again starts a new session that works.
    assert _signed_in(_sign_in(world, "kasubag"))


# ------------------------------------------------------------------------------------------------ CSRF


@dataclass
class Case:
    """How to make a request to this route that succeeds when it carries the CSRF token."""

    user: str | None
    path: Callable[[World], str]
    data: Callable[[World], dict[str, Any]] = field(default=lambda w: {})
    multipart: bool = False


def _task(world: World, unit: str = "kec-a") -> str:
    return world.start(unit=unit, business_key="CSRF")


def _sop_instance(world: World) -> str:
    return world.service.start("sop_uji", unit="kec-a", business_key="CSRF").id


def _suspended(world: World) -> str:
    from engine import supervision

    instance_id = _sop_instance(world)
    supervision.suspend(world.service, instance_id, world.service.actor("camat"), "uji")
    return instance_id


def _claimed(world: World) -> str:
    task_id = _task(world)
    world.service.claim(task_id, world.service.actor("kasubag"))
    return task_id


def _sop_task(world: World) -> str:
    return world.service.start("sop_uji", unit="kec-a", business_key="CSRF").tasks[0].id


def _definition(world: World) -> str:
    return world.service.definitions(key="web_flow")[0].id


def _files(world: World) -> dict[str, Any]:
    return {"files": [(io.BytesIO(content.replace(b"Laporan Uji Web", b"Laporan CSRF")), name)
                      for name, content in web_files().items()]}


CSRF_CASES: dict[tuple[str, str], Case] = {
    ("auth.login", "POST"): Case(None, lambda w: "/masuk", lambda w: {"username": "staf", "password": PASSWORD}),
    ("auth.logout", "POST"): Case("staf", lambda w: "/keluar"),
    ("auth.set_language", "POST"): Case("staf", lambda w: "/bahasa", lambda w: {"locale": "en"}),
    ("auth.change_password", "POST"): Case("camat.b", lambda w: "/kata-sandi", lambda w: {
        "current": PASSWORD, "new": PASSWORD, "confirm": PASSWORD}),
    ("auth.substitutions", "POST"): Case("admin", lambda w: "/admin/pengganti", lambda w: {
        "username": "staf", "role": "Kasubag", "unit": "kec-a", "starts_on": "2026-11-23", "ends_on": "2026-11-24",
        "kind": "Plh", "note": "csrf"}),
    ("tasks.submit", "POST"): Case("kasubag", lambda w: f"/tugas/{_task(w)}", lambda w: dict(GOOD_FORM)),
    ("tasks.comment", "POST"): Case("kasubag", lambda w: f"/tugas/{_task(w)}/komentar", lambda w: {"body": "x"}),
    ("inbox.claim", "POST"): Case("kasubag", lambda w: f"/tugas/{_task(w)}/ambil"),
    ("inbox.unclaim", "POST"): Case("kasubag", lambda w: f"/tugas/{_claimed(w)}/lepas"),
    ("supervisor.cancel", "POST"): Case("camat", lambda w: f"/pengawasan/instances/{_sop_instance(w)}/batalkan",
                                        lambda w: {"reason": "uji"}),
    ("supervisor.suspend", "POST"): Case("camat", lambda w: f"/pengawasan/instances/{_sop_instance(w)}/tangguhkan",
                                         lambda w: {"reason": "uji"}),
    ("supervisor.resume", "POST"): Case("camat", lambda w: f"/pengawasan/instances/{_suspended(w)}/lanjutkan",
                                        lambda w: {"reason": "uji"}),
    ("supervisor.reassign", "POST"): Case("camat", lambda w: f"/pengawasan/tasks/{_sop_task(w)}/tugaskan",
                                          lambda w: {"assignee": "kasubag"}),
    ("supervisor.mark_read", "POST"): Case("camat", lambda w: "/pengawasan/notifikasi/baca"),
    ("designer.deploy", "POST"): Case("desainer", lambda w: "/desain/pasang", _files, multipart=True),
    ("designer.start", "POST"): Case("kasubag", lambda w: f"/desain/definisi/{_definition(w)}/mulai",
                                     lambda w: {"unit": "kec-a", "business_key": "CSRF"}),
}


def _web_state_changing_routes(world: World) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in world.app.url_map.iter_rules()
            if not rule.rule.startswith("/engine-rest") and rule.endpoint != "static"
            for method in (rule.methods or set()) & STATE_CHANGING}


def test_every_state_changing_web_route_has_a_csrf_case(world: World) -> None:
    routes = _web_state_changing_routes(world)
    assert routes, "no routes found"
    assert sorted(routes - set(CSRF_CASES)) == [], "add a CSRF case for the new route(s)"
    assert sorted(set(CSRF_CASES) - routes) == [], "a CSRF case for a route that no longer exists"


@pytest.mark.parametrize("route", sorted(CSRF_CASES), ids=lambda r: r[0])
def test_state_changing_route_refuses_a_request_without_its_token(world: World, route: tuple[str, str]) -> None:
    case = CSRF_CASES[route]
    client = _sign_in(world, case.user) if case.user else world.app.test_client()
    own_token = _token(client, "/masuk" if case.user is None else "/profil")
    other = _sign_in(world, "camat.b")
    foreign_token = _token(other)  # valid, but for another session
    path = case.path(world)
    kwargs: dict[str, Any] = {"content_type": "multipart/form-data"} if case.multipart else {}
    for token in (None, "", "x" * 40, foreign_token):
        before = snapshot(world)
        data = case.data(world)
        if token is not None:
            data["csrf_token"] = token
        response = client.post(path, data=data, **kwargs)
        assert response.status_code == 400, (route, token, response.status_code)
        assert "Formulir kedaluwarsa" in response.get_data(as_text=True)
        assert changed(before, snapshot(world)) == [], (route, token)
    if case.user is not None:
        assert _signed_in(client)  # a refused sign-out does not sign out either
    data = {**case.data(world), "csrf_token": own_token}
    accepted = client.post(path, data=data, **kwargs)
    assert accepted.status_code in (200, 302), (route, accepted.status_code, accepted.get_data(as_text=True)[:300])


def test_a_cross_site_form_post_is_refused_even_with_a_session(world: World) -> None:
    """What a hostile page can make a signed-in browser send: the cookie, an Origin of its own, no token."""
    client = _sign_in(world, "kasubag")
    task_id = _task(world)
    before = snapshot(world)
    response = client.post(f"/tugas/{task_id}", data=GOOD_FORM,
                           headers={"Origin": "https://evil.example", "Referer": "https://evil.example/x"})
    assert response.status_code == 400
    assert changed(before, snapshot(world)) == []


# ------------------------------------------------------------------------------------------------ REST


def _rest_args(world: World) -> dict[str, str]:
    task_id = _task(world)
    return {"task_id": task_id, "instance_id": world.service.task(task_id).instance_id,
            "definition_id": _definition(world), "key": "web_flow", "tenant_id": "kec-a",
            "deployment_id": world.service.deployments(limit=1)[0][0]["id"], "path": "task"}


def test_rest_never_takes_the_session_cookie(world: World) -> None:
    """Every state-changing /engine-rest route, called by a signed-in browser with its cookie (and even a CSRF
    token) but no Authorization header: 401 and nothing changes."""
    client = _sign_in(world, "admin")
    token = _token(client)
    args = _rest_args(world)
    rules = [(rule, method) for rule in world.app.url_map.iter_rules() if rule.rule.startswith("/engine-rest")
             for method in sorted((rule.methods or set()) & STATE_CHANGING)]
    assert len(rules) >= 10
    for rule, method in rules:
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[a-z]+:)?{name}>", args[name], path)
        before = snapshot(world)
        response = client.open(path, method=method, json={"variables": {}}, headers={"X-CSRFToken": token})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.is_json and response.headers["WWW-Authenticate"].startswith("Basic")
        assert changed(before, snapshot(world)) == [], (method, path)
    # The same call with credentials works: the header is what counts.
    ok = world.app.test_client().post(f"/engine-rest/task/{args['task_id']}/claim", headers=basic("kasubag"))
    assert ok.status_code == 204
