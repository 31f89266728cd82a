"""`alur serve`: the staff web on one machine (werkzeug's threaded server) plus the background worker.

For production use gunicorn (see docs/deployment.md): `gunicorn -w 4 'web.app:create_app()'`.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


def _start_worker(service: Any, interval: float) -> Any:
    """Start engine.worker's background thread when that module exists; None when it does not."""
    try:
        worker = importlib.import_module("engine.worker")
    except ModuleNotFoundError as exc:
        if exc.name != "engine.worker":
            raise
        return None
    start = getattr(worker, "start_background_worker", None)
    return start(service, interval) if start is not None else None


def _stop_worker(handle: Any) -> None:
    if handle is None:
        return
    for name in ("stop", "set", "cancel", "shutdown"):  # a stoppable thread, an Event, or a Timer
        method = getattr(handle, name, None)
        if callable(method):
            method()
            break
    join = getattr(handle, "join", None)
    if callable(join):
        join(timeout=10)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--worker-interval", default=30.0, show_default=True, type=float,
              help="Seconds between worker runs (timers, reminders); 0 turns the worker off.")
def serve(host: str, port: int, worker_interval: float) -> None:
    """Serve the staff web on HOST:PORT (single machine)."""
    from werkzeug.serving import run_simple

    from web.app import create_app
    from web.security import InsecureConfiguration

    try:
        app = create_app()
    except InsecureConfiguration as exc:  # e.g. ALUR_ENV=production without ALUR_SECRET_KEY
        raise click.ClickException(str(exc)) from None
    service = app.extensions["alur"]
    handle = _start_worker(service, worker_interval) if worker_interval > 0 else None
    click.echo(f"Alur: http://{host}:{port}/  (Ctrl+C to stop)"
               + ("" if handle is not None else "  [background worker not running]"))
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        _stop_worker(handle)
