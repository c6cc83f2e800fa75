"""`guidang bench`: the real night over a generated world, beside the figures it must be read against.

A night's speed alone says little; the question is how it compares with what the same
bytes cost elsewhere on the same machine. So one bench run measures, over the same document files:

1. the *hash limit*: one pass over every file (each 1 MiB block read
   once), SM3 on one thread and SHA-256 on another: what reading and hashing alone cost, which
   no archiving night can beat. Beside it, for the record, the files split between two threads
   that each compute both digests (`hash_split_*`), a ceiling for two cores doing nothing else;
2. *bagit-python*: `bagit.make_bag(..., checksums=["sha256", "sha512"], processes=1)` over one
   folder per matter holding copies of its documents (copying is not timed): a well-known
   packager that reads each file once and writes two manifests, in one process; and again with
   the digests the archive records (sm3 + sha256), reported beside it, not a target;
3. the *required-work floor* (guidang_bench/yardsticks.py): the night's mandatory per-document steps alone;
4. the *night*: `python -m flows.cli run ... --json` as a child process against the unified-system
   simulator (its own process, over real HTTP), fs repository with fsync, SQLite ledger.

The page cache cannot be dropped without root, so every file is read once, untimed, before the
first contender: all of them read from memory, which favours none. The night's rate uses the
run's own duration as the ledger records it (`runs.started_at` .. `finished_at`: after the run
lock, before the summary is printed), so interpreter start-up and imports are excluded, as they
are for bagit and the hash limit, which run inside this process. The child's wall time is reported
beside it, and its peak memory: the largest sum of proportional set sizes, sampled every 0.1 s, over
the night's whole process tree (the run's process and its workers; shared pages counted once).

This module measures and reports; it never judges a run by speed (the targets are printed with
met true/false, and the exit code says only whether the night itself archived every matter).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from guidang_bench.bound import bound_of
from guidang_bench.figures import NewFiles, Night, figures
from guidang_bench.memory import run_measured
from guidang_bench.yardsticks import (
    ARCHIVE_DIGESTS,
    HASH_THREADS,
    bagit_seconds,
    best_floor,
    best_of,
    document_files,
    hash_limit_seconds,
    hash_split_seconds,
    new_file_us,
    night_files_per_matter,
    package_entries,
    settle_disk,
    warm_page_cache,
)
from schemas.findings import GuidangError

MB = 1_000_000  # every MB and MB/s of the bench is 10^6 bytes (ru_maxrss KiB are converted to it too)
SIMULATOR_START_TIMEOUT = 60.0

Say = Callable[[str], None]


class BenchFailed(GuidangError):
    """The night did not archive every matter of the bench world (or could not run): no figure for it."""


def _say_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of the bench's child processes: this one's, with the code this bench runs
    first on the path (a source checkout or the installed package: the child runs the same code)."""
    env = dict(os.environ)
    code_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code_root, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The unified-system simulator in a process of its own (so that serving the documents does not
    share the night's interpreter or this one's), once it answers over HTTP."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "guidang_demo", str(data_dir), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=data_dir,
        )
    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise BenchFailed(f"the unified simulator exited ({proc.returncode}): {_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/api/v1/catalogue", timeout=2) as response:
                response.read()
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                stop_process(proc)
                raise BenchFailed(f"the unified simulator did not answer on {url} within "
                                  f"{SIMULATOR_START_TIMEOUT:.0f} s: {_tail(log_path)}") from None
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _parse_summary(text: str) -> dict[str, Any] | None:
    """The night's JSON summary: all of stdout, or from the first line that opens an object."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    start = text.find("\n{")
    if start >= 0:
        try:
            return json.loads(text[start + 1:])
        except ValueError:
            return None
    return None


def run_night(config: Path, *, orchestrator: str, as_of: str, unified_url: str, log_dir: Path,
              label: str | None = None) -> Night:
    """The real night as a child process; its duration read back from the ledger's run row. `label`
    names the night in the figures and its logs (the orchestrator's name by default)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    label = label or orchestrator
    out_path, err_path = log_dir / f"night-{label}.json", log_dir / f"night-{label}.log"
    command = [sys.executable, "-m", "flows.cli", "run", "--config", str(config),
               "--orchestrator", orchestrator, "--as-of", as_of, "--json"]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        returncode, process_seconds, peak = run_measured(command, stdout=out, stderr=err, cwd=config.parent,
                                                         env=child_env(GUIDANG_UNIFIED_URL=unified_url))
    summary = _parse_summary(out_path.read_text(encoding="utf-8", errors="replace"))
    if summary is None or "run_id" not in summary:
        raise BenchFailed(f"the {label} night exited {returncode} without a summary:\n{_tail(err_path)}")
    return Night(
        orchestrator=label,
        night_seconds=run_duration(config, summary["run_id"]),
        process_seconds=process_seconds,
        peak_rss_mb=peak / MB,
        summary=summary,
    )


def run_duration(config: Path, run_id: str) -> float:
    """Seconds between the run row's start and finish, as the night's own ledger recorded them."""
    from ledger.models import Run
    from ledger.store import Ledger
    from schemas.config import load_settings

    settings = load_settings(config)
    with Ledger(settings.resolve_url(settings.ledger_url), migrate=False) as ledger, ledger.read() as session:
        run = session.get(Run, run_id)
        if run is None or run.finished_at is None:
            raise BenchFailed(f"run {run_id} is not finished in the ledger of {config}")
        return (run.finished_at - run.started_at).total_seconds()


def check_night(night: Night, matters: int) -> None:
    """Every matter archived in a completed run, or the bench has no figure to give."""
    totals = night.summary.get("totals", {})
    if night.summary.get("status") == "completed" and totals.get("archived") == matters:
        return
    counts = ", ".join(f"{k} {v}" for k, v in totals.items() if v)
    errors = "; ".join(f"{n}: {s['error']}" for n, s in night.summary.get("sources", {}).items() if s.get("error"))
    reasons = ", ".join(f"{k} x{v}" for k, v in night.summary.get("quarantine_reasons", {}).items())
    raise BenchFailed(
        f"the {night.orchestrator} night did not archive all {matters} matters: status "
        f"{night.summary.get('status')}; {counts or 'nothing counted'}"
        + (f"; quarantine reasons: {reasons}" if reasons else "") + (f"; errors: {errors}" if errors else "")
    )


def reset_state(world_dir: Path) -> None:
    """What a night leaves behind (ledger, archive, staging) set aside, so that the next night
    starts as the first without paying for their removal (`set_aside`)."""
    aside = set_aside(world_dir, "night")
    aside.mkdir()
    for path in [*world_dir.glob("ledger.sqlite*"), world_dir / "archive", world_dir / "staging"]:
        if path.exists():
            path.rename(aside / path.name)
    (world_dir / "archive").mkdir()


LATER = "later"  # a bench world's folder of what it is done with, removed after its last night


def set_aside(world_dir: Path, kind: str) -> Path:
    """A new path (not created) under the world's `later/` folder, for something the bench is done
    with (bagit's copies, an earlier night's archive); `run_bench` removes the folder at the end.

    Why not remove it at once: on ext4 without a journal (the bench machine's file system), every
    inode freed in the last 10-15 seconds is skipped, one lookup each, whenever a file is created
    (ialloc.c, recently_deleted). A night starting right after bagit's thousands of copies were
    deleted would spend part of its CPU on that, a cost of the bench's order and not of the night."""
    later = world_dir / LATER
    later.mkdir(exist_ok=True)
    return later / f"{kind}-{sum(1 for _ in later.iterdir())}"


def dask_config(config: Path) -> Path:
    """The world's configuration with the Prefect night's chunks on Dask: one local cluster of
    DASK_WORKERS worker processes for the night, shared by its sources (orchestration.task_runner)."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["orchestration"] = {**(data.get("orchestration") or {}), "task_runner": "dask",
                             "dask_workers": DASK_WORKERS}
    out = config.with_name("guidang-dask.yaml")
    out.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out


DASK_WORKERS = 2  # the LocalCluster the Dask target is stated for


def _no_prefect_server() -> str:
    raise BenchFailed("the Prefect night needs prefect_server: what names the Prefect API the night will use")


def run_bench(
    world: dict[str, Any], world_dir: Path, *, orchestrator: str = "local", repeat: int = 3, say: Say = _say_stderr,
    prefect_server: Callable[[], str] = _no_prefect_server, dask: bool = False,
) -> dict[str, Any]:
    """Measure the three contenders over the world `guidang_demo.bench_world.build_bench_world` wrote
    into `world_dir` (its returned summary is `world`); returns the figures (`figures.figures`).
    The hash limit and bagit take the best of `repeat` passes; the night runs once per orchestrator,
    and once more on Prefect with its chunks on a local Dask cluster when `dask` is set.
    `prefect_server` names the Prefect API the child's night will talk to; it is handed in by the
    command so that only `flows/` imports Prefect."""
    files = document_files(Path(world["documents_dir"]))
    config = Path(world["config"])
    as_of = f"{world['until']}T00:00:00+08:00"
    say(f"warming the page cache: {len(files)} files")
    warm_page_cache(files)
    say(f"hash limit: one pass, SM3 and SHA-256 on two threads (best of {repeat})")
    hash_s, hash_passes = best_of(repeat, lambda: hash_limit_seconds(files))
    say(f"hash split: {HASH_THREADS} threads over the files, each SM3 + SHA-256 (best of {repeat})")
    split_s, split_passes = best_of(repeat, lambda: hash_split_seconds(files))
    say(f"bagit-python make_bag (sha256 + sha512, one process; best of {repeat})")
    bagit_s, bagit_passes = best_of(repeat, lambda: bagit_seconds(files, set_aside(world_dir, "bagit")))
    say(f"bagit-python make_bag with the archive's digests (sm3 + sha256; best of {repeat})")
    like_s, like_passes = best_of(repeat, lambda: bagit_seconds(files, set_aside(world_dir, "bagit"), ARCHIVE_DIGESTS))
    say(f"required-work floor: each document's mandatory steps once, one thread (least of {repeat})")
    floor = best_floor(files, repeat)  # guidang_bench/yardsticks.py
    server = prefect_server() if orchestrator == "prefect" or dask else None
    logs = world_dir / "bench-logs"
    logs.mkdir(exist_ok=True)
    # a self-built system's world is read from its database and files: no server to start
    simulator, url = (None, "") if world.get("source") == "sql" else start_simulator(
        world_dir / "sources" / "unified", logs / "simulator.log")
    try:
        say(f"the night, local orchestrator ({world['matters']} matters)")
        settle_disk()
        file_before = new_file_us(set_aside(world_dir, "new-files"))
        local = run_night(config, orchestrator="local", as_of=as_of, unified_url=url, log_dir=logs)
        check_night(local, world["matters"])
        new_files = NewFiles(file_before, new_file_us(set_aside(world_dir, "new-files")),
                             night_files_per_matter(world_dir / "archive"))
        entries = package_entries(world_dir / "archive")
        prefect = None
        if orchestrator == "prefect":
            reset_state(world_dir)
            say(f"the night again, Prefect orchestrator, against {server}")
            settle_disk()
            prefect = run_night(config, orchestrator="prefect", as_of=as_of, unified_url=url, log_dir=logs)
            check_night(prefect, world["matters"])
        on_dask = None
        if dask:
            reset_state(world_dir)
            say(f"the night again, Prefect with its chunks on a local Dask cluster of {DASK_WORKERS} workers, "
                f"against {server}")
            settle_disk()
            on_dask = run_night(dask_config(config), orchestrator="prefect", as_of=as_of, unified_url=url,
                                log_dir=logs, label="dask")
            check_night(on_dask, world["matters"])
        say("the bound: a bare start-up, every document written once into the archive's kind of file")
        bound = bound_of(files, set_aside(world_dir, "archive-copy"), matters=world["matters"],
                         entries_per_matter=entries, new_file_us=(new_files.before_us + new_files.after_us) / 2,
                         cores=floor.cores)
    finally:
        if simulator is not None:
            stop_process(simulator)
        shutil.rmtree(world_dir / LATER, ignore_errors=True)
    passes = {"hash_limit": hash_passes, "hash_split": split_passes, "bagit": bagit_passes, "bagit_sm3": like_passes}
    return figures(world, hash_seconds=hash_s, split_seconds=split_s, bagit_seconds=bagit_s,
                   bagit_sm3_seconds=like_s, floor=floor,
                   local=local, prefect=prefect, dask=on_dask, passes=passes, new_files=new_files, bound=bound,
                   prefect_server=server, measured_at=datetime.now().astimezone().isoformat(timespec="seconds"))
