"""Demo-world fixtures shared by the end-to-end tests: one world built per session, copied per test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from guidang_demo.unified_simulator import FaultPlan, UnifiedSimulator
from guidang_demo.world import build_world
from ledger.models import MatterRecord, MatterState, QuarantineEntry


def _built(factory: pytest.TempPathFactory, name: str, counts: dict[str, int] | None = None) -> Path:
    world = factory.mktemp(name) / "world"
    build_world(world, counts=counts)
    return world


def _copied(pristine: Path, tmp_path: Path) -> Path:
    """A test's own copy: the nights it runs must not leak into the next test's world."""
    copy = tmp_path / "world"
    shutil.copytree(pristine, copy)
    return copy


@pytest.fixture(scope="session")
def pristine_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built(tmp_path_factory, "pristine")


@pytest.fixture
def world(pristine_world: Path, tmp_path: Path) -> Path:
    return _copied(pristine_world, tmp_path)


# A small world for tests that run many nights (the crash suite, the fault tests); it still carries
# one matter of every defect kind and a 不归档 matter type.
SMALL = {"unified": 24, "tzxm": 8, "sjjc": 10}


@pytest.fixture(scope="session")
def small_pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _built(tmp_path_factory, "small", SMALL)


@pytest.fixture
def small_world(small_pristine: Path, tmp_path: Path) -> Path:
    return _copied(small_pristine, tmp_path)


@contextmanager
def simulator(world: Path, faults: FaultPlan | None = None) -> Iterator[UnifiedSimulator]:
    """The world's unified system served over HTTP for the block, its URL in GUIDANG_UNIFIED_URL."""
    sim = UnifiedSimulator(world / "sources" / "unified", faults=faults)
    url = sim.start()
    old = os.environ.get("GUIDANG_UNIFIED_URL")
    os.environ["GUIDANG_UNIFIED_URL"] = url
    try:
        yield sim
    finally:
        sim.stop()
        if old is None:
            os.environ.pop("GUIDANG_UNIFIED_URL", None)
        else:
            os.environ["GUIDANG_UNIFIED_URL"] = old


@contextmanager
def unified_running(world: Path) -> Iterator[str]:
    with simulator(world) as sim:
        yield sim.base_url


Outcome = tuple[set[tuple[str, str]], dict[tuple[str, str], list[str]]]


def outcome(world: Path) -> Outcome:
    """(verified matters, open quarantine entries with their codes), by (source, project id): what
    a night left in the world's SQLite ledger, as the resilience and hardening tests compare it."""
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    try:
        with Session(engine) as s:
            verified = {
                (r.source, r.project_id)
                for r in s.scalars(select(MatterRecord).where(MatterRecord.state == MatterState.VERIFIED))
            }
            held = {
                (q.source, q.project_id): q.codes
                for q in s.scalars(select(QuarantineEntry).where(QuarantineEntry.resolved_at.is_(None)))
            }
    finally:
        engine.dispose()
    return verified, held


def count_rows(url: str, model: Any, *where: Any) -> int:
    """Rows of a ledger table matching `where`, read over a connection of its own."""
    engine = create_engine(url)
    try:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0
    finally:
        engine.dispose()
