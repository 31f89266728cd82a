"""bench/load.py and bench/crash.py in a tiny configuration against PostgreSQL: they run end to end, no
acknowledged completion is lost and `alur check` is clean. Nothing here looks at timing.

Needs ALUR_TEST_DATABASE_URL (its server is used to create and drop throw-away databases) and gunicorn
(`pip install -e '.[production]'`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("ALUR_TEST_DATABASE_URL")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs ALUR_TEST_DATABASE_URL (PostgreSQL)"),
]


def _run(script: str, db_name: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    pytest.importorskip("gunicorn")
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("ALUR_BENCH_SOURCE", "ALUR_DATABASE_URL")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--users", "4", "--web-workers", "2", "--timer-workers", "1",
         "--admin-url", str(PG_URL), "--db-name", f"{db_name}_{os.getpid()}", "--json-out", str(out), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    if "permission denied to create database" in proc.stderr:
        pytest.skip("the PostgreSQL user of ALUR_TEST_DATABASE_URL may not create databases")
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_load_script_loses_no_completion(tmp_path: Path) -> None:
    proc, r = _run("load.py", "alur_load_smoke", tmp_path, "--duration", "5")
    report = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert r["checks"]["acknowledged"] > 0, report
    assert r["checks"]["lost"] == 0, report
    assert r["checks"]["timer_fired_twice"] == 0, report
    assert r["checks"]["timer_due_not_fired"] == 0, report
    assert r["error_count"] == 0, report
    assert r["server_tracebacks"] == 0, report
    assert r["alur_check"]["exit"] == 0, report


def test_crash_script_passes_with_one_kill(tmp_path: Path) -> None:
    proc, r = _run("crash.py", "alur_crash_smoke", tmp_path, "--duration", "8", "--kill-every", "2-3",
                   "--kills", "1", "--seed", "7")
    report = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0 and "PASS" in proc.stdout, report
    assert len(r["kills"]) == 1, report
    assert r["checks"]["acknowledged"] > 0, report
    assert r["checks"]["lost"] == 0, report
    assert r["checks"]["timer_fired_twice"] == 0, report
    assert r["alur_check"]["exit"] == 0, report
