"""Demo-world fixtures shared by the end-to-end tests: one world built per session, copied per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from connectors.simulator.unified import UnifiedSimulator
from connectors.simulator.world import build_world


@pytest.fixture(scope="session")
def pristine_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = tmp_path_factory.mktemp("pristine") / "world"
    build_world(world)
    return world


@pytest.fixture
def world(pristine_world: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "world"
    shutil.copytree(pristine_world, copy)
    return copy


@contextmanager
def unified_running(world: Path) -> Iterator[str]:
    with UnifiedSimulator(world / "sources" / "unified") as base_url:
        old = os.environ.get("GUIDANG_UNIFIED_URL")
        os.environ["GUIDANG_UNIFIED_URL"] = base_url
        try:
            yield base_url
        finally:
            if old is None:
                os.environ.pop("GUIDANG_UNIFIED_URL", None)
            else:
                os.environ["GUIDANG_UNIFIED_URL"] = old


