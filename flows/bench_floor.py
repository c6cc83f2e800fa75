"""The required-work floor of a bench world: what the steps issue 9 names for every document cost
on this machine when they are done once each and nothing else is.

A night cannot be faster than the work it must do. The issue asks for SM3 + SHA-256 on arrival,
one verifying read-back of the stored copy, and pypdf over every PDF; guidang's 四性检测 adds the
PRONOM identification of every document. Timed here one after the other in one thread, over
files already in the page cache, their CPU seconds are divided by the cores this process may use:
the time they would take if they were shared perfectly between the cores and the night spent
nothing on HTTP, 元数据 and its XSD, fsync, the ledger or starting its workers. So the floor is
a lower bound, and `matters / floor` an upper bound on any night's rate over this world. Where it
is below bagit-python's rate, matching bagit is out of reach on this machine whatever the code
does; the bench prints both so that a reader sees which case a world is.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from packager.format_id import BUFFER_SIZE, best_pronom
from packager.pdf import inspect_pdf
from schemas.digest import BLOCK_SIZE, MultiHasher, iter_file

STEPS = ("sm3_sha256", "sha256_readback", "pypdf", "pronom")


@dataclass(frozen=True)
class Floor:
    """CPU seconds per step over all the files, and the cores they are shared between."""

    steps: dict[str, float]
    cores: int

    @property
    def seconds(self) -> float:
        return sum(self.steps.values()) / self.cores


def usable_cores() -> int:
    """The cores this process may run on (its affinity, as a container or taskset limits it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def best_floor(files: list[Path], repeat: int) -> Floor:
    """The least CPU time of each step over `repeat` passes: on a shared machine a pass can be slowed
    by a neighbour, and the floor is meant as the lowest cost of the work."""
    passes = [floor_of(files) for _ in range(max(1, repeat))]
    return Floor(steps={s: min(p.steps[s] for p in passes) for s in STEPS}, cores=passes[0].cores)


def floor_of(files: list[Path], cores: int | None = None) -> Floor:
    """Each step over every file, its thread CPU time summed per step (page cache warm: the bench
    reads every file once before any contender)."""
    spent = dict.fromkeys(STEPS, 0.0)
    for path in files:
        t0 = time.thread_time()
        hasher = MultiHasher()
        with path.open("rb") as fh:
            for block in iter_file(fh, BLOCK_SIZE):
                hasher.update(block)
        hasher.digests()
        t1 = time.thread_time()
        readback = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter_file(fh, BLOCK_SIZE):
                readback.update(block)
        readback.hexdigest()
        t2 = time.thread_time()
        inspect_pdf(path)  # the night's parse limit applies here too
        t3 = time.thread_time()
        best_pronom(*_head_and_tail(path))
        t4 = time.thread_time()
        for step, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[step] += seconds
    return Floor(steps=spent, cores=cores or usable_cores())


def _head_and_tail(path: Path) -> tuple[bytes, bytes]:
    """The windows PRONOM's signatures look at, as staging keeps them while a document streams past."""
    with path.open("rb") as fh:
        head = fh.read(BUFFER_SIZE)
        size = fh.seek(0, os.SEEK_END)
        if size <= BUFFER_SIZE:
            return head, head
        fh.seek(size - BUFFER_SIZE)
        return head, fh.read(BUFFER_SIZE)
