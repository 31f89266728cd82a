"""Desain Proses: the process designer's pages. Upload .bpmn and .form files (every problem listed, nothing stored
on failure; otherwise the new versions), the list of deployed processes with their versions and running instances,
and starting an instance from a definition's page (the "Mulai" form on supervisor/definition.html).

Who may do what is the engine's rule, not this module's: `Actor.is_designer` (the same rule the REST deploy uses
through `Alur.deploy`) for the upload and the list; `Actor.may_start_in` (what `Alur.start` checks) for starting,
so any signed-in user may start in a unit where they hold a role, designers and admins anywhere.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from engine import catalog
from engine.errors import AlurError, DeployError, NotFound, PermissionDenied, Problem
from engine.faults import Fault
from engine.service import MAX_DEPLOY_FILE_BYTES
from web import faults
from web.i18n import gettext as _

bp = Blueprint("designer", __name__, url_prefix="/desain")

DEPLOY_SOURCE = "Alur web"
ACCEPTED_SUFFIXES = (".bpmn", ".bpmn20.xml", ".form")


def _svc():  # type: ignore[no-untyped-def]
    return current_app.extensions["alur"]


def _require_designer() -> None:
    if not current_user.actor.is_designer:
        abort(403)


def _forget_cached_definitions() -> None:
    """Pages keep the process names for half a minute (web/inbox.py): a new process shows at once."""
    current_app.extensions.get("alur_cache", {}).pop("definitions", None)


@bp.get("/")
@login_required
def definitions():  # type: ignore[no-untyped-def]
    _require_designer()
    return render_template("designer/definitions.html", entries=catalog.process_catalog(_svc()))


def _deploy_page(status: int = 200, **context: Any):  # type: ignore[no-untyped-def]
    context.setdefault("name", "")
    return render_template("designer/deploy.html", max_mb=MAX_DEPLOY_FILE_BYTES // (1024 * 1024),
                           accept=",".join(ACCEPTED_SUFFIXES), **context), status


@bp.get("/pasang")
@login_required
def deploy_form():  # type: ignore[no-untyped-def]
    _require_designer()
    return _deploy_page()


@bp.post("/pasang")
@login_required
def deploy():  # type: ignore[no-untyped-def]
    _require_designer()
    name = (request.form.get("name") or "").strip()[:200]
    files: dict[str, bytes] = {}
    problems: list[Problem] = []
    for storage in request.files.getlist("files"):
        file_name = (storage.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not file_name:
            continue  # the empty part a browser sends when no file was chosen
        content = storage.read(MAX_DEPLOY_FILE_BYTES + 1)
        if len(content) > MAX_DEPLOY_FILE_BYTES:
            return _deploy_page(413, name=name, error=_(
                "Berkas %(file)s lebih besar dari %(mb)s MB. Tidak ada yang dipasang.",
                file=file_name, mb=MAX_DEPLOY_FILE_BYTES // (1024 * 1024)))
        if file_name in files:
            problems.append(Problem(file_name, None, None, _("nama berkas yang sama dipilih dua kali")))
        files[file_name] = content
    if not files:
        return _deploy_page(400, name=name, error=_("Pilih minimal satu berkas .bpmn atau .form."))
    if problems:
        return _deploy_page(422, name=name, problems=problems, files=sorted(files))
    try:
        result = _svc().deploy(files, name=name or None, source=DEPLOY_SOURCE, actor=current_user.actor)
    except DeployError as exc:
        return _deploy_page(422, name=name, problems=exc.problems, files=sorted(files))
    _forget_cached_definitions()
    return _deploy_page(200, result=result, files=sorted(files))


@faults.form_page("designer.deploy")
def _deploy_fault(_fault: Fault):  # type: ignore[no-untyped-def]
    """A fault while deploying (web/faults.py): the form again with its name; the files are chosen again."""
    return _deploy_page(503, name=(request.form.get("name") or "").strip()[:200])


@bp.post("/definisi/<definition_id>/mulai")
@login_required
def start(definition_id: str):  # type: ignore[no-untyped-def]
    """Start an instance of this definition version in the chosen unit; then its page. A unit the user may not
    start in is a 403 (PermissionDenied), an unknown one a 404."""
    svc, actor = _svc(), current_user.actor
    unit = (request.form.get("unit") or "").strip()[:64]
    business_key = (request.form.get("business_key") or "").strip() or None
    back = url_for("supervisor.definition", definition_id=definition_id)
    svc.definition(definition_id)  # NotFound (404) for an unknown definition, before anything else
    if not unit:
        flash(_("Pilih unit tempat proses dijalankan."), "error")
        return redirect(back)
    try:
        view = svc.start(definition_id=definition_id, unit=unit, business_key=business_key, actor=actor)
    except (NotFound, PermissionDenied):
        raise
    except AlurError as exc:  # e.g. a business key too long, or a model that cannot run its first steps
        flash(_("Proses tidak dapat dimulai: %(reason)s", reason=str(exc)), "error")
        return redirect(back)
    flash(_("Proses dimulai di unit %(unit)s.", unit=view.unit_code), "success")
    return redirect(url_for("supervisor.instance", instance_id=view.id))
