"""IDOR on every route: staff of Kecamatan A using the ids of Kecamatan B's tasks, instances, attachments and
notifications get 403/404 and nothing changes; the same request with their own unit's id works (so the refusal
is about the unit, not a wrong URL).

The routes come from the app's URL map: a new route with a parameter and no case in IDOR_CASES fails
`test_every_parametrised_route_has_a_case`. Routes whose parameter names something no unit owns (a process
definition, a deployment, a report's process key, a static file) are `shared`/`public` cases: they must not
leak Kecamatan B's data, and where they take a unit (starting an instance) Kecamatan B is refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from engine import supervision
from engine.attachments import check_upload
from engine.models import Notification
from tests.hostile.helpers import GOOD_FORM, PDF, World, basic, build_world, changed, snapshot

SECRET = "RAHASIA"  # in every text of Kecamatan B's data: business keys, comments, reasons, file names
B_UNIT = {"variables": {"alurUnit": {"value": "kec-b", "type": "String"}}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = build_world(tmp_path_factory.mktemp("idor"))
    # Reports must have something of B's to leak: a finished, late step of sop_uji in B.
    svc = world.service
    view = svc.start("sop_uji", unit="kec-b", business_key=f"SOP-B-{SECRET}")
    world.clock.advance(hours=1)
    svc.complete(view.tasks[0].id, svc.actor("kasubag.b"), {}, late_reason=f"TERLAMBAT-{SECRET}")
    world.clock.advance(minutes=5)
    return world


# -------------------------------------------------------------------------------- objects of either unit

def web_task(w: World, unit: str) -> str:
    """A READY web_flow step 1 (Kasubag lane) in `unit`, with a comment and a document."""
    actor = w.service.actor("kasubag" if unit == "kec-a" else "kasubag.b")
    task_id = w.start(unit=unit, business_key=f"LAP-{unit}-{SECRET if unit == 'kec-b' else 'A'}")
    w.service.add_comment(task_id, actor, f"komentar {unit} {SECRET if unit == 'kec-b' else ''}")
    document = check_upload(f"dokumen-{unit}.pdf", PDF + unit.encode())
    w.service.add_attachment(task_id, actor, document, w.app.extensions["alur_attachments"])
    return task_id


def claimed_task(w: World, unit: str) -> str:
    task_id = web_task(w, unit)
    w.service.claim(task_id, w.service.actor("kasubag" if unit == "kec-a" else "kasubag.b"))
    return task_id


def instance_of(w: World, unit: str) -> str:
    return w.service.task(web_task(w, unit)).instance_id


def sop_instance(w: World, unit: str) -> str:
    return w.service.start("sop_uji", unit=unit, business_key=f"SOP-{unit}-{SECRET if unit == 'kec-b' else 'A'}").id


def started_by_its_kasubag(w: World, unit: str) -> str:
    """REST lets the starter cancel: an instance that the unit's Kasubag started."""
    actor = w.service.actor("kasubag" if unit == "kec-a" else "kasubag.b")
    key = f"START-{unit}-{SECRET if unit == 'kec-b' else 'A'}"
    return w.service.start("web_flow", unit=unit, business_key=key, actor=actor).id


def suspended(w: World, unit: str) -> str:
    instance_id = sop_instance(w, unit)
    supervision.suspend(w.service, instance_id, w.service.actor("camat" if unit == "kec-a" else "camat.b"), "uji")
    return instance_id


def sop_task(w: World, unit: str) -> str:
    return w.service.start("sop_uji", unit=unit, business_key=f"SOP-{unit}").tasks[0].id


def attachment(w: World, unit: str) -> int:
    task_id = web_task(w, unit)
    actor = w.service.actor("kasubag" if unit == "kec-a" else "kasubag.b")
    return int(w.service.attachments_for(w.service.task(task_id).instance_id, actor)[0]["id"])


def notification(w: World, unit: str) -> int:
    username = "camat" if unit == "kec-a" else "camat.b"
    with w.db.write() as s:
        row = Notification(dedupe_key=f"idor-{username}-{w.clock.now.timestamp()}-{id(s)}", username=username,
                           kind="reminder", message=f"pengingat {SECRET if unit == 'kec-b' else ''}",
                           created_at=w.clock.now, instance_id=sop_instance(w, unit))
        s.add(row)
        s.flush()
        return int(row.id)


def definition_id(w: World, unit: str = "") -> str:
    return w.service.definitions(key="sop_uji")[0].id


def deployment_id(w: World, unit: str = "") -> str:
    return str(w.service.deployments(limit=1)[0][0]["id"])


# -------------------------------------------------------------------------------- the table

@dataclass
class Case:
    """`url(world, unit)` builds the request for an object of `unit` (kec-b: the attack; kec-a: the control).
    kind: `unit` (the parameter names a unit's object), `shared` (it names something no unit owns; the request
    must not leak B's data, and a unit chosen in the body is B), `public` (not data at all)."""

    kind: str
    user: str
    url: Callable[[World, str], str]
    data: Callable[[World, str], dict[str, Any]] | None = None
    rest: bool = False
    own_status: tuple[int, ...] = (200, 204, 302)


R = "/engine-rest"
IDOR_CASES: dict[tuple[str, str], Case] = {
    # staff web
    ("tasks.show", "GET"): Case("unit", "kasubag", lambda w, u: f"/tugas/{web_task(w, u)}"),
    ("tasks.submit", "POST"): Case("unit", "kasubag", lambda w, u: f"/tugas/{web_task(w, u)}",
                                   lambda w, u: dict(GOOD_FORM)),
    ("tasks.comment", "POST"): Case("unit", "kasubag", lambda w, u: f"/tugas/{web_task(w, u)}/komentar",
                                    lambda w, u: {"body": "dari unit lain"}),
    ("tasks.download", "GET"): Case("unit", "kasubag", lambda w, u: f"/lampiran/{attachment(w, u)}"),
    ("inbox.claim", "POST"): Case("unit", "kasubag", lambda w, u: f"/tugas/{web_task(w, u)}/ambil"),
    ("inbox.unclaim", "POST"): Case("unit", "kasubag", lambda w, u: f"/tugas/{claimed_task(w, u)}/lepas"),
    # supervisor pages: camat supervises sop_uji in Kecamatan A
    ("supervisor.instance", "GET"): Case("unit", "camat", lambda w, u: f"/pengawasan/instances/{sop_instance(w, u)}"),
    ("supervisor.instance_diagram", "GET"): Case(
        "unit", "camat", lambda w, u: f"/pengawasan/instances/{sop_instance(w, u)}/diagram.json"),
    ("supervisor.cancel", "POST"): Case("unit", "camat",
                                        lambda w, u: f"/pengawasan/instances/{sop_instance(w, u)}/batalkan",
                                        lambda w, u: {"reason": "uji"}),
    ("supervisor.suspend", "POST"): Case("unit", "camat",
                                         lambda w, u: f"/pengawasan/instances/{sop_instance(w, u)}/tangguhkan",
                                         lambda w, u: {"reason": "uji"}),
    ("supervisor.resume", "POST"): Case("unit", "camat",
                                        lambda w, u: f"/pengawasan/instances/{suspended(w, u)}/lanjutkan",
                                        lambda w, u: {"reason": "uji"}),
    ("supervisor.reassign", "POST"): Case("unit", "camat", lambda w, u: f"/pengawasan/tasks/{sop_task(w, u)}/tugaskan",
                                          lambda w, u: {"assignee": "kasubag"}),
    ("supervisor.open_notification", "GET"): Case("unit", "camat",
                                                  lambda w, u: f"/pengawasan/notifikasi/{notification(w, u)}"),
    ("supervisor.definition", "GET"): Case("shared", "camat",
                                           lambda w, u: f"/pengawasan/definitions/{definition_id(w)}"),
    ("supervisor.definition_diagram", "GET"): Case(
        "shared", "camat", lambda w, u: f"/pengawasan/definitions/{definition_id(w)}/diagram.json"),
    ("supervisor.definition_document", "GET"): Case(
        "shared", "camat", lambda w, u: f"/pengawasan/definitions/{definition_id(w)}/dokumen"),
    **{(f"supervisor.{name}", "GET"): Case("shared", "camat", lambda w, u, s=suffix: (
        f"/pengawasan/laporan/sop_uji{s}?dari=2026-11-01&sampai=2026-11-30&unit={u}"))
       for name, suffix in (("report", ""), ("report_diagram", "/diagram.json"), ("report_xlsx", "/xlsx"),
                            ("report_print", "/cetak"), ("report_pdf", "/pdf"))},
    ("designer.start", "POST"): Case("shared", "kasubag", lambda w, u: f"/desain/definisi/{definition_id(w)}/mulai",
                                     lambda w, u: {"unit": u, "business_key": "IDOR"}),
    ("static", "GET"): Case("public", "kasubag", lambda w, u: "/static/js/instance-diagram.js"),
    # engine-rest: Basic auth as the same users
    ("rest.tasks.get_task", "GET"): Case("unit", "kasubag", lambda w, u: f"{R}/task/{web_task(w, u)}", rest=True),
    ("rest.tasks.get_form_variables", "GET"): Case("unit", "kasubag",
                                                   lambda w, u: f"{R}/task/{web_task(w, u)}/form-variables", rest=True),
    ("rest.tasks.claim", "POST"): Case("unit", "kasubag", lambda w, u: f"{R}/task/{web_task(w, u)}/claim", rest=True,
                                       data=lambda w, u: {"userId": "kasubag"}),
    ("rest.tasks.unclaim", "POST"): Case("unit", "kasubag", lambda w, u: f"{R}/task/{claimed_task(w, u)}/unclaim",
                                         rest=True),
    ("rest.tasks.complete", "POST"): Case("unit", "kasubag", lambda w, u: f"{R}/task/{web_task(w, u)}/complete",
                                          lambda w, u: {"variables": {"judul": {"value": "Laporan"},
                                                                      "sifat": {"value": "biasa"}}}, rest=True),
    ("rest.instances.get_instance", "GET"): Case("unit", "kasubag",
                                                 lambda w, u: f"{R}/process-instance/{instance_of(w, u)}", rest=True),
    ("rest.instances.cancel_instance", "DELETE"): Case("unit", "kasubag", lambda w, u: (
        f"{R}/process-instance/{started_by_its_kasubag(w, u)}"), rest=True),
    ("rest.instances.get_activity_instances", "GET"): Case("unit", "kasubag", lambda w, u: (
        f"{R}/process-instance/{instance_of(w, u)}/activity-instances"), rest=True),
    ("rest.instances.get_variables", "GET"): Case("unit", "kasubag", lambda w, u: (
        f"{R}/process-instance/{instance_of(w, u)}/variables"), rest=True),
    ("rest.history.get_historic_instance", "GET"): Case("unit", "kasubag", lambda w, u: (
        f"{R}/history/process-instance/{instance_of(w, u)}"), rest=True),
    ("rest.definitions.start_by_key_and_unit", "POST"): Case("unit", "kasubag", lambda w, u: (
        f"{R}/process-definition/key/web_flow/tenant-id/{u}/start"), lambda w, u: {}, rest=True),
    ("rest.definitions.start_by_key", "POST"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/process-definition/key/web_flow/start"), lambda w, u: {**B_UNIT} if u == "kec-b" else {}, rest=True),
    ("rest.definitions.start_by_id", "POST"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/process-definition/{w.service.definitions(key='web_flow')[0].id}/start"),
        lambda w, u: {**B_UNIT} if u == "kec-b" else {}, rest=True),
    ("rest.definitions.get_definition", "GET"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/process-definition/{definition_id(w)}"), rest=True),
    ("rest.definitions.get_xml", "GET"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/process-definition/{definition_id(w)}/xml"), rest=True),
    ("rest.definitions.get_definition_by_key", "GET"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/process-definition/key/sop_uji"), rest=True),
    ("rest.definitions.get_xml_by_key", "GET"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/process-definition/key/sop_uji/xml"), rest=True),
    ("rest.deployments.get_deployment", "GET"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/deployment/{deployment_id(w)}"), rest=True),
    ("rest.deployments.delete_deployment", "DELETE"): Case("shared", "kasubag", lambda w, u: (
        f"{R}/deployment/{deployment_id(w)}?cascade=true"), rest=True, own_status=(403,)),
    **{("rest._unknown", method): Case("public", "kasubag", lambda w, u: f"{R}/task/x/y/z", rest=True,
                                       own_status=(404, 405))
       for method in ("GET", "POST", "PUT", "DELETE", "PATCH")},
}


def _parametrised_routes(world: World) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in world.app.url_map.iter_rules() if rule.arguments
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}


def test_every_parametrised_route_has_a_case(world: World) -> None:
    routes = _parametrised_routes(world)
    assert len(routes) >= 40
    assert sorted(routes - set(IDOR_CASES)) == [], "add an IDOR case for the new route(s)"
    assert sorted(set(IDOR_CASES) - routes) == [], "an IDOR case for a route that no longer exists"


_clients: dict[tuple[int, str], FlaskClient] = {}


def _signed_in(world: World, user: str) -> FlaskClient:
    key = (id(world), user)
    if key not in _clients:
        _clients[key] = world.client(user)
    return _clients[key]


def _call(world: World, case: Case, method: str, unit: str, *, unchanged: bool = False):  # type: ignore[no-untyped-def]
    url = case.url(world, unit)  # makes the object the request aims at...
    data = case.data(world, unit) if case.data else None
    client = world.app.test_client() if case.rest else _signed_in(world, case.user)
    headers = basic(case.user) if case.rest else None
    before = snapshot(world)  # ...so that between the snapshots there is the request alone
    response = client.open(url, method=method, headers=headers, **({"json": data} if case.rest else {"data": data}))
    if unchanged:
        assert changed(before, snapshot(world)) == [], (method, url)
    return response


@pytest.mark.parametrize("route", sorted(IDOR_CASES), ids=lambda r: f"{r[1]} {r[0]}")
def test_another_units_ids_are_refused_and_change_nothing(world: World, route: tuple[str, str]) -> None:
    case = IDOR_CASES[route]
    method = route[1]
    attack = _call(world, case, method, "kec-b", unchanged=True)
    body = attack.get_data().decode("utf-8", "replace")  # PDF and XLSX too
    if case.kind == "unit":
        assert attack.status_code in (403, 404), (route, attack.status_code, body[:300])
    if case.kind == "shared" and case.data is not None:  # a unit chosen in the request: Kecamatan B
        assert attack.status_code in (400, 403, 404), (route, attack.status_code, body[:300])
    assert SECRET not in body, (route, body[:500])
    if route[0] == "supervisor.report_xlsx":
        from openpyxl import load_workbook

        texts = [str(c.value) for row in load_workbook(io.BytesIO(attack.data)).active.iter_rows() for c in row]
        assert not [t for t in texts if SECRET in t]
    control = _call(world, case, method, "kec-a")
    assert control.status_code in case.own_status, (route, "own unit", control.status_code, control.data[:300])


def test_lists_and_counts_hold_nothing_of_another_unit(world: World) -> None:
    """The routes without ids: inbox, supervisor lists and REST queries of a Kecamatan A user."""
    web_task(world, "kec-b")
    sop_instance(world, "kec-b")
    for user, path in (("kasubag", "/"), ("camat", "/"), ("camat", "/pengawasan/instances"),
                       ("camat", "/pengawasan/instances?unit=kec-b"), ("camat", "/pengawasan/notifikasi?semua=1"),
                       ("camat", "/pengawasan/laporan")):
        body = world.client(user).get(path).get_data(as_text=True)
        assert SECRET not in body, (user, path)
    client = world.app.test_client()
    for path in ("/task", "/task?tenantIdIn=kec-b", "/process-instance", "/process-instance?tenantIdIn=kec-b",
                 "/history/process-instance", "/history/task", "/history/activity-instance"):
        response = client.get(f"{R}{path}", headers=basic("kasubag"))
        assert response.status_code in (200, 400), path
        assert SECRET not in response.get_data(as_text=True), path
    with world.db.read() as s:  # the test made B's notifications: they stay B's
        assert all(n.username != "camat" or SECRET not in n.message for n in s.scalars(select(Notification)))
