"""The floor under the load test: what the same three-request cycle costs when the requests do no work.

    make bench-floor                      # = .venv/bin/python bench/floor.py --write-docs
    .venv/bin/python bench/floor.py [--users 32] [--duration 30] [--web-workers 3] [--write-docs]

The load test's cycle is inbox GET -> task GET -> form POST (bench/load.py). Here the same gunicorn setup,
clients and sign-in serve three routes that only do what every Alur request does whatever it shows: the
session cookie, Flask-Login loading the user (one statement: Alur.session_user), CSRF on the POST, the
security headers, and a few hundred bytes of fixed HTML (no template, no inbox query, no workflow). The rate
this reaches is the most any Alur page cycle could reach on this machine with this stack; the CPU per cycle
is what is left of the load test's budget (2 cores / target rate) for the pages' own work.

Loopback only, a fresh `alur_load_floor` database, ends by itself. Timing decides nothing: it prints figures
(with --write-docs also into docs/benchmarks.md, "Load test floor").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Blueprint, Flask, redirect  # noqa: E402
from flask_login import login_required  # noqa: E402
from flask_wtf.csrf import generate_csrf  # noqa: E402
from markupsafe import escape  # noqa: E402

from bench._common import load_average, machine, reference_loop_ms, write_section  # noqa: E402
from bench.load import (  # noqa: E402
    ADMIN_URL,
    CSRF_RE,
    Cluster,
    CpuMeter,
    VirtualUser,
    drop_database,
    prepare,
    recreate_database,
    sign_in_all,
)

TARGET_RATE = 150.0  # issue 8: completions per second on this 2-core machine
FLOOR_DOC = """\
What the load test's cycle (inbox GET, task GET, form POST) costs when the three requests do no work of their
own: the same gunicorn (`-w {workers}`, sync workers), {users} virtual staff with the load test's client, the
session cookie, Flask-Login loading the user (`Alur.session_user`, one statement), CSRF on the POST and the
security headers, and a few hundred bytes of fixed HTML. No template, no inbox query, no workflow.
Command: `{command}`.

"""


def create_floor_app() -> Flask:
    """`web.app:create_app()` plus three routes that do nothing beyond what every request does."""
    from web.app import create_app

    app = create_app()
    bp = Blueprint("floor", __name__, url_prefix="/_floor")
    task_id = str(uuid.uuid4())

    @bp.get("/inbox")
    @login_required
    def inbox() -> str:
        return f'<!doctype html><title>floor</title><a class="task-link" href="/_floor/task/{task_id}">step</a>'

    @bp.get("/task/<task>")
    @login_required
    def task(task: str) -> str:
        return (f'<!doctype html><title>floor</title><form method="post"><input type="hidden" name="csrf_token" '
                f'value="{escape(generate_csrf())}"><input name="nomor"><button>Selesai</button></form>')

    @bp.post("/task/<task>")
    @login_required
    def complete(task: str):  # type: ignore[no-untyped-def]
        return redirect("/_floor/inbox")

    app.register_blueprint(bp)
    return app


class FloorUser(VirtualUser):
    def step(self) -> None:
        status, _, page = self._timed("inbox", "GET", "/_floor/inbox")
        if status != 200:
            self._error(f"inbox HTTP {status}")
            return
        path = f"/_floor/task/{uuid.uuid4()}"
        status, _, page = self._timed("task", "GET", path)
        token = CSRF_RE.search(page)
        if status != 200 or token is None:
            self._error(f"task HTTP {status}")
            return
        status, location, _ = self._timed("complete", "POST", path,
                                          {"nomor": "1", "csrf_token": token.group(1).decode()})
        if status == 302 and urllib.parse.urlsplit(location).path == "/_floor/inbox":
            self.stats.ack_times.append(time.monotonic())
        else:
            self._error(f"complete HTTP {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--db-name", default="alur_load_floor")
    parser.add_argument("--write-docs", action="store_true", help="record the figures in docs/benchmarks.md")
    parser.add_argument("--app", default="bench.floor:create_floor_app()", help=argparse.SUPPRESS)
    o = parser.parse_args(argv)
    url = recreate_database(ADMIN_URL, o.db_name)
    try:
        with tempfile.TemporaryDirectory(prefix="alur-floor-") as tmp:
            return _run(o, url, Path(tmp), argv)
    finally:
        drop_database(ADMIN_URL, o.db_name)


def _run(o: argparse.Namespace, url: str, workdir: Path, argv: list[str] | None) -> int:
    setup = prepare(url, o.users, 1, 1, workdir, print)
    cluster = Cluster(url, workdir, web_workers=o.web_workers, threads=1, timer_workers=0,
                      app=o.app)
    try:
        cluster.start()
        stop = threading.Event()
        from bench.load import Budget

        users = [FloorUser(s, cluster.port, stop=stop, budget=Budget(None), timeout=30)
                 for s in setup.staff[: o.users]]
        sign_in_all(users)
        speed = reference_loop_ms()
        meter = CpuMeter(cluster, o.db_name)
        before, t0 = meter.snapshot(), time.monotonic()
        for u in users:
            u.start()
        stop.wait(o.duration)
        stop.set()
        for u in users:
            u.join(35)
        elapsed = time.monotonic() - t0
        cpu = CpuMeter.delta(before, meter.snapshot())
    finally:
        cluster.stop()
    cycles = sum(len(u.stats.ack_times) for u in users)
    errors = sum(sum(u.stats.errors.values()) for u in users)
    per = {k: v * 1000 / max(1, cycles) for k, v in cpu.items()}
    total = sum(per.values())
    budget = 2 * 1000 / TARGET_RATE
    latency = sorted(x for u in users for x in u.stats.latency["complete"])
    lines = [
        f"{cycles:,} cycles in {elapsed:.1f} s = **{cycles / elapsed:.1f} cycles/s**, {errors} errors, "
        f"POST p50 {statistics.median(latency) if latency else 0:.1f} ms",
        f"CPU per cycle: client {per['client']:.1f} ms, web {per['web']:.1f} ms, postgres {per['postgres']:.1f} ms "
        f"(**total {total:.1f} ms**)",
        f"the target ({TARGET_RATE:.0f} completions/s on 2 cores) allows {budget:.1f} ms of CPU per completion in "
        f"all: the floor takes {total / budget:.0%} of it, leaving {budget - total:.1f} ms for the pages' own work",
        f"reference loop {speed:.0f} ms (bench/_common.py: lower is a faster machine); load average after "
        f"{load_average()}",
    ]
    print(machine())
    for line in lines:
        print("  " + line.replace("**", ""))
    if o.write_docs:
        args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--write-docs"]
        command = "make bench-floor" + (f" BENCH_ARGS='{' '.join(args)}'" if args else "")
        write_section("Load test floor", FLOOR_DOC.format(command=command, users=o.users, workers=o.web_workers)
                      + "\n".join(f"- {line}" for line in lines) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
