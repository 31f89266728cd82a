"""Timer sweep benchmark: how long `fire_due_timers` takes to find and fire the due instances among many
waiting ones, and whether that grows with the number that are NOT due.

Builds N waiting instances of a one-step SOP with a non-interrupting PT2H boundary timer (the shape of an
SOP step with an escalation path): a few are started for real through the service, the rest are clones of
their state rows (fresh task ids) written with bulk inserts. D of them are due; the others were started
later and wait. Then one sweep fires the due ones (one transaction each) and the script checks that every
due instance fired exactly once and no other instance was touched.

    .venv/bin/python bench/timer_sweep.py                      # 10,000 and 100,000 waiting, 1,000 due (SQLite)
    .venv/bin/python bench/timer_sweep.py --waiting 20000 --due 500
    .venv/bin/python bench/timer_sweep.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/timer_sweep.py --write-docs         # also record the table in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from bench._common import machine  # noqa: E402
from engine import accounts  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import AuditEvent, Base, ProcessInstance, Task  # noqa: E402
from engine.service import Alur  # noqa: E402

BPMN = ROOT / "tests" / "data" / "timers" / "timers_service.bpmn"
PROCESS = "eskalasi"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 09:00 WIB
LATER = T0 + timedelta(days=14)  # the waiting ones were started two weeks later
SWEEP_AT = T0 + timedelta(days=1)  # their timers (T0 + 2 working hours) are due; the others' are not
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CHUNK = 2000


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _fresh_database(url: str | None, workdir: Path, label: str) -> Database:
    if url is None:
        return _migrated(Database(f"sqlite:///{workdir / (label + '.sqlite3')}"))
    db = Database(url)
    with db.engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    return _migrated(db)


def _migrated(db: Database) -> Database:
    upgrade(db)
    return db


def _templates(svc: Alur, clock: Clock, at: datetime, count: int) -> list[tuple[dict, list[dict]]]:
    """Start `count` real instances at `at`; return their instance row and task rows as dicts."""
    clock.now = at
    ids = [svc.start(PROCESS, unit="iv-jurai").id for _ in range(count)]
    with svc.db.read() as s:
        inst = [dict(r._mapping) for r in s.execute(select(ProcessInstance.__table__).where(
            ProcessInstance.id.in_(ids)))]
        tasks = [dict(r._mapping) for r in s.execute(select(Task.__table__).where(Task.instance_id.in_(ids)))]
    return [(i, [t for t in tasks if t["instance_id"] == i["id"]]) for i in inst]


def _clone(template: tuple[dict, list[dict]]) -> tuple[dict, list[dict]]:
    """A copy of an instance with a new id and new task ids (consistently replaced in its state)."""
    inst, tasks = template
    mapping: dict[str, str] = {}

    def new_id(match: re.Match[str]) -> str:
        old = match.group(0)
        if old not in mapping:
            mapping[old] = str(uuid.uuid4())
        return mapping[old]

    state = UUID_RE.sub(new_id, inst["state"])
    new_instance = {**inst, "id": str(uuid.uuid4()), "state": state}
    new_tasks = [{**t, "id": mapping.get(t["id"], str(uuid.uuid4())), "instance_id": new_instance["id"]}
                 for t in tasks]
    return new_instance, new_tasks


def build(db: Database, waiting: int, due: int) -> tuple[Alur, set[str]]:
    """`waiting` running instances, `due` of them with a due timer. Returns the service and the due ids."""
    clock = Clock(T0)
    svc = Alur(db, clock=clock)
    svc.deploy({BPMN.name: BPMN.read_bytes()})
    with db.write() as s:
        accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
    due_templates = _templates(svc, clock, T0, 5)
    wait_templates = _templates(svc, clock, LATER, 5)
    due_ids = {i["id"] for i, _ in due_templates}
    plan = [(due_templates, due - len(due_templates)), (wait_templates, waiting - due - len(wait_templates))]
    inst_table, task_table = ProcessInstance.__table__, Task.__table__
    for templates, count in plan:
        done = 0
        while done < count:
            n = min(CHUNK, count - done)
            clones = [_clone(templates[(done + k) % len(templates)]) for k in range(n)]
            with db.write() as s:
                s.execute(inst_table.insert(), [c[0] for c in clones])
                s.execute(task_table.insert(), [t for c in clones for t in c[1]])
            if templates is due_templates:
                due_ids.update(c[0]["id"] for c in clones)
            done += n
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with db.engine.connect() as conn:  # the build's writes are not the sweep's to checkpoint
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE process_instance")
            conn.exec_driver_sql("ANALYZE task")
    return svc, due_ids


def measure(db: Database, waiting: int, due: int) -> dict[str, float | int | str]:
    t = time.perf_counter()
    _, due_ids = build(db, waiting, due)
    build_s = time.perf_counter() - t
    fresh = Alur(db, clock=Clock(SWEEP_AT))  # a worker that just started: cold caches
    due_query = (select(func.count()).select_from(ProcessInstance)
                 .where(ProcessInstance.status == "running", ProcessInstance.next_due_at <= SWEEP_AT))
    with db.read() as s:
        t = time.perf_counter()
        found = s.scalar(due_query)
        find_ms = (time.perf_counter() - t) * 1000
        if db.is_sqlite:
            plan = " / ".join(r[-1] for r in s.execute(text(
                "EXPLAIN QUERY PLAN SELECT id FROM process_instance WHERE status = 'running' AND "
                "next_due_at <= :now ORDER BY next_due_at LIMIT 1"), {"now": SWEEP_AT.replace(tzinfo=None)}))
        else:
            plan = s.execute(text(
                "EXPLAIN SELECT id FROM process_instance WHERE status = 'running' AND next_due_at <= :now "
                "ORDER BY next_due_at LIMIT 1 FOR UPDATE SKIP LOCKED"), {"now": SWEEP_AT}).all()[-1][0].strip()
    t, cpu = time.perf_counter(), time.process_time()
    report = fresh.fire_due_timers(SWEEP_AT, limit=due * 2)
    sweep_s, sweep_cpu_s = time.perf_counter() - t, time.process_time() - cpu
    t = time.perf_counter()
    again = fresh.fire_due_timers(SWEEP_AT, limit=due * 2)
    empty_ms = (time.perf_counter() - t) * 1000
    with db.read() as s:
        timer_events = dict(s.execute(select(AuditEvent.instance_id, func.count())
                                      .where(AuditEvent.action == "timer").group_by(AuditEvent.instance_id)).all())
        running = s.scalar(select(func.count()).select_from(ProcessInstance)
                           .where(ProcessInstance.status == "running"))
    assert found == due, (found, due)
    assert set(report.fired) == due_ids and len(report.fired) == due and not report.failed, report
    assert set(timer_events) == due_ids and set(timer_events.values()) == {1}
    assert not again and running == waiting
    return {"waiting": waiting, "due": due, "build_s": build_s, "find_ms": find_ms, "sweep_s": sweep_s,
            "sweep_cpu_s": sweep_cpu_s,
            "per_instance_ms": sweep_s * 1000 / due, "empty_ms": empty_ms, "plan": plan}


def table(results: list[dict[str, float | int | str]], backend: str) -> str:
    lines = ["| backend | waiting | due | find due (count, ms) | sweep: find + fire (s) | of which CPU (s) "
             "| per fired instance (ms) | empty sweep (ms) | build (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {backend} | {r['waiting']:,} | {r['due']:,} | {r['find_ms']:.1f} | {r['sweep_s']:.2f} "
                     f"| {r['sweep_cpu_s']:.2f} | {r['per_instance_ms']:.2f} | {r['empty_ms']:.1f} "
                     f"| {r['build_s']:.1f} |")
    return "\n".join(lines)


def write_docs(body: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text_ = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## Timer sweep\n\n{body.strip()}\n"
    pattern = re.compile(r"^## Timer sweep\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text_):
        text_ = pattern.sub(lambda _m: section + "\n", text_, count=1).rstrip() + "\n"
    else:
        text_ = text_.rstrip() + "\n\n" + section
    path.write_text(text_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiting", type=int, action="append", help="total waiting instances (repeatable)")
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--database-url", help="PostgreSQL URL (its tables are DROPPED); default: temp SQLite")
    parser.add_argument("--write-docs", action="store_true", help="record the table in docs/benchmarks.md")
    args = parser.parse_args()
    sizes = args.waiting or [10_000, 100_000]
    backend = "PostgreSQL" if args.database_url else "SQLite"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for waiting in sizes:
            db = _fresh_database(args.database_url, Path(tmp), f"sweep{waiting}")
            try:
                r = measure(db, waiting, args.due)
            finally:
                db.dispose()
            results.append(r)
            print(f"{backend}: {waiting:,} waiting, {args.due:,} due: sweep {r['sweep_s']:.2f} s "
                  f"({r['per_instance_ms']:.2f} ms each), find {r['find_ms']:.1f} ms, "
                  f"empty sweep {r['empty_ms']:.1f} ms; plan: {r['plan']}", flush=True)
    out = table(results, backend)
    print()
    print(out)
    if args.write_docs:
        day = subprocess.run(["date", "-I"], capture_output=True, text=True).stdout.strip()
        load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
        body = (f"`bench/timer_sweep.py` ({backend}), {day}, {machine()}; load average {load} when it ended "
                "(other jobs share the machine: wall times vary, CPU time is the stable figure).\n\n"
                "One-step SOP whose step has a non-interrupting PT2H boundary timer (escalation path). "
                "Waiting instances are real start states cloned with bulk inserts; the due ones were started "
                "a day before the sweep, the rest two weeks later. *find due* = the indexed "
                "`status='running' AND next_due_at <= now` count; *sweep* = `fire_due_timers(now)` finding and "
                "firing every due instance, each in its own transaction (load, refresh timers, run, save state "
                "+ task rows + audit, commit); *of which CPU* = this process's CPU time during the sweep (the rest is "
                "I/O and waiting for the CPU on a shared machine); *empty sweep* = the next sweep, with nothing "
                "due. Every run checks that each due instance fired exactly once and no other was touched.\n\n"
                + out + "\n")
        write_docs(body)
        print("\nwritten to docs/benchmarks.md (## Timer sweep)")


if __name__ == "__main__":
    main()
