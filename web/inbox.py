"""'Tugas Saya': my tasks first, then those my roles (and Plh/Plt substitutions) let me claim, by deadline.

Reads only the task projection (`Alur.inbox`): no workflow is deserialized to draw this page.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from engine.accounts import Actor
from engine.inbox_query import COUNT_CAP
from engine.views import TaskView
from web.i18n import gettext as _
from web.i18n import local_datetime, time_left
from web.redirects import safe_next

bp = Blueprint("inbox", __name__)

_CACHE_SECONDS = 30.0
_cache_lock = threading.Lock()


def cached(name: str, load: Any) -> Any:
    """Units and definitions change rarely and every page shows them: keep them half a minute per app."""
    store = current_app.extensions.setdefault("alur_cache", {})
    now = time.monotonic()
    hit = store.get(name)
    if hit is not None and now - hit[0] < _CACHE_SECONDS:
        return hit[1]
    value = load()
    with _cache_lock:
        store[name] = (now, value)
    return value


def units_by_id() -> dict[int, dict[str, Any]]:
    svc = current_app.extensions["alur"]
    return cached("units", lambda: {u["id"]: u for u in svc.units()})


def sop_names() -> dict[str, str]:
    svc = current_app.extensions["alur"]
    return cached("definitions", lambda: {d.key: d.name for d in svc.definitions(latest_only=True)})


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One line of 'Tugas Saya' with what it shows already worked out. Looking each field up from the
    template (units, SOP names, Plh/Plt, URLs) cost a Jinja call apiece, ~1 ms on a page of 25 rows."""

    href: str
    step: str
    sop: str
    business_key: str | None
    unit: str
    role: str
    acting: str | None  # "Plh" / "Plt" when the user holds the role only as a substitute
    mine: bool  # claimed by the user: the button releases it
    late: bool
    due: str | None  # the deadline in the unit's time zone; None without one
    left: str  # "dalam 2 jam" while not late
    action: str  # where the claim or release button posts


def inbox_rows(tasks: list[TaskView], units: dict[int, dict[str, Any]], sops: dict[str, str], actor: Actor,
               now: datetime) -> list[InboxRow]:
    # Task ids are UUIDs: they go into the routes without quoting.
    show = url_for("tasks.show", task_id="-")[:-1]
    claim = url_for("inbox.claim", task_id="-").replace("/-/", "/{}/", 1)
    release = url_for("inbox.unclaim", task_id="-").replace("/-/", "/{}/", 1)
    rows = []
    for t in tasks:
        unit = units.get(t.unit_id, {})
        mine = t.assignee == actor.username
        late = t.due_at is not None and now > t.due_at
        rows.append(InboxRow(
            href=show + t.id, step=t.name, sop=sops.get(t.process_key, t.process_name or t.process_key),
            business_key=t.business_key, unit=unit.get("name", t.unit_code or ""), role=t.candidate_role or "",
            acting=actor.acting.get((t.unit_id, t.candidate_role or "")), mine=mine, late=late,
            due=local_datetime(t.due_at, unit.get("timezone")) if t.due_at is not None else None,
            left=time_left(t.due_at, now) if t.due_at is not None and not late else "",
            action=(release if mine else claim).format(t.id)))
    return rows


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    svc = current_app.extensions["alur"]
    actor = current_user.actor
    units = units_by_id()
    sops = sop_names()
    process_key = request.args.get("sop") or None
    unit_code = request.args.get("unit") or None
    if process_key not in sops:
        process_key = None
    my_units = sorted((units[u] for u in actor.unit_ids if u in units), key=lambda u: u["name"])
    if unit_code not in {u["code"] for u in my_units}:
        unit_code = None
    try:
        page = max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    size = current_app.config["ALUR_INBOX_PAGE_SIZE"]
    found = svc.inbox(actor, process_key=process_key, unit=unit_code, limit=size, offset=(page - 1) * size,
                      count_cap=current_app.config.get("ALUR_INBOX_COUNT_CAP", COUNT_CAP))
    # Past the counting cap the last page is unknown: "Halaman 41", with a next link while more remain.
    pages = None if found.capped else max(1, (found.total + size - 1) // size)
    has_next = found.capped or page * size < found.total
    return render_template(
        "inbox.html", rows=inbox_rows(found.tasks, units, sops, actor, svc.clock()), total=found.total,
        capped=found.capped, page=page, pages=pages,
        has_next=has_next, my_units=my_units,
        sops=sops, process_key=process_key, unit_code=unit_code,
        query_next=request.full_path.rstrip("?"),
    )


@bp.post("/tugas/<task_id>/ambil")
@login_required
def claim(task_id: str):  # type: ignore[no-untyped-def]
    current_app.extensions["alur"].claim(task_id, current_user.actor)
    flash(_("Tugas sudah Anda ambil."), "success")
    return redirect(safe_next(request.form.get("next"), url_for("tasks.show", task_id=task_id)))


@bp.post("/tugas/<task_id>/lepas")
@login_required
def unclaim(task_id: str):  # type: ignore[no-untyped-def]
    current_app.extensions["alur"].unclaim(task_id, current_user.actor)
    flash(_("Tugas dilepas: rekan dengan peran yang sama dapat mengambilnya."), "info")
    return redirect(safe_next(request.form.get("next"), url_for("inbox.index")))
