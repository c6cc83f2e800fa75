"""A night spread over several processes ends as one process would have ended it.

Two `guidang run` processes at once over one PostgreSQL ledger, the sources partitioned between
them (one deployment per source on a work pool does exactly this), must archive every matter once
and never give one 件号 twice, even where their matters share a 件号 sequence. And the local
orchestrator's worker processes must leave the same archive and ledger as threads in one process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text

from tests.dbservers import fresh_database
from tests.world_support import unified_running

REPO_ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-26T02:00:00+08:00"


def configure(world: Path, **changes: Any) -> None:
    """Rewrite the world's guidang.yaml with `changes` (top-level keys; `chunk_size` goes to every source)."""
    path = world / "guidang.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    chunk = changes.pop("chunk_size", None)
    if chunk is not None:
        for source in config["sources"]:
            source["chunk_size"] = chunk
    config.update(changes)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def start_night(world: Path, *sources: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", str(world / "guidang.yaml"),
           "--orchestrator", "local", "--as-of", AS_OF, "--json"]
    for s in sources:
        cmd += ["--source", s]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def archive_state(archive: Path) -> dict[str, str]:
    return {
        p.relative_to(archive).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(archive.rglob("*")) if p.is_file() and not p.name.startswith(".guidang-tmp-")
    }


def packages(archive: Path) -> dict[str, str]:
    """The packages, every key and digest; the ledger checkpoints and DA/T 93 batches name their run."""
    return {k: v for k, v in archive_state(archive).items() if not k.startswith(("checkpoints/", "transfers/"))}


def matter_rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(text(
                "SELECT source, project_id, version, state, archival_code, item_number, package_key, fonds, "
                "category_code, year, retention_period, org_code FROM matters ORDER BY source, project_id, version"
            ))]
    finally:
        engine.dispose()


def test_two_processes_on_one_postgresql_ledger_with_partitioned_sources_archive_each_matter_once(
    small_world: Path,
) -> None:
    with fresh_database("postgresql") as url:
        configure(small_world, ledger_url=url, chunk_size=3)
        with unified_running(small_world):
            nights = [start_night(small_world, "unified"), start_night(small_world, "tzxm", "sjjc")]
            results = [n.communicate(timeout=300) for n in nights]
        for night, (out, err) in zip(nights, results, strict=True):
            assert night.returncode == 0, out[-2000:] + err[-3000:]
            assert '"status": "completed"' in out, err[-3000:]
        rows = matter_rows(url)
        verified = [r for r in rows if r[3] == "verified"]
        assert {r[0] for r in verified} == {"unified", "tzxm", "sjjc"}
        # each matter once, each 件号 of each sequence once, each package key once
        assert len({(r[0], r[1]) for r in verified}) == len(verified)
        numbered = [r for r in rows if r[5] is not None]
        sequence_items = [(r[7], r[8], r[9], r[10], r[11], r[5]) for r in numbered]
        assert len(set(sequence_items)) == len(sequence_items), "a 件号 was given twice"
        assert len({r[4] for r in numbered}) == len(numbered) and len({r[6] for r in numbered}) == len(numbered)
        # gap-free per sequence, although two processes drew from the same sequences at once
        by_sequence: dict[tuple[Any, ...], list[int]] = {}
        for *key, item in sequence_items:
            by_sequence.setdefault(tuple(key), []).append(item)
        for key, items in by_sequence.items():
            assert sorted(items) == list(range(1, len(items) + 1)), (key, sorted(items))
        shared = [k for k, items in by_sequence.items()
                  if len({r[0] for r in numbered if (r[7], r[8], r[9], r[10], r[11]) == k}) > 1]
        assert shared, "the sources should share at least one 件号 sequence for this test to mean anything"
        stored = archive_state(small_world / "archive")
        assert sum(1 for k in stored if k.endswith("/_COMPLETE")) == len(verified)


def test_worker_processes_leave_the_archive_and_ledger_that_threads_leave(
    small_pristine: Path, tmp_path: Path
) -> None:
    import shutil

    worlds = {}
    for mode, workers in (("threads", 1), ("processes", 2)):
        world = tmp_path / mode / "world"
        shutil.copytree(small_pristine, world)
        configure(world, chunk_size=3, orchestration={"workers": workers})
        with unified_running(world):
            night = start_night(world)
            out, err = night.communicate(timeout=300)
        assert night.returncode == 0 and '"status": "completed"' in out, err[-3000:]
        worlds[mode] = world
    assert packages(worlds["threads"] / "archive") == packages(worlds["processes"] / "archive")
    assert len(packages(worlds["processes"] / "archive")) > 100
    assert matter_rows(f"sqlite:///{worlds['threads'] / 'ledger.sqlite'}") == matter_rows(
        f"sqlite:///{worlds['processes'] / 'ledger.sqlite'}"
    )


def test_a_night_killed_outright_takes_its_workers_with_it_and_resumes(small_pristine: Path, tmp_path: Path) -> None:
    """SIGKILL of the run's process (here at a crash point in it: numbering runs there) cannot shut
    the pool down; the workers must end by themselves, or they and the forkserver wait forever with
    the run's stdout held open, which is what `communicate` below would then do. Resumed, the night
    ends with the rows and packages of a night that was never killed."""
    import shutil

    from guidang_io.crashpoints import ENV

    worlds = {}
    for mode in ("clean", "killed"):
        world = worlds[mode] = tmp_path / mode / "world"
        shutil.copytree(small_pristine, world)
        configure(world, chunk_size=3, orchestration={"workers": 2})
    with unified_running(worlds["clean"]):
        clean = start_night(worlds["clean"])
        out, err = clean.communicate(timeout=300)
        assert clean.returncode == 0, err[-3000:]
    with unified_running(worlds["killed"]):
        os.environ[ENV] = "numbered:3"
        try:
            killed = start_night(worlds["killed"])
        finally:
            del os.environ[ENV]
        _out, err = killed.communicate(timeout=120)  # returns once no worker holds the pipes
        assert killed.returncode == -9, err[-3000:]
        resumed = start_night(worlds["killed"])
        out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and '"status": "completed"' in out, err[-3000:]
    rows = {mode: matter_rows(f"sqlite:///{w / 'ledger.sqlite'}") for mode, w in worlds.items()}
    assert rows["killed"] == rows["clean"] and len(rows["clean"]) > 20
    assert packages(worlds["killed"] / "archive") == packages(worlds["clean"] / "archive")


def _processes_marked(mark: str) -> list[int]:
    """Processes whose environment carries `mark` (ours: readable under /proc on Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"GUIDANG_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_night_whose_workers_are_never_needed_leaves_no_worker_server_behind(
    small_pristine: Path, tmp_path: Path
) -> None:
    """`guidang run` starts the workers' forkserver as it starts (night/forkserver.py); a night whose
    every source fits in one chunk never opens the pool, and the server, perhaps still importing,
    must be gone when the command is: else it holds the command's output open and a caller reading
    it waits."""
    import shutil
    import uuid

    if not Path("/proc/self/environ").exists():
        import pytest

        pytest.skip("needs /proc to see the processes")
    world = tmp_path / "world"
    shutil.copytree(small_pristine, world)
    configure(world, chunk_size=10_000, orchestration={"workers": 2})
    mark = uuid.uuid4().hex
    with unified_running(world), (tmp_path / "out.json").open("w") as out, (tmp_path / "err.log").open("w") as err:
        night = subprocess.run(
            [sys.executable, "-m", "flows.cli", "run", "--config", str(world / "guidang.yaml"),
             "--orchestrator", "local", "--as-of", AS_OF, "--json"],
            cwd=REPO_ROOT, stdout=out, stderr=err, timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "GUIDANG_TEST_MARK": mark},
        )
        left = _processes_marked(mark)
    assert night.returncode == 0, (tmp_path / "err.log").read_text()[-3000:]
    assert '"status": "completed"' in (tmp_path / "out.json").read_text()
    assert left == [], f"processes of the night still running after it exited: {left}"


def test_a_night_killed_while_its_worker_server_is_still_importing_takes_the_server_with_it(
    small_pristine: Path, tmp_path: Path
) -> None:
    """The server started with the run imports for about a second; a run killed meanwhile cannot
    stop it, so it watches the run itself (night/worker_preload.py): it must be gone at once, not
    hold the run's output open until its imports are done."""
    import shutil
    import signal
    import time
    import uuid

    if not Path("/proc/self/environ").exists():
        import pytest

        pytest.skip("needs /proc to see the processes")
    world = tmp_path / "world"
    shutil.copytree(small_pristine, world)
    configure(world, orchestration={"workers": 2})
    mark = uuid.uuid4().hex
    night = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--config", str(world / "guidang.yaml"),
         "--orchestrator", "local", "--as-of", AS_OF, "--json"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "GUIDANG_TEST_MARK": mark,
             "GUIDANG_UNIFIED_URL": "http://127.0.0.1:9"},  # nothing answers: the night never gets far
    )
    deadline = time.monotonic() + 30
    while len(_processes_marked(mark)) < 2 and night.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until the server is there beside the run's process
    assert len(_processes_marked(mark)) >= 2, "the run started no worker server"
    night.send_signal(signal.SIGKILL)
    night.wait(timeout=10)
    time.sleep(0.5)
    left = _processes_marked(mark)
    assert night.stdout is not None
    night.stdout.close()
    assert left == [], f"processes of the killed night still running: {[_cmdline(p) for p in left]}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return f"{pid} (gone)"
