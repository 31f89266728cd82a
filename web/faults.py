"""The web's answer to a fault (engine/faults.py: a locked or unreachable database, a full disk, an attachment
folder that cannot be written): HTTP 503 with Retry-After and a page that keeps what the user typed.

- Every view runs inside `Database.attempt` (engine/db.py): a dropped connection is retried once when that is
  safe, any other fault becomes `Unavailable`.
- A form that takes typing registers a page of its own with `@form_page(endpoint)`: the same form, filled with
  the submitted values, under a banner saying that nothing was saved and to try again (base.html shows
  `fault_banner`). If that page cannot be drawn either (the database is down), or the form has no page of its
  own, a plain "try again" page lists the typed values in a form that sends them again.
- Passwords are never written back into a page: the user types them again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, make_response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from engine import faults
from engine.errors import CorruptState
from web.i18n import gettext as _
from web.redirects import safe_next

FormPage = Callable[[faults.Fault], ResponseReturnValue]
_FORM_PAGES: dict[str, FormPage] = {}
# Never echoed into a page: the sign-in and password forms' fields, and the CSRF token (sent as hidden field).
SECRET_FIELDS = frozenset({"password", "current", "new", "confirm", "csrf_token"})


def form_page(endpoint: str) -> Callable[[FormPage], FormPage]:
    """Register the page shown when a POST to `endpoint` meets a fault (the view's own form, refilled)."""

    def register(fn: FormPage) -> FormPage:
        _FORM_PAGES[endpoint] = fn
        return fn

    return register


def headline(fault: faults.Fault) -> str:
    if fault.kind in ("locked", "busy"):
        return _("Server sedang sibuk melayani permintaan lain.")
    if fault.kind == "disk_full":
        return _("Ruang penyimpanan server penuh.")
    if fault.kind in faults.STORAGE_KINDS:
        return _("Server tidak dapat menyimpan berkas.")
    return _("Basis data tidak dapat dihubungi.")


def banner(fault: faults.Fault) -> str:
    """One sentence on what happened, one on what was saved, one on what to do."""
    if request.method in ("GET", "HEAD"):
        return f"{headline(fault)} " + _("Muat ulang halaman ini dalam beberapa saat.")
    if fault.nothing_saved:
        outcome = _("Tidak ada yang tersimpan; isian Anda masih ada di bawah ini. Coba kirim lagi dalam "
                    "beberapa saat.")
    else:
        outcome = _("Belum dapat dipastikan apakah kiriman Anda tersimpan (sebagian mungkin sudah). Muat ulang "
                    "halaman untuk memeriksanya sebelum mengirim lagi; isian Anda masih ada di bawah ini.")
    text = f"{headline(fault)} {outcome}"
    if any(f.filename for f in request.files.values()):
        text += " " + _("Berkas yang tadi dipilih perlu dipilih lagi.")
    if any(key in SECRET_FIELDS and key != "csrf_token" for key in request.form):
        text += " " + _("Kata sandi perlu diketik lagi.")
    return text


def _rewind_uploads() -> None:
    """Before a retry: the first run read the uploaded files to the end."""
    for storage in request.files.values():
        storage.stream.seek(0)


def guard(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        db = current_app.extensions["alur"].db
        return db.attempt(lambda: view(*args, **kwargs), before_retry=_rewind_uploads)

    return guarded


def _typed_values() -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.form.items(multi=True) if k not in SECRET_FIELDS]


def _respond(fault: faults.Fault) -> ResponseReturnValue:
    current_app.logger.error("alur fault %s on %s %s (retry-after %ss, nothing saved: %s): %s", fault.kind,
                             request.method, request.path, fault.retry_after, fault.nothing_saved, fault.detail)
    if "_login_user" not in g:
        # The sign-in itself met the fault: draw the page as signed out rather than ask the database again.
        g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]
    g.alur_fault_banner = banner(fault)
    response = None
    page = _FORM_PAGES.get(request.endpoint or "")
    if page is not None and request.method == "POST":
        try:
            response = make_response(page(fault))
        except Exception:  # e.g. the database is down, so the form cannot be read: the plain page below
            current_app.logger.warning("alur fault: the form page of %s could not be drawn", request.endpoint,
                                       exc_info=True)
    if response is None:
        response = make_response(render_template(
            "fault.html", title=_("Coba lagi sebentar lagi"), headline=headline(fault), fault=fault,
            values=_typed_values() if request.method == "POST" else [],
            hidden_action=request.form.get("action") if request.method == "POST" else None,
            had_files=any(f.filename for f in request.files.values())))
    response.status_code = 503
    response.headers["Retry-After"] = str(fault.retry_after)
    return response


@form_page("auth.login")
def _login_fault(_fault: faults.Fault) -> ResponseReturnValue:
    return render_template("login.html", error=None, username=request.form.get("username", "").strip()[:64],
                           next=safe_next(request.form.get("next"), "/"))


@form_page("auth.change_password")
def _password_fault(_fault: faults.Fault) -> ResponseReturnValue:
    return render_template("password.html", errors={})  # the passwords are typed again (SECRET_FIELDS)


def init_app(app: Flask) -> None:
    """Call last in create_app: it wraps every view registered so far."""
    for endpoint, view in list(app.view_functions.items()):
        if endpoint != "static":
            app.view_functions[endpoint] = guard(view)

    @app.errorhandler(faults.Unavailable)
    def _unavailable(exc: faults.Unavailable) -> ResponseReturnValue:
        return _respond(exc.fault)

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database_error(exc: Exception) -> ResponseReturnValue:
        """Outside a view (a before_request hook): a fault gets the same page; anything else is a bug and
        goes on to Flask's usual 500 handling."""
        fault = faults.classify(exc)
        if fault is None:
            raise exc
        return _respond(fault)

    @app.errorhandler(CorruptState)
    def _corrupt(exc: CorruptState) -> ResponseReturnValue:
        current_app.logger.error("%s (on %s %s): see `alur check`", exc, request.method, request.path)
        return render_template("error.html", status=500, title=_("Data proses rusak"),
                               message=_("Data proses ini tidak dapat dibaca, sehingga langkahnya tidak dapat "
                                         "dibuka. Tidak ada yang diubah. Laporkan kepada operator."),
                               detail=str(exc.instance_id or "")), 500

    @app.context_processor
    def _banner() -> dict[str, Any]:
        return {"fault_banner": g.get("alur_fault_banner")}
