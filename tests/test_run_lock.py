"""One night at a time per source: two runs started together, one completes and the other is refused
at once; a lock left by a killed holder is taken over. On SQLite and on PostgreSQL."""


from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ledger.models import MatterRecord, MatterState, RetentionVersion, Run
from night.context import RunContext, SourceConfig, SourceSummary
from night.engine import process_source, run_nightly
from schemas.config import load_settings
from schemas.findings import GuidangError
from tests.dbservers import fresh_database
from tests.world_support import count_rows, unified_running

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def locked_world(request: pytest.FixtureRequest, small_world: Path) -> Iterator[tuple[Path, str]]:
    """The small demo world with its ledger on SQLite (as configured) or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield small_world, f"sqlite:///{small_world / 'ledger.sqlite'}"
        return
    with fresh_database("postgresql") as url:
        config = small_world / "guidang.yaml"
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["ledger_url"] = url
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        yield small_world, url


# -- one night at a time per source


def test_two_runs_started_together_one_completes_the_other_is_refused_at_once(
    locked_world: tuple[Path, str],
) -> None:
    world, url = locked_world
    start = threading.Barrier(2)
    other_done = [threading.Event(), threading.Event()]
    outcomes: dict[int, Any] = {}

    def hold_until_the_other_is_over(i: int) -> Any:
        def run_source(c: RunContext, src: SourceConfig, a: Any, b: Any) -> SourceSummary:
            other_done[1 - i].wait(timeout=20)  # overlap for sure: the other run starts while this one runs
            return process_source(c, src, since=a, until=b)

        return run_source

    def night(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = run_nightly(settings, run_source=hold_until_the_other_is_over(i))
        except Exception as exc:  # what the second run must do: fail at once, with a reason
            outcomes[i] = exc
        finally:
            other_done[i].set()

    with unified_running(world):
        settings = load_settings(world / "guidang.yaml")
        threads = [threading.Thread(target=night, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
    summaries = [o for o in outcomes.values() if isinstance(o, dict)]
    refusals = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(summaries) == 1 and len(refusals) == 1, outcomes
    assert summaries[0]["status"] == "completed"
    refusal = refusals[0]
    assert isinstance(refusal, GuidangError)
    assert re.search(r"another run holds the lock of \w+ since", str(refusal)), refusal
    assert f"(run {summaries[0]['run_id']})" in str(refusal)
    # nothing doubled: one run in the ledger, one retention version, each archived matter once
    assert count_rows(url, Run) == 1
    assert count_rows(url, RetentionVersion) == 1
    verified = count_rows(url, MatterRecord, MatterRecord.state == MatterState.VERIFIED)
    assert verified == summaries[0]["totals"]["archived"]


HOLDER = """
import sys, time
from ledger.store import Ledger
from ledger.runlock import RunLock, source_lock
led = Ledger(sys.argv[1])
lock = RunLock(led, source_lock("unified"))
lock.acquire("deadbeefdeadbeef")
print("held", flush=True)
time.sleep(600)
"""


def test_a_lock_left_by_a_killed_holder_is_taken_over(locked_world: tuple[Path, str]) -> None:
    world, url = locked_world
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with unified_running(world):
            settings = load_settings(world / "guidang.yaml")
            refused = r"another run holds the lock of unified since .* \(run deadbeefdeadbeef\)"
            with pytest.raises(GuidangError, match=refused):
                run_nightly(settings)
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            summary = run_nightly(settings)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert summary["status"] == "completed"
    assert summary["totals"]["archived"] > 0
    assert count_rows(url, Run) == 1


