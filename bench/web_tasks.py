"""Staff web latency over HTTP: the inbox page and a task completion, with 100 / 10,000 / 100,000 instances.

    .venv/bin/python bench/web_tasks.py [--sizes 100,10000,100000] [--samples 200] [--write-docs]

A real server (werkzeug, threaded) runs in this process on loopback; the client is `http.client` with a
kept-alive connection and a signed-in session (CSRF on, as in production). Instances are made fast: a few
are started through the engine (SOP Pengukuran Kinerja, Kecamatan Wangon, advanced 0–5 steps), then cloned
with bulk inserts — instance and task rows with fresh ids, spread deadlines. Clones used for completion get
their state's task ids rewritten so the engine can run them; the rest keep the template's state text.
Timing decides nothing here: this prints a table and (with --write-docs) records it in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402

from engine.db import Database  # noqa: E402
from engine.demo import DEMO_PASSWORD, run_demo, sample_data, username_for  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import ProcessInstance, Task  # noqa: E402
from engine.service import Alur  # noqa: E402

KEY = "sop_pengukuran_kinerja_wangon"
UNIT = "kec-wangon"
ROLE = "Camat"
USER = username_for(ROLE, UNIT)
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def build(db: Database, service: Alur, n: int, completable: int) -> list[str]:
    """n instances in total; returns the ids of `completable` READY Camat tasks with runnable state."""
    templates = []
    for steps in range(6):
        view = service.start(KEY, unit=UNIT, business_key=f"TPL-{steps}")
        for _ in range(steps):
            task = next(t for t in service.instance(view.id).tasks if t.state == "READY")
            actor = service.actor(username_for(task.candidate_role or "", UNIT))
            service.complete(task.id, actor, sample_data(service.task_form(task.id), service.clock()),
                             late_reason="bench")
        with db.read() as s:
            inst = s.get(ProcessInstance, view.id)
            tasks = s.scalars(select(Task).where(Task.instance_id == view.id)).all()
            templates.append((inst, [t for t in tasks]))
    first_inst, first_tasks = templates[0]
    now = datetime.now(UTC)
    rng = random.Random(7)
    completable_ids: list[str] = []
    todo = max(0, n - len(templates))
    batch_i: list[dict[str, Any]] = []
    batch_t: list[dict[str, Any]] = []

    def flush() -> None:
        if batch_i:
            with db.write() as s:
                s.execute(insert(ProcessInstance), batch_i)
                s.execute(insert(Task), batch_t)
            batch_i.clear()
            batch_t.clear()

    for i in range(todo):
        full = i < completable
        inst, tasks = (first_inst, first_tasks) if full else templates[i % len(templates)]
        new_id = str(uuid.uuid4())
        mapping: dict[str, str] = {}
        state = inst.state
        if full:  # fresh spiff task ids, consistently across the state and the task rows
            state = UUID_RE.sub(lambda m, ids=mapping: ids.setdefault(m.group(0), str(uuid.uuid4())), state)
        created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        batch_i.append({"id": new_id, "definition_id": inst.definition_id, "process_key": inst.process_key,
                        "business_key": f"B-{i:06d}", "unit_id": inst.unit_id, "status": "running",
                        "started_at": created, "started_by": "bench", "state": state, "version": inst.version,
                        "next_due_at": None})
        for t in tasks:
            tid = mapping.get(t.id) if full else None
            tid = tid or str(uuid.uuid4())
            due = created + timedelta(minutes=rng.randint(15, 60 * 24 * 5))
            batch_t.append({"id": tid, "instance_id": new_id, "definition_id": t.definition_id,
                            "process_key": t.process_key, "unit_id": t.unit_id, "element_id": t.element_id,
                            "name": t.name, "lane": t.lane, "candidate_role": t.candidate_role, "assignee": None,
                            "state": t.state, "created_at": created,
                            "due_at": due if t.state == "READY" else t.due_at,
                            "completed_at": t.completed_at, "completed_by": t.completed_by,
                            "form_data": t.form_data})
            if full and t.state == "READY":
                completable_ids.append(tid)
        if len(batch_i) >= 2000:
            flush()
    flush()
    # No ANALYZE: a production SQLite file rarely has planner statistics, so the queries must not need them.
    return completable_ids


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        text = resp.read().decode()
        for header, value in resp.getheaders():
            if header.lower() == "set-cookie" and value.startswith("alur_session="):
                self.cookie = value.split(";", 1)[0]
        return resp.status, text


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request would skew the timings
        pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(n: int, samples: int, workdir: Path) -> dict[str, float]:
    os.environ["ALUR_INSTANCE_DIR"] = str(workdir)
    db = Database(f"sqlite:///{workdir / 'bench.sqlite3'}")
    upgrade(db)
    service = Alur(db)
    run_demo(service, per_sop=0, echo=lambda _: None)
    t0 = time.perf_counter()
    task_ids = build(db, service, n, samples + 5)
    build_s = time.perf_counter() - t0

    from web.app import create_app

    app = create_app({"SECRET_KEY": "bench", "ALUR_INSTANCE_DIR": str(workdir)}, service=service)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = Client(server.server_port)
        _, page = client.request("GET", "/masuk")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        status, _ = client.request("POST", "/masuk", {"username": USER, "password": DEMO_PASSWORD,
                                                      "csrf_token": token})
        assert status == 302, status
        _, page = client.request("GET", "/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        inbox: list[float] = []
        for i in range(samples + 5):
            t = time.perf_counter()
            status, _ = client.request("GET", "/" if i % 2 else "/?page=2")
            inbox.append((time.perf_counter() - t) * 1000)
            assert status == 200, status
        form = service.task_form(task_ids[0])
        data = {k: (str(v).lower() if isinstance(v, bool) else v)
                for k, v in sample_data(form, service.clock()).items()}
        complete: list[float] = []
        for tid in task_ids[: samples + 5]:
            body = {**data, "csrf_token": token, "action": "complete", "late_reason": "bench"}
            t = time.perf_counter()
            status, text = client.request("POST", f"/tugas/{tid}", body)
            complete.append((time.perf_counter() - t) * 1000)
            assert status == 302, (status, text[-2000:])
        inbox, complete = inbox[5:], complete[5:]  # warm-up
    finally:
        server.shutdown()
        db.dispose()
    return {"n": n, "build_s": build_s, "inbox_p50": statistics.median(inbox), "inbox_p99": percentile(inbox, 0.99),
            "complete_p50": statistics.median(complete), "complete_p99": percentile(complete, 0.99)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU, Python {platform.python_version()}, SQLite (WAL), {platform.system()}"


def table(results: list[dict[str, float]]) -> str:
    lines = ["| instances | inbox p50 (ms) | inbox p99 (ms) | completion p50 (ms) | completion p99 (ms) | setup (s) |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {int(r['n']):,} | {r['inbox_p50']:.1f} | {r['inbox_p99']:.1f} | {r['complete_p50']:.1f} "
                     f"| {r['complete_p99']:.1f} | {r['build_s']:.0f} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    section = "## Web tasks\n"
    start = doc.find(section)
    if start == -1:
        doc = doc.rstrip("\n") + "\n\n" + section + text
    else:
        end = doc.find("\n## ", start + len(section))
        doc = doc[:start] + section + text + (doc[end:] if end != -1 else "")
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="alur-bench-") as tmp:
            result = run(n, args.samples, Path(tmp))
        results.append(result)
        print(f"{n:>7,} instances: inbox p50 {result['inbox_p50']:.1f} ms, completion p50 "
              f"{result['complete_p50']:.1f} ms", flush=True)
    out = table(results)
    print(out)
    if args.write_docs:
        write_docs(f"`bench/web_tasks.py`, {datetime.now(UTC):%Y-%m-%d}, {machine()}. {args.samples} samples each;"
                   f" signed in as `{USER}` (role {ROLE}), who can claim about a sixth of all open tasks.\n\n"
                   + out + "\n")


if __name__ == "__main__":
    main()
