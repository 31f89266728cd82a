"""The app factory: one `Alur` service per app, Flask-Login sessions, CSRF on every form, Bahasa Indonesia.

`create_app()` with no arguments reads the environment (`ALUR_DATABASE_URL`, `ALUR_INSTANCE_DIR`,
`ALUR_SECRET_KEY`, `ALUR_SECURE_COOKIES`, `ALUR_ENV`), which is what `gunicorn 'web.app:create_app()'` needs.
With `ALUR_ENV=production` it raises `web.security.InsecureConfiguration` instead of starting without a secret.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, g, render_template
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from engine.attachments import MAX_ATTACHMENT_BYTES, AttachmentStore
from engine.config import Settings
from engine.db import Database
from engine.errors import ConflictError, InvalidState, NotFound, PermissionDenied, ProcessError
from engine.service import Alur
from web import chrome, faults, i18n
from web.security import (
    BoundedIntConverter,
    LoginLimiter,
    SessionRevocations,
    add_security_headers,
    apply_environment,
    load_web_user,
)

csrf = CSRFProtect()


def secret_key(instance_dir: Path) -> str:
    """`ALUR_SECRET_KEY`, else a random key kept in the instance folder (mode 0600) so sessions survive
    restarts on a single machine. With several servers, set ALUR_SECRET_KEY on all of them."""
    key = os.environ.get("ALUR_SECRET_KEY")
    if key:
        return key
    path = instance_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def create_app(config: Mapping[str, Any] | None = None, service: Alur | None = None) -> Flask:
    settings = Settings.from_env()
    config = dict(config or {})
    instance_dir = Path(config.get("ALUR_INSTANCE_DIR") or settings.instance_dir)
    app = Flask(__name__, instance_path=str(instance_dir), instance_relative_config=False)
    app.url_map.converters["int"] = BoundedIntConverter  # ids in URLs fit the database's integers
    app.config.update(
        SESSION_COOKIE_NAME="alur_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("ALUR_SECURE_COOKIES") == "1",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # The upload limit per file is checked again per file; the margin is for the form fields around it.
        MAX_CONTENT_LENGTH=MAX_ATTACHMENT_BYTES + 256 * 1024,
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        ALUR_MAX_ATTACHMENT_BYTES=MAX_ATTACHMENT_BYTES,
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead: a long form must not expire mid-typing
        WTF_CSRF_SSL_STRICT=False,
        ALUR_LOGIN_MAX_FAILURES=5,
        ALUR_LOGIN_MAX_FAILURES_PER_ADDRESS=30,
        ALUR_LOGIN_WINDOW_SECONDS=15 * 60,
        ALUR_INBOX_PAGE_SIZE=25,
        ALUR_DATABASE_URL=settings.database_url,
    )
    app.config.update(config)
    apply_environment(app, config)  # ALUR_ENV=production: secret, Secure cookies, no debug (or refuse)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(instance_dir)

    if service is None:
        service = Alur(Database(app.config["ALUR_DATABASE_URL"]))
    app.extensions["alur"] = service
    _pin_database_per_request(app, service.db)
    app.extensions["alur_attachments"] = AttachmentStore(instance_dir / "attachments")
    app.extensions["alur_login_limiter"] = LoginLimiter(app.config["ALUR_LOGIN_MAX_FAILURES"],
                                                        app.config["ALUR_LOGIN_WINDOW_SECONDS"],
                                                        app.config["ALUR_LOGIN_MAX_FAILURES_PER_ADDRESS"])
    app.extensions["alur_session_revocations"] = SessionRevocations(
        instance_dir / "revoked-sessions", app.config["PERMANENT_SESSION_LIFETIME"].total_seconds())

    csrf.init_app(app)
    login = LoginManager(app)
    login.session_protection = "strong"
    login.login_view = "auth.login"
    login.login_message = None  # the login page says what to do
    login.user_loader(load_web_user)
    i18n.init_app(app)
    chrome.init_app(app)  # the page header, drawn once per locale and menu

    from web.auth import bp as auth_bp
    from web.inbox import bp as inbox_bp
    from web.tasks import bp as tasks_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(inbox_bp)
    app.register_blueprint(tasks_bp)
    _register_error_pages(app)

    app.after_request(add_security_headers)  # CSP, nosniff, framing, HSTS...: web/security.py

    from web.rest import init_app as init_rest; init_rest(app)  # noqa: E702, I001 (Camunda 7 REST subset)
    app.register_blueprint(__import__("web.supervisor", fromlist=["bp"]).bp)  # Pengawasan: web/supervisor.py
    app.register_blueprint(__import__("web.designer", fromlist=["bp"]).bp)  # Desain Proses: web/designer.py
    _trust_proxies(app)  # X-Forwarded-* from ALUR_PROXY_FIX proxies (docs/operations.md)
    faults.init_app(app)  # last: it wraps every view (503 "try again" pages, one retry: web/faults.py)
    return app


def _pin_database_per_request(app: Flask, db: Database) -> None:
    """All of a request's transactions on one pooled connection (engine/db.py `Database.pinned`): one pool
    checkout and liveness ping per request instead of one per service call."""

    @app.before_request
    def _pin_db() -> None:
        g.alur_db_pin = db.pinned()
        g.alur_db_pin.__enter__()

    @app.teardown_request
    def _unpin_db(_exc: BaseException | None) -> None:
        pin = g.pop("alur_db_pin", None)
        if pin is not None:
            pin.__exit__(None, None, None)


def service() -> Alur:
    from flask import current_app

    return current_app.extensions["alur"]  # type: ignore[no-any-return]


def _register_error_pages(app: Flask) -> None:
    _ = i18n.gettext

    def page(status: int, title: str, message: str, detail: str | None = None):  # type: ignore[no-untyped-def]
        return render_template("error.html", status=status, title=title, message=message, detail=detail), status

    @app.errorhandler(NotFound)
    @app.errorhandler(404)
    def _not_found(exc: Exception):  # type: ignore[no-untyped-def]
        return page(404, _("Tidak ditemukan"),
                    _("Halaman atau langkah ini tidak ada, atau bukan untuk Anda."))

    @app.errorhandler(PermissionDenied)
    @app.errorhandler(403)
    def _forbidden(exc: Exception):  # type: ignore[no-untyped-def]
        return page(403, _("Tidak diizinkan"),
                    _("Anda tidak berwenang melakukan ini. Langkah ini untuk peran atau unit lain."))

    @app.errorhandler(ConflictError)
    @app.errorhandler(InvalidState)
    def _conflict(exc: Exception):  # type: ignore[no-untyped-def]
        return page(409, _("Sudah diselesaikan"),
                    _("Langkah ini sudah diselesaikan atau diubah oleh orang lain. Tidak ada yang diubah "
                      "oleh kiriman Anda."))

    @app.errorhandler(ProcessError)
    def _process(exc: Exception):  # type: ignore[no-untyped-def]
        return page(422, _("Proses tidak dapat dilanjutkan"),
                    _("Langkah ini tidak dapat diselesaikan dengan isian ini; tidak ada yang diubah. Periksa "
                      "isian Anda, atau hubungi perancang SOP bila pesan ini muncul lagi."), str(exc))

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return page(400, _("Formulir kedaluwarsa"),
                    _("Formulir ini tidak bisa diterima (sesi berakhir atau halaman terlalu lama dibuka). "
                      "Kembali, muat ulang halaman, lalu kirim lagi."))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: Exception):  # type: ignore[no-untyped-def]
        mb = app.config["ALUR_MAX_ATTACHMENT_BYTES"] // (1024 * 1024)
        return page(413, _("Berkas terlalu besar"),
                    _("Berkas yang diunggah melebihi batas %(mb)s MB. Kecilkan berkasnya lalu coba lagi.", mb=mb))

    @app.errorhandler(429)
    def _too_many(exc: Exception):  # type: ignore[no-untyped-def]
        return page(429, _("Terlalu banyak percobaan"),
                    _("Terlalu banyak percobaan masuk yang gagal. Tunggu 15 menit lalu coba lagi."))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        return page(exc.code or 500, str(exc.name), exc.description or "")

    @app.before_request
    def _request_start() -> None:
        g.alur = app.extensions["alur"]


def _trust_proxies(app: Flask) -> None:
    """Behind a reverse proxy, take the client address, scheme, host and prefix from its X-Forwarded-*
    headers. `ALUR_PROXY_FIX` (environment or config) is how many proxies are in front, usually 1; unset or 0
    trusts none, so a client talking to gunicorn directly cannot forge its address."""
    raw = app.config.get("ALUR_PROXY_FIX", os.environ.get("ALUR_PROXY_FIX", "0"))
    try:
        hops = int(raw or 0)
    except (TypeError, ValueError):
        raise ValueError(f"ALUR_PROXY_FIX must be the number of trusted proxies (0, 1, 2…), not {raw!r}") from None
    if hops < 0:
        raise ValueError(f"ALUR_PROXY_FIX must not be negative: {hops}")
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
