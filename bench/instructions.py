"""Instructions per load-test cycle, counted by valgrind: a figure that does not move with the shared machine.

    .venv/bin/python bench/instructions.py [--cycles 200]

CPU time on this machine swings by ±40% within minutes, too much to see a change of a few percent. valgrind's
callgrind counts the instructions the Python process executes instead, which is repeatable. This runs
bench/request_cpu.py (inbox GET -> task GET -> form POST, in-process on PostgreSQL) under callgrind twice, with
20 and with 20 + --cycles measured cycles, both at once, and prints the difference per cycle: setup, imports
and warm-up cancel out. PostgreSQL's own work is in another process and not counted. About 4 minutes for 200
cycles; needs `valgrind` (on the machine; not installed by the project, as it is only a measuring tool).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTED = re.compile(r"Collected : (\d+)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=200)
    o = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    base, more = 20, 20 + o.cycles
    with tempfile.TemporaryDirectory(prefix="alur-instr-") as tmp:
        runs = {n: subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.{n}.out", sys.executable,
             str(ROOT / "bench" / "request_cpu.py"), "--cycles", str(n), "--db-name", f"alur_load_instr_{n}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for n in (base, more)}
        counts = {}
        for n, proc in runs.items():
            out, _ = proc.communicate()
            found = COLLECTED.findall(out)
            if proc.returncode != 0 or not found:
                print(f"the run of {n} cycles failed:\n{out[-3000:]}", file=sys.stderr)
                return 1
            counts[n] = int(found[-1])
    per_cycle = (counts[more] - counts[base]) / o.cycles
    print(f"{per_cycle / 1e6:.2f} M instructions per cycle (inbox GET + task GET + form POST, in-process; "
          f"{counts[base]:,} for {base} cycles, {counts[more]:,} for {more})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
