"""`/.well-known/camunda-automation-platform/webapps`: where Camunda Modeler's "open in Cockpit" link
goes. Cockpit and Tasklist map to Alur's pages; ALUR_COCKPIT_URL etc. override them."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

bp = Blueprint("rest_wellknown", __name__)
# Cockpit = the supervisor pages, Tasklist = the staff inbox, Admin = substitutions (accounts are CLI-managed).
DEFAULTS = {"cockpitUrl": "/pengawasan/instances", "tasklistUrl": "/", "adminUrl": "/admin/pengganti"}


@bp.get("/.well-known/camunda-automation-platform/webapps")
def webapps() -> Response:
    base = request.host_url.rstrip("/")
    body = {}
    for key, default in DEFAULTS.items():
        configured = current_app.config.get(f"ALUR_{key[:-3].upper()}_URL")
        body[key] = configured or base + default
    response = jsonify(body)
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
    response.headers["Vary"] = "Origin"
    return response
