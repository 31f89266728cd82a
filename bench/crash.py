"""Crash test: the load of bench/load.py while gunicorn and the `alur worker`s are killed with SIGKILL and restarted.

    make bench-crash                      # = .venv/bin/python bench/crash.py --write-docs
    .venv/bin/python bench/crash.py [--users 16] [--duration 60] [--kill-every 5-10] [--kills N] [--seed S]
                                    [--write-docs] [--json-out F]

Everything bench/load.py does (fresh PostgreSQL database `alur_crash`, gunicorn, two `alur worker`s, virtual
staff completing steps through the web form with CSRF, timers falling due during the run), and meanwhile, every
--kill-every seconds (random in the range), one of:

- `server`: SIGKILL to gunicorn's whole process group (master and every worker at once), restarted at once;
- `web-worker`: SIGKILL to one gunicorn worker (its master starts another);
- `worker`: SIGKILL to one `alur worker` process, restarted at once;
- `all`: server and every `alur worker` at the same moment, then all restarted.

The client records every completion the server acknowledged (HTTP 302 to the inbox) and tolerates connection
errors (a POST that got no answer is "unknown": it may or may not have committed). Afterwards, with everything
stopped and one last `alur worker --once` run: PASS needs every acknowledged completion COMPLETED by that user in
the database, no timer fired twice (audit `timer` events per instance and due moment; each timer instance waits
for exactly one timer), every timer that fell due fired, `alur check` exit 0 (every instance deserialises and
matches its task rows, status and next timer), at least one kill, and completions acknowledged after the last
restart (the system recovered). Prints PASS/FAIL with the reasons and exits 1 on FAIL. --write-docs records the
result in docs/benchmarks.md ("Crash test"). Ends by itself: after --duration seconds (or --max-requests).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench._common import write_section  # noqa: E402

TARGETS = ("server", "web-worker", "worker", "all")
GRACE_SECONDS = 3.0  # connection errors this long after a restart still count as caused by the kill


class Killer:
    """Kills and restarts processes of a `load.Cluster` while the users run (the `during` hook of load.run)."""

    def __init__(self, every: tuple[float, float], kills: int | None, seed: int, duration: float,
                 echo: Any = print):
        self.every = every
        # No kill in the last stretch of the run: the users must be seen completing steps after the last restart.
        self.last_kill_at = duration - max(3.0, every[1])
        self.max_kills = kills
        self.rng = random.Random(seed)
        self.echo = echo
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._window_until = 0.0  # monotonic time until which connection errors are expected
        self._killing = False
        self.t0 = time.monotonic()

    def tolerate(self) -> bool:
        with self._lock:
            return self._killing or time.monotonic() <= self._window_until

    def __call__(self, cluster: load.Cluster, stop: threading.Event, info: dict[str, Any]) -> None:
        self.t0 = time.monotonic()
        targets = list(TARGETS)
        while not stop.is_set() and (self.max_kills is None or len(self.events) < self.max_kills):
            wait = self.rng.uniform(*self.every)
            if time.monotonic() - self.t0 + wait > self.last_kill_at or stop.wait(wait):
                break
            # Cycle through every kind before repeating, so even a short run kills the server first.
            target = targets.pop(0) if targets else self.rng.choice(TARGETS)
            self.kill(cluster, target)
        info["result"] = {"kills": self.events}

    def kill(self, cluster: load.Cluster, target: str) -> None:
        with self._lock:
            self._killing = True
        at = time.monotonic()
        try:
            if target in ("server", "all"):
                cluster.kill_server()
            if target == "web-worker" and not cluster.kill_web_worker():
                target = "server"
                cluster.kill_server()
            if target in ("worker", "all"):
                indexes = range(len(cluster.workers)) if target == "all" else [self.rng.randrange(len(cluster.workers))]
                for i in indexes:
                    cluster.kill_worker(i)
                for i in indexes:
                    cluster.restart_worker(i)
            if target in ("server", "all"):
                cluster.start_server(wait=True)
            elif target == "web-worker":
                cluster.wait_ready()
        finally:
            with self._lock:
                self._killing = False
                self._window_until = time.monotonic() + GRACE_SECONDS
        event = {"t": round(at - self.t0, 1), "target": target, "down_s": round(time.monotonic() - at, 2)}
        self.events.append(event)
        self.echo(f"  kill #{len(self.events)} at {event['t']:.1f} s: {target} (back after {event['down_s']:.1f} s)")


def verdict(r: dict[str, Any]) -> list[str]:
    problems = load.failures(r)
    kills = r.get("kills", [])
    if r["alur_check"]["ok"] is None:
        problems.append("`alur check` is not available: instances were not verified")
    if not kills:
        problems.append("nothing was killed (run longer or lower --kill-every)")
    else:
        last_restart = max(k["t"] + k["down_s"] for k in kills)
        after = sum(1 for t in r["ack_times"] if t > last_restart)
        r["acks_after_last_restart"] = after
        if after == 0:
            problems.append(f"no completion acknowledged after the last restart at {last_restart:.1f} s")
    return problems


def docs_body(r: dict[str, Any], problems: list[str], command: str) -> str:
    c = r["checks"]
    kills = r.get("kills", [])
    by_kind: dict[str, int] = {}
    for k in kills:
        by_kind[k["target"]] = by_kind.get(k["target"], 0) + 1
    errors = r["errors"] or {}
    status = "**PASS**" if not problems else "**FAIL**: " + "; ".join(problems)
    table = "\n".join([
        "| acknowledged (302) | missing from DB | no answer (committed / not) | timers fired | fired twice "
        "| due, not fired | `alur check` | result |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
        f"| {c['acknowledged']:,} | {c['lost']} | {c['unknown_outcome']} ({c['unknown_completed']} / "
        f"{c['unknown_still_ready']}) | {c['timer_instances_fired']}/{c['timer_instances']} "
        f"| {c['timer_fired_twice']} | {c['timer_due_not_fired']} | exit {r['alur_check']['exit']} | {status} |"])
    kinds = ", ".join(f"{n} × {k}" for k, n in sorted(by_kind.items())) or "none"
    o = r["options"]
    return f"""\
`{command}` ({r['when']}): the load test's setup (gunicorn `{load.server_text(r['server'])}`,
{o['timer_workers']} `alur worker`s, PostgreSQL, {o['users']} virtual staff completing steps through the web
form) while processes were killed with SIGKILL and restarted: {len(kills)} kills in {r['elapsed_s']:.0f} s
({kinds}; `server` = master and all workers at once, `all` = server and every worker). Load average
{r['load_before'][0]:.2f} → {r['load_after'][0]:.2f} (shared machine). Seed {r.get('seed')} (`--seed` repeats the
sequence of kinds; the moments vary with the machine's speed).

{table}

Connection errors and other answers seen by the client: {errors or 'none'}.
{r.get('acks_after_last_restart', 0):,} completions were acknowledged after the last restart.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=None, help="stop after this many completion POSTs")
    parser.add_argument("--kill-every", default="5-10", help="seconds between kills, a range (default 5-10)")
    parser.add_argument("--kills", type=int, default=None, help="at most this many kills")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--web-workers", type=int, default=load.Options().web_workers, help="default: cores + 1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timer-workers", type=int, default=2)
    parser.add_argument("--timer-instances", type=int, default=None, help="default: 4 per user")
    parser.add_argument("--admin-url", default=load.ADMIN_URL)
    parser.add_argument("--db-name", default="alur_crash")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    low, _, high = args.kill_every.partition("-")
    every = (float(low), float(high or low))
    seed = args.seed if args.seed is not None else int(time.time())
    o = load.Options(users=args.users, duration=args.duration, max_requests=args.max_requests,
                     web_workers=args.web_workers, threads=args.threads, timer_workers=args.timer_workers,
                     timer_instances=args.timer_instances if args.timer_instances is not None else 4 * args.users,
                     admin_url=args.admin_url, db_name=args.db_name, keep_db=args.keep_db)
    killer = Killer(every, args.kills, seed, args.duration)
    print(f"crash test: seed {seed}, a kill every {every[0]:g}-{every[1]:g} s")
    result = load.run(o, during=killer, tolerate=killer.tolerate)
    result["seed"] = seed
    result.setdefault("kills", killer.events)
    load.print_summary(result)
    problems = verdict(result)
    print(f"kills: {len(result['kills'])}; completions acknowledged after the last restart: "
          f"{result.get('acks_after_last_restart', 0)}")
    print("PASS" if not problems else "FAIL:\n  " + "\n  ".join(problems))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    if args.write_docs:
        command = load.reproduce_command("make bench-crash", "bench/crash.py", argv)
        write_section("Crash test", docs_body(result, problems, command))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
