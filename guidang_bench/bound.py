"""The most any night with guidang's checks could reach over the bench world: a bound tighter than
the required-work floor, built only of measured parts that no night doing the archive's work can skip.

The floor (guidang_bench/yardsticks.py) holds the hashing, the read-back and pypdf's page count. A
night also runs guidang's own document checks (the whole PDF inspection, PRONOM: timed beside the
floor), starts a process, writes every document's bytes into the archive (the floor only reads
them), and makes the stored package's files and folders. Each of those is measured here at its
cheapest:

- start-up: a bare interpreter importing only the libraries the floor and the checks run (the
  SM3 of the system's OpenSSL, pypdf, FIDO) and the ledger and 元数据 need (SQLAlchemy's ORM, lxml),
  as a child process, best of three: serial, it counts whole;
- the archive's copy: each document, already in memory, written to a new file through the night's
  own O_DIRECT writer (guidang_io/direct_io.py), this thread's CPU: shared over the cores;
- new files: the files and folders of one stored package (yardsticks.package_entries) at the
  disk's measured cost of an empty file (yardsticks.new_file_us): shared over the cores.

Nothing of the ledger, 元数据, the manifests, 检测报告, the 四性检测 or 归档回传 is in it, so the bound is
still below what a real night needs. Where a target's rate is above it, that target cannot be
reached with the checks costing what they cost on this machine; what would have to get cheaper is
printed with it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guidang_bench.yardsticks import best_of
from guidang_io.direct_io import DirectWriter

if TYPE_CHECKING:
    from guidang_bench.yardsticks import Floor

BARE_IMPORTS = "import hashlib; hashlib.new('sm3'); import pypdf, fido, sqlalchemy.orm, lxml.etree"


@dataclass(frozen=True)
class Bound:
    """The parts of the bound besides the floor and the checks (guidang_bench/yardsticks.Floor)."""

    start_seconds: float  # a bare process that imports what the work needs, wall
    write_cpu_seconds: float  # every document written once into new files, CPU
    new_files_cpu_seconds: float  # the stored packages' files and folders, CPU
    cores: int

    def seconds(self, floor_with_checks: float) -> float:
        """The least wall time of a night over the world: serial start-up, the rest shared."""
        shared = (self.write_cpu_seconds + self.new_files_cpu_seconds) / self.cores
        return floor_with_checks + self.start_seconds + shared


def bare_start_seconds(repeat: int = 3) -> float:
    """Wall seconds of a child interpreter importing only the work's libraries, the best of `repeat`."""
    def once() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", BARE_IMPORTS], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started

    return best_of(repeat, once)[0]


def archive_write_cpu(files: list[Path], folder: Path) -> float:
    """This thread's CPU seconds to write each file's bytes, read first untimed, into a new file of
    the new folder `folder` through the night's O_DIRECT writer: the archive's copy of the documents,
    the file's creation included. The copies stay for the bench to remove after its last night."""
    folder.mkdir(parents=True)
    spent = 0.0
    for i, path in enumerate(files):
        data = path.read_bytes()  # the night has the bytes in hand from its hashing pass
        started = time.thread_time()
        with DirectWriter(folder / f"d{i}") as out:
            out.write(data)
        spent += time.thread_time() - started
    return spent


def bound_of(files: list[Path], folder: Path, *, matters: int, entries_per_matter: int | None,
             new_file_us: float, cores: int) -> Bound:
    """The bound's parts over the world's document `files` (copies written under `folder`)."""
    write = archive_write_cpu(files, folder)
    entries = (entries_per_matter or 0) * matters
    return Bound(start_seconds=bare_start_seconds(), write_cpu_seconds=write,
                 new_files_cpu_seconds=entries * new_file_us / 1e6, cores=max(1, cores))


def bound_figures(f: dict[str, Any], floor: Floor, bound: Bound | None) -> dict[str, Any] | None:
    """The bound as figures: its parts and its rate over the world of `f` (guidang_bench/figures.figures,
    which adds its ratios to bagit-sm3 and the floor that the targets are read against)."""
    if bound is None:
        return None
    seconds = bound.seconds(floor.seconds_with_checks)
    rate = round(f["matters"] / seconds, 3) if seconds > 0 else 0.0
    return {
        "start_seconds": round(bound.start_seconds, 3),
        "write_cpu_seconds": round(bound.write_cpu_seconds, 3),
        "new_files_cpu_seconds": round(bound.new_files_cpu_seconds, 3),
        "checks_cpu_seconds": round(sum(floor.checks.values()), 3),
        "seconds": round(seconds, 3),
        "matters_per_s": rate,
        # the checks' CPU a target leaves, the rest of the bound as it is: (its seconds - the rest) x cores
        "rest_seconds": round(seconds - sum(floor.checks.values()) / bound.cores, 3),
        "cores": bound.cores,
    }


def checks_allowed(f: dict[str, Any], rate: float | None) -> float | None:
    """CPU seconds guidang's checks could take for a night at `rate` matters/s to stay within the bound."""
    b = f.get("bound")
    if not b or not rate:
        return None
    return round((f["matters"] / rate - b["rest_seconds"]) * b["cores"], 3)

