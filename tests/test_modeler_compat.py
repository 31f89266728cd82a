"""Camunda Modeler compatibility of the committed models and of a freshly imported source (Node checks).

Runs tests/node/check_bpmn.mjs: bpmn-moddle + camunda-bpmn-moddle import with zero warnings, bpmnlint
(recommended + camunda-compat for Camunda 7.24) with zero errors and warnings, DI for every element.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.sop.importer import import_file

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "tests" / "node" / "check_bpmn.mjs"
BPMN_FILES = sorted((ROOT / "bpmn").glob("*.bpmn"))

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not (ROOT / "node_modules" / "bpmnlint-plugin-camunda-compat").is_dir(),
                       reason="node_modules missing: run `make node-deps` (npm ci)"),
]


def _check(files: list[Path]) -> dict:
    proc = subprocess.run(["node", str(CHECK), *map(str, files)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert proc.stdout, f"check_bpmn.mjs printed nothing; stderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)
    failures = {r["file"]: {k: r[k] for k in ("warnings", "lint", "missingDi") if r[k]}
                for r in report["files"] if not r["ok"]}
    assert report["ok"] and proc.returncode == 0, json.dumps(failures, indent=2, ensure_ascii=False)
    return report


def test_committed_models_open_in_modeler_cleanly() -> None:
    assert BPMN_FILES, "no models in bpmn/"
    report = _check(BPMN_FILES)
    assert len(report["files"]) == len(BPMN_FILES)
    for result in report["files"]:
        # Not even advice: everything the Modeler could show is clean.
        assert result["warnings"] == [] and result["missingDi"] == [], result


def test_freshly_imported_source_is_clean(tmp_path: Path) -> None:
    out = tmp_path / "fresh.bpmn"
    out.write_bytes(import_file(ROOT / "bpmn" / "sources" / "sop_pengukuran_kinerja_wangon.sop.yaml"))
    _check([out])


def test_checker_catches_problems(tmp_path: Path) -> None:
    # Guard against a checker that passes everything: break a model three ways.
    text = (ROOT / "bpmn" / "sop_pelaksanaan_rapat.bpmn").read_text(encoding="utf-8")
    broken = (text.replace('camunda:dueDate="PT1H"', 'camunda:dueDat="PT1H"')
              .replace('bpmnElement="Step_3"', 'bpmnElement="Step_2"')
              .replace(' name="Mulai"', ""))
    path = tmp_path / "broken.bpmn"
    path.write_text(broken, encoding="utf-8")
    proc = subprocess.run(["node", str(CHECK), str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)["files"][0]
    assert any("camunda:dueDat" in w for w in result["warnings"])
    assert "Step_3" in result["missingDi"]
    assert any(item["rule"] == "label-required" for item in result["lint"])
