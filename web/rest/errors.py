"""Camunda 7 error bodies: `{"type": "<Java-style exception name>", "message": "..."}` with the status
Camunda uses. Parse failures carry the `ENGINE-09005 Could not parse BPMN process.` prefix that clients
(Camunda Modeler) look for, then every problem, plus Camunda's `details` map (resource → errors)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from engine import faults
from engine.errors import (
    AlurError,
    ConflictError,
    CorruptState,
    DeployError,
    FormValidationError,
    InvalidState,
    NotFound,
    PermissionDenied,
)
from engine.faults import Unavailable

PARSE_PREFIX = "ENGINE-09005 Could not parse BPMN process."


class RestError(Exception):
    """A refusal made by the REST layer itself (bad parameter, bad variable, ...)."""

    def __init__(self, status: int, message: str, type_: str = "InvalidRequestException", *,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.retry_after = retry_after  # seconds, sent as Retry-After (429, 503)


def bad_request(message: str) -> RestError:
    return RestError(400, message, "InvalidRequestException")


def error_response(status: int, type_: str, message: str, **extra: Any) -> Response:
    response = jsonify({"type": type_, "message": message, **extra})
    response.status_code = status
    return response


def deploy_error_body(exc: DeployError) -> dict[str, Any]:
    lines = [PARSE_PREFIX + " Errors: "]
    details: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for p in exc.problems:
        where = f" | resource {p.file}" + (f" | line {p.line}" if p.line else "") + \
            (f" | element {p.element_id}" if p.element_id else "")
        lines.append(f"* {p.message}{where}")
        details.setdefault(p.file, {"errors": [], "warnings": []})["errors"].append({
            "message": p.message, "line": p.line or 0, "column": 0, "mainElementId": p.element_id,
            "elementIds": [p.element_id] if p.element_id else []})
    return {"type": "ParseException", "message": "\n".join(lines), "details": details}


def fault_response(fault: faults.Fault) -> Response:
    """A fault (engine/faults.py): 503 with Retry-After; the client may send the same request again later."""
    current_app.logger.error("alur fault %s on %s %s (engine-rest): %s", fault.kind, request.method, request.path,
                             fault.detail)
    response = error_response(503, "ProcessEngineException", f"Service unavailable: {Unavailable(fault)}",
                              code=fault.kind)
    response.headers["Retry-After"] = str(fault.retry_after)
    return response


def to_response(exc: BaseException) -> Response:
    fault = faults.classify(exc)  # also a raw database or OS error met outside the view (authentication)
    if fault is not None:
        return fault_response(fault)
    if isinstance(exc, CorruptState):
        current_app.logger.error("engine-rest: %s", exc)
        return error_response(500, "ProcessEngineException", str(exc))
    if isinstance(exc, RestError):
        response = error_response(exc.status, exc.type, exc.message)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, DeployError):
        response = jsonify(deploy_error_body(exc))
        response.status_code = 400
        return response
    if isinstance(exc, FormValidationError):
        return error_response(400, "FormFieldValidationException", f"Cannot submit task form: {exc}",
                              errors=exc.errors)
    if isinstance(exc, NotFound):
        return error_response(404, "InvalidRequestException", str(exc))
    if isinstance(exc, PermissionDenied):
        return error_response(403, "AuthorizationException", str(exc))
    if isinstance(exc, ConflictError):
        return error_response(409, "OptimisticLockingException", str(exc))
    if isinstance(exc, InvalidState):
        return error_response(400, "BadUserRequestException", str(exc))
    if isinstance(exc, AlurError):
        return error_response(400, "InvalidRequestException", str(exc))
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        kind = {401: "AuthenticationException", 403: "AuthorizationException", 404: "NotFoundException",
                405: "RestException", 413: "RestException", 415: "RestException"}.get(code, "RestException")
        return error_response(code, kind, exc.description or exc.name)
    return error_response(500, "ProcessEngineException", "internal error; see the server log")
