"""Settings read from the environment, with defaults that work on a fresh machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _instance_dir() -> Path:
    return Path(os.environ.get("ALUR_INSTANCE_DIR", Path.cwd() / "instance")).resolve()


@dataclass(frozen=True)
class Settings:
    instance_dir: Path = field(default_factory=_instance_dir)
    database_url: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        instance = _instance_dir()
        url = os.environ.get("ALUR_DATABASE_URL") or f"sqlite:///{instance / 'alur.sqlite3'}"
        return cls(instance_dir=instance, database_url=url)
