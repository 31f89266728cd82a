"""Fixtures for the hostile-input suite (tests/hostile): one world per test module, so that the many small cases
stay cheap; every case checks with `snapshot()` that it changed nothing, so they do not disturb each other."""

from __future__ import annotations

import pytest

from tests.hostile.helpers import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))
