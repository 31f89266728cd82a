"""The task page: the SOP step in context (uraian, pelaksana, mutu baku, kelengkapan, output), its form,
the output document, comments; completing it. Everything works without JavaScript."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user, login_required
from werkzeug.datastructures import MultiDict

from engine import forms
from engine.attachments import AttachmentError, CheckedFile, allowed_extensions, check_upload
from engine.errors import ConflictError, FormValidationError
from engine.faults import Fault
from web import faults
from web.formrender import render_form
from web.i18n import gettext as _
from web.i18n import locale_code
from web.inbox import units_by_id

bp = Blueprint("tasks", __name__)

_DURATION_RE = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$", re.IGNORECASE)


def humanise_duration(text: str | None) -> str:
    """'PT15M' -> '15 menit' (or '15 minutes'); unknown texts come back as they are."""
    if not text:
        return ""
    m = _DURATION_RE.match(text.strip())
    if not m or not any(m.groups()):
        return text
    en = locale_code() == "en"
    names = (("minggu", "week"), ("hari kerja", "working day"), ("jam", "hour"), ("menit", "minute"))
    parts = []
    for value, (id_name, en_name) in zip(m.groups(), names, strict=True):
        if value:
            n = int(value)
            parts.append(f"{n} {en_name + ('s' if n != 1 else '') if en else id_name}")
    return " ".join(parts)


def _svc():  # type: ignore[no-untyped-def]
    return current_app.extensions["alur"]


def _context(task_id: str, *, documents: bool = True, previous: bool = False) -> dict[str, Any]:
    """The page's data in one service call. Without `documents` (a POST that will most likely redirect), the
    attachments and comments are read only if the page has to be shown again (`_render`)."""
    svc = _svc()
    actor = current_user.actor
    page = svc.task_page(task_id, actor, documents=documents, previous=previous)  # NotFound: not the user's
    task = page.task
    info = page.info
    step = info.get("user_tasks", {}).get(task.element_id, {})
    ext = step.get("extensions") or {}
    props = ext.get("properties") or {}
    unit = units_by_id().get(task.unit_id, {"name": task.unit_code, "timezone": "Asia/Jakarta"})
    ctx = {
        "task": task,
        "info": info,
        "sop_name": (info.get("properties") or {}).get("sop.nama") or task.process_name,
        "props": props,
        "standard_time": props.get("sop.waktu") or humanise_duration(ext.get("dueDate")),
        "unit": unit,
        "now": svc.clock(),
        "may_work": page.may_work,
        "acting": actor.acting.get((task.unit_id, task.candidate_role or "")),
        "form": page.form,
        "previous": page.previous,
        "allowed_extensions": allowed_extensions(),
        "max_mb": current_app.config["ALUR_MAX_ATTACHMENT_BYTES"] // (1024 * 1024),
    }
    if documents:
        _set_documents(ctx, page.attachments or [], page.comments or [])
    return ctx


def _set_documents(ctx: dict[str, Any], attachments: list[dict[str, Any]], comments: list[dict[str, Any]]) -> None:
    task = ctx["task"]
    ctx["earlier_documents"] = [a for a in attachments if a["task_id"] != task.id]
    ctx["own_documents"] = [a for a in attachments if a["task_id"] == task.id]
    ctx["comments"] = comments


def _render(ctx: dict[str, Any], values: Any, errors: dict[str, list[str]], status: int = 200,
            late_reason: str = "", comment: str = ""):  # type: ignore[no-untyped-def]
    form = ctx["form"]
    if "comments" not in ctx:
        _set_documents(ctx, *_svc().instance_documents(ctx["task"].instance_id, current_user.actor))
    late = bool(ctx["task"].due_at and ctx["now"] > ctx["task"].due_at)
    form_html = render_form(form, values, errors, disabled=not ctx["may_work"]) if form else None
    html = render_template("task.html", form_html=form_html, errors=errors, late=late, late_reason=late_reason,
                           comment=comment, **ctx)
    return html, status


def _initial_values(form: forms.FormDefinition | None) -> dict[str, Any]:
    if form is None:
        return {}
    return {f.key: f.default for f in form.fields if f.default is not None}


@bp.get("/tugas/<task_id>")
@login_required
def show(task_id: str):  # type: ignore[no-untyped-def]
    ctx = _context(task_id, previous=True)
    values = _initial_values(ctx["form"])
    if ctx["previous"] is not None and ctx["form"] is not None:
        keys = {f.key for f in ctx["form"].fields}
        previous = {k: v for k, v in ctx["previous"].items() if k in keys}
        values.update(previous)
        ctx["prefilled"] = bool(previous)
    return _render(ctx, values, {})


def _form_values(form: forms.FormDefinition | None) -> MultiDict[str, str]:
    """Only the form's own keys: the CSRF token, the late reason and the buttons are not form data."""
    keys = {f.key for f in form.fields} if form else set()
    values: MultiDict[str, str] = MultiDict()
    for key in request.form:
        if key in keys:
            for v in request.form.getlist(key):
                values.add(key, v)
    return values


@bp.post("/tugas/<task_id>")
@login_required
def submit(task_id: str):  # type: ignore[no-untyped-def]
    upload = request.files.get("document")
    if request.form.get("action", "complete") == "complete" and not (upload is not None and upload.filename):
        return _complete(task_id)
    svc = _svc()
    actor = current_user.actor
    ctx = _context(task_id, documents=False)
    task = ctx["task"]
    if task.state != "READY":
        raise ConflictError(f"task {task_id} is already {task.state.lower()}")  # a second submit: nothing changes
    if not ctx["may_work"]:  # READY, read in the same row as the rights: truly not this user's step
        abort(403)
    form = ctx["form"]
    raw = _form_values(form)
    action = request.form.get("action", "complete")
    late_reason = request.form.get("late_reason", "").strip()
    errors: dict[str, list[str]] = {}
    locale = locale_code()

    checked: CheckedFile | None = None
    if upload is not None and upload.filename:
        limit = current_app.config["ALUR_MAX_ATTACHMENT_BYTES"]
        data = upload.stream.read(limit + 1)
        try:
            checked = check_upload(upload.filename, data, max_bytes=limit)
        except AttachmentError as exc:
            errors["document"] = [exc.en if locale == "en" else str(exc)]
    elif action == "upload":
        errors["document"] = [forms.message("required", locale)]

    cleaned: dict[str, Any] = {}
    if action == "complete":
        try:
            cleaned = forms.validate_submission(form, raw, locale=locale, tz=ZoneInfo(ctx["unit"]["timezone"]))
        except FormValidationError as exc:
            errors.update(exc.errors)
        late = bool(task.due_at and ctx["now"] > task.due_at)
        if late and not late_reason:
            errors["late_reason"] = [forms.message("required", locale)]
        if len(late_reason) > 2000:
            errors["late_reason"] = [forms.message("max_length", locale, n=2000)]

    if checked is not None:
        # Stored even when the form has mistakes, so the user need not pick the file again.
        svc.add_attachment(task_id, actor, checked, current_app.extensions["alur_attachments"])
        for key in ("earlier_documents", "own_documents", "comments"):
            ctx.pop(key, None)  # `_render` reads them again, with the new document
    if errors:
        return _render(ctx, raw, errors, 422, late_reason=late_reason)
    if action == "upload":
        flash(_("Dokumen tersimpan."), "success")
        return redirect(url_for("tasks.show", task_id=task_id))
    try:
        svc.complete(task_id, actor, cleaned, late_reason=late_reason or None)
    except FormValidationError as exc:  # e.g. the deadline passed while the page was open
        return _render(ctx, raw, exc.errors, 422, late_reason=late_reason)
    flash(_("Langkah selesai: %(name)s", name=task.name), "success")
    return redirect(url_for("inbox.index"))


def _complete(task_id: str):  # type: ignore[no-untyped-def]
    """The common submit, a form without a file: one write transaction reads the task, checks the user's
    rights, validates the form and the late reason, and completes. The page is read only to show mistakes.
    A task that is no longer READY answers 409, someone else's step 403, a task the user may not see 404."""
    late_reason = request.form.get("late_reason", "").strip()
    try:
        done = _svc().complete(task_id, current_user.actor, request.form, late_reason=late_reason or None,
                               locale=locale_code(), web_form=True)
    except FormValidationError as exc:
        ctx = _context(task_id)
        return _render(ctx, _form_values(ctx["form"]), exc.errors, 422, late_reason=late_reason)
    flash(_("Langkah selesai: %(name)s", name=done.completed_step), "success")
    return redirect(url_for("inbox.index"))


@bp.post("/tugas/<task_id>/komentar")
@login_required
def comment(task_id: str):  # type: ignore[no-untyped-def]
    body = request.form.get("body", "")
    try:
        _svc().add_comment(task_id, current_user.actor, body)
    except FormValidationError as exc:
        ctx = _context(task_id)
        errors = {"comment": exc.errors.get("body", [])}
        return _render(ctx, _initial_values(ctx["form"]), errors, 422, comment=body)
    flash(_("Komentar terkirim."), "success")
    return redirect(url_for("tasks.show", task_id=task_id) + "#komentar")


@faults.form_page("tasks.submit")
def _submit_fault(_fault: Fault):  # type: ignore[no-untyped-def]
    """A fault while saving the step (web/faults.py): the step form again, with what was typed, 503."""
    task_id = request.view_args["task_id"]  # type: ignore[index]
    ctx = _context(task_id)
    late_reason = request.form.get("late_reason", "").strip()
    return _render(ctx, _form_values(ctx["form"]), {}, 503, late_reason=late_reason)


@faults.form_page("tasks.comment")
def _comment_fault(_fault: Fault):  # type: ignore[no-untyped-def]
    ctx = _context(request.view_args["task_id"])  # type: ignore[index]
    return _render(ctx, _initial_values(ctx["form"]), {}, 503, comment=request.form.get("body", ""))


@bp.get("/lampiran/<int:attachment_id>")
@login_required
def download(attachment_id: int):  # type: ignore[no-untyped-def]
    row = _svc().attachment(attachment_id, current_user.actor)  # NotFound unless the user may see the instance
    path = current_app.extensions["alur_attachments"].path_for(row["sha256"])
    if not path.exists():
        abort(404)
    return send_file(path, mimetype=row["content_type"], as_attachment=True, download_name=row["name"],
                     max_age=0)
