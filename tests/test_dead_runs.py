"""Runs that died are closed as failed by the next night, never left `running` (进行中); a live run
beside it is left alone; the repository's leftovers of crashed writes are swept with the night,
and the sweep is logged."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from ledger import store
from ledger.models import Run
from ledger.runlock import RunLock, source_lock
from night.engine import run_nightly
from schemas.config import load_settings
from tests.world_support import simulator


def test_the_next_night_closes_dead_runs_and_sweeps_leftovers(
    small_world: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(small_world / "guidang.yaml")
    started = datetime.now(UTC) - timedelta(minutes=10)
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        with ledger.transaction() as s:  # what a night killed with SIGKILL leaves: its row, no lock
            store.start_run(s, {"sources": ["tzxm"]}, run_id="killed-night")
            store.start_run(s, {"sources": ["sjjc"]}, run_id="live-night")
            s.execute(update(Run).values(started_at=started))
        live = RunLock(ledger, source_lock("sjjc"))  # a night still at work holds its source's lock
        live.acquire("live-night")
        archive = settings.resolve(settings.repository.path)  # type: ignore[union-attr]
        folder = archive / "Z109" / "leftover"
        folder.mkdir(parents=True)
        old, young = folder / ".guidang-tmp-old", folder / ".guidang-tmp-young"
        for path in (old, young):
            path.write_bytes(b"half a document")
        an_hour_ago = time.time() - 3600
        os.utime(old, (an_hour_ago, an_hour_ago))  # begun before the live night: a crashed write's
        try:
            with simulator(small_world), caplog.at_level(logging.INFO, logger="guidang"):
                summary = run_nightly(load_settings(small_world / "guidang.yaml"), sources=["unified"])
        finally:
            live.release()
        assert summary["status"] == "completed"
        with ledger.read() as s:
            runs = {r.id: r for r in s.query(Run)}
    assert runs["killed-night"].status == "failed" and runs["killed-night"].finished_at is not None
    assert f"closed as failed by run {summary['run_id']}" in (runs["killed-night"].error or "")
    assert runs["live-night"].status == "running"  # its lock is held: it is alive
    assert runs[summary["run_id"]].status == "completed"
    messages = [r.getMessage() for r in caplog.records]
    assert any("killed-night" in m and "closed as failed" in m for m in messages), messages
    assert not old.exists() and young.exists()  # the young one may be the live night's write
    assert any("swept 1 leftover" in m and old.name in m for m in messages), messages
