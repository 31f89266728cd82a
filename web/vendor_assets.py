"""Copy the diagram viewer from node_modules into web/static/vendor/ (committed; nothing is fetched at run time).

    .venv/bin/python -m web.vendor_assets          # after `npm ci`, when package.json pins a new bpmn-js

bpmn-js is pinned in package.json; its licence asks that the bpmn.io watermark stays visible, which the
navigated viewer draws by itself (we never hide `.bjs-powered-by`). The LICENSE is copied beside the files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "node_modules" / "bpmn-js"
TARGET = Path(__file__).resolve().parent / "static" / "vendor" / "bpmn-js"
FILES = {
    "dist/bpmn-navigated-viewer.production.min.js": "bpmn-navigated-viewer.production.min.js",
    "dist/assets/diagram-js.css": "diagram-js.css",
    "dist/assets/bpmn-js.css": "bpmn-js.css",
    "LICENSE": "LICENSE",
}


def copy(source: Path = SOURCE, target: Path = TARGET) -> list[Path]:
    if not (source / "package.json").exists():
        raise SystemExit(f"{source} is missing: run `npm ci` first")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for src, dst in FILES.items():
        shutil.copyfile(source / src, target / dst)
        written.append(target / dst)
    return written


if __name__ == "__main__":
    for path in copy():
        print(path.relative_to(ROOT), path.stat().st_size, "bytes", file=sys.stdout)
