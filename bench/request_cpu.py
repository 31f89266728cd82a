"""Where the web CPU of one load-test cycle goes: the cycle of bench/load.py (inbox GET -> task GET -> form POST)
run in-process through Flask's test client against PostgreSQL, with CPU time and SQL statements per request.

    .venv/bin/python bench/request_cpu.py [--cycles 400] [--profile tottime|cumtime] [--top 40]

No gunicorn and no sockets: what is left is the application's own work (Flask, Flask-Login, CSRF, SQLAlchemy,
SpiffWorkflow, Jinja). It uses the load test's setup (a fresh `alur_load_cpu` database, 8 staff) and ends by
itself. `--profile` adds a cProfile of the measured cycles, sorted by the given key. Timing decides nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from bench.load import (  # noqa: E402
    ADMIN_URL,
    CSRF_RE,
    PASSWORD,
    TASK_LINK_RE,
    drop_database,
    form_body,
    prepare,
    recreate_database,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=400, help="measured cycles (after 40 warm-up cycles)")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--profile", choices=("tottime", "cumtime"), help="cProfile the measured cycles")
    parser.add_argument("--sample", action="store_true", help="pyinstrument (sampling: less distortion) instead")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--show-sql", action="store_true", help="print the last request's statements per kind")
    parser.add_argument("--callers", help="with --profile: print the callers of functions matching this regex")
    parser.add_argument("--filter", action="append", help="only profile lines matching this regex")
    parser.add_argument("--by-package", action="store_true", help="with --profile: own time summed per package")
    parser.add_argument("--db-name", default="alur_load_cpu")
    o = parser.parse_args(argv)

    url = recreate_database(ADMIN_URL, o.db_name)
    try:
        with tempfile.TemporaryDirectory(prefix="alur-cpu-") as tmp:
            return _run(o, url, Path(tmp))
    finally:
        drop_database(ADMIN_URL, o.db_name)


def _run(o: argparse.Namespace, url: str, workdir: Path) -> int:
    setup = prepare(url, o.users, max(60, (o.cycles + 40) // o.users * 2), 20, workdir, print)
    from web.app import create_app

    app = create_app({"ALUR_DATABASE_URL": url, "ALUR_INSTANCE_DIR": str(workdir), "SECRET_KEY": "x" * 40})
    statements = [0]
    last_sql: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements[0] += 1
        last_sql.append(" ".join(statement.split())[:160])

    event.listen(app.extensions["alur"].db.engine, "before_cursor_execute", count)
    clients = []
    for staff in setup.staff[: o.users]:
        c = app.test_client()
        token = CSRF_RE.search(c.get("/masuk").data).group(1).decode()  # type: ignore[union-attr]
        r = c.post("/masuk", data={"username": staff.username, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 302, r.status_code
        clients.append((staff, c))

    cpu: dict[str, list[float]] = {"inbox": [], "task": [], "complete": []}
    sql: dict[str, list[int]] = {"inbox": [], "task": [], "complete": []}

    def timed(kind: str, call):  # type: ignore[no-untyped-def]
        last_sql.clear()
        s0, t0 = statements[0], time.process_time()
        r = call()
        cpu[kind].append((time.process_time() - t0) * 1000)
        sql[kind].append(statements[0] - s0)
        if o.show_sql:
            shown[kind] = list(last_sql)
        return r

    n = 0
    shown: dict[str, list[str]] = {}

    def cycle(staff, c) -> None:  # type: ignore[no-untyped-def]
        nonlocal n
        page = timed("inbox", lambda: c.get("/")).data
        found = TASK_LINK_RE.search(page)
        if found is None:
            return
        task = found.group(1).decode()
        page = timed("task", lambda: c.get(f"/tugas/{task}")).data
        token = CSRF_RE.search(page).group(1).decode()  # type: ignore[union-attr]
        n += 1
        r = timed("complete", lambda: c.post(f"/tugas/{task}", data={
            **form_body(staff.role, n), "csrf_token": token, "action": "complete"}))
        assert r.status_code == 302, (r.status_code, r.data[:2000])

    for i in range(40):
        cycle(*clients[i % len(clients)])
    gc_time = [0.0, 0]  # measured 0.08 ms per cycle (225 runs in 600 cycles): not worth tuning

    def gc_timer(phase: str, info: dict) -> None:  # type: ignore[type-arg]
        if phase == "start":
            gc_time.append(time.process_time())
        else:
            gc_time[0] += time.process_time() - gc_time.pop()
            gc_time[1] += 1

    gc.callbacks.append(gc_timer)
    for v in (*cpu.values(), *sql.values()):
        v.clear()
    profiler = cProfile.Profile(time.process_time) if o.profile else None  # CPU, not waiting
    sampler = None
    if o.sample:
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0002)
        sampler.start()
    if profiler:
        profiler.enable()
    for i in range(o.cycles):
        cycle(*clients[i % len(clients)])
    if profiler:
        profiler.disable()
    if sampler:
        sampler.stop()
        print(sampler.output_text(unicode=False, color=False, show_all=False))
    total = best_total = 0.0
    for kind in cpu:
        mean = statistics.fmean(cpu[kind])
        # The machine is shared: the lowest mean over blocks of 50 consecutive requests is the steadier figure.
        blocks = [statistics.fmean(cpu[kind][i:i + 50]) for i in range(0, len(cpu[kind]) - 49, 50)] or [mean]
        total += mean
        best_total += min(blocks)
        print(f"{kind:9s} n={len(cpu[kind]):4d}  CPU mean {mean:5.2f} ms  best block {min(blocks):5.2f} ms"
              f"  statements {statistics.fmean(sql[kind]):.1f}")
    print(f"cycle     CPU {total:.2f} ms, best blocks {best_total:.2f} ms (in-process: no HTTP server, no socket)")
    gc.callbacks.remove(gc_timer)
    print(f"garbage collector: {gc_time[1]} runs, {gc_time[0] * 1000 / max(1, o.cycles):.2f} ms CPU per cycle")
    for kind, lines in shown.items():
        print(f"-- {kind}: the last request's statements")
        for line in lines:
            print("   ", line)
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats(o.profile).print_stats(*(o.filter or []), o.top)
        if o.callers:
            stats.print_callers(o.callers)
        if o.by_package:
            print_by_package(stats)
    return 0


def print_by_package(stats: pstats.Stats) -> None:
    """Own (tottime) CPU per package: site-packages by distribution, the project by top-level folder,
    the standard library and built-ins apart."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in filename:
            key = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith(str(ROOT)):
            key = "alur: " + filename[len(str(ROOT)) + 1:].split("/", 1)[0]
        elif filename == "~":
            key = "built-ins"
        else:
            key = "standard library"
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values()) or 1.0
    for key, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {value / whole:6.1%}  {key}")


if __name__ == "__main__":
    raise SystemExit(main())
