"""Accounts under attack and after changes (issue 13, items 6, 10 and 15): the per-address sign-in limit, the
bound on concurrent password hashing, the REST credentials cache against password changes, API tokens after a
reset, disabling and enabling an account, the limit on wrong current passwords, and claims after a role is lost."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from engine import accounts
from engine.errors import NotFound, PermissionDenied
from engine.models import AuditEvent, Task
from engine.tokens import create_token, list_tokens
from engine.worker import run_round
from tests.web.conftest import PASSWORD, Env, login, make_app

REST_PATH = "/engine-rest/deployment?maxResults=0"  # needs credentials (/version does not)
GUARD = 30  # seconds: only against a hang, never part of what is asserted


class CountingHasher:
    """Stands in for argon2 inside the bounded hasher: counts calls and can hold them until released."""

    def __init__(self, real: Any, hold: bool = False) -> None:
        self.real = real
        self.calls = 0
        self.inside = 0
        self.max_inside = 0
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._lock = threading.Lock()

    def hold(self) -> None:
        """From now on calls wait inside until `release` is set; `entered` counts only those."""
        self.entered = threading.Semaphore(0)
        self.release.clear()

    def _enter(self) -> None:
        with self._lock:
            self.calls += 1
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
        self.entered.release()
        assert self.release.wait(GUARD)
        with self._lock:
            self.inside -= 1

    def hash(self, password: str) -> str:
        self._enter()
        return self.real.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self._enter()
        return self.real.verify(password_hash, password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self.real.check_needs_rehash(password_hash)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    bounded = accounts.hashing()
    slots, wait = bounded.slots, bounded.wait_seconds
    counting = CountingHasher(bounded._argon2)
    monkeypatch.setattr(bounded, "_argon2", counting)
    yield counting
    accounts.configure_hashing(slots, wait)


def _basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode(),
            "Accept": "application/json"}


def _audit(env: Env, action: str) -> list[AuditEvent]:
    with env.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# ------------------------------------------------------------------------------------------------ item 6


def test_failures_with_ever_new_usernames_from_one_address_get_blocked(env: Env, hasher: CountingHasher) -> None:
    app = make_app(env, ALUR_LOGIN_MAX_FAILURES_PER_ADDRESS=6)
    client = app.test_client()
    for i in range(6):
        assert login(client, f"tamu{i}", "tebakan-saja").status_code == 401
    assert hasher.calls == 6  # unknown names still cost a (dummy) hash: no timing oracle
    blocked = login(client, "tamu-baru", "tebakan-saja")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert login(client, "kasubag").status_code == 429  # a real account from that address waits too
    assert hasher.calls == 6  # blocked attempts hash nothing
    other = app.test_client()
    assert other.post("/masuk", data={"username": "kasubag", "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 302


def test_a_burst_beyond_the_hashing_bound_is_refused_not_queued(env: Env, hasher: CountingHasher) -> None:
    app = make_app(env)
    accounts.configure_hashing(2, 0)  # two slots; no waiting for one
    hasher.hold()
    performed = accounts.hashing().performed
    results: dict[int, Any] = {}

    def attempt(i: int) -> None:
        response = app.test_client().post("/masuk", data={"username": f"tamu{i}", "password": "tebakan"},
                                          environ_base={"REMOTE_ADDR": f"10.1.0.{i}"})
        results[i] = (response.status_code, response.headers.get("Retry-After"))

    holders = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in holders:
        t.start()
    for _ in holders:  # both slots are taken, their hashes held inside
        assert hasher.entered.acquire(timeout=GUARD)
    burst = [threading.Thread(target=attempt, args=(i,)) for i in range(2, 8)]
    for t in burst:
        t.start()
    for t in burst:  # they come back while the slots are still held: refused, not queued
        t.join(GUARD)
        assert not t.is_alive()
    assert all(results[i] == (503, "5") for i in range(2, 8))
    assert hasher.calls == 2 and hasher.inside == 2
    assert accounts.hashing().performed - performed == 2  # the bounded hasher let exactly two through
    hasher.release.set()
    for t in holders:
        t.join(GUARD)
    assert results[0][0] == results[1][0] == 401
    assert hasher.max_inside == 2


def test_rest_basic_is_limited_per_address_and_by_the_hashing_bound(env: Env, hasher: CountingHasher) -> None:
    app = make_app(env, ALUR_LOGIN_MAX_FAILURES_PER_ADDRESS=4)
    client = app.test_client()
    for i in range(4):
        assert client.get(REST_PATH, headers=_basic(f"tamu{i}", "tebakan")).status_code == 401
    blocked = client.get(REST_PATH, headers=_basic("tamu-baru", "tebakan"))
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert hasher.calls == 4

    accounts.configure_hashing(1, 0)
    hasher.hold()
    elsewhere = {"REMOTE_ADDR": "10.2.0.1"}
    holder = threading.Thread(target=lambda: app.test_client().get(
        REST_PATH, headers=_basic("camat"), environ_base=elsewhere))
    holder.start()
    assert hasher.entered.acquire(timeout=GUARD)
    busy = app.test_client().get(REST_PATH, headers=_basic("kasubag"),
                                 environ_base={"REMOTE_ADDR": "10.2.0.2"})
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert hasher.calls == 5
    hasher.release.set()
    holder.join(GUARD)
    assert app.test_client().get(REST_PATH, headers=_basic("kasubag"),
                                 environ_base={"REMOTE_ADDR": "10.2.0.2"}).status_code == 200


# ------------------------------------------------------------------------------------------------ item 15


def test_old_password_stops_working_over_rest_at_once(env: Env, hasher: CountingHasher) -> None:
    app = make_app(env)
    client = app.test_client()
    assert client.get(REST_PATH, headers=_basic("kasubag")).status_code == 200
    calls = hasher.calls
    assert client.get(REST_PATH, headers=_basic("kasubag")).status_code == 200
    assert hasher.calls == calls  # the cache holds: no argon2 on the second call
    # Changed in the database as another process (the CLI, another gunicorn worker) would: no clock moves.
    with env.db.write() as s:
        accounts.set_password(s, "kasubag", "baru-sekali-123")
    assert client.get(REST_PATH, headers=_basic("kasubag")).status_code == 401
    assert client.get(REST_PATH, headers=_basic("kasubag", "baru-sekali-123")).status_code == 200
    # The user's own change on the web ends the cached old password the same way.
    env.service.change_password("kasubag", "baru-sekali-123", "lagi-baru-456")
    assert client.get(REST_PATH, headers=_basic("kasubag", "baru-sekali-123")).status_code == 401


def test_api_tokens_end_with_a_password_reset(env: Env) -> None:
    app = make_app(env)
    with env.db.write() as s:
        token_id, token = create_token(s, "camat", name="Modeler")
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    assert app.test_client().get(REST_PATH, headers=bearer).status_code == 200
    with env.db.write() as s:
        assert accounts.set_password(s, "camat", "baru-sekali-123") == 1
    assert app.test_client().get(REST_PATH, headers=bearer).status_code == 401
    with env.db.read() as s:
        assert list_tokens(s, "camat") == []
    [revoked] = _audit(env, "token_revoked")
    assert revoked.data == {"token_id": token_id, "username": "camat", "reason": "password_reset"}
    assert [e.data["username"] for e in _audit(env, "password_reset")] == ["camat"]


def test_disable_ends_sessions_tokens_and_claims_and_enable_lets_in_again(env: Env) -> None:
    app = make_app(env)
    task_id = env.start()
    web = app.test_client()
    assert login(web, "kasubag").status_code == 302
    assert web.post(f"/tugas/{task_id}/ambil").status_code == 302
    assert env.service.task(task_id).assignee == "kasubag"
    rest = app.test_client()
    assert rest.get(REST_PATH, headers=_basic("kasubag")).status_code == 200  # now cached
    with env.db.write() as s:
        _, token = create_token(s, "kasubag")

    with env.db.write() as s:
        assert accounts.disable_user(s, "kasubag", actor="cli") == [task_id]
    assert web.get("/").status_code == 302  # the session ended
    assert login(app.test_client(), "kasubag").status_code == 401
    assert rest.get(REST_PATH, headers=_basic("kasubag")).status_code == 401
    assert rest.get(REST_PATH, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert env.service.task(task_id).assignee is None
    [released] = _audit(env, "release")
    assert released.task_id == task_id
    assert released.data == {"username": "kasubag", "reason": "released because the user was disabled"}
    assert [e.data["username"] for e in _audit(env, "user_disabled")] == ["kasubag"]
    with pytest.raises(accounts.AccountError), env.db.write() as s:
        accounts.disable_user(s, "kasubag")

    with env.db.write() as s:
        accounts.enable_user(s, "kasubag")
    assert web.get("/").status_code == 302  # the old session stays ended
    assert rest.get(REST_PATH, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(app.test_client(), "kasubag").status_code == 302
    assert [e.data["username"] for e in _audit(env, "user_enabled")] == ["kasubag"]


def test_wrong_current_passwords_on_the_password_page_are_limited(env: Env) -> None:
    app = make_app(env)
    client = app.test_client()
    assert login(client, "kasubag").status_code == 302
    new = {"new": "baru-sekali-1", "confirm": "baru-sekali-1"}
    for _ in range(5):
        assert client.post("/kata-sandi", data={"current": "tebakan", **new}).status_code == 422
    blocked = client.post("/kata-sandi", data={"current": PASSWORD, **new})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Terlalu banyak percobaan" in blocked.get_data(as_text=True)
    assert login(app.test_client(), "kasubag").status_code == 429  # the same limit as signing in
    assert env.service.login("kasubag", PASSWORD) == "kasubag"  # nothing was changed


# ------------------------------------------------------------------------------------------------ item 10


def test_revoked_role_releases_the_claim_and_refuses_completion_and_reading(env: Env) -> None:
    app = make_app(env)
    task_id = env.start()
    iid = env.service.task(task_id).instance_id
    web = app.test_client()
    assert login(web, "kasubag").status_code == 302
    assert web.post(f"/tugas/{task_id}/ambil").status_code == 302
    assert env.service.instance(iid, env.service.actor("kasubag")).id == iid

    with env.db.write() as s:
        assert accounts.revoke(s, "kasubag", "Kasubag", "kec-a", actor="cli") == [task_id]
    refused = web.post(f"/tugas/{task_id}", data={"judul": "Laporan", "sifat": "biasa", "action": "complete"})
    assert refused.status_code in (403, 404)
    assert env.service.task(task_id).state == "READY" and env.service.task(task_id).assignee is None
    kasubag = env.service.actor("kasubag")
    with pytest.raises((NotFound, PermissionDenied)):
        env.service.complete(task_id, kasubag, {"judul": "Laporan", "sifat": "biasa"})
    with pytest.raises(NotFound):
        env.service.instance(iid, kasubag)
    [released] = _audit(env, "release")
    assert (released.task_id, released.actor) == (task_id, "cli")
    assert released.data == {"username": "kasubag", "reason": "released because the role was revoked"}
    assert [e.data for e in _audit(env, "role_revoked")] == [{"username": "kasubag", "role": "Kasubag",
                                                               "unit": "kec-a"}]


def test_a_claim_alone_grants_nothing_after_a_substitution_ends(env: Env) -> None:
    """kasubag.b (of kec-b) is Plh Kasubag of kec-a for one day and claims a step; the day after, the claim
    no longer lets them complete the step or read the instance, and the worker releases it."""
    task_id = env.start()
    iid = env.service.task(task_id).instance_id
    today = env.clock().date()
    with env.db.write() as s:
        accounts.add_substitution(s, "kasubag.b", "Kasubag", "kec-a", today, today)
    env.service.claim(task_id, env.service.actor("kasubag.b"))
    assert env.service.instance(iid, env.service.actor("kasubag.b")).id == iid

    env.clock.advance(days=1)
    assert env.clock().date() > today
    plh = env.service.actor("kasubag.b")
    with pytest.raises((NotFound, PermissionDenied)):
        env.service.complete(task_id, plh, {"judul": "Laporan", "sifat": "biasa"})
    with pytest.raises(NotFound):
        env.service.instance(iid, plh)
    assert not env.service.may_work(task_id, plh)

    report = run_round(env.service)
    assert report.released == 1
    assert env.service.task(task_id).assignee is None
    [released] = _audit(env, "release")
    assert released.data == {"username": "kasubag.b", "reason": "released because the substitution ended"}
    assert run_round(env.service).released == 0


def test_claims_still_allowed_stay_when_another_role_goes(env: Env) -> None:
    task_id = env.start()
    with env.db.write() as s:
        accounts.grant(s, "kasubag", "Staf", "kec-a")
    env.service.claim(task_id, env.service.actor("kasubag"))
    with env.db.write() as s:
        assert accounts.revoke(s, "kasubag", "Staf", "kec-a") == []
    assert env.service.task(task_id).assignee == "kasubag"
    with env.db.read() as s:
        assert s.scalar(select(Task.assignee).where(Task.id == task_id)) == "kasubag"
    assert _audit(env, "release") == []
    with env.db.write() as s:
        assert accounts.revoke(s, "kasubag", "Staf", "kec-a") is None  # no longer held: nothing to do


def test_a_claim_made_with_a_role_goes_with_it_though_another_role_in_the_unit_stays(env: Env) -> None:
    """A Kasubag moved to Staf in the same kecamatan: the Kasubag step they claimed is released at once and
    they can neither complete it nor claim it again (their Staf role in the unit is no right to it)."""
    task_id = env.start()
    with env.db.write() as s:
        accounts.grant(s, "kasubag", "Staf", "kec-a")
    env.service.claim(task_id, env.service.actor("kasubag"))
    with env.db.write() as s:
        assert accounts.revoke(s, "kasubag", "Kasubag", "kec-a") == [task_id]
    assert env.service.task(task_id).assignee is None
    staf_now = env.service.actor("kasubag")
    with pytest.raises((NotFound, PermissionDenied)):
        env.service.claim(task_id, staf_now)
    with pytest.raises((NotFound, PermissionDenied)):
        env.service.complete(task_id, staf_now, {"judul": "Laporan", "sifat": "biasa"})
    assert env.service.task(task_id).state == "READY"


def test_a_claim_made_as_plh_from_within_the_unit_ends_with_the_substitution(env: Env) -> None:
    """The usual Plh: someone of the same unit (staf, Staf of kec-a) stands in for the Kasubag for a day and
    claims a step; the day after, they may not complete it and the worker releases it."""
    task_id = env.start()
    today = env.clock().date()
    with env.db.write() as s:
        accounts.add_substitution(s, "staf", "Kasubag", "kec-a", today, today)
    env.service.claim(task_id, env.service.actor("staf"))
    env.clock.advance(days=1)
    former_plh = env.service.actor("staf")
    assert not env.service.may_work(task_id, former_plh)
    with pytest.raises((NotFound, PermissionDenied)):
        env.service.complete(task_id, former_plh, {"judul": "Laporan", "sifat": "biasa"})
    assert run_round(env.service).released == 1
    assert env.service.task(task_id).assignee is None


def test_a_step_a_supervisor_gave_to_someone_of_the_unit_stays_theirs(env: Env) -> None:
    """A reassignment (not a claim) still lets a member of the step's unit without its role work it."""
    task_id = env.start()
    camat = app_client = make_app(env).test_client()
    assert login(app_client, "camat").status_code == 302
    assert camat.post(f"/pengawasan/tasks/{task_id}/tugaskan", data={"assignee": "staf"}).status_code in (302, 303)
    staf = env.service.actor("staf")
    assert env.service.task(task_id).assignee == "staf" and env.service.may_work(task_id, staf)
    with env.db.write() as s:
        assert accounts.release_claims(s, "staf", reason="test") == []
    env.service.complete(task_id, staf, {"judul": "Laporan", "sifat": "biasa"})
    assert env.service.task(task_id).state == "COMPLETED"
