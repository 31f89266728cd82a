"""Long-loop benchmark: does a step cost more at round 10,000 of a revision loop than at round 10?

One instance of the test SOP `pengajuan` (tests/data/service) is sent back ("keputusan = tidak") again and
again through the real service on SQLite: every round completes Step_1 (Kasubag) and Step_2 (Camat). The CPU
time (process time: the machine is shared) of each round is recorded; the script prints the median round
around round 10 and around the last round, and their ratio (target: at most 2), plus the stored state's size.
Before history pruning (engine/history.py) the instance closed itself at round ~333.

    .venv/bin/python bench/long_loop.py                    # 10,000 rounds
    .venv/bin/python bench/long_loop.py --rounds 2000
    .venv/bin/python bench/long_loop.py --write-docs       # also record the figures in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._common import load_average, machine, write_section  # noqa: E402
from engine import accounts  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import ProcessInstance, Task  # noqa: E402
from engine.service import Alur  # noqa: E402

DATA = ROOT / "tests" / "data" / "service"
WINDOW = 10  # rounds on each side of the compared round


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def run(rounds: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'loop.sqlite3'}")
        upgrade(db)
        svc = Alur(db, clock=Clock())
        svc.deploy({p.name: p.read_bytes() for p in DATA.iterdir() if p.suffix in (".bpmn", ".form")})
        with db.write() as s:
            accounts.add_unit(s, "iv-jurai", "Kecamatan IV Jurai")
            for name, role in (("kasubag", "Kasubag"), ("camat", "Camat")):
                accounts.add_user(s, name, "rahasia-123")
                accounts.grant(s, name, role, "iv-jurai")
        kasubag, camat = svc.actor("kasubag"), svc.actor("camat")
        iid = svc.start("pengajuan", unit="iv-jurai", business_key="BENCH-LOOP").id
        step = svc.tasks_for(kasubag)[0].id
        cpu: list[float] = []
        sizes: dict[int, int] = {}
        for i in range(1, rounds + 1):
            t = time.process_time()
            view = svc.complete(step, kasubag, {"judul": f"Revisi {i}", "jumlah": i % 1000},
                                late_reason="Revisi")
            view = svc.complete(view.ready_task_ids[0], camat, {"keputusan": "tidak"}, late_reason="Revisi")
            cpu.append(time.process_time() - t)
            step = view.ready_task_ids[0]
            if view.status != "running":
                raise SystemExit(f"round {i}: the instance is {view.status} with a step open")
            if i in (10, rounds):
                with db.read() as s:
                    sizes[i] = len(s.scalar(select(ProcessInstance.state).where(ProcessInstance.id == iid)) or "")
            if i % 1000 == 0:
                print(f"  round {i}: {cpu[-1] * 1000:.1f} ms CPU", file=sys.stderr)
        with db.read() as s:
            rows = s.scalar(select(func.count()).select_from(Task).where(Task.instance_id == iid)) or 0
        db.dispose()
    early = statistics.median(cpu[max(0, 10 - WINDOW // 2 - 1):10 + WINDOW // 2])
    late = statistics.median(cpu[-WINDOW:])
    return {"rounds": rounds, "early_ms": early * 1000, "late_ms": late * 1000, "ratio": late / early,
            "size_early": sizes[10], "size_late": sizes[rounds], "task_rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10_000)
    ap.add_argument("--write-docs", action="store_true", help="write the figures into docs/benchmarks.md")
    args = ap.parse_args()
    if args.rounds < 2 * WINDOW:
        ap.error(f"--rounds must be at least {2 * WINDOW}")
    load = load_average()
    r = run(args.rounds)
    lines = [
        f"| rounds | CPU per round at round 10 | at round {r['rounds']:,} | ratio | state at 10 | "
        f"state at {r['rounds']:,} | task rows |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['rounds']:,} | {r['early_ms']:.1f} ms | {r['late_ms']:.1f} ms | {r['ratio']:.2f} | "
        f"{r['size_early']:,} B | {r['size_late']:,} B | {r['task_rows']:,} |",
    ]
    table = "\n".join(lines)
    print(table)
    print(f"target: ratio <= 2 -> {'met' if r['ratio'] <= 2 else 'NOT met'}; load average {load}")
    if args.write_docs:
        write_section("Long loops", (
            "`bench/long_loop.py`: one instance of `pengajuan` sent back again and again through the service "
            "(SQLite); a round completes two steps. CPU time (process time), median of 10 rounds around round 10 "
            "and of the last 10 rounds, same run. Target: at most 2x. Before history pruning the instance closed "
            "itself at round ~333.\n\n" + table + f"\n\nLoad average at the start: {load}; {machine()}."))


if __name__ == "__main__":
    main()
