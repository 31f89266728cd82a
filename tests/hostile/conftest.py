"""Fixtures for the hostile-input suite (tests/hostile): one world per test module (cheap), and the per-test web
fixtures of tests/web for tests that need a fresh database."""

from __future__ import annotations

import pytest

from tests.hostile.helpers import World, build_world
from tests.web.conftest import app, client_for, env  # noqa: F401  (re-exported fixtures)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))
