"""Pengawasan: the supervisor's pages. Instances (list with filters and counts per SOP), one instance (diagram with
done/active/overdue markers and badges, the timeline, data, audit trail, supervisor actions), the SOP
performance report (table, heatmap on the diagram, chart, XLSX, printable page, PDF), each definition's SOP AP
document with its versions, and the notification bell.

Every query goes through engine/supervision.py, which limits what it reads to the units the user may see.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from engine import catalog, report_export, supervision
from engine.errors import FormValidationError, NotFound
from engine.moments import FIRST_DAY, LAST_DAY, OutOfWindow, check_day
from engine.reports import format_minutes
from engine.service import UNREAD_CAP
from engine.sop.render import render_html
from engine.supervision import InstanceFilter
from web.i18n import gettext as _
from web.i18n import locale_code
from web.inbox import sop_names, units_by_id
from web.redirects import safe_next

bp = Blueprint("supervisor", __name__, url_prefix="/pengawasan")

PAGE_SIZE = 25
REPORT_ZONE = "Asia/Jakarta"


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown (`_(label)` in the templates)."""
    return message


STATUS_LABELS = {"running": N_("Berjalan"), "suspended": N_("Ditangguhkan"), "completed": N_("Selesai"),
                 "cancelled": N_("Dibatalkan")}
# What engine/supervision.py says when a supervisor action is refused; translated when flashed.
ENGINE_MESSAGES = (N_("paling banyak 2000 karakter"), N_("wajib diisi: tulis alasan pembatalan"),
                   N_("pengguna ini tidak memegang peran di unit langkah ini"))
# Self-contained documents (SOP AP, printable report) carry inline CSS; they get a CSP of their own that
# allows exactly that and nothing else (no script, no fetch).
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def _svc():  # type: ignore[no-untyped-def]
    return current_app.extensions["alur"]


def _actor():  # type: ignore[no-untyped-def]
    return current_user.actor


def _date_arg(name: str) -> date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return check_day(date.fromisoformat(value), name)
    except OutOfWindow:  # 9999-12-31 would overflow the period's end; 0001-01-01 is no office's period
        message = _("Tanggal %(value)s (%(name)s) di luar rentang yang didukung: %(first)s s.d. %(last)s.",
                    value=value, name=name, first=FIRST_DAY.isoformat(), last=LAST_DAY.isoformat())
        abort(Response(render_template("error.html", status=400, title=_("Periode tidak valid"), message=message,
                                       detail=None), status=400))
    except ValueError:
        return None


def _local_midnight(day: date | None, zone: str = REPORT_ZONE) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), ZoneInfo(zone))


def _visible_units() -> list[dict[str, Any]]:
    actor = _actor()
    units = units_by_id()
    with _svc().db.read() as s:
        visible = supervision.visible_unit_ids(s, actor)
    return sorted((u for uid, u in units.items() if visible is None or uid in visible), key=lambda u: u["name"])


def minutes_text(value: float | None) -> str:
    return format_minutes(value, lang=locale_code())


def bell() -> dict[str, Any]:
    """The header's notification bell: the unread count, shown as "99+" past 99."""
    if not current_user.is_authenticated:
        return {"unread": 0, "label": ""}
    unread = current_user.unread  # read in the same statement as the user (Alur.session_user)
    if unread is None:
        unread = supervision.unread_count(_svc(), _actor(), cap=UNREAD_CAP)
    return {"unread": unread, "label": "99+" if unread > 99 else str(unread)}


@bp.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"alur_bell": bell, "alur_minutes": minutes_text, "alur_status_labels": STATUS_LABELS}


# ------------------------------------------------------------------------------------------------ instances

@bp.get("/instances")
@login_required
def instances():  # type: ignore[no-untyped-def]
    svc, actor = _svc(), _actor()
    sops = sop_names()
    units = _visible_units()
    status = request.args.get("status") or None
    flt = InstanceFilter(
        process_key=request.args.get("sop") if request.args.get("sop") in sops else None,
        unit_code=request.args.get("unit") if request.args.get("unit") in {u["code"] for u in units} else None,
        status=status if status in supervision.STATUSES else None,
        overdue_only=request.args.get("terlambat") == "1",
        started_from=_local_midnight(_date_arg("dari")),
        started_until=_local_midnight(d + timedelta(days=1)) if (d := _date_arg("sampai")) else None,
    )
    try:
        page = max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    rows, total = supervision.list_instances(svc, actor, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    counts = supervision.counts_per_sop(svc, actor, flt)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "supervisor/instances.html", rows=rows, total=total, page=page,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE), counts=counts, sops=sops, units=units, flt=flt,
        dari=request.args.get("dari", ""), sampai=request.args.get("sampai", ""), args=args, now=svc.clock(),
        units_by_code={u["code"]: u for u in units})


@bp.get("/instances/<instance_id>")
@login_required
def instance(instance_id: str):  # type: ignore[no-untyped-def]
    svc = _svc()
    detail = supervision.instance_detail(svc, instance_id, _actor())
    return render_template("supervisor/instance.html", d=detail, i=detail.instance, now=svc.clock(),
                           tz=detail.unit["timezone"])


@bp.get("/instances/<instance_id>/diagram.json")
@login_required
def instance_diagram(instance_id: str):  # type: ignore[no-untyped-def]
    svc, actor = _svc(), _actor()
    detail = supervision.instance_detail(svc, instance_id, actor)
    return jsonify({"xml": supervision.diagram_xml(svc, instance_id, actor), "markers": detail.markers,
                    "badges": detail.badges})


def _back(instance_id: str):  # type: ignore[no-untyped-def]
    return redirect(url_for("supervisor.instance", instance_id=instance_id))


def _instance_action(instance_id: str, action: Any, done_message: str):  # type: ignore[no-untyped-def]
    try:
        action(_svc(), instance_id, _actor(), request.form.get("reason", "")[:2000])
    except FormValidationError as exc:
        flash("; ".join(_(m) for ms in exc.errors.values() for m in ms), "error")  # type: ignore[attr-defined]
    else:
        flash(done_message, "success")
    return _back(instance_id)


@bp.post("/instances/<instance_id>/batalkan")
@login_required
def cancel(instance_id: str):  # type: ignore[no-untyped-def]
    return _instance_action(instance_id, supervision.cancel, _("Instans dibatalkan."))


@bp.post("/instances/<instance_id>/tangguhkan")
@login_required
def suspend(instance_id: str):  # type: ignore[no-untyped-def]
    return _instance_action(instance_id, supervision.suspend,
                            _("Instans ditangguhkan: langkahnya tidak dapat diselesaikan sampai dilanjutkan."))


@bp.post("/instances/<instance_id>/lanjutkan")
@login_required
def resume(instance_id: str):  # type: ignore[no-untyped-def]
    return _instance_action(instance_id, supervision.resume, _("Instans dilanjutkan."))


@bp.post("/tasks/<task_id>/tugaskan")
@login_required
def reassign(task_id: str):  # type: ignore[no-untyped-def]
    svc, actor = _svc(), _actor()
    task = svc.task(task_id, actor)  # NotFound when not visible
    try:
        supervision.reassign(svc, task_id, actor, request.form.get("assignee", "")[:64])
    except FormValidationError as exc:
        flash("; ".join(_(m) for ms in exc.errors.values() for m in ms), "error")  # type: ignore[attr-defined]
    else:
        flash(_("Penugasan langkah diubah."), "success")
    return _back(task.instance_id)


# ------------------------------------------------------------------------------------------------ report

def _report_args(key: str) -> dict[str, Any]:
    versions = supervision.definition_versions(_svc(), key)
    if not versions:
        raise NotFound(f"no process {key!r}")
    today = _svc().clock().astimezone(ZoneInfo(REPORT_ZONE)).date()
    since_day = _date_arg("dari") or date(today.year, 1, 1)
    until_day = _date_arg("sampai") or today
    if until_day < since_day:
        since_day, until_day = until_day, since_day
    version = request.args.get("versi") or None
    if version not in {v["id"] for v in versions}:
        version = None
    units = _visible_units()
    unit_code = request.args.get("unit") if request.args.get("unit") in {u["code"] for u in units} else None
    unit_label = next((u["name"] for u in units if u["code"] == unit_code), None) or (
        _("Semua unit yang Anda awasi") if not _actor().is_admin else _("Semua unit"))
    period_label = _("%(since)s s.d. %(until)s", since=since_day.strftime("%d-%m-%Y"),
                     until=until_day.strftime("%d-%m-%Y"))
    return {"key": key, "versions": versions, "version": version, "units": units, "unit_code": unit_code,
            "since_day": since_day, "until_day": until_day, "unit_label": unit_label, "period_label": period_label}


_report_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
_REPORT_CACHE_SECONDS = 30.0


def _compute(a: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The report, kept 30 s per user and arguments: the page, its heatmap JSON and an export right after
    ask for the same numbers."""
    key = (_actor().username, a["key"], a["version"], a["unit_code"], a["since_day"], a["until_day"])
    now = monotonic()
    hit = _report_cache.get(key)
    if hit is not None and now - hit[0] < _REPORT_CACHE_SECONDS:
        return hit[1]
    value = _uncached_report(a)
    if len(_report_cache) > 200:
        _report_cache.clear()
    _report_cache[key] = (now, value)
    return value


def _uncached_report(a: dict[str, Any]):  # type: ignore[no-untyped-def]
    return supervision.report(_svc(), _actor(), a["key"], definition_id=a["version"], unit_code=a["unit_code"],
                              since=_local_midnight(a["since_day"]),
                              until=_local_midnight(a["until_day"] + timedelta(days=1)))


def _query(a: dict[str, Any]) -> dict[str, str]:
    q = {"dari": a["since_day"].isoformat(), "sampai": a["until_day"].isoformat()}
    if a["version"]:
        q["versi"] = a["version"]
    if a["unit_code"]:
        q["unit"] = a["unit_code"]
    return q


@bp.get("/laporan")
@login_required
def reports():  # type: ignore[no-untyped-def]
    return render_template("supervisor/reports.html", sops=sop_names())


@bp.get("/laporan/<key>")
@login_required
def report(key: str):  # type: ignore[no-untyped-def]
    a = _report_args(key)
    rep = _compute(a)
    return render_template("supervisor/report.html", rep=rep, a=a, q=_query(a),
                           chart=report_export.bar_chart_svg(rep, lang=locale_code()))


@bp.get("/laporan/<key>/diagram.json")
@login_required
def report_diagram(key: str):  # type: ignore[no-untyped-def]
    a = _report_args(key)
    rep = _compute(a)
    definition_id = a["version"] or a["versions"][0]["id"]
    _, _, xml = supervision.definition_source(_svc(), definition_id)
    markers = [{"id": s.element_id, "cls": f"alur-heat-{s.heat}"} for s in rep.steps]
    badges = [{"id": s.element_id, "cls": f"alur-badge-heat alur-heat-{s.heat}",
               "text": "–" if s.on_time_pct is None else f"{s.on_time_pct:.0f}% · {s.done}"} for s in rep.steps]
    return jsonify({"xml": xml, "markers": markers, "badges": badges})


def _export_name(a: dict[str, Any], ext: str) -> str:
    return f"laporan-monitoring-{a['key']}-{a['since_day'].isoformat()}-{a['until_day'].isoformat()}.{ext}"


@bp.get("/laporan/<key>/xlsx")
@login_required
def report_xlsx(key: str):  # type: ignore[no-untyped-def]
    a = _report_args(key)
    data = report_export.to_xlsx(_compute(a), unit_label=a["unit_label"], period_label=a["period_label"],
                                 generated_at=_svc().clock(), lang=locale_code())
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{_export_name(a, "xlsx")}"'})


def _printable(a: dict[str, Any]) -> str:
    return report_export.to_html(_compute(a), unit_label=a["unit_label"], period_label=a["period_label"],
                                 generated_at=_svc().clock(), lang=locale_code())


@bp.get("/laporan/<key>/cetak")
@login_required
def report_print(key: str):  # type: ignore[no-untyped-def]
    response = Response(_printable(_report_args(key)), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCUMENT_CSP
    return response


@bp.get("/laporan/<key>/pdf")
@login_required
def report_pdf(key: str):  # type: ignore[no-untyped-def]
    a = _report_args(key)
    return Response(report_export.to_pdf(_printable(a)), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{_export_name(a, "pdf")}"'})


# ------------------------------------------------------------------------------------------------ definitions

@bp.get("/definitions/<definition_id>")
@login_required
def definition(definition_id: str):  # type: ignore[no-untyped-def]
    if not supervision.may_see_any_unit(_actor()) and not _actor().is_designer:
        abort(404)
    key, resource, _xml = supervision.definition_source(_svc(), definition_id)
    versions = supervision.definition_versions(_svc(), key)
    current = next(v for v in versions if v["id"] == definition_id)
    # The "Mulai" form (web/designer.py starts): on the latest version, in the units the user may start in.
    start_units = catalog.startable_units(_svc(), _actor()) if versions[0]["id"] == definition_id else []
    return render_template("supervisor/definition.html", key=key, resource=resource, versions=versions,
                           current=current, info=_svc().definition_info(definition_id), start_units=start_units)


@bp.get("/definitions/<definition_id>/diagram.json")
@login_required
def definition_diagram(definition_id: str):  # type: ignore[no-untyped-def]
    if not supervision.may_see_any_unit(_actor()) and not _actor().is_designer:
        abort(404)
    _key, _resource, xml = supervision.definition_source(_svc(), definition_id)
    return jsonify({"xml": xml, "markers": [], "badges": []})


@bp.get("/definitions/<definition_id>/dokumen")
@login_required
def definition_document(definition_id: str):  # type: ignore[no-untyped-def]
    if not supervision.may_see_any_unit(_actor()) and not _actor().is_designer:
        abort(404)
    _key, resource, xml = supervision.definition_source(_svc(), definition_id)
    response = Response(render_html(xml.encode("utf-8"), resource), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCUMENT_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"  # shown in an iframe on the definition page
    return response


# ------------------------------------------------------------------------------------------------ notifications

@bp.get("/notifikasi")
@login_required
def notifications():  # type: ignore[no-untyped-def]
    items = _svc().notifications_for(_actor(), unread_only=request.args.get("semua") != "1", limit=100,
                                     locale=locale_code())
    return render_template("supervisor/notifications.html", items=items, show_all=request.args.get("semua") == "1")


@bp.get("/notifikasi/<int:notification_id>")
@login_required
def open_notification(notification_id: str):  # type: ignore[no-untyped-def]
    """Where a notification leads: its task (if the user may still open it), else its instance."""
    items = _svc().notifications_for(_actor(), unread_only=False, limit=200)
    item = next((n for n in items if n["id"] == notification_id), None)
    if item is None:
        abort(404)
    return redirect(_target(item))


def _target(item: dict[str, Any]) -> str:
    if item.get("task_id"):
        return url_for("tasks.show", task_id=item["task_id"])
    if item.get("instance_id"):
        return url_for("supervisor.instance", instance_id=item["instance_id"])
    return url_for("supervisor.notifications")


@bp.post("/notifikasi/baca")
@login_required
def mark_read():  # type: ignore[no-untyped-def]
    ids: list[int] | None = None
    if request.form.get("id"):
        try:
            ids = [int(request.form["id"])]
        except ValueError:
            abort(400)
    supervision.mark_notifications_read(_svc(), _actor(), ids)
    return redirect(safe_next(request.form.get("next"), url_for("supervisor.notifications")))

