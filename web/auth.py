"""Sign in/out, profile (roles, Plh/Plt), password change, language choice, and the admin's substitution page."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from engine.accounts import AccountError, HashingBusy
from engine.errors import AlurError, NotFound, PermissionDenied
from web.i18n import LOCALES
from web.i18n import gettext as _
from web.redirects import safe_next
from web.security import WebUser

bp = Blueprint("auth", __name__)


def _service():  # type: ignore[no-untyped-def]
    return current_app.extensions["alur"]


def _sign_in(username: str) -> None:
    """Start a fresh session for `username`: nothing set up before sign-in survives (no fixation)
    except the chosen language."""
    found = _service().session_user(username)
    if found is None:
        abort(401)
    actor, info = found
    user = WebUser(actor=actor, full_name=info["full_name"], locale=info["locale"] or "id",
                   email=info["email"], password_fingerprint=info["password_fingerprint"])
    chosen_locale = session.get("locale")
    session.clear()
    login_user(user)
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(16)
    if chosen_locale in LOCALES:
        session["locale"] = chosen_locale


@bp.route("/masuk", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        return redirect(url_for("inbox.index"))
    next_url = safe_next(request.values.get("next"), url_for("inbox.index"))
    error = None
    status = 200
    username = ""
    headers: dict[str, str] = {}
    if request.method == "POST":
        username = request.form.get("username", "").strip().lower()[:64]
        password = request.form.get("password", "")[:1024]
        address = request.remote_addr or "?"
        limiter = current_app.extensions["alur_login_limiter"]
        if limiter.blocked(username, address):
            error = _("Terlalu banyak percobaan masuk yang gagal. Tunggu 15 menit lalu coba lagi.")
            status = 429
            headers["Retry-After"] = str(limiter.retry_after(username, address))
        elif not username or not password:
            limiter.failed(username, address)
            error = _("Nama pengguna atau kata sandi salah.")
            status = 401
        else:
            try:
                signed_in = _service().login(username, password)
            except HashingBusy as exc:  # every hashing slot taken: refused at once, nothing counted
                error, status = _("Server sedang sibuk. Coba lagi beberapa detik lagi."), 503
                headers["Retry-After"] = str(exc.retry_after)
            else:
                if signed_in is None:
                    limiter.failed(username, address)
                    error = _("Nama pengguna atau kata sandi salah.")
                    status = 401
                else:
                    limiter.succeeded(username, address)
                    _sign_in(username)
                    return redirect(next_url)
    return render_template("login.html", error=error, username=username, next=next_url), status, headers


@bp.post("/keluar")
@login_required
def logout():  # type: ignore[no-untyped-def]
    # The cookie is signed, not stored: remember that this session ended so a copy of it is refused too.
    # If that record cannot be written (disk full, read-only folder), sign out all the same: this browser's
    # cookie is cleared below; only a copy taken before stays valid until it expires, which the log says.
    revocations = current_app.extensions["alur_session_revocations"]
    try:
        revocations.revoke(session.get("sid"))
    except OSError as exc:
        current_app.logger.error("sign-out of %s: the ended session could not be recorded in %s (%s); the "
                                 "cookie was cleared, a copy of it stays valid until it expires",
                                 current_user.username, revocations.root, exc)
    logout_user()
    locale = session.get("locale")
    session.clear()
    if locale in LOCALES:
        session["locale"] = locale
    flash(_("Anda sudah keluar."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/profil")
@login_required
def profile():  # type: ignore[no-untyped-def]
    units = {u["id"]: u for u in _service().units()}
    roles = []
    for unit_id, role in sorted(current_user.actor.unit_roles, key=lambda ur: (units.get(ur[0], {}).get("name", ""),
                                                                              ur[1])):
        roles.append({"unit": units.get(unit_id, {"name": "?", "code": "?"}), "role": role,
                      "acting": current_user.actor.acting.get((unit_id, role))})
    return render_template("profile.html", roles=roles, global_roles=sorted(current_user.actor.global_roles))


@bp.route("/kata-sandi", methods=["GET", "POST"])
@login_required
def change_password():  # type: ignore[no-untyped-def]
    errors: dict[str, str] = {}
    status, headers = 200, {}
    if request.method == "POST":
        current = request.form.get("current", "")[:1024]
        new = request.form.get("new", "")
        confirm = request.form.get("confirm", "")
        # Wrong current passwords count like failed sign-ins: a stolen session must not guess the password.
        username, address = current_user.username, request.remote_addr or "?"
        limiter = current_app.extensions["alur_login_limiter"]
        if new != confirm:
            errors["confirm"] = _("Kata sandi baru dan ulangannya tidak sama.")
        elif len(new) < 8:
            errors["new"] = _("Kata sandi baru minimal 8 karakter.")
        elif limiter.blocked(username, address):
            errors["current"] = _("Terlalu banyak percobaan yang gagal. Tunggu 15 menit lalu coba lagi.")
            status, headers = 429, {"Retry-After": str(limiter.retry_after(username, address))}
        else:
            try:
                _service().change_password(username, current, new)
            except PermissionDenied:
                limiter.failed(username, address)
                errors["current"] = _("Kata sandi saat ini salah.")
            except HashingBusy as exc:
                errors["current"] = _("Server sedang sibuk. Coba lagi beberapa detik lagi.")
                status, headers = 503, {"Retry-After": str(exc.retry_after)}
            except AccountError:
                errors["new"] = _("Kata sandi baru minimal 8 karakter.")
            else:
                limiter.succeeded(username, address)
                # The fingerprint changed, which ends other sessions: this one starts afresh.
                _sign_in(username)
                flash(_("Kata sandi sudah diganti."), "success")
                return redirect(url_for("auth.profile"))
    if errors and status == 200:
        status = 422
    return render_template("password.html", errors=errors), status, headers


@bp.post("/bahasa")
def set_language():  # type: ignore[no-untyped-def]
    locale = request.form.get("locale", "")
    if locale not in LOCALES:
        abort(400)
    session["locale"] = locale
    if current_user.is_authenticated:
        _service().set_locale(current_user.username, locale)
    return redirect(safe_next(request.form.get("next"), url_for("inbox.index")))


@bp.route("/admin/pengganti", methods=["GET", "POST"])
@login_required
def substitutions():  # type: ignore[no-untyped-def]
    actor = current_user.actor
    if not actor.is_admin:
        abort(403)
    svc = _service()
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"kind": "Plh", "starts_on": svc.clock().date().isoformat(),
                              "ends_on": svc.clock().date().isoformat()}
    if request.method == "POST":
        values = {k: request.form.get(k, "").strip() for k in
                  ("username", "role", "unit", "starts_on", "ends_on", "kind", "note")}
        for key in ("username", "role", "unit", "starts_on", "ends_on"):
            if not values[key]:
                errors[key] = _("wajib diisi")
        dates: dict[str, date] = {}
        for key in ("starts_on", "ends_on"):
            if values[key] and key not in errors:
                try:
                    dates[key] = date.fromisoformat(values[key])
                except ValueError:
                    errors[key] = _("tanggal tidak valid (format TTTT-BB-HH)")
        if values["kind"] not in ("Plh", "Plt"):
            errors["kind"] = _("pilih Plh atau Plt")
        if not errors:
            try:
                svc.add_substitution(actor, values["username"], values["role"], values["unit"],
                                     dates["starts_on"], dates["ends_on"], kind=values["kind"],
                                     note=values["note"][:500])
            except NotFound:
                errors["username"] = _("pengguna atau unit tidak dikenal")
            except AlurError as exc:
                errors["ends_on"] = _("tanggal selesai harus sama dengan atau sesudah tanggal mulai") \
                    if "end" in str(exc) else str(exc)
            else:
                flash(_("Penugasan pengganti (%(kind)s) tersimpan.", kind=values["kind"]), "success")
                return redirect(url_for("auth.substitutions"))
    return render_template("substitutions.html", items=svc.substitutions(actor), users=svc.usernames(actor),
                           units=svc.units(), values=values, errors=errors), (422 if errors else 200)
