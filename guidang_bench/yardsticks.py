"""What the night is read against: the hash limit, bagit-python, and the required-work floor,
each timed over the bench world's document files in the bench's own process (guidang_bench/timing.py runs
them, then the night).

The required-work floor is the work no night can skip, as the performance targets define it: for
every document one SM3 + SHA-256 pass on arrival, one SHA-256 read-back of the stored copy, and
pypdf opening it and counting its pages. Timed here one after the other in one thread, over files
already in the page cache, their CPU seconds are divided by the cores this process may use: the time
they would take if they were shared perfectly between the cores and the night spent nothing on
HTTP, 元数据 and its XSD, fsync, the ledger or starting its workers. So the floor is a lower bound,
and `matters / floor` an upper bound on any night's rate over this world. Where it is below
bagit-python's rate, matching bagit is out of reach on this machine whatever the code does; the
bench prints both so that a reader sees which case a world is.

guidang's own document checks go further than the floor's page count: the whole pypdf inspection
(encryption, active content, signatures, parse warnings) and the PRONOM identification of every
document (四性检测). They are timed beside the floor (`CHECKS`) and reported as what those checks
cost, not counted in it: a night that spends them is measured against the floor all the same.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader

from packager.format_id import identify_pronom
from packager.pdf import inspect_pdf
from schemas.digest import BLOCK_SIZE, digest_chunks, iter_file
from schemas.layout import COMPLETION_MARKER

HASH_THREADS = 2
STEPS = ("sm3_sha256", "sha256_readback", "pypdf_pages")  # the floor
CHECKS = ("pdf_inspection", "pronom")  # guidang's own checks, timed beside the floor


@dataclass(frozen=True)
class Floor:
    """CPU seconds per step over all the files, and the cores they are shared between; `checks`:
    guidang's own document checks over the same files, reported beside the floor, not in it."""

    steps: dict[str, float]
    cores: int
    checks: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.steps.values()) / self.cores

    @property
    def seconds_with_checks(self) -> float:
        return (sum(self.steps.values()) + sum(self.checks.values())) / self.cores


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
    return Floor(steps={s: min(p.steps[s] for p in passes) for s in STEPS}, cores=passes[0].cores,
                 checks={c: min(p.checks[c] for p in passes) for c in CHECKS})


def floor_of(files: list[Path], cores: int | None = None) -> Floor:
    """Each step over every file, its thread CPU time summed per step (page cache warm: the bench
    reads every file once before any contender), and guidang's own checks of each file beside."""
    spent = dict.fromkeys(STEPS, 0.0)
    checks = dict.fromkeys(CHECKS, 0.0)
    for path in files:
        t0 = time.thread_time()
        with path.open("rb") as fh:
            digest_chunks(iter_file(fh, BLOCK_SIZE))
        t1 = time.thread_time()
        readback = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter_file(fh, BLOCK_SIZE):
                readback.update(block)
        readback.hexdigest()
        t2 = time.thread_time()
        page_count(path)
        t3 = time.thread_time()
        inspect_pdf(path)  # the night's parse limit applies here too
        t4 = time.thread_time()
        identify_pronom(path)  # the first and last 128 KiB, as staging keeps them
        t5 = time.thread_time()
        for step, seconds in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            spent[step] += seconds
        checks["pdf_inspection"] += t4 - t3
        checks["pronom"] += t5 - t4
    return Floor(steps=spent, cores=cores or usable_cores(), checks=checks)


def page_count(path: Path) -> int | None:
    """pypdf opening the document and counting its pages: the floor's parse. A file pypdf cannot
    open counts what the attempt cost (the night rejects such a file; the floor cannot skip trying)."""
    with path.open("rb") as fh:
        try:
            return len(PdfReader(fh).pages)
        except Exception:  # pypdf raises many types for damaged files
            return None


def document_files(documents_dir: Path) -> list[Path]:
    return sorted(p for p in Path(documents_dir).iterdir() if p.is_file())


def warm_page_cache(files: list[Path]) -> int:
    """Read every file once (untimed), so that every contender then reads from the page cache."""
    total = 0
    for path in files:
        with path.open("rb") as fh:
            for chunk in iter_file(fh):
                total += len(chunk)
    return total


def hash_limit_seconds(files: list[Path]) -> float:
    """Seconds for one pass over the files, each block hashed by SM3 on a second thread while this
    one hashes it with SHA-256 (hashlib releases the GIL while it hashes a block)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-sm3") as sm3_thread:
        start = time.perf_counter()
        for path in files:
            sm3, sha256 = hashlib.new("sm3"), hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter_file(fh, BLOCK_SIZE):
                    pending = sm3_thread.submit(sm3.update, chunk)
                    sha256.update(chunk)
                    pending.result()
            sm3.hexdigest(), sha256.hexdigest()
        return time.perf_counter() - start


def hash_split_seconds(files: list[Path], threads: int = HASH_THREADS) -> float:
    """Seconds for `threads` threads to read the files (split between them) once into SM3 + SHA-256.

    hashlib releases the GIL while it hashes a block, so two threads use two cores."""
    shares = [files[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def work(share: list[Path]) -> None:
        try:
            for path in share:
                with path.open("rb") as fh:
                    digest_chunks(iter_file(fh, BLOCK_SIZE))
        except BaseException as exc:  # reported by the caller's thread, not lost in this one
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(share,), name=f"bench-hash-{i}") for i, share in enumerate(shares)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def matter_of(path: Path) -> str:
    """The matter a bench document belongs to: its file name is `<PROJID>-<nn>.pdf`."""
    return path.stem.rsplit("-", 1)[0]


def best_of(repeat: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """The fastest of `repeat` passes, and all of them. On a shared machine a pass can lose a core
    to another process; the contenders' best is the stricter yardstick for the night."""
    passes = [measure() for _ in range(max(1, repeat))]
    return min(passes), passes


def settle_disk() -> None:
    """Write out what earlier steps left dirty in the page cache (the generated world, bagit's copies),
    untimed, before a contender is timed. The night syncs its file system with every chunk (the crash
    order), so it would otherwise pay for flushing gigabytes of copies it never made."""
    if hasattr(os, "sync"):
        os.sync()


BAGIT_DIGESTS = ("sha256", "sha512")  # the yardstick the targets are stated against
ARCHIVE_DIGESTS = ("sm3", "sha256")  # what the archive records of every document: bagit doing the same work


def bagit_seconds(files: list[Path], work_dir: Path, checksums: tuple[str, ...] = BAGIT_DIGESTS) -> float:
    """Copy each matter's documents into a folder of its own under `work_dir` (a new folder per
    pass; untimed), then time `make_bag` with `checksums` over all the folders in this one process.
    The copies are left for `run_bench` to remove after the last night: removing them here would
    make the next timed contender pay for it (see `set_aside`).

    bagit-python takes any digest hashlib offers, so ARCHIVE_DIGESTS times the same packager
    computing the digests guidang must compute: the like-for-like figure beside the stated one."""
    import bagit

    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        groups[matter_of(path)].append(path)
    work_dir.mkdir(parents=True)
    folders = []
    for projid, paths in sorted(groups.items()):
        folder = work_dir / projid
        folder.mkdir()
        for path in paths:
            shutil.copyfile(path, folder / path.name)
        folders.append(folder)
    settle_disk()
    bagit_log = logging.getLogger("bagit")
    level = bagit_log.level
    bagit_log.setLevel(logging.WARNING)  # one INFO line per file otherwise
    try:
        start = time.perf_counter()
        for folder in folders:
            bagit.make_bag(str(folder), checksums=list(checksums), processes=1)
        return time.perf_counter() - start
    finally:
        bagit_log.setLevel(level)


INODE_PROBE = 1_000  # empty files `new_file_us` makes


def new_file_us(folder: Path, count: int = INODE_PROBE) -> float:
    """CPU microseconds of this thread to create one empty file in the new folder `folder`.

    Why: every file and folder a night makes costs it this, and on the bench machines' disks it
    varied by more than an order of magnitude within one hour with the code unchanged
    (docs/benchmark.md, "A self-built world, the disk's new files, and the targets again"); a
    night that makes eighteen a matter moves by several ms a matter with it. Read before and after
    the local night, it lets a reader tell a slower night from a slower disk. The files stay for
    `run_bench` to remove after the last night (timing.set_aside)."""
    folder.mkdir(parents=True)
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        start = time.thread_time()
        for i in range(count):
            os.close(os.open(f"f{i}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=fd))
        return (time.thread_time() - start) / count * 1e6
    finally:
        os.close(fd)


def night_files_per_matter(archive: Path) -> int | None:
    """The files and folders a night made for one matter: a stored package's (its folder, material
    folders, documents, 元数据, manifests, 检测报告, completion marker), and the same folders once
    more in staging (staged files are linked into the archive, staged folders are not); None when
    the archive holds no complete package."""
    counts = _package_counts(archive)
    return None if counts is None else counts[0] + 2 * (counts[1] + 1)


def package_entries(archive: Path) -> int | None:
    """The files and folders one stored package is made of (its folder included); None without one."""
    counts = _package_counts(archive)
    return None if counts is None else counts[0] + counts[1] + 1


def _package_counts(archive: Path) -> tuple[int, int] | None:
    """(files, folders) inside the first complete package of `archive`, None when it holds none."""
    for top, _, names in os.walk(archive):
        if COMPLETION_MARKER in names:
            files = folders = 0
            for _, dirs, inside in os.walk(top):
                folders += len(dirs)
                files += len(inside)
            return files, folders
    return None
