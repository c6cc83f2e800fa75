"""`guidang runs`: a night killed with SIGKILL leaves its run `running`; `runs close-dead` closes it as
failed at once and names it, a night alive in another process is left alone, and `runs list` shows
both as they are. Real processes, on a SQLite ledger and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ledger import store
from ledger.models import Run
from ledger.runlock import RunLock, source_lock
from schemas.config import load_settings
from tests.dbservers import fresh_database

ROOT = Path(__file__).parent.parent
# A night's first step and no more: its run opened, its source's lock held, until stdin closes.
HOLD = """
import sys
from night.context import open_run
from schemas.config import load_settings
ctx = open_run(load_settings(sys.argv[1]), parameters={"sources": [sys.argv[2]]}, sources=[sys.argv[2]])
print("open", ctx.run_id, flush=True)
sys.stdin.read()
"""


def open_night(config: Path, source: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(config), source], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("open "):
        proc.kill()
        raise RuntimeError(f"the night did not open: {line!r}, exit {proc.wait()}")
    return proc, line.split()[1]


def guidang(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world_config(request: pytest.FixtureRequest, small_world: Path) -> Iterator[Path]:
    if request.param == "sqlite":
        yield small_world / "guidang.yaml"
        return
    with fresh_database("postgresql") as url:
        raw = yaml.safe_load((small_world / "guidang.yaml").read_text(encoding="utf-8"))
        raw["ledger_url"] = url
        path = small_world / "guidang-pg.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        yield path


def wait_free(config: Path, source: str) -> None:
    """Until the killed night's lock is gone (PostgreSQL ends the backend of a dead client a moment later)."""
    settings = load_settings(config)
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger:
        until = time.monotonic() + 10
        while not RunLock(ledger, source_lock(source)).is_free():
            if time.monotonic() > until:
                raise AssertionError(f"the lock of {source} was not freed by the killed night")
            time.sleep(0.1)


def states(config: Path) -> dict[str, tuple[str, str | None]]:
    settings = load_settings(config)
    with store.Ledger(settings.resolve_url(settings.ledger_url)) as ledger, ledger.read() as s:
        return {r.id: (r.status, r.error) for r in s.query(Run)}


def test_close_dead_closes_a_killed_night_and_leaves_a_live_one(world_config: Path) -> None:
    live, live_id = open_night(world_config, "sjjc")  # first: a night opened later would close the killed one
    killed, killed_id = open_night(world_config, "tzxm")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    try:
        wait_free(world_config, "tzxm")
        listed = guidang("runs", "list", "--state", "running", "--json", "-c", str(world_config))
        assert listed.returncode == 0, listed.stderr
        running = {r["run_id"]: r for r in json.loads(listed.stdout)}
        assert set(running) == {killed_id, live_id}  # the dead night still looks alive
        assert running[killed_id]["sources"] == ["tzxm"] and running[killed_id]["ended"] is None

        done = guidang("runs", "close-dead", "-c", str(world_config))
        assert done.returncode == 0, done.stderr
        assert f"closed as failed: run {killed_id}" in done.stdout and live_id not in done.stdout
        assert "1 dead run closed" in done.stdout

        after = states(world_config)
        assert after[killed_id][0] == "failed" and "guidang runs close-dead" in (after[killed_id][1] or "")
        assert after[live_id] == ("running", None)  # its lock is held: alive, not touched

        again = guidang("runs", "close-dead", "--json", "-c", str(world_config))
        assert again.returncode == 0 and json.loads(again.stdout) == {"closed": []}

        table = guidang("runs", "list", "-c", str(world_config))
        assert table.returncode == 0, table.stderr
        lines = {line.split("\t")[0]: line.split("\t") for line in table.stdout.splitlines()}
        assert lines[killed_id][3] == "failed" and lines[killed_id][2] != "-"
        assert lines[live_id][3] == "running" and lines[live_id][2] == "-" and lines[live_id][4] == "sjjc"
        failed = json.loads(guidang("runs", "list", "--state", "failed", "--json", "-c", str(world_config)).stdout)
        assert [r["run_id"] for r in failed] == [killed_id]
        one = json.loads(guidang("runs", "list", "--limit", "1", "--json", "-c", str(world_config)).stdout)
        assert [r["run_id"] for r in one] == [killed_id]  # newest first
    finally:
        live.kill()
        live.wait()
