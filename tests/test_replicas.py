"""A second copy of the archive (`replicas:`): a night that cannot reach the copy still completes and
the next night catches the copy up; `audit fixity` repairs a flipped byte of the primary from the
copy, and `audit fixity --copy NAME` a flipped byte and a deleted object of the copy from the
primary, each repair an event; a copy whose bytes do not match the ledger is never used."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from flows.cli import app
from guidang_io.crashpoints import ENV
from ledger.models import Event
from night.engine import run_nightly
from schemas.config import load_settings
from tests.world_support import unified_running

runner = CliRunner(env={"GUIDANG_CONFIG": None})
REPO_ROOT = Path(__file__).resolve().parent.parent


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def events(world: Path, kind: str) -> list[dict[str, Any]]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with Session(engine) as s:
        out = [e.payload for e in s.scalars(select(Event).where(Event.kind == kind).order_by(Event.seq))]
    engine.dispose()
    return out


def fixity(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = runner.invoke(app, ["audit", "fixity", "--config", str(config), "--json", *args])
    return r.exit_code, json.loads(r.stdout)


def flip(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_second_copy_caught_up_and_repairing(small_world: Path) -> None:
    config = small_world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["replicas"] = [{"name": "offsite", "repository": {"kind": "fs", "path": "copy2"}}]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    primary, copy = small_world / "archive", small_world / "copy2"

    with unified_running(small_world):  # the copy's volume is not mounted tonight
        first = run_nightly(load_settings(config))
    assert first["status"] == "completed" and first["totals"]["archived"] > 10
    assert not copy.exists()

    copy.mkdir()
    with unified_running(small_world):  # mounted again: the next night catches it up
        second = run_nightly(load_settings(config))
    assert second["status"] == "completed"
    caught = events(small_world, "replica-caught-up")
    assert caught and caught[0]["replica"] == "offsite"
    theirs, ours = files(copy), files(primary)
    assert set(theirs) - set(ours) == set() and len(ours) - len(theirs) <= 1  # tonight's checkpoint aside
    assert all(theirs[k] == ours[k] for k in theirs)
    code, out = fixity(config, "--copy", "offsite")
    assert code == 0 and out["ok"] and out["copy"] == "offsite", out["findings"]

    pdf = sorted(primary.rglob("*.pdf"))[0]
    key = pdf.relative_to(primary).as_posix()
    original = pdf.read_bytes()
    flip(pdf)
    code, out = fixity(config)
    assert code == 0 and out["ok"], out["findings"]
    assert [(f["code"], f["where"]) for f in out["repaired"]] == [("A-OBJECT-REPAIRED", key)]
    assert pdf.read_bytes() == original

    flip(copy / key)
    gone = sorted(copy.rglob("元数据.xml"))[1]
    gone_key = gone.relative_to(copy).as_posix()
    gone.unlink()
    code, out = fixity(config, "--copy", "offsite")
    assert code == 0, out["findings"]
    assert sorted(f["where"] for f in out["repaired"]) == sorted([key, gone_key])
    assert (copy / key).read_bytes() == original and gone.read_bytes() == (primary / gone_key).read_bytes()
    repairs = events(small_world, "fixity-repaired")
    assert [(r["copy"], r["from"]) for r in repairs] == [("primary", "offsite"), ("offsite", "primary"),
                                                        ("offsite", "primary")]

    flip(pdf)  # both copies wrong: nothing matches the ledger, nothing is overwritten
    flip(copy / key)
    code, out = fixity(config)
    assert code == 1 and out["changed"] == 1 and "A-COPY-UNREPAIRABLE" in out["findings"][0]["message"]


def test_a_night_killed_between_the_copies_resumes_with_both_whole(small_world: Path) -> None:
    """The crash order extended: killed after an object reached the replica but before the primary,
    the next night repeats the same puts (no-ops on the replica) and both copies end whole."""
    config = small_world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["replicas"] = [{"name": "offsite", "repository": {"kind": "fs", "path": "copy2"}}]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    (small_world / "copy2").mkdir()
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", str(config), "--orchestrator", "local", "--json"]
    with unified_running(small_world):
        killed = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                                env={**os.environ, ENV: "replica-stored:7"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert len(files(small_world / "copy2")) > len(files(small_world / "archive"))  # the copy was ahead
        resumed = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                                 env={k: v for k, v in os.environ.items() if k != ENV})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert files(small_world / "copy2") == files(small_world / "archive")
    for copy in ("primary", "offsite"):
        code, out = fixity(config, "--copy", copy)
        assert code == 0 and out["ok"] and not out["repaired"], (copy, out["findings"])


def test_a_copy_that_kept_up_is_not_listed_again_and_one_left_out_is_caught_up(small_world: Path) -> None:
    """The ledger says which copies may be behind: a new copy is caught up once (an event with 0 objects:
    whole from here), a night that kept it up leaves no catch-up for the next, a night that could not
    reach it records `replica-left-out` at its close, and the night after copies what it missed."""
    config = small_world / "guidang.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["replicas"] = [{"name": "offsite", "repository": {"kind": "fs", "path": "copy2"}}]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    primary, copy = small_world / "archive", small_world / "copy2"
    copy.mkdir()

    with unified_running(small_world):
        first = run_nightly(load_settings(config))
        assert first["status"] == "completed" and first["replicas_behind"] == []
        assert [c["objects"] for c in events(small_world, "replica-caught-up")] == [0]
        second = run_nightly(load_settings(config))
        assert second["replicas_behind"] == []
        assert len(events(small_world, "replica-caught-up")) == 1  # it kept up: not listed again

        copy.rename(small_world / "unmounted")  # the copy's volume is gone for a night
        third = run_nightly(load_settings(config))
        assert third["status"] == "completed" and third["replicas_behind"] == ["offsite"]
        assert [e["replica"] for e in events(small_world, "replica-left-out")] == ["offsite"]

        (small_world / "unmounted").rename(copy)
        fourth = run_nightly(load_settings(config))
    assert fourth["replicas_behind"] == []
    caught = events(small_world, "replica-caught-up")
    assert len(caught) == 2 and caught[1]["objects"] >= 1  # the third night's checkpoint at least
    theirs, ours = files(copy), files(primary)
    assert theirs == ours
