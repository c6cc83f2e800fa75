"""Where a night's CPU goes, per matter: the night run in this process under cProfile, its time split
into the work no night can skip and the rest, by subsystem.

`guidang bench` times a night from outside; this answers the next question, what the seconds were
spent on. The bench world is built (guidang_demo/bench_world.py), its unified-system simulator runs
in a process of its own (its CPU is not the night's), and the night runs here with threads (one
`orchestration.workers`), every thread under a profiler of its own whose clock is that thread's
CPU time: wall time on a shared machine says more about the neighbours than about the code.

A profiler slows pure-Python code more than C code, so the split is taken from the profiled night
and applied to the CPU seconds of a second night over a fresh copy of the same state, run without a
profiler (`cpu_seconds`); both are reported.

Attribution: each function's own time goes to the subsystem of the innermost frame a rule names
(hashlib to hashing, pypdf to pypdf, lxml to XML, a ledger module to the ledger...); a frame no
rule names (a builtin, pydantic, dataclasses) hands its time on to its callers in proportion to
what each caller spent in it. cProfile keeps caller edges, not stacks, so this is exact for a
function with one caller and a proportional estimate for a shared helper.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Func = tuple[str, int, str]  # pstats' key: file, line, function name

# The bench's required-work floor (hashing, read-back, pypdf) and guidang's own document checks
# (the whole inspection, PRONOM) as the profile names them: guidang_bench/yardsticks.py times both.
REQUIRED = ("SM3+SHA-256 hashing", "read-back", "PDF inspection (pypdf)", "PRONOM identification")

# (category, test on the file name, test on the function name): the first match names a frame
# (a category of None: the frame hands its time on, as one no rule names does).
# Builtins have the file "~" and a name such as "<method 'update' of '_hashlib.HASH' objects>".
RULES: list[tuple[str | None, Callable[[str], bool], Callable[[str], bool]]] = [
    ("start-up (imports)", lambda f: "importlib" in f or f.startswith("<frozen"), lambda n: True),
    ("read-back", lambda f: f.endswith("connectors/repositories/fs.py"), lambda n: n == "_read_back"),
    ("SM3+SHA-256 hashing", lambda f: f == "~", lambda n: "_hashlib" in n or "sm3" in n.lower()),
    ("SM3+SHA-256 hashing", lambda f: f.endswith("schemas/digest.py"), lambda n: True),
    ("PDF inspection (pypdf)", lambda f: "/pypdf/" in f or f.endswith("packager/pdf.py"), lambda n: True),
    ("PRONOM identification", lambda f: any(f.endswith(f"packager/{m}.py") for m in (
        "format_id", "format_index", "format_cache")), lambda n: True),
    ("XML (lxml, XSD)", lambda f: f == "~", lambda n: "lxml" in n),
    ("XML (lxml, XSD)", lambda f: f.endswith("schemas/xmlio.py"), lambda n: True),
    ("ledger (SQL, events)", lambda f: "/ledger/" in f or "/sqlalchemy/" in f or "sqlite3" in f, lambda n: True),
    ("ledger (SQL, events)", lambda f: f == "~", lambda n: "sqlite3" in n),
    ("HTTP (source)", lambda f: f.endswith(("http/client.py", "/socket.py", "/ssl.py")) or "/connectors/sources/" in f
     or "/urllib/" in f or "/email/" in f, lambda n: True),
    ("HTTP (source)", lambda f: f == "~", lambda n: "_socket" in n or "'recv" in n or "sendall" in n),
    ("packager build (元数据, manifests)", lambda f: f.endswith(("packager/package.py", "schemas/metadata.py",
                                                            "schemas/metadata_build.py", "schemas/manifest.py")),
     lambda n: True),
    ("checks (四性检测)", lambda f: any(f.endswith(f"packager/{m}.py") for m in (
        "checks", "check_context", "check_items", "check_report", "content_checks", "content_items", "check_metadata")),
     lambda n: True),
    ("staging, formats", lambda f: any(f"packager/{m}" in f for m in (
        "stage.py", "formats.py", "containers.py", "content.py", "held.py", "normalise.py", "ofd")),
     lambda n: True),
    (None, lambda f: f.endswith("guidang_io/block_reads.py"), lambda n: True),
    (None, lambda f: f.endswith("guidang_io/direct_io.py"), lambda n: n == "read_blocks"),
    ("filesystem", lambda f: "/connectors/repositories/" in f or "/guidang_io/" in f or f.endswith(
        ("/shutil.py", "/pathlib.py", "/tempfile.py", "/os.py", "/genericpath.py", "/posixpath.py")), lambda n: True),
    ("filesystem", lambda f: f == "~", lambda n: "posix." in n or "'fsync" in n or "built-in method io.open" in n
     or "_io.FileIO" in n or "_io.Buffered" in n or "mmap" in n),
    ("appraisal (retention)", lambda f: "/retention/" in f, lambda n: True),
    ("logging", lambda f: "/logging/" in f, lambda n: True),
    ("night orchestration", lambda f: "/night/" in f, lambda n: True),
    ("threads, locks", lambda f: f.endswith(("/threading.py", "/queue.py")) or "/concurrent/" in f,
     lambda n: True),
]


def category_of(func: Func) -> str | None:
    """The subsystem a frame is named by, or None when it hands its time on to its callers."""
    filename, _, name = func
    filename = filename.replace("\\", "/")
    for category, on_file, on_name in RULES:
        if on_file(filename) and on_name(name):
            return category
    return None


def calls_in(stats: pstats.Stats) -> int:
    return sum(nc for _, nc, _, _, _ in stats.stats.values())  # type: ignore[attr-defined]


def own_seconds(stats: pstats.Stats) -> float:
    return sum(own for _, _, own, _, _ in stats.stats.values())  # type: ignore[attr-defined]


def attribute(stats: pstats.Stats, per_call: float = 0.0) -> dict[str, float]:
    """Every function's own time, by subsystem (see the module's docstring); unnamed to the top: "other".

    `per_call` is the profiler's own cost per call, taken off each function's own time (never below
    zero): cProfile charges every call about the same, so without it a function of many small
    calls (a PDF parser in Python) looks several times dearer than one long call into C (a hash)."""
    table: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    memo: dict[Func, dict[str, float]] = {}

    def shares(func: Func, depth: int, seen: frozenset[Func]) -> dict[str, float]:
        """The subsystems a unit of `func`'s time belongs to, as fractions summing to 1."""
        named = category_of(func)
        if named is not None:
            return {named: 1.0}
        if func in memo:
            return memo[func]
        callers = table.get(func, (0, 0, 0.0, 0.0, {}))[4]
        weights = {c: edge[3] for c, edge in callers.items() if c not in seen}
        total = sum(weights.values())
        if depth > 60 or total <= 0:
            return {"other": 1.0}
        out: dict[str, float] = defaultdict(float)
        for caller, weight in weights.items():
            for category, share in shares(caller, depth + 1, seen | {func}).items():
                out[category] += share * weight / total
        memo[func] = dict(out)  # cycles were cut at `seen`: close enough for a shared helper
        return out

    result: dict[str, float] = defaultdict(float)
    for func, (_, calls, own, _, callers) in table.items():
        own = max(0.0, own - calls * per_call)
        if own <= 0:
            continue
        named = category_of(func)
        if named is not None:
            result[named] += own
            continue
        by_caller = {c: edge[2] for c, edge in callers.items()}  # own time of `func` under each caller
        spread = sum(by_caller.values())
        if spread <= 0:
            for category, share in shares(func, 0, frozenset()).items():
                result[category] += own * share
            continue
        for caller, part in by_caller.items():
            for category, share in shares(caller, 1, frozenset({func})).items():
                result[category] += own * (part / spread) * share
    return dict(result)


@dataclass
class ThreadProfiles:
    """One cProfile per thread, each on that thread's CPU clock, started for every thread begun while
    it is installed (and for the installing one)."""

    profiles: list[cProfile.Profile] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _new(self) -> cProfile.Profile:
        profile = cProfile.Profile(time.thread_time)
        with self._lock:
            self.profiles.append(profile)
        return profile

    def _start_in_thread(self, *_: object) -> None:
        self._new().enable()  # replaces this hook for the thread: the profiler is its profile function

    @contextmanager
    def installed(self) -> Iterator[None]:
        threading.setprofile(self._start_in_thread)
        main = self._new()
        main.enable()
        try:
            yield
        finally:
            main.disable()
            threading.setprofile(None)  # type: ignore[arg-type]

    def stats(self) -> pstats.Stats:
        merged = pstats.Stats(self.profiles[0])
        for p in self.profiles[1:]:
            merged.add(p)
        return merged


def copy_state(world_dir: Path, into: Path) -> None:
    """The world as the night found it (sources, configuration), without what a night wrote."""
    shutil.copytree(world_dir, into, ignore=shutil.ignore_patterns("staging", "ledger.sqlite*", "bench-logs"),
                    symlinks=True)
    archive = into / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    archive.mkdir()


def split_per_matter(by_category: dict[str, float], cpu_seconds: float, matters: int) -> dict[str, Any]:
    """The profile's shares applied to the unprofiled night's CPU seconds, in ms per matter."""
    profiled = sum(by_category.values()) or 1.0
    ms = {c: 1000.0 * cpu_seconds * s / profiled / matters for c, s in by_category.items()}
    required = {c: ms.get(c, 0.0) for c in REQUIRED}
    rest = dict(sorted(((c, v) for c, v in ms.items() if c not in REQUIRED), key=lambda cv: -cv[1]))
    return {
        "cpu_ms_per_matter": round(1000.0 * cpu_seconds / matters, 2),
        "required_ms_per_matter": round(sum(required.values()), 2),
        "rest_ms_per_matter": round(sum(rest.values()), 2),
        "required": {c: round(v, 2) for c, v in required.items()},
        "rest": {c: round(v, 2) for c, v in rest.items()},
    }


def profile_text(result: dict[str, Any]) -> str:
    """The split as a person reads it: one line per subsystem, ms of CPU per matter."""
    split = result["split"]
    lines = [
        f"{result['matters']} matters x {result['docs']} PDFs of ~{result['size']:,} bytes, "
        f"{result['threads']} thread(s): {result['cpu_seconds']:.2f} s CPU unprofiled "
        f"({result['profiled_cpu_seconds']:.2f} s profiled), {split['cpu_ms_per_matter']:.1f} ms per matter",
        f"  required work and document checks {split['required_ms_per_matter']:7.2f} ms",
        *(f"    {c:<34} {v:7.2f}" for c, v in split["required"].items()),
        "    the same steps alone, no profiler (the bench's floor, then guidang's checks): " + ", ".join(
            f"{step} {ms:.2f}" for step, ms in result["floor_ms_per_matter"].items()),
        f"  everything else    {split['rest_ms_per_matter']:7.2f} ms",
        *(f"    {c:<34} {v:7.2f}" for c, v in split["rest"].items()),
    ]
    return "\n".join(lines)


def _with_threads(config: Path) -> None:
    """The bench world's configuration, its night on threads in one process (no worker processes)."""
    text = config.read_text(encoding="utf-8")
    if "orchestration:" not in text:
        config.write_text(text + "orchestration:\n  workers: 1\n", encoding="utf-8")


def night_child(config: Path, as_of: str, out: Path, profile: Path | None) -> None:
    """One night in this process (run as a child by `run_profile`): its CPU seconds, its summary and,
    with `profile`, the merged per-thread profile written beside it. Imports made before the night
    starts are not counted; those the night makes on its way are (start-up)."""
    from datetime import datetime

    from night.engine import run_nightly
    from schemas.config import load_settings

    settings = load_settings(config)
    now = datetime.fromisoformat(as_of)
    threads = ThreadProfiles()
    start = time.process_time()
    if profile is None:
        summary = run_nightly(settings, now=now)
    else:
        with threads.installed():
            summary = run_nightly(settings, now=now)
    cpu = time.process_time() - start
    profiled = 0.0
    if profile is not None:
        stats = threads.stats()
        stats.dump_stats(profile)
        profiled = own_seconds(stats)
    out.write_text(json.dumps({"cpu_seconds": cpu, "profiled_cpu_seconds": profiled, "summary": summary},
                              ensure_ascii=False, default=str), encoding="utf-8")


def _child(world_dir: Path, as_of: str, url: str, profile: Path | None) -> dict[str, Any]:
    from guidang_bench.timing import BenchFailed, child_env

    out = world_dir / "night.json"
    command = [sys.executable, "-m", "guidang_bench.cpu_profile", str(world_dir / "guidang.yaml"), as_of, str(out)]
    if profile is not None:
        command.append(str(profile))
    done = subprocess.run(command, env=child_env(GUIDANG_UNIFIED_URL=url), cwd=world_dir,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        raise BenchFailed(f"the profiled night exited {done.returncode}: {done.stderr[-3000:]}")
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def run_profile(world_dir: Path, *, matters: int, docs: int, size: int, chunk_size: int | None = None,
                pstats_file: Path | None = None) -> dict[str, Any]:
    """Build the bench world in `world_dir` (absent or empty), run the night twice over copies of it,
    once under the profilers and once without, and return the split (`split_per_matter`)."""
    from guidang_bench.timing import BenchFailed, start_simulator, stop_process
    from guidang_bench.yardsticks import document_files, floor_of
    from guidang_demo.bench_world import build_bench_world

    world = build_bench_world(world_dir / "profiled", matters=matters, docs=docs, size=size)
    config = Path(world["config"])
    _with_threads(config)
    if chunk_size is not None:
        config.write_text(config.read_text(encoding="utf-8").replace(
            "    page_size: 100\n", f"    page_size: 100\n    chunk_size: {chunk_size}\n"), encoding="utf-8")
    copy_state(world_dir / "profiled", world_dir / "plain")
    as_of = f"{world['until']}T00:00:00+08:00"
    profile = pstats_file or world_dir / "night.prof"
    simulator, url = start_simulator(world_dir / "profiled" / "sources" / "unified", world_dir / "simulator.log")
    try:
        profiled = _child(world_dir / "profiled", as_of, url, profile)
        plain = _child(world_dir / "plain", as_of, url, None)
    finally:
        stop_process(simulator)
    for night in (profiled, plain):
        archived = night["summary"].get("totals", {}).get("archived")
        if archived != matters:
            raise BenchFailed(f"the night archived {archived} of {matters} matters: {night['summary']}")
    # the same steps timed alone, without a profiler (the bench's floor): a profiler inflates
    # pure-Python parsing (pypdf, the PRONOM matcher) more than the correction per call can undo
    floor = floor_of(document_files(Path(world["documents_dir"])), cores=1)
    stats = pstats.Stats(str(profile))
    # the profiler's cost per call: what the profiled night spent beyond the plain one, over its calls
    per_call = max(0.0, (own_seconds(stats) - plain["cpu_seconds"]) / max(1, calls_in(stats)))
    by_category = attribute(stats, per_call)
    return {
        "matters": matters, "docs": docs, "size": size, "threads": "pool" if matters > (chunk_size or 50) else 1,
        "cpu_seconds": round(plain["cpu_seconds"], 3),
        "profiled_cpu_seconds": round(profiled["profiled_cpu_seconds"], 3),
        "profiler_us_per_call": round(per_call * 1e6, 3),
        "split": split_per_matter(by_category, plain["cpu_seconds"], matters),
        "floor_ms_per_matter": {step: round(1000.0 * sec / matters, 2)
                                for step, sec in {**floor.steps, **floor.checks}.items()},
        "pstats": str(profile),
    }


if __name__ == "__main__":  # the child of `_child`: CONFIG AS_OF OUT [PROFILE]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    night_child(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]) if len(sys.argv) > 4 else None)
