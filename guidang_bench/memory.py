"""The memory a benchmarked night uses: its whole process tree, sampled while it runs (guidang_bench/timing.py)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

SAMPLE_EVERY = 0.5  # seconds between two memory samples of the night's process tree


class TreeRss(threading.Thread):
    """The peak memory of a process and all its descendants, sampled from /proc every
    SAMPLE_EVERY seconds: the sum of their proportional set sizes (PSS), so pages a forked worker
    shares with its parent are counted once, not once per process (Linux; elsewhere it stays 0 and
    ru_maxrss is all there is). A sample walks every page table of the tree, which is not free:
    sampled often it would take a visible share of the cores the night is being timed on, while a
    night's memory is a plateau per slice, seconds long, so a coarse interval misses nothing."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="bench-rss", daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_EVERY):
            self.peak = max(self.peak, tree_memory(self.pid))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_measured(command: list[str], *, stdout: IO[bytes], stderr: IO[bytes], env: Mapping[str, str],
                 cwd: Path) -> tuple[int, float, int]:
    """Run `command` to its end: its exit code, wall seconds and peak memory in bytes, the peak of
    its tree's summed PSS (`TreeRss`). The child's ru_maxrss is only the fallback where /proc has no
    PSS: Linux starts a child's high-water mark at that of the process that started it (exec keeps
    the old address space's peak), so a bench that had just built a 50,000-matter world in memory
    reported its own peak as the night's."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=dict(env), cwd=cwd)
    sampler = TreeRss(proc.pid)
    sampler.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return proc.returncode, seconds, sampler.peak or usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def tree_memory(root: int) -> int:
    """Bytes of memory (PSS) of `root` and every process below it, now."""
    proc = Path("/proc")
    total = 0
    for pid in _tree(root):
        try:
            for line in (proc / str(pid) / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError):
            continue
    return total


def _tree(root: int) -> set[int]:
    """`root` and its descendants, from each process's children lists (/proc/PID/task/TID/children,
    under a millisecond), else from every process's parent (a read of all of /proc)."""
    if not os.path.exists(f"/proc/{root}/task/{root}/children"):  # a kernel without the lists
        return _tree_by_parents(root)
    tree, todo = {root}, [root]
    while todo:
        pid = todo.pop()
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                    below = {int(c) for c in fh.read().split()} - tree
                tree |= below
                todo.extend(below)
        except (OSError, ValueError):  # it ended meanwhile: its children went too, or were reparented
            continue
    return tree


def _tree_by_parents(root: int) -> set[int]:
    proc = Path("/proc")
    parents: dict[int, int] = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        grew = bool(below)
        tree |= below
    return tree


