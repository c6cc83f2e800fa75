"""A night killed anywhere (SIGKILL, in a subprocess) and run again ends exactly as an uninterrupted night.

Each case kills `guidang run` at one named crash point (guidang_io/crashpoints.py), checks what must
hold even right after the kill (no package looks complete unless every file in it is verified; no
ledger row says verified without its package; 件号 gap-free), then runs the night again and compares
the repository (every key and its SHA-256) and the ledger (matter rows, quarantine, sequences,
watermarks) with a night that was never interrupted. Both nights run `--as-of` the same time, which
is what lets a resumed night rebuild byte-identical packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from guidang_demo.unified_simulator import UnifiedSimulator
from guidang_io.crashpoints import CRASH_POINTS, ENV
from schemas.layout import COMPLETION_MARKER

AS_OF = "2026-11-26T02:00:00+08:00"
REPO_ROOT = Path(__file__).resolve().parent.parent
TEMP_PREFIX = ".guidang-tmp-"

# (point, n): kill the n-th time the point is reached. Every point at least once, some deeper in.
KILLS = [
    ("run-opened", 1),
    ("retention-imported", 1),
    ("collected", 1),
    ("collected", 3),
    ("quarantined", 2),
    ("not-in-scope", 1),
    ("staged", 4),
    ("prechecked", 6),
    ("numbered", 1),
    ("numbered", 3),
    ("finalized", 2),
    ("stored-file", 1),
    ("stored-file", 23),
    ("before-marker", 3),
    ("after-marker", 4),
    ("verified", 2),
    ("acknowledged", 2),
    ("before-watermark", 1),
    ("watermark", 2),
    ("batch-stored", 1),
    ("batch-recorded", 1),
    ("ledger-before-commit", 3),
    ("ledger-before-commit", 25),
    ("fs-temp-written", 5),
    ("fs-linked", 11),
    ("before-run-closed", 1),
]


def test_the_suite_covers_every_crash_point() -> None:
    assert {p for p, _ in KILLS} == set(CRASH_POINTS)


@pytest.fixture(scope="module")
def unified_url(small_pristine: Path) -> Iterator[str]:
    with UnifiedSimulator(small_pristine / "sources" / "unified") as url:
        yield url


def run_night(world: Path, url: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["GUIDANG_UNIFIED_URL"] = url
    if crash:
        env[ENV] = crash
    cmd = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "--config",
        str(world / "guidang.yaml"),
        "--orchestrator",
        "local",
        "--as-of",
        AS_OF,
        "--json",
    ]
    return subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


# The ledger checkpoint a batch carries (its begun event's seq and hash) and the checkpoints
# under checkpoints/ record the ledger's history, which a killed-and-resumed night has more of than an
# uninterrupted one; every other byte must be the same.
_ANCHOR_XML = re.compile("<账本检查点>.*?</账本检查点>".encode(), re.S)  # the 登记表's XML element
_ANCHOR_LINE = re.compile("账本检查点(：|</th><td>)[^\n<]*".encode())  # the 说明文件's line, the HTML's cell


def archive_state(archive: Path) -> dict[str, str]:
    """Every stored key and its SHA-256, as the repository lists them (temporary names are invisible)."""
    state = {}
    for p in sorted(archive.rglob("*")):
        rel = p.relative_to(archive)
        if not p.is_file() or any(part.startswith(TEMP_PREFIX) for part in rel.parts) or rel.parts[0] == "checkpoints":
            continue
        data = p.read_bytes()
        if rel.parts[0] == "transfers":
            data = _ANCHOR_LINE.sub(b"<anchor>", _ANCHOR_XML.sub(b"<anchor>", data))
        state[rel.as_posix()] = hashlib.sha256(data).hexdigest()
    return state


MATTER_COLUMNS = (
    "source, project_id, version, state, content_hash, archival_code, item_number, package_key, fonds, year, "
    "retention_period, category_code, org_code, retention_version, retention_row, disposition_date, "
    "file_count, total_bytes, page_count, numbered_at, batch_id, acknowledged_at IS NOT NULL"
)


def ledger_state(world: Path) -> dict[str, Any]:
    engine = create_engine(f"sqlite:///{world / 'ledger.sqlite'}")
    with engine.connect() as c:
        state = {
            "matters": [
                tuple(r)
                for r in c.execute(text(f"SELECT {MATTER_COLUMNS} FROM matters ORDER BY source, project_id, version"))
            ],
            "quarantine": [
                tuple(r)
                for r in c.execute(
                    text(
                        "SELECT source, project_id, content_hash, codes, resolved_at IS NULL FROM quarantine "
                        "ORDER BY source, project_id, id"
                    )
                )
            ],
            "sequences": [tuple(r) for r in c.execute(text("SELECT * FROM archive_sequences ORDER BY 1, 2, 3, 4, 5"))],
            "watermarks": [tuple(r) for r in c.execute(text("SELECT source, value FROM watermarks ORDER BY 1"))],
            "retention_versions": [
                tuple(r)
                for r in c.execute(
                    text("SELECT label, content_hash, effective_date FROM retention_versions ORDER BY id")
                )
            ],
        }
    engine.dispose()
    return state


def assert_consistent_after_kill(world: Path) -> None:
    """What must hold at any instant, however the process died."""
    archive = world / "archive"
    complete = {m.parent for m in archive.rglob(COMPLETION_MARKER)}
    for pkg in complete:  # no package visible as complete unless all its files are there and right
        listing = json.loads((pkg / COMPLETION_MARKER).read_text(encoding="utf-8"))
        for f in listing["files"]:
            assert hashlib.sha256((pkg / f["path"]).read_bytes()).hexdigest() == f["sha256"], pkg / f["path"]
    ledger = world / "ledger.sqlite"
    if not ledger.exists():
        return
    engine = create_engine(f"sqlite:///{ledger}")
    with engine.connect() as c:
        tables = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        if "matters" not in tables:
            engine.dispose()
            return
        verified = [r[0] for r in c.execute(text("SELECT package_key FROM matters WHERE state='verified'"))]
        numbers: dict[tuple[Any, ...], list[int]] = {}
        for row in c.execute(
            text(
                "SELECT fonds, category_code, year, retention_period, org_code, item_number FROM matters "
                "WHERE item_number IS NOT NULL"
            )
        ):
            numbers.setdefault(tuple(row[:5]), []).append(row[5])
        last = {tuple(r[:5]): r[5] for r in c.execute(text("SELECT * FROM archive_sequences"))}
    engine.dispose()
    for key in verified:  # the ledger never says verified ahead of the repository
        assert archive / key in complete, key
    for seq, items in numbers.items():  # 件号 gap-free: every number given is held by exactly one row
        assert sorted(items) == list(range(1, last[seq] + 1)), seq


@pytest.fixture(scope="module")
def uninterrupted(
    small_pristine: Path, unified_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, str], dict[str, Any]]:
    world = tmp_path_factory.mktemp("baseline") / "world"
    shutil.copytree(small_pristine, world)
    done = run_night(world, unified_url)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["totals"]["archived"] > 10 and summary["totals"]["quarantined"] > 5
    assert summary["totals"]["not_in_scope"] > 0
    return archive_state(world / "archive"), ledger_state(world)


@pytest.mark.parametrize(("point", "nth"), KILLS, ids=[f"{p}-{n}" for p, n in KILLS])
def test_a_night_killed_at_a_crash_point_resumes_to_the_same_end(
    point: str,
    nth: int,
    small_pristine: Path,
    unified_url: str,
    tmp_path: Path,
    uninterrupted: tuple[dict[str, str], dict[str, Any]],
) -> None:
    world = tmp_path / "world"
    shutil.copytree(small_pristine, world)

    killed = run_night(world, unified_url, crash=f"{point}:{nth}")
    assert killed.returncode == -signal.SIGKILL, (
        f"the night was not killed at {point}:{nth} (exit {killed.returncode}): the point was not reached\n"
        + killed.stderr[-2000:]
    )
    assert_consistent_after_kill(world)

    resumed = run_night(world, unified_url)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["status"] == "completed"

    archive, ledger = uninterrupted
    assert archive_state(world / "archive") == archive
    assert ledger_state(world) == ledger


def demo_command(world: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flows.cli",
        "demo",
        str(world),
        "--orchestrator",
        "local",
        "--as-of",
        AS_OF,
        "--json",
    ]


def test_guidang_demo_killed_at_a_random_moment_and_run_again_ends_as_one_uninterrupted_run(tmp_path: Path) -> None:
    import random
    import time

    env = {k: v for k, v in os.environ.items() if k not in (ENV, "GUIDANG_UNIFIED_URL")}
    started = time.monotonic()
    baseline = subprocess.run(
        demo_command(tmp_path / "baseline"), env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    duration = time.monotonic() - started
    assert baseline.returncode == 0, baseline.stderr[-3000:]

    seed = int(os.environ.get("GUIDANG_KILL_SEED", time.time_ns()))
    delay = random.Random(seed).uniform(0.5, duration * 0.9)
    world = tmp_path / "world"
    proc = subprocess.Popen(
        demo_command(world),
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the demo and its simulator threads
    proc.wait(timeout=60)
    where = f"(killed after {delay:.1f} s of ~{duration:.1f} s; GUIDANG_KILL_SEED={seed} repeats it)"

    again = subprocess.run(demo_command(world), env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, where + "\n" + again.stderr[-3000:]
    assert archive_state(world / "archive") == archive_state(tmp_path / "baseline" / "archive"), where
    assert ledger_state(world) == ledger_state(tmp_path / "baseline"), where
