"""A Camunda 7 REST subset at `/engine-rest`, so Camunda Modeler's Deploy and Start buttons and other
Camunda 7 clients work against Alur unchanged. Thin: every call goes through the `Alur` service with the
caller's `Actor`, so rights are exactly those of the web pages. See docs/camunda-modeler.md.

Register with `init_app(app)` (web/app.py does); it also adds `/.well-known/camunda-automation-platform/webapps`.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from web.rest import auth, browser, definitions, deployments, history, instances, tasks
from web.rest.errors import to_response

CAMUNDA_VERSION = "7.24.0"
PUBLIC_ENDPOINTS = {"rest.version", "rest.openapi"}

bp = Blueprint("rest", __name__, url_prefix="/engine-rest")
CHILDREN = (deployments.bp, definitions.bp, instances.bp, tasks.bp, history.bp)
for _child in CHILDREN:
    bp.register_blueprint(_child)


@bp.before_request
def _before() -> Response | None:
    if request.method == "OPTIONS":
        return auth.preflight()
    browser.guard(request)  # before the credentials: a forged request costs no password check
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    auth.require_actor()
    return None


@bp.after_request
def _after(response: Response) -> Response:
    return auth.add_cors_headers(response)


@bp.errorhandler(413)  # the app's HTML page for 413 would otherwise win (code handlers come first)
@bp.errorhandler(Exception)
def _error(exc: Exception) -> Response:
    if not isinstance(exc, HTTPException) and not hasattr(exc, "status"):
        from engine.errors import AlurError

        if not isinstance(exc, AlurError):
            current_app.logger.exception("engine-rest: unexpected error")
    return to_response(exc)


@bp.get("/version")
def version() -> Response:
    return jsonify({"version": CAMUNDA_VERSION})


@bp.get("/openapi.json")
def openapi() -> Response:
    from web.rest.openapi import document

    return jsonify(document())


@bp.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
@bp.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def _unknown(path: str) -> Response:
    """Unknown paths and methods under /engine-rest answer in Camunda's JSON, not the web's HTML page."""
    adapter = current_app.url_map.bind("")
    for method in ("GET", "POST", "DELETE"):
        if method == request.method:
            continue
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            return to_response(MethodNotAllowed(description=f"{request.method} is not allowed on {request.path}"))
    return to_response(RouteNotFound(description=f"No resource at {request.path}"))


def init_app(app: Flask) -> None:
    from web.app import csrf
    from web.rest.wellknown import bp as wellknown_bp

    app.register_blueprint(bp)
    app.register_blueprint(wellknown_bp)
    csrf.exempt(bp)
    for child in CHILDREN:
        csrf.exempt(child)
