"""Latency of every /engine-rest endpoint with 10,000 process instances present (SQLite file, WAL).

Setup: units kab > kec-a, kec-b; the web test SOP (3 user tasks, lanes Kasubag/Camat) deployed; one real
instance started and its first task completed, then its `process_instance` and `task` rows cloned with
fresh ids until INSTANCES exist (half per kecamatan, one in ten completed). Each endpoint is called
through the Flask test client (the full WSGI stack: auth, JSON, CORS) REPEAT times, as admin (sees all)
and as a kecamatan user (sees their unit only); the table gives median and p95 in milliseconds.
Camunda Modeler gives up after 5 s. Basic auth is verified with argon2 once and then cached (web/rest/auth.py).

    .venv/bin/python bench/rest_endpoints.py [--instances 10000] [--repeat 20] [--no-write]
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from bench._common import write_section
from engine import accounts
from engine.db import Database
from engine.migrate import upgrade
from engine.models import ProcessInstance, Task, Unit
from engine.service import Alur
from web.app import create_app

DATA = Path(__file__).resolve().parent.parent / "tests" / "web" / "data"
PASSWORD = "rahasia-bench-123"


def _headers(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode(),
            "Accept": "application/json"}


def setup(db: Database, instances: int) -> tuple[Alur, dict[str, str]]:
    service = Alur(db)
    with db.write() as s:
        accounts.add_unit(s, "kab", "Kabupaten")
        accounts.add_unit(s, "kec-a", "Kecamatan A", parent="kab")
        accounts.add_unit(s, "kec-b", "Kecamatan B", parent="kab")
        for user, role, unit in (("desainer", "designer", None), ("admin", "admin", None),
                                 ("kasubag", "Kasubag", "kec-a"), ("camat", "Camat", "kec-a")):
            accounts.add_user(s, user, PASSWORD)
            accounts.grant(s, user, role, unit)
    service.deploy({p.name: p.read_bytes() for p in DATA.iterdir() if p.suffix in (".bpmn", ".form")})
    view = service.start("web_flow", unit="kec-a", business_key="REAL-1")
    kasubag = service.actor("kasubag")
    first = next(t for t in view.tasks if t.state == "READY")
    service.complete(first.id, kasubag, {"judul": "Laporan", "sifat": "biasa"})
    ids = {"instance": view.id, "definition": view.definition_id}
    with db.write() as s:
        unit_ids = {code: uid for code, uid in s.execute(select(Unit.code, Unit.id))}
        inst = s.execute(select(ProcessInstance.__table__).where(ProcessInstance.id == view.id)).mappings().one()
        tasks = s.execute(select(Task.__table__).where(Task.instance_id == view.id)).mappings().all()
        conn = s.connection()
        batch_i: list[dict[str, Any]] = []
        batch_t: list[dict[str, Any]] = []
        for n in range(instances - 1):
            iid = str(uuid.uuid4())
            unit_id = unit_ids["kec-a"] if n % 2 == 0 else unit_ids["kec-b"]
            done = n % 10 == 9
            batch_i.append({**inst, "id": iid, "unit_id": unit_id, "business_key": f"CLONE-{n}",
                            "status": "completed" if done else "running",
                            "ended_at": inst["started_at"] if done else None})
            for t in tasks:
                state = "COMPLETED" if done or t["state"] == "COMPLETED" else t["state"]
                completed_at = t["completed_at"] or (inst["started_at"] if done else None)
                batch_t.append({**t, "id": str(uuid.uuid4()), "instance_id": iid, "unit_id": unit_id,
                                "state": state, "completed_at": completed_at})
            if len(batch_i) >= 1000:
                conn.execute(ProcessInstance.__table__.insert(), batch_i)
                conn.execute(Task.__table__.insert(), batch_t)
                batch_i, batch_t = [], []
        if batch_i:
            conn.execute(ProcessInstance.__table__.insert(), batch_i)
            conn.execute(Task.__table__.insert(), batch_t)
        ready = s.scalar(select(Task.id).where(Task.instance_id == view.id, Task.state == "READY"))
        ids["task"] = str(ready)
        ids["task_rows"] = str(s.scalar(select(func.count()).select_from(Task)))
    return service, ids


def deploy_body() -> dict[str, Any]:
    data: dict[str, Any] = {"deployment-name": "bench", "deployment-source": "Camunda Modeler",
                            "enable-duplicate-filtering": "true", "deploy-changed-only": "true"}
    for p in sorted(DATA.iterdir()):
        if p.suffix in (".bpmn", ".form"):
            data[p.name] = (io.BytesIO(p.read_bytes()), p.name)
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.sqlite3")
        upgrade(db)
        t0 = time.perf_counter()
        service, ids = setup(db, args.instances)
        print(f"setup: {args.instances} instances in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "ALUR_INSTANCE_DIR": f"{tmp}/instance"},
                         service=service)
        client = app.test_client()
        i, d, t = ids["instance"], ids["definition"], ids["task"]
        gets = [
            "/version", "/deployment?maxResults=0", "/deployment", "/deployment/count",
            "/process-definition", "/process-definition?key=web_flow&latestVersion=true",
            f"/process-definition/{d}", "/process-definition/key/web_flow", f"/process-definition/{d}/xml",
            "/process-instance?maxResults=100", "/process-instance/count",
            "/process-instance?processDefinitionKey=web_flow&businessKey=CLONE-500",
            f"/process-instance/{i}", f"/process-instance/{i}/variables", f"/process-instance/{i}/activity-instances",
            "/task?maxResults=100", "/task/count", "/task?candidateGroup=Camat&maxResults=50",
            "/task?candidateUser=camat&maxResults=50", f"/task?processInstanceId={i}", f"/task/{t}",
            f"/task/{t}/form-variables", "/history/process-instance?maxResults=100",
            "/history/process-instance/count", "/history/process-instance?finished=true&maxResults=100",
            f"/history/process-instance/{i}", "/history/task?maxResults=100", "/history/task/count",
            f"/history/task?processInstanceId={i}", "/history/activity-instance?maxResults=100",
        ]
        rows: list[tuple[str, str, float, float]] = []

        def measure(label: str, user: str, call: Any) -> None:
            call()  # warm: argon2 once, caches
            samples = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                response = call()
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code < 400, (label, response.status_code, response.get_data(as_text=True)[:300])
            samples.sort()
            rows.append((label, user, statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]))

        for path in gets:
            for user in ("admin", "camat"):
                measure(f"GET {path.replace(i, '{id}').replace(d, '{id}').replace(t, '{id}')}", user,
                        lambda p=path, u=user: client.get(f"/engine-rest{p}", headers=_headers(u)))
        measure("POST /deployment/create (duplicate)", "desainer",
                lambda: client.post("/engine-rest/deployment/create", headers=_headers("desainer"),
                                    data=deploy_body(), content_type="multipart/form-data"))
        measure("POST /process-definition/key/web_flow/start", "camat",
                lambda: client.post("/engine-rest/process-definition/key/web_flow/start", headers=_headers("camat"),
                                    json={"businessKey": "B", "variables": {"n": {"value": 1, "type": "Integer"}}}))

        def claim_complete() -> Any:
            task_id = client.get("/engine-rest/task?candidateGroup=Kasubag&maxResults=1&processDefinitionKey=web_flow"
                                 "&tenantIdIn=kec-a&sortBy=created&sortOrder=desc",
                                 headers=_headers("kasubag")).json[0]["id"]
            client.post(f"/engine-rest/task/{task_id}/claim", headers=_headers("kasubag"), json={"userId": "kasubag"})
            return client.post(f"/engine-rest/task/{task_id}/complete", headers=_headers("kasubag"),
                               json={"variables": {"judul": {"value": "Laporan", "type": "String"},
                                                   "sifat": {"value": "biasa", "type": "String"}}})

        # Fresh READY Kasubag tasks to complete: real instances started by kasubag.
        for _ in range(args.repeat + 1):
            client.post("/engine-rest/process-definition/key/web_flow/start", headers=_headers("kasubag"), json={})
        measure("GET /task + POST claim + POST complete", "kasubag", claim_complete)

    worst = max(rows, key=lambda r: r[3])
    lines = [f"{args.instances:,} process instances ({int(ids['task_rows']):,} task rows) in SQLite; "
             f"{args.repeat} calls each through the WSGI stack (Flask test client). "
             "`camat` holds one role in one of two kecamatan (sees half); `admin` sees all.", "",
             "| endpoint | user | median ms | p95 ms |", "|---|---|---:|---:|"]
    lines += [f"| `{label}` | {user} | {med:.1f} | {p95:.1f} |" for label, user, med, p95 in rows]
    lines += ["", f"Slowest p95: `{worst[0]}` ({worst[1]}) at {worst[3]:.0f} ms — Camunda Modeler's limit is 5,000 ms.",
              "Reproduce: `.venv/bin/python bench/rest_endpoints.py`."]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("REST endpoints", body)


if __name__ == "__main__":
    main()
